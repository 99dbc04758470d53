//! The restart scheduler's decisions with times given to it (no waiting), rows in a temporary
//! state database, and restarts carried out on the recording fake runtime.

use std::time::{Duration, Instant};

use super::*;
use crate::container::testing::FakeDriver;
use crate::runtime::testing::Call;
use crate::supervise::restart::{Condition, Policy, DEFAULT_DELAY};
use crate::supervise::testing::record;

struct Fixture {
    _dir: tempfile::TempDir,
    roots: Roots,
    db: StateDb,
    driver: FakeDriver,
    restarts: Restarts,
    t0: Instant,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let roots = Roots { root: dir.path().join("root"), run: dir.path().join("run") };
        let db = StateDb::open(&roots.root).unwrap();
        let driver = FakeDriver::new(&roots);
        // Exits after the unix epoch's first second are this scheduler's to handle.
        let restarts = Restarts::new(roots.clone(), Some(1000));
        let t0 = restarts.epoch;
        Fixture { _dir: dir, roots, db, driver, restarts, t0 }
    }

    /// Container `name` of a service with `policy`, which ran from 2 s to 3 s (unix ms) and exited
    /// with `code`.
    fn exited(&self, name: &str, code: i32, policy: Policy) -> (ContainerRecord, SuperviseSpec) {
        let spec = SuperviseSpec { restart: policy, ..Default::default() };
        let mut r = record(name, Status::Exited);
        r.exit_code = Some(code);
        r.started_at = Some(2000);
        r.finished_at = Some(3000);
        r.config.stop_signal = "SIGTERM".into();
        r.config.stop_grace_secs = 10.0;
        r.config.supervise = Some(spec.clone());
        self.db.insert_container(&r).unwrap();
        (r, spec)
    }

    /// The same container ending again `ran` after it started, `later` ms after its last end.
    fn ends_again(row: &mut (ContainerRecord, SuperviseSpec), ran: i64, code: i32) {
        let end = row.0.finished_at.unwrap() + 1000 + ran;
        row.0.started_at = Some(end - ran);
        row.0.finished_at = Some(end);
        row.0.exit_code = Some(code);
    }

    fn at(&self, ms: u64) -> Instant {
        self.t0 + Duration::from_millis(ms)
    }

    /// The delay of the restart pending for `r`, from `now`.
    fn pending_after(&self, r: &ContainerRecord, now: Instant) -> Option<Duration> {
        self.restarts.pending.get(&r.id).map(|p| p.at - now)
    }

    fn actions(&self, name: &str) -> Vec<String> {
        let events = self.db.events_after("p", 0).unwrap();
        events.into_iter().filter(|e| e.name == name).map(|e| e.action).collect()
    }
}

fn policy(condition: Condition, max_attempts: Option<u32>) -> Policy {
    Policy { condition, max_attempts, delay: DEFAULT_DELAY, window: None }
}

#[test]
fn always_restarts_once_the_backoff_passed_and_the_job_starts_the_container() {
    let mut f = Fixture::new();
    let row = f.exited("p-web-1", 0, policy(Condition::Always, None));
    let specs = [row.clone()];
    f.restarts.exits(&f.db, &specs, f.at(0));
    assert!(f.restarts.due(&f.db, &specs, f.at(99)).is_empty(), "not before its 100 ms");
    let jobs = f.restarts.due(&f.db, &specs, f.at(100));
    let [job] = jobs.as_slice() else { panic!("{jobs:?}") };
    assert_eq!((job.record.name.as_str(), job.why.as_str(), job.running), ("p-web-1", "exited with code 0", false));
    assert!(f.restarts.due(&f.db, &specs, f.at(500)).is_empty(), "due once");

    job.run(&Lifecycle::with_driver(&f.roots, &f.db, &f.driver)).unwrap();
    assert_eq!(f.driver.runtime.actions(), [Call::Create(row.0.id.clone()), Call::Start(row.0.id.clone())]);
    let now = f.db.container(&row.0.id).unwrap().unwrap();
    assert_eq!((now.status, now.restart_count), (Status::Running, 1));
    assert_eq!(f.db.supervision(&row.0.id).unwrap().restart_reason.as_deref(), Some("exited with code 0"));
    assert!(f.actions("p-web-1").contains(&"restart".to_string()));
}

