//! Supervision of a running project: health checks and restart policies as pure state
//! machines (the project supervisor drives them with real probes and timers).

pub mod health;
pub mod restart;
