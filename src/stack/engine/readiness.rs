//! Waiting for a dependency's `depends_on` condition: its containers started, completed
//! successfully, or healthy as the project supervisor reports (a container leaving for good is
//! never waited on).

use std::time::{Duration, Instant};

use anyhow::bail;

use super::{StackEngine, READY_TIMEOUT};
use crate::state::{Health, Status};

impl StackEngine<'_> {
    pub(super) fn containers_of(&self, service: &str) -> anyhow::Result<Vec<crate::state::ContainerRecord>> {
        let db = self.db.lock().expect("db");
        let all = db.containers(&self.project.name)?;
        let mine: Vec<_> =
            all.into_iter().filter(|c| c.service == service && !c.oneoff && !self.leaving.contains(&c.name)).collect();
        mine.into_iter().map(|c| self.lifecycle(&db).refresh(&c)).collect()
    }

    pub(super) fn wait_started(&self, dep: &str, completed: bool) -> anyhow::Result<()> {
        let start = Instant::now();
        loop {
            let cs = self.containers_of(dep)?;
            let done = if completed {
                cs.iter().all(|c| c.status == Status::Exited)
            } else {
                cs.iter().all(|c| matches!(c.status, Status::Running | Status::Exited))
            };
            if done && !cs.is_empty() {
                if completed {
                    if let Some(c) = cs.iter().find(|c| c.exit_code != Some(0)) {
                        bail!("service {dep:?} didn't complete successfully: exit {}", c.exit_code.unwrap_or(-1));
                    }
                }
                return Ok(());
            }
            if start.elapsed() > READY_TIMEOUT {
                bail!("service {dep:?} did not start in time");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits until the supervisor reports every container of `dep` healthy (health checks are
    /// the supervisor's: `up` starts it before any container).
    pub(super) fn wait_healthy(&self, dep: &str) -> anyhow::Result<()> {
        let start = Instant::now();
        let mut checked = Instant::now();
        loop {
            // Health comes from the supervisor: make sure one runs (it may have been killed).
            if checked.elapsed() > Duration::from_secs(2) {
                checked = Instant::now();
                crate::supervise::client::ensure(&self.roots, &self.project.name)?;
            }
            let cs = self.containers_of(dep)?;
            let mut all = !cs.is_empty();
            for c in &cs {
                if c.status != Status::Running {
                    if c.status == Status::Exited {
                        bail!("container {} exited ({})", c.name, c.exit_code.unwrap_or(-1));
                    }
                    all = false;
                    continue;
                }
                if c.config.supervise.as_ref().is_none_or(|s| s.health.is_none()) {
                    // A container that exits at once says so rather than lacking a check.
                    let age = crate::state::now_millis() - c.started_at.unwrap_or_default();
                    if age < 1000 {
                        all = false;
                        continue;
                    }
                    bail!("container {} has no healthcheck configured", c.name);
                }
                let health = self.db.lock().expect("db").supervision(&c.id)?.health;
                match health {
                    Some(Health::Healthy) => {}
                    Some(Health::Unhealthy) => bail!("container {} is unhealthy", c.name),
                    _ => all = false,
                }
            }
            if all {
                return Ok(());
            }
            if start.elapsed() > READY_TIMEOUT {
                bail!("service {dep:?} did not become healthy in time");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}