#[test]
fn each_exit_is_handled_once_and_the_previous_supervisors_are_left_alone() {
    let mut f = Fixture::new();
    let mut row = f.exited("p-web-1", 1, policy(Condition::Always, None));
    let mut old = f.exited("p-old-1", 1, policy(Condition::Always, None));
    old.0.finished_at = Some(900);
    f.restarts.exits(&f.db, &[row.clone(), old.clone()], f.at(0));
    assert_eq!(f.restarts.pending(), vec![row.0.id.clone()], "an exit before the last pass was handled before");
    assert_eq!(f.restarts.handled_upto(10_000), 2999, "the heartbeat stays before the pending exit");
    f.restarts.due(&f.db, &[row.clone()], f.at(100));
    // The same exit seen again (the next pass) schedules nothing.
    f.restarts.exits(&f.db, &[row.clone()], f.at(200));
    assert!(f.restarts.pending().is_empty());
    assert_eq!(f.restarts.handled_upto(10_000), 10_000);
    Fixture::ends_again(&mut row, 500, 1);
    f.restarts.exits(&f.db, &[row.clone()], f.at(300));
    assert_eq!(f.restarts.pending(), vec![row.0.id.clone()], "a new exit is");
}

#[test]
fn short_runs_back_off_doubling_and_a_stable_run_resets_the_delay() {
    let mut f = Fixture::new();
    let mut row = f.exited("p-web-1", 1, policy(Condition::Always, None));
    let mut delays = Vec::new();
    for i in 0..4u64 {
        let now = f.at(i * 60_000);
        f.restarts.exits(&f.db, &[row.clone()], now);
        delays.push(f.pending_after(&row.0, now).unwrap().as_millis());
        f.restarts.due(&f.db, &[row.clone()], now + Duration::from_secs(59));
        Fixture::ends_again(&mut row, 1000, 1);
    }
    assert_eq!(delays, [100, 200, 400, 800]);
    Fixture::ends_again(&mut row, 10_000, 1);
    let now = f.at(300_000);
    f.restarts.exits(&f.db, &[row.clone()], now);
    assert_eq!(f.pending_after(&row.0, now), Some(Duration::from_millis(100)), "after 10 s of running");
}

#[test]
fn on_failure_restarts_failures_up_to_its_limit_then_gives_up() {
    let mut f = Fixture::new();
    let mut row = f.exited("p-job-1", 2, policy(Condition::OnFailure, Some(2)));
    let mut restarted = 0;
    for i in 0..3u64 {
        let now = f.at(i * 60_000);
        f.restarts.exits(&f.db, &[row.clone()], now);
        restarted += f.restarts.due(&f.db, &[row.clone()], now + Duration::from_secs(59)).len();
        Fixture::ends_again(&mut row, 1000, 2);
    }
    assert_eq!(restarted, 2);
    assert_eq!(f.actions("p-job-1"), ["restart_give_up"]);

    let ok = f.exited("p-ok-1", 0, policy(Condition::OnFailure, Some(2)));
    f.restarts.exits(&f.db, &[ok], f.at(0));
    assert!(f.restarts.pending().is_empty(), "a clean exit is no failure");
}

