//! The supervisor's health prober: one probe task per running container with a health check, for
//! the run it started for (a container that starts again gets a new one), driving the pure state
//! machine of [`super::health`] with real probes ([`super::probe`]) and recording the health in
//! the container's row.
//!
//! Which probes should run is decided from the rows alone ([`plan`], pure); every pass starts the
//! missing ones and stops those whose container no longer runs.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;

use super::health::{Check, Health, Monitor, Probe};
use super::probe::Outcome;
use super::spec::SuperviseSpec;
use crate::container::{record_event, Roots};
use crate::state::{ContainerRecord, StateDb, Status};

/// One probe of a running container: its check's command, waited for at most the timeout. The
/// real one execs it through the container's runtime ([`super::probe::run`]).
pub type ProbeFn = Arc<dyn Fn(&ContainerRecord, &[String], Duration) -> Outcome + Send + Sync>;

/// What a probe task reports after each probe.
pub struct Report {
    id: String,
    /// The run it probes.
    started_at: Option<i64>,
    health: Health,
    failures: u32,
    changed: bool,
    /// Why the probe failed (Docker's health log output).
    output: Option<String>,
    /// How long the probe took.
    took: Duration,
}

/// Which probes to start and stop.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// Containers (ids) to probe anew: running with a health check, and not probed for this run.
    pub start: Vec<String>,
    /// Containers whose probe stops: they no longer run (or have no health check).
    pub stop: Vec<String>,
}

/// Which probes to start and stop, given the runs probed now (`probing`: id and the run's start).
pub fn plan(probing: &BTreeMap<String, Option<i64>>, specs: &[(ContainerRecord, SuperviseSpec)]) -> Plan {
    let live: Vec<&ContainerRecord> =
        specs.iter().filter(|(r, s)| s.health.is_some() && r.status == Status::Running).map(|(r, _)| r).collect();
    let start = live.iter().filter(|r| probing.get(&r.id) != Some(&r.started_at)).map(|r| r.id.clone()).collect();
    let stop = probing.keys().filter(|id| !live.iter().any(|r| &r.id == *id)).cloned().collect();
    Plan { start, stop }
}

/// A health change a report brought.
pub struct Change {
    /// The container, as its row is now.
    pub record: ContainerRecord,
    /// Its new health.
    pub health: Health,
}

/// The health probes of one project.
pub struct Prober {
    probe: ProbeFn,
    /// By container id: the run probed and its task.
    probes: HashMap<String, (Option<i64>, tokio::task::JoinHandle<()>)>,
    health: HashMap<String, Health>,
    tx: mpsc::UnboundedSender<Report>,
    rx: mpsc::UnboundedReceiver<Report>,
}

impl Prober {
    /// Probing nothing yet; probes exec in the containers through their runtime.
    pub fn new(roots: Roots) -> Prober {
        Prober::with_probe(Arc::new(move |rec, command, timeout| super::probe::run(&roots, rec, command, timeout)))
    }

    /// Probing nothing yet; each probe is `probe`.
    pub fn with_probe(probe: ProbeFn) -> Prober {
        let (tx, rx) = mpsc::unbounded_channel();
        Prober { probe, probes: HashMap::new(), health: HashMap::new(), tx, rx }
    }

    /// Keeps one probe task per running container with a health check.
    pub fn reconcile(&mut self, db: &StateDb, specs: &[(ContainerRecord, SuperviseSpec)]) {
        let probing: BTreeMap<String, Option<i64>> = self.probes.iter().map(|(id, (s, _))| (id.clone(), *s)).collect();
        let plan = plan(&probing, specs);
        for id in plan.start {
            let Some((r, spec)) = specs.iter().find(|(r, _)| r.id == id) else { continue };
            let Some(check) = spec.health.clone() else { continue };
            if let Some((_, old)) = self.probes.remove(&r.id) {
                old.abort();
            }
            // A row not written keeps its old health until the next report writes it again.
            let _ = db.set_health(&r.id, Some(Health::Starting), 0, None);
            self.health.insert(r.id.clone(), Health::Starting);
            let task = tokio::spawn(probe_loop(self.probe.clone(), r.clone(), check, self.tx.clone()));
            self.probes.insert(r.id.clone(), (r.started_at, task));
        }
        for id in plan.stop {
            if let Some((_, t)) = self.probes.remove(&id) {
                t.abort();
            }
            self.health.remove(&id);
        }
    }

    /// The next report of a probe task.
    pub async fn next(&mut self) -> Option<Report> {
        self.rx.recv().await
    }

    /// Records what `report` says (for the run probed now; others are stale): the health in the
    /// container's row and, when it changed, a `health_status` event. Returns the change.
    pub fn on_report(&mut self, db: &StateDb, report: Report) -> Option<Change> {
        let current = self.probes.get(&report.id).is_some_and(|(s, _)| *s == report.started_at);
        if !current {
            return None;
        }
        // A row not written catches up at the next report (the state here is current).
        let _ = db.set_health(&report.id, Some(report.health), report.failures, Some(report.took));
        self.health.insert(report.id.clone(), report.health);
        if !report.changed {
            return None;
        }
        let record = db.container(&report.id).ok().flatten()?;
        let output: Vec<(&str, serde_json::Value)> = match (&report.output, report.health) {
            (Some(o), Health::Unhealthy) => vec![("output", o.clone().into())],
            _ => Vec::new(),
        };
        record_event(db, &record, &format!("health_status: {}", report.health.as_str()), &output);
        Some(Change { record, health: report.health })
    }

