//! Start-first replacement (`deploy.update_config.order: start-first`): the successor of a
//! container is made and started beside it under a name of its own (the plan's create and start
//! steps), then the switch step waits until it is ready, has the supervisor move the service's
//! DNS answers and published ports to it and lets the old container drain; the old container is
//! stopped and removed, and the successor takes its name. A successor that does not become
//! ready is dealt with as `update_config.failure_action` says, and the old container keeps
//! serving.

use std::time::{Duration, Instant};

use berth_compose::resolved::FailureAction;

use super::{StackEngine, READY_TIMEOUT};
use crate::events::Event;
use crate::plan::ContainerTarget;
use crate::state::{Health, Status};

/// A successor that did not become ready: the new version is at fault, not the host (exit 1,
/// as for a dependency that fails to start).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UpdateFailed(pub String);

/// How long a successor without a health check must keep running before it is switched to,
/// when `update_config.monitor` is not set.
const NO_CHECK_MONITOR: Duration = Duration::from_secs(1);

/// How long a drained container keeps running at least after the switch: clients that looked
/// its address up just before still reach it.
const DRAIN_SETTLE: Duration = Duration::from_millis(1500);

impl StackEngine<'_> {
    /// The switch step: waits until `to` is ready (healthy, or running without a health check)
    /// for `monitor`, hands `from`'s names and ports over to it and lets `from` drain (until the
    /// proxies relay no connection to it, within its stop grace period). When `to` does not
    /// become ready, `failure_action` decides: `pause` leaves it as it is and fails, `rollback`
    /// removes it and fails, `continue` removes it and lets the update go on (`up` fails at the
    /// end); in every case `from` keeps serving. The first `tolerated` successors of the service
    /// that fail are only removed (`max_failure_ratio`): the update goes on and `up` succeeds,
    /// saying so.
    pub(super) fn switch(
        &self,
        from: &ContainerTarget,
        to: &ContainerTarget,
        monitor: Duration,
        failure_action: FailureAction,
        tolerated: u32,
    ) -> anyhow::Result<()> {
        if let Err(why) = self.wait_successor(&to.name, monitor) {
            let service = &from.service;
            let failed = {
                let mut failures = self.failed_successors.lock().expect("failures");
                let n = failures.entry(service.clone()).or_default();
                *n += 1;
                *n
            };
            self.abandoned.lock().expect("abandoned").insert(from.name.clone());
            self.abandoned.lock().expect("abandoned").insert(to.name.clone());
            if failed <= tolerated {
                self.remove_container(&to.name, false)?;
                let message = format!(
                    "service {service:?}: {} {why}; removed, {} keeps serving ({failed} of {tolerated} failures \
                     max_failure_ratio tolerates)",
                    to.name, from.name
                );
                self.events.emit(Event::Warning { message });
                return Ok(());
            }
            let message = match failure_action {
                FailureAction::Pause => {
                    format!(
                        "service {service:?}: {} {why}; the update is paused and {} keeps serving",
                        to.name, from.name
                    )
                }
                FailureAction::Rollback | FailureAction::Continue => {
                    self.remove_container(&to.name, false)?;
                    format!("service {service:?}: {} {why}; rolled back, {} keeps serving", to.name, from.name)
                }
            };
            if failure_action == FailureAction::Continue {
                self.events.emit(Event::Warning { message: message.clone() });
                self.update_failures.lock().expect("failures").push(message);
                return Ok(());
            }
            return Err(UpdateFailed(message).into());
        }
        let old = self.record(&from.name)?;
        let new = self.record(&to.name)?;
        self.announce(&new);
        crate::supervise::client::handover(&self.roots, &self.project.name, &old.id, &new.id)?;
        self.drain(&old);
        Ok(())
    }

    /// Whether the step for container `name` is skipped: the replacement it belongs to was
    /// given up (`failure_action: continue`).
    pub(super) fn abandoned(&self, name: &str) -> bool {
        self.abandoned.lock().expect("abandoned").contains(name)
    }

    /// The replacements given up under `failure_action: continue`, each said as why.
    pub fn update_failures(&self) -> Vec<String> {
        self.update_failures.lock().expect("failures").clone()
    }

    /// Waits until container `name` is ready and has stayed so for `monitor`; the error says
    /// why it is not.
    fn wait_successor(&self, name: &str, monitor: Duration) -> Result<(), String> {
        let start = Instant::now();
        let mut checked = Instant::now();
        let mut ready_since: Option<Instant> = None;
        loop {
            if checked.elapsed() > Duration::from_secs(2) {
                checked = Instant::now();
                crate::supervise::client::ensure(&self.roots, &self.project.name).map_err(|e| format!("{e:#}"))?;
            }
            let rec = self.record(name).map_err(|e| format!("{e:#}"))?;
            let rec = {
                let db = self.db.lock().expect("db");
                self.lifecycle(&db).refresh(&rec).map_err(|e| format!("{e:#}"))?
            };
            let checked_health = rec.config.supervise.as_ref().is_some_and(|s| s.health.is_some());
            let ready = match rec.status {
                Status::Exited | Status::Dead | Status::Restarting => {
                    return Err(format!("exited ({})", rec.exit_code.unwrap_or(-1)));
                }
                Status::Running if checked_health => {
                    let health = self.db.lock().expect("db").supervision(&rec.id).map_err(|e| e.to_string())?.health;
                    match health {
                        Some(Health::Healthy) => true,
                        Some(Health::Unhealthy) => return Err("is unhealthy".into()),
                        _ => false,
                    }
                }
                Status::Running => true,
                _ => false,
            };
            let hold = if checked_health { monitor } else { monitor.max(NO_CHECK_MONITOR) };
            match (ready, ready_since) {
                (true, Some(since)) if since.elapsed() >= hold => return Ok(()),
                (true, None) => ready_since = Some(Instant::now()),
                (false, _) => ready_since = None,
                _ => {}
            }
            if start.elapsed() > READY_TIMEOUT {
                return Err("did not become ready in time".into());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Lets container `old`, handed over, finish what it is serving: at least [`DRAIN_SETTLE`],
    /// then until the proxies relay no connection to it, within its stop grace period (or the
    /// stop timeout given).
    fn drain(&self, old: &crate::state::ContainerRecord) {
        let start = Instant::now();
        let grace = self.stop_timeout.unwrap_or(Duration::from_secs_f64(old.config.stop_grace_secs.max(0.0)));
        std::thread::sleep(DRAIN_SETTLE.min(grace.max(Duration::from_millis(100))));
        while start.elapsed() < grace {
            let status = crate::supervise::client::status(&self.roots, &self.project.name, Duration::from_secs(5));
            match status {
                Ok(s) if s.draining.get(&old.id).copied().unwrap_or(0) > 0 => {}
                // Drained, or the supervisor cannot say: the stop's own grace period is left.
                _ => return,
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Gives container `target` the name `to` (a successor taking its predecessor's name), and
    /// waits `delay` before the next group of replicas is replaced.
    pub(super) fn rename(&self, target: &ContainerTarget, to: &str, delay: Duration) -> anyhow::Result<()> {
        let rec = self.record(&target.name)?;
        self.db.lock().expect("db").rename_container(&rec.id, to)?;
        self.tell_supervisor();
        std::thread::sleep(delay);
        Ok(())
    }
}