#[test]
fn a_users_stop_is_respected_by_every_policy() {
    let mut f = Fixture::new();
    let rows: Vec<_> =
        [("p-a-1", Condition::Always), ("p-b-1", Condition::UnlessStopped), ("p-c-1", Condition::OnFailure)]
            .into_iter()
            .map(|(name, c)| f.exited(name, 137, policy(c, None)))
            .collect();
    for (r, _) in &rows {
        f.db.set_stop_requested(&r.id, true).unwrap();
    }
    f.restarts.exits(&f.db, &rows, f.at(0));
    assert!(f.restarts.pending().is_empty(), "{:?}", f.restarts.pending());

    // Without a stop, unless-stopped restarts a container that died.
    let died = f.exited("p-d-1", 137, policy(Condition::UnlessStopped, None));
    f.restarts.exits(&f.db, std::slice::from_ref(&died), f.at(0));
    assert_eq!(f.restarts.pending(), vec![died.0.id.clone()]);
    let never = f.exited("p-e-1", 1, policy(Condition::Never, None));
    f.restarts.exits(&f.db, &[never], f.at(0));
    assert_eq!(f.restarts.pending().len(), 1, "`no` never restarts");
}

#[test]
fn a_restart_due_is_dropped_when_a_user_stopped_it_or_it_runs_again() {
    let mut f = Fixture::new();
    let stopped = f.exited("p-a-1", 1, policy(Condition::Always, None));
    let mut running = f.exited("p-b-1", 1, policy(Condition::Always, None));
    let waits = f.exited("p-c-1", 1, policy(Condition::Always, None));
    let specs = [stopped.clone(), running.clone(), waits.clone()];
    f.restarts.exits(&f.db, &specs, f.at(0));
    // Meanwhile: `berth stop` of one, `berth start` of another.
    f.db.set_stop_requested(&stopped.0.id, true).unwrap();
    running.0.status = Status::Running;
    let jobs = f.restarts.due(&f.db, &[stopped, running, waits.clone()], f.at(100));
    let names: Vec<&str> = jobs.iter().map(|j| j.record.name.as_str()).collect();
    assert_eq!(names, ["p-c-1"]);
    assert!(f.restarts.pending().is_empty());
}

#[test]
fn a_failed_health_check_restarts_only_what_opted_in() {
    let mut f = Fixture::new();
    let (mut r, _) = f.exited("p-web-1", 0, policy(Condition::OnFailure, Some(1)));
    r.status = Status::Running;
    assert!(f.restarts.unhealthy(&r, f.at(0), 20_000).is_none(), "no opt-in");
    r.config.supervise.as_mut().unwrap().restart_on_unhealthy = true;
    let job = f.restarts.unhealthy(&r, f.at(0), 20_000).expect("a restart");
    assert_eq!((job.why.as_str(), job.running), ("unhealthy", true));
    assert!(f.restarts.unhealthy(&r, f.at(10), 20_000).is_none(), "its one attempt is used");

    // The job stops the running container, then starts it again.
    f.db.set_config(&r.id, &r.config, &[]).unwrap();
    let life = Lifecycle::with_driver(&f.roots, &f.db, &f.driver);
    life.start(&r, StartMode::Detached).unwrap();
    job.run(&life).unwrap();
    let calls = f.driver.runtime.actions();
    let kill = calls.iter().position(|c| matches!(c, Call::Kill(..))).expect("stopped first");
    assert_eq!(calls[kill + 2..], [Call::Create(r.id.clone()), Call::Start(r.id.clone())]);
    assert_eq!(f.db.supervision(&r.id).unwrap().restart_reason.as_deref(), Some("unhealthy"));
}

#[test]
fn a_container_started_meanwhile_is_no_restart_of_the_policy() {
    let f = Fixture::new();
    let (r, _) = f.exited("p-web-1", 1, policy(Condition::Always, None));
    let life = Lifecycle::with_driver(&f.roots, &f.db, &f.driver);
    life.start(&r, StartMode::Detached).unwrap();
    let job = Job { record: r.clone(), why: "exited with code 1".into(), running: false };
    job.run(&life).unwrap();
    let row = f.db.container(&r.id).unwrap().unwrap();
    assert_eq!(row.restart_count, 0);
    assert_eq!(f.db.supervision(&r.id).unwrap().restart_reason, None);
    assert_eq!(f.driver.runtime.actions().len(), 2, "one create and one start");
}