    /// Stops probing container `id` (it is being restarted); its health stays until its next run
    /// is probed.
    pub fn forget(&mut self, id: &str) {
        if let Some((_, t)) = self.probes.remove(id) {
            t.abort();
        }
    }

    /// Whether container `id` failed its health check.
    pub fn unhealthy(&self, id: &str) -> bool {
        self.health.get(id) == Some(&Health::Unhealthy)
    }

    /// The health of each probed container, by id.
    pub fn status(&self) -> BTreeMap<String, Health> {
        self.health.iter().map(|(k, h)| (k.clone(), *h)).collect()
    }

    /// Stops every probe.
    pub fn close(&mut self) {
        for (_, (_, t)) in self.probes.drain() {
            t.abort();
        }
    }
}

async fn probe_loop(probe: ProbeFn, rec: ContainerRecord, check: Check, tx: mpsc::UnboundedSender<Report>) {
    // Tokio's clock (the system's, unless a test pauses it).
    let started = tokio::time::Instant::now();
    let mut monitor = Monitor::new(check.clone(), Duration::ZERO);
    let command = check.command();
    loop {
        tokio::time::sleep(monitor.next_delay()).await;
        let (probe, rec2, command, timeout) = (probe.clone(), rec.clone(), command.clone(), check.timeout);
        // The probe keeps its own timeout: it kills what it started once the timeout passes
        // (a timer around a blocking task could only stop waiting for it).
        let began = tokio::time::Instant::now();
        let run = tokio::task::spawn_blocking(move || probe(&rec2, &command, timeout)).await;
        let took = began.elapsed();
        let (probe, output) = match run {
            Ok(Outcome::Pass) => (Probe::Pass, None),
            Ok(Outcome::Fail(why)) => (Probe::Fail, Some(why)),
            Ok(Outcome::Timeout(why)) => (Probe::Timeout, Some(why)),
            Err(e) => (Probe::Fail, Some(e.to_string())),
        };
        let changed = monitor.record(probe, started.elapsed()).is_some();
        let report = Report {
            id: rec.id.clone(),
            started_at: rec.started_at,
            health: monitor.health(),
            failures: monitor.failures(),
            changed,
            output,
            took,
        };
        if tx.send(report).is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::supervise::testing::record;

    #[test]
    fn a_probe_runs_per_run_of_a_running_container_with_a_health_check() {
        let check = Check {
            test: berth_compose::resolved::HealthTest::Exec(vec!["true".into()]),
            interval: Duration::from_secs(30),
            timeout: Duration::from_secs(30),
            retries: 3,
            start_period: Duration::ZERO,
            start_interval: None,
        };
        let with = |name: &str, status: Status, started: i64| {
            let mut r = record(name, status);
            r.started_at = Some(started);
            (r, SuperviseSpec { health: Some(check.clone()), ..Default::default() })
        };
        let specs = [
            with("p-new-1", Status::Running, 1),
            with("p-same-1", Status::Running, 2),
            with("p-again-1", Status::Running, 5),
            with("p-down-1", Status::Exited, 1),
            (record("p-plain-1", Status::Running), SuperviseSpec::default()),
        ];
        let probing: BTreeMap<String, Option<i64>> = [("id-p-same-1", 2), ("id-p-again-1", 3), ("id-p-down-1", 1)]
            .into_iter()
            .map(|(id, s)| (id.to_string(), Some(s)))
            .collect();
        let p = plan(&probing, &specs);
        assert_eq!(p.start, ["id-p-new-1", "id-p-again-1"], "new, and started again since");
        assert_eq!(p.stop, ["id-p-down-1"]);
        assert_eq!(plan(&BTreeMap::new(), &[]), Plan::default());
    }

    /// A prober whose probes answer from `script` in turn (the last answer repeats), in a state
    /// root of its own with container `p-db-1` running and checked as `check` says.
    struct Scripted {
        _dir: tempfile::TempDir,
        db: StateDb,
        prober: Prober,
        row: (ContainerRecord, SuperviseSpec),
        start: tokio::time::Instant,
    }

    impl Scripted {
        fn new(check: Check, script: Vec<Outcome>) -> Scripted {
            let dir = tempfile::tempdir().unwrap();
            let db = StateDb::open(&dir.path().join("root")).unwrap();
            let mut r = record("p-db-1", Status::Running);
            r.started_at = Some(1);
            db.insert_container(&r).unwrap();
            let script = std::sync::Mutex::new(std::collections::VecDeque::from(script));
            let probe: ProbeFn = Arc::new(move |_, _, _| {
                let mut s = script.lock().unwrap();
                if s.len() > 1 {
                    s.pop_front().unwrap()
                } else {
                    s.front().cloned().unwrap_or(Outcome::Pass)
                }
            });
            let spec = SuperviseSpec { health: Some(check), ..Default::default() };
            let start = tokio::time::Instant::now();
            Scripted { _dir: dir, db, prober: Prober::with_probe(probe), row: (r, spec), start }
        }

        /// The next report: when it came (since the start), the health it gives, and the change.
        async fn next(&mut self) -> (Duration, Health, Option<Health>) {
            let report = self.prober.next().await.expect("a report");
            let (at, health) = (self.start.elapsed(), report.health);
            let change = self.prober.on_report(&self.db, report).map(|c| c.health);
            (at, health, change)
        }
    }

    fn check(interval: u64, retries: u32, start_period: u64) -> Check {
        Check {
            test: berth_compose::resolved::HealthTest::Exec(vec!["probe".into()]),
            interval: Duration::from_secs(interval),
            timeout: Duration::from_secs(5),
            retries,
            start_period: Duration::from_secs(start_period),
            start_interval: None,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_check_turns_healthy_then_unhealthy_after_its_retries() {
        let fail = || Outcome::Fail("exit code 1".into());
        let mut s = Scripted::new(check(30, 2, 0), vec![Outcome::Pass, fail(), fail()]);
        s.prober.reconcile(&s.db, &[s.row.clone()]);
        let id = s.row.0.id.clone();
        assert_eq!(s.db.supervision(&id).unwrap().health, Some(Health::Starting));
        let (at, _, change) = s.next().await;
        assert_eq!(change, Some(Health::Healthy));
        assert!(at < Duration::from_millis(100), "the first probe comes quickly: {at:?}");
        let (at, health, change) = s.next().await;
        assert_eq!((health, change), (Health::Healthy, None), "one failure of two allowed");
        assert!(at >= Duration::from_secs(30), "healthy: probed at the interval, {at:?}");
        assert_eq!(s.db.supervision(&id).unwrap().failing_streak, 1);
        let (_, _, change) = s.next().await;
        assert_eq!(change, Some(Health::Unhealthy));
        let sup = s.db.supervision(&id).unwrap();
        assert_eq!((sup.health, sup.failing_streak), (Some(Health::Unhealthy), 2));
        assert!(s.prober.unhealthy(&id));
        let events = s.db.events_after("p", 0).unwrap();
        let last = events.last().expect("events");
        assert_eq!(last.action, "health_status: unhealthy");
        assert_eq!(last.attributes.get("output").and_then(|o| o.as_str()), Some("exit code 1"));
        s.prober.close();
    }

    #[tokio::test(start_paused = true)]
    async fn failures_in_the_start_period_do_not_count() {
        let mut s = Scripted::new(check(1, 1, 10), vec![Outcome::Timeout("too slow".into())]);
        s.prober.reconcile(&s.db, &[s.row.clone()]);
        let mut quick = 0;
        let at = loop {
            let (at, health, change) = s.next().await;
            if let Some(h) = change {
                assert_eq!(h, Health::Unhealthy);
                break at;
            }
            assert_eq!(health, Health::Starting);
            quick += 1;
        };
        assert!(at >= Duration::from_secs(10) && at < Duration::from_secs(12), "{at:?}");
        assert!(quick >= 8, "probed quickly while starting: {quick} probes");
        s.prober.close();
    }

    #[tokio::test(start_paused = true)]
    async fn a_stopped_container_loses_its_probe_and_a_new_run_starts_over() {
        let mut s = Scripted::new(check(30, 1, 0), vec![Outcome::Pass]);
        s.prober.reconcile(&s.db, &[s.row.clone()]);
        assert_eq!(s.next().await.2, Some(Health::Healthy));
        let id = s.row.0.id.clone();
        // A report of an earlier run is stale: nothing recorded.
        let stale = Report {
            id: id.clone(),
            started_at: Some(0),
            health: Health::Unhealthy,
            failures: 3,
            changed: true,
            output: None,
            took: Duration::from_secs(9),
        };
        assert!(s.db.supervision(&id).unwrap().last_probe.is_some(), "the probe's latency is recorded");
        assert!(s.prober.on_report(&s.db, stale).is_none());
        assert_eq!(s.db.supervision(&id).unwrap().health, Some(Health::Healthy));
        assert_ne!(s.db.supervision(&id).unwrap().last_probe, Some(Duration::from_secs(9)));

        let mut stopped = s.row.clone();
        stopped.0.status = Status::Exited;
        s.prober.reconcile(&s.db, &[stopped]);
        assert!(s.prober.status().is_empty());

        let mut again = s.row.clone();
        again.0.started_at = Some(5);
        s.prober.reconcile(&s.db, &[again]);
        assert_eq!(s.prober.status().get(&id), Some(&Health::Starting), "a new run starts over");
        assert_eq!(s.db.supervision(&id).unwrap().health, Some(Health::Starting));
        s.prober.close();
    }
}
