//! Supervision of a running project: health checks and restart policies as pure state
//! machines, what a container tells the supervisor about itself, and the project supervisor
//! process that drives them with real probes, timers, a DNS server and port proxies.

pub mod client;
pub mod daemon;
pub mod health;
pub mod ports;
pub mod probe;
pub mod reserve;
pub mod restart;
pub mod spec;
