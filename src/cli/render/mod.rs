//! Renderers: how results and events of the application layer look on the terminal (tables,
//! `--format` templates, plan progress, log lines). Command files pick one; nothing here decides
//! anything about the project.

pub mod build;
pub mod format;
pub mod image;
pub mod logs;
pub mod network;
pub mod progress;
pub mod project;
pub mod ps;
mod ps_fields;
pub mod pull;
pub mod volume;
pub mod watch;
