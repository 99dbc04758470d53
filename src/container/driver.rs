//! What the container lifecycle acts through: the OCI runtime that made a container, the
//! container's monitor (which starts it and records its exit) and the clock. [`System`] is the
//! real one; tests give the lifecycle a recording fake (`container::testing`).

use std::time::{Duration, Instant};

use super::{Roots, StartMode};
use crate::runtime::{self, Runtime};
use crate::state::ContainerRecord;

/// The runtime, monitors and clock of the container lifecycle.
pub trait Driver: Send + Sync {
    /// The OCI runtime named `name` (the one a container was made with).
    fn runtime(&self, roots: &Roots, name: &str) -> anyhow::Result<Box<dyn Runtime>>;
    /// Launches the container's monitor, which starts the container with its runtime and records
    /// the start, and waits for it to report that the container runs (or why it does not).
    fn launch(&self, roots: &Roots, rec: &ContainerRecord, mode: StartMode) -> anyhow::Result<()>;
    /// Whether a monitor lives for container `id` (one that has not yet recorded itself too).
    fn monitor_active(&self, roots: &Roots, id: &str) -> bool;
    /// Whether process `pid` (a monitor) runs.
    fn pid_alive(&self, pid: i32) -> bool;
    /// Now, on a monotonic clock.
    fn now(&self) -> Instant;
    /// Waits for `d`.
    fn sleep(&self, d: Duration);
}

/// This host: the runtime binaries, monitor processes, the system clock.
pub struct System;

/// The real driver.
pub static SYSTEM: System = System;

impl Driver for System {
    fn runtime(&self, roots: &Roots, name: &str) -> anyhow::Result<Box<dyn Runtime>> {
        Ok(Box::new(runtime::by_name(name, &roots.run)?))
    }

    fn launch(&self, roots: &Roots, rec: &ContainerRecord, mode: StartMode) -> anyhow::Result<()> {
        super::spawn_monitor(roots, rec, mode)
    }

    fn monitor_active(&self, roots: &Roots, id: &str) -> bool {
        super::monitor_active(roots, id)
    }

    fn pid_alive(&self, pid: i32) -> bool {
        super::pid_alive(pid)
    }

    fn now(&self) -> Instant {
        Instant::now()
    }

    fn sleep(&self, d: Duration) {
        std::thread::sleep(d)
    }
}
