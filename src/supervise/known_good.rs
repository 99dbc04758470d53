//! When a deployment becomes known-good, as the supervisor sees its containers: a container
//! with a health check at its first `healthy` report (the prober says so, see
//! [`super::daemon`]); one without, once it has run for its service's
//! `deploy.update_config.monitor` ([`DEFAULT_MONITOR`] when unset). A container that exits
//! with a failure, or turns unhealthy, before its deployment was ever good marks it failed.
//! Which rows to mark is decided here from the rows alone (pure); the supervisor writes it.

use std::collections::BTreeSet;
use std::time::Duration;

use super::spec::SuperviseSpec;
use crate::state::{ContainerRecord, Outcome, Status};

/// How long a container without a health check must run before its deployment is known-good,
/// when its service sets no `update_config.monitor`.
pub const DEFAULT_MONITOR: Duration = Duration::from_secs(5);

/// The `update_config.monitor` of the service a container was made from (its stored config).
pub fn monitor(rec: &ContainerRecord) -> Duration {
    let text = rec.config.service.pointer("/deploy/update_config/monitor").and_then(|v| v.as_str());
    text.and_then(|t| berth_compose::units::Duration::parse(t).ok())
        .map(|d| d.0)
        .filter(|d| !d.is_zero())
        .unwrap_or(DEFAULT_MONITOR)
}

/// The marks the supervisor has made, by container run, so each is written once.
#[derive(Default)]
pub struct KnownGood {
    marked: BTreeSet<(String, Option<i64>)>,
}

impl KnownGood {
    /// The deployment marks due on this pass (`now`: unix milliseconds): containers without a
    /// health check that have run for their monitor time, and containers that exited with a
    /// failure. Each container run is marked once.
    pub fn due(&mut self, specs: &[(ContainerRecord, SuperviseSpec)], now: i64) -> Vec<(ContainerRecord, Outcome)> {
        let mut out = Vec::new();
        for (rec, spec) in specs.iter().filter(|(r, _)| !r.oneoff) {
            let outcome = match rec.status {
                Status::Running if spec.health.is_none() => {
                    let ran = rec.started_at.map(|s| now.saturating_sub(s)).unwrap_or(0);
                    (ran >= monitor(rec).as_millis() as i64).then_some(Outcome::KnownGood)
                }
                Status::Exited | Status::Dead if rec.exit_code != Some(0) => Some(Outcome::Failed),
                _ => None,
            };
            if let Some(outcome) = outcome {
                if self.marked.insert((rec.id.clone(), rec.started_at)) {
                    out.push((rec.clone(), outcome));
                }
            }
        }
        // Containers gone are forgotten.
        self.marked.retain(|(id, _)| specs.iter().any(|(r, _)| &r.id == id));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::supervise::testing::record;

    fn spec(checked: bool) -> SuperviseSpec {
        let mut s = SuperviseSpec::default();
        if checked {
            s.health = Some(crate::supervise::health::Check {
                test: berth_compose::resolved::HealthTest::Exec(vec!["true".into()]),
                interval: Duration::from_secs(1),
                timeout: Duration::from_secs(1),
                retries: 1,
                start_period: Duration::ZERO,
                start_interval: None,
            });
        }
        s
    }

    #[test]
    fn a_container_without_a_check_is_good_after_its_monitor_time_once() {
        let mut rec = record("p-web-1", Status::Running);
        rec.started_at = Some(10_000);
        rec.config.service = serde_json::json!({"deploy": {"update_config": {"monitor": "2s"}}});
        let specs = vec![(rec.clone(), spec(false))];
        let mut k = KnownGood::default();
        assert!(k.due(&specs, 11_999).is_empty());
        let due = k.due(&specs, 12_000);
        assert_eq!(
            due.iter().map(|(r, o)| (r.name.as_str(), *o)).collect::<Vec<_>>(),
            [("p-web-1", Outcome::KnownGood)]
        );
        assert!(k.due(&specs, 13_000).is_empty(), "marked once per run");
        // A new run is marked again.
        let mut again = rec.clone();
        again.started_at = Some(20_000);
        let specs = [(again, spec(false))];
        assert_eq!(k.due(&specs, 21_999).len(), 0);
        assert_eq!(k.due(&specs, 22_000).len(), 1);
        // Without a monitor of its own, the default holds.
        let mut plain = record("p-db-1", Status::Running);
        plain.started_at = Some(0);
        let specs = [(plain, spec(false))];
        assert_eq!(k.due(&specs, DEFAULT_MONITOR.as_millis() as i64 - 1).len(), 0);
        assert_eq!(k.due(&specs, DEFAULT_MONITOR.as_millis() as i64).len(), 1);
    }

    #[test]
    fn checked_containers_wait_for_the_prober_and_failures_mark_failed() {
        let mut running = record("p-web-1", Status::Running);
        running.started_at = Some(0);
        let mut failed = record("p-api-1", Status::Exited);
        failed.exit_code = Some(1);
        let mut clean = record("p-job-1", Status::Exited);
        clean.exit_code = Some(0);
        let specs = vec![(running, spec(true)), (failed, spec(false)), (clean, spec(false))];
        let due = KnownGood::default().due(&specs, 1_000_000);
        assert_eq!(due.iter().map(|(r, o)| (r.name.as_str(), *o)).collect::<Vec<_>>(), [("p-api-1", Outcome::Failed)]);
    }
}
