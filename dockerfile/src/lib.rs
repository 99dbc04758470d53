//! berth's Dockerfile front end: everything the daemonless image builder needs to know about a Dockerfile before
//! it runs anything.
//!
//! * [`parser`]: text to a raw syntax tree (directives, continuations, heredocs, flags, JSON/shell forms);
//! * [`instruction`]: the typed instructions with validated flags, and their variable expansion;
//! * [`shell`]: shell-style word expansion (`$VAR`, `${VAR:-x}`, quotes, escapes);
//! * [`args`]: build-arg scoping (global ARGs, per-stage ARG/ENV, predefined proxy and platform args);
//! * [`stages`]: the [`Dockerfile`] as stages, and the order a target's stages can be built in;
//! * [`ignore`]: `.dockerignore` reading and matching.
//!
//! Every error is an [`Error`] naming the file and the line.

pub mod args;
pub mod error;
pub mod ignore;
pub mod instruction;
pub mod parser;
pub mod shell;
pub mod stages;

pub use args::{BuildArgs, GlobalScope, Platform, StageEnv};
pub use error::{Error, ErrorKind, Result};
pub use instruction::{Command, Instruction};
pub use stages::{BuildPlan, Dockerfile, Stage, StageRef};
