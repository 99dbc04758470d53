//! berth: the core library behind the `berth` binary.

pub mod events;
pub mod execute;
pub mod graph;
pub mod image;
pub mod output;
pub mod plan;
pub mod supervise;
