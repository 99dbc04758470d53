//! `berth watch`: `develop.watch` rules applied to running containers as files change, and the
//! compose files themselves reloaded and applied when they change.

pub mod batch;
pub mod rules;
pub mod sync;
pub mod watcher;

pub use watcher::{config_files, Driver, Watch};
