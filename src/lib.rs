//! berth: the core library behind the `berth` binary.

pub mod events;
pub mod image;
pub mod output;
