//! berth: the core library behind the `berth` binary.

pub mod app;
pub mod build;
pub mod check;
pub mod container;
pub mod events;
pub mod execute;
pub mod exit;
pub mod graph;
pub mod image;
pub mod leftover;
pub mod lock;
pub mod monitor;
pub mod notify;
pub mod observe;
pub mod output;
pub mod plan;
pub mod runtime;
pub mod stack;
pub mod state;
pub mod supervise;
pub mod watch;
