//! The lifecycle's decisions on the fake driver: a state root in a temporary directory, rows
//! written straight into its database, the recording fake runtime and a clock that moves only
//! when the lifecycle waits. No root, no processes, milliseconds.

use std::time::Duration;

use nix::sys::signal::Signal;

use super::testing::FakeDriver;
use super::*;
use crate::runtime::testing::Call;
use crate::state::Status;
use crate::supervise::testing::record;

struct Fixture {
    _dir: tempfile::TempDir,
    roots: Roots,
    db: StateDb,
    driver: FakeDriver,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let roots = Roots { root: dir.path().join("root"), run: dir.path().join("run") };
        let db = StateDb::open(&roots.root).unwrap();
        let driver = FakeDriver::new(&roots);
        Fixture { _dir: dir, roots, db, driver }
    }

    fn life(&self) -> Lifecycle<'_> {
        Lifecycle::with_driver(&self.roots, &self.db, &self.driver)
    }

    /// A created container `p-web-1` that stops on SIGTERM within a 10 s grace period.
    fn created(&self, name: &str) -> ContainerRecord {
        let mut rec = record(name, Status::Created);
        rec.config.stop_signal = "SIGTERM".into();
        rec.config.stop_grace_secs = 10.0;
        self.db.insert_container(&rec).unwrap();
        std::fs::create_dir_all(self.roots.bundle(&rec.id)).unwrap();
        let process = serde_json::json!({"process": {"args": ["sleep", "1d"], "env": ["PATH=/bin"], "cwd": "/"}});
        std::fs::write(self.roots.bundle(&rec.id).join("config.json"), process.to_string()).unwrap();
        rec
    }

    fn running(&self, name: &str) -> ContainerRecord {
        let rec = self.created(name);
        assert!(self.life().start(&rec, StartMode::Detached).unwrap());
        self.row(&rec)
    }

    fn row(&self, rec: &ContainerRecord) -> ContainerRecord {
        self.db.container(&rec.id).unwrap().expect("row")
    }

    fn actions(&self) -> Vec<Call> {
        self.driver.runtime.actions()
    }
}

fn start_calls(id: &str) -> Vec<Call> {
    vec![Call::Create(id.into()), Call::Start(id.into())]
}

#[test]
fn starting_a_created_container_creates_then_starts_it_and_records_the_run() {
    let f = Fixture::new();
    let rec = f.created("p-web-1");
    assert!(f.life().start(&rec, StartMode::Detached).unwrap());
    assert_eq!(f.actions(), start_calls(&rec.id));
    let row = f.row(&rec);
    assert_eq!(row.status, Status::Running);
    let runtime = f.driver.runtime.entry(&rec.id).unwrap();
    assert_eq!((runtime.status.as_str(), row.pid), ("running", Some(runtime.pid)));
    assert!(row.monitor_pid.is_some() && row.started_at.is_some());
}

#[test]
fn starting_a_running_container_leaves_it_alone_and_cancels_a_pending_stop() {
    let f = Fixture::new();
    let rec = f.running("p-web-1");
    f.db.set_stop_requested(&rec.id, true).unwrap();
    // The stop never came: the row runs, and a stop request that no kill followed is dropped once
    // the wait for it is over.
    assert!(!f.life().start(&rec, StartMode::Detached).unwrap());
    assert_eq!(f.actions(), start_calls(&rec.id), "no second create or start");
    assert!(!f.db.supervision(&rec.id).unwrap().stop_requested);
    assert!(f.driver.elapsed() >= Duration::from_secs(12), "it waited out the stop's grace period and 2 s");
}

#[test]
fn a_start_the_runtime_refuses_is_rolled_back_and_reported() {
    let f = Fixture::new();
    let rec = f.created("p-web-1");
    f.driver.runtime.fail_start(&rec.id, "exec: \"nope\": executable file not found");
    let e = f.life().start(&rec, StartMode::Detached).unwrap_err();
    let failed = e.downcast_ref::<StartFailed>().expect("a StartFailed");
    assert_eq!(failed.name, "p-web-1");
    assert!(failed.detail.contains("executable file not found"), "{}", failed.detail);
    // What the create made is deleted again; the row still says created; no run directory stays.
    let mut expected = start_calls(&rec.id);
    expected.push(Call::Delete(rec.id.clone(), true));
    assert_eq!(f.actions(), expected);
    assert_eq!(f.driver.runtime.entry(&rec.id), None);
    assert_eq!(f.row(&rec).status, Status::Created);
    assert!(!f.roots.run_dir(&rec.id).exists());

    // A create the runtime refuses is never started.
    let other = f.created("p-web-2");
    f.driver.runtime.fail_create(&other.id, "no such file: rootfs");
    let e = f.life().start(&other, StartMode::Detached).unwrap_err();
    assert!(format!("{e}").contains("cannot start `p-web-2`: `fake create` failed"), "{e}");
    assert!(!f.actions().contains(&Call::Start(other.id.clone())));
    assert_eq!(f.row(&other).status, Status::Created);
}

#[test]
fn stop_sends_the_stop_signal_and_waits_for_the_exit() {
    let f = Fixture::new();
    let rec = f.running("p-web-1");
    assert!(f.life().stop(&rec, None).unwrap());
    let mut expected = start_calls(&rec.id);
    expected.extend([Call::Kill(rec.id.clone(), Signal::SIGTERM, false), Call::Delete(rec.id.clone(), false)]);
    assert_eq!(f.actions(), expected, "no SIGKILL for a process that obeys");
    let row = f.row(&rec);
    assert_eq!((row.status, row.exit_code), (Status::Exited, Some(143)));
    assert!(f.db.supervision(&rec.id).unwrap().stop_requested, "a user's stop: no restart policy applies");
    assert!(f.driver.elapsed() < Duration::from_secs(1));
}

#[test]
fn stop_sends_sigkill_to_every_process_once_the_grace_period_is_over() {
    let f = Fixture::new();
    let rec = f.running("p-web-1");
    f.driver.runtime.ignore(&rec.id, Signal::SIGTERM);
    let began = std::time::Instant::now();
    assert!(f.life().stop(&rec, Some(Duration::from_secs(7))).unwrap());
    let kills: Vec<Call> = f.actions().into_iter().filter(|c| matches!(c, Call::Kill(..))).collect();
    assert_eq!(
        kills,
        [Call::Kill(rec.id.clone(), Signal::SIGTERM, false), Call::Kill(rec.id.clone(), Signal::SIGKILL, true)]
    );
    assert_eq!(f.row(&rec).exit_code, Some(137));
    let waited = f.driver.elapsed();
    assert!(waited >= Duration::from_secs(7) && waited < Duration::from_secs(8), "{waited:?}");
    assert!(began.elapsed() < Duration::from_secs(2), "the grace period passed on the fake clock");
}

#[test]
fn stop_uses_the_service_stop_signal_and_a_zero_timeout_kills_at_once() {
    let f = Fixture::new();
    let mut rec = f.created("p-web-1");
    rec.config.stop_signal = "SIGINT".into();
    f.db.set_config(&rec.id, &rec.config, &[]).unwrap();
    f.life().start(&rec, StartMode::Detached).unwrap();
    f.life().stop(&rec, None).unwrap();
    assert!(f.actions().contains(&Call::Kill(rec.id.clone(), Signal::SIGINT, false)), "{:?}", f.actions());

    let other = f.running("p-web-2");
    f.life().stop(&other, Some(Duration::ZERO)).unwrap();
    let kills: Vec<Call> =
        f.actions().into_iter().filter(|c| matches!(c, Call::Kill(id, ..) if *id == other.id)).collect();
    assert_eq!(kills, [Call::Kill(other.id.clone(), Signal::SIGKILL, true)]);
}

#[test]
fn a_paused_container_is_thawed_before_its_stop_signal() {
    let f = Fixture::new();
    let rec = f.running("p-web-1");
    f.life().pause(&rec).unwrap();
    assert_eq!(f.row(&rec).status, Status::Paused);
    f.life().stop(&rec, None).unwrap();
    let tail: Vec<Call> = f.actions().into_iter().skip(2).collect();
    assert_eq!(
        tail,
        [
            Call::Pause(rec.id.clone()),
            Call::Resume(rec.id.clone()),
            Call::Kill(rec.id.clone(), Signal::SIGTERM, false),
            Call::Delete(rec.id.clone(), false)
        ]
    );
    assert_eq!(f.row(&rec).exit_code, Some(143), "the signal ended it, no SIGKILL needed");
}

#[test]
fn stopping_a_container_that_never_started_sends_nothing_but_keeps_policies_off() {
    let f = Fixture::new();
    let rec = f.created("p-web-1");
    assert!(!f.life().stop(&rec, None).unwrap());
    assert!(f.actions().is_empty());
    assert!(f.db.supervision(&rec.id).unwrap().stop_requested);
}

#[test]
fn removing_a_running_container_is_refused_without_force() {
    let f = Fixture::new();
    let rec = f.running("p-web-1");
    std::fs::create_dir_all(f.roots.rootfs(&rec.id)).unwrap();
    let e = f.life().remove(&rec, false).unwrap_err();
    assert!(format!("{e}").contains("is running: stop it first or use `--force`"), "{e}");
    assert_eq!(f.actions(), start_calls(&rec.id), "nothing signalled or deleted");
    assert_eq!(f.row(&rec).status, Status::Running);
    assert!(f.roots.container_dir(&rec.id).exists());
}

#[test]
fn a_forced_removal_kills_at_once_then_removes_files_and_row() {
    let f = Fixture::new();
    let rec = f.running("p-web-1");
    std::fs::create_dir_all(f.roots.rootfs(&rec.id)).unwrap();
    f.life().remove(&rec, true).unwrap();
    let tail: Vec<Call> = f.actions().into_iter().skip(2).collect();
    assert_eq!(tail, [Call::Kill(rec.id.clone(), Signal::SIGKILL, true), Call::Delete(rec.id.clone(), false)]);
    assert!(f.db.container(&rec.id).unwrap().is_none(), "the row went last");
    assert!(!f.roots.container_dir(&rec.id).exists());
    assert_eq!(f.driver.runtime.entry(&rec.id), None);
}

#[test]
fn removing_an_exited_container_deletes_what_the_runtime_still_has() {
    let f = Fixture::new();
    let rec = f.running("p-web-1");
    // The monitor died before it could release the container, which then ended.
    f.driver.kill_monitor(&rec.id);
    f.driver.runtime.exit(&rec.id, 0);
    f.life().remove(&rec, false).unwrap();
    assert!(f.actions().contains(&Call::Delete(rec.id.clone(), true)), "{:?}", f.actions());
    assert!(f.db.container(&rec.id).unwrap().is_none());
}

#[test]
fn a_row_whose_monitor_died_is_dead_unless_the_runtime_still_runs_it() {
    let f = Fixture::new();
    let orphan = f.running("p-web-1");
    f.driver.kill_monitor(&orphan.id);
    let row = f.life().refresh(&orphan).unwrap();
    assert_eq!(row.status, Status::Running, "orphaned but alive: it keeps running");
    assert_eq!(f.driver.runtime.calls().last(), Some(&Call::State(orphan.id.clone())));

    f.driver.runtime.exit(&orphan.id, 3);
    let row = f.life().refresh(&orphan).unwrap();
    assert_eq!((row.status, row.exit_code), (Status::Dead, None), "its exit code is unknown");
    assert_eq!(f.driver.runtime.entry(&orphan.id), None, "the runtime's state is released");
}

#[test]
fn kill_signals_the_init_and_only_ending_signals_count_as_a_stop() {
    let f = Fixture::new();
    let rec = f.running("p-web-1");
    assert!(f.life().kill(&rec, Signal::SIGUSR1).unwrap());
    assert!(!f.db.supervision(&rec.id).unwrap().stop_requested);
    assert_eq!(f.row(&rec).status, Status::Running);
    assert!(f.life().kill(&rec, Signal::SIGKILL).unwrap());
    assert!(f.db.supervision(&rec.id).unwrap().stop_requested, "restart policies leave it alone");
    let kills: Vec<Call> = f.actions().into_iter().filter(|c| matches!(c, Call::Kill(..))).collect();
    assert_eq!(
        kills,
        [Call::Kill(rec.id.clone(), Signal::SIGUSR1, false), Call::Kill(rec.id.clone(), Signal::SIGKILL, false)]
    );
    f.driver.settle();
    assert!(!f.life().kill(&rec, Signal::SIGTERM).unwrap(), "nothing to signal once it exited");
}

#[test]
fn restart_stops_then_starts_again_and_counts_it() {
    let f = Fixture::new();
    let rec = f.running("p-web-1");
    f.life().restart(&rec, None).unwrap();
    let tail: Vec<Call> = f.actions().into_iter().skip(2).collect();
    let mut expected = vec![Call::Kill(rec.id.clone(), Signal::SIGTERM, false), Call::Delete(rec.id.clone(), false)];
    expected.extend(start_calls(&rec.id));
    assert_eq!(tail, expected);
    let row = f.row(&rec);
    assert_eq!((row.status, row.restart_count), (Status::Running, 1));
    assert!(!f.db.supervision(&rec.id).unwrap().stop_requested, "the new run is not stopped");
}

#[test]
fn a_restart_whose_start_fails_leaves_the_container_exited() {
    let f = Fixture::new();
    let rec = f.running("p-web-1");
    f.driver.runtime.fail_start(&rec.id, "cgroup gone");
    let e = f.life().restart(&rec, None).unwrap_err();
    assert!(format!("{e}").contains("cgroup gone"), "{e}");
    assert_eq!(f.row(&rec).status, Status::Exited);
}

#[test]
fn pause_and_unpause_need_the_right_state() {
    let f = Fixture::new();
    let rec = f.created("p-web-1");
    assert!(f.life().pause(&rec).unwrap_err().to_string().contains("is not running"));
    assert!(f.life().unpause(&rec).unwrap_err().to_string().contains("is not paused"));
    assert!(f.actions().is_empty());
    f.life().start(&rec, StartMode::Detached).unwrap();
    f.life().pause(&rec).unwrap();
    assert_eq!(f.driver.runtime.entry(&rec.id).unwrap().status, "paused");
    f.life().unpause(&rec).unwrap();
    assert_eq!(
        (f.row(&rec).status, f.driver.runtime.entry(&rec.id).unwrap().status),
        (Status::Running, "running".into())
    );
}

#[test]
fn a_failing_post_start_hook_fails_the_start_and_the_container_keeps_running() {
    let f = Fixture::new();
    let mut rec = f.created("p-web-1");
    let hook = berth_compose::model::Hook { command: vec!["setup".into()], ..Default::default() };
    rec.config.supervise = Some(crate::supervise::spec::SuperviseSpec { post_start: vec![hook], ..Default::default() });
    f.db.set_config(&rec.id, &rec.config, &[]).unwrap();
    f.driver.runtime.exec_codes(&rec.id, &[2]);
    let e = f.life().start(&rec, StartMode::Detached).unwrap_err();
    assert!(format!("{e}").contains("post_start hook 0 (setup) exited with code 2"), "{e}");
    assert_eq!(f.actions().last(), Some(&Call::Exec(rec.id.clone())));
    assert_eq!(f.row(&rec).status, Status::Running);
}

#[test]
fn waiting_for_an_exit_gives_up_after_the_timeout() {
    let f = Fixture::new();
    let rec = f.running("p-web-1");
    assert_eq!(f.life().wait_exit(&rec.id, Some(Duration::from_secs(3))).unwrap(), None);
    assert!(f.driver.elapsed() >= Duration::from_secs(3));
    f.driver.runtime.exit(&rec.id, 5);
    let row = f.life().wait_exit(&rec.id, None).unwrap().expect("exited");
    assert_eq!((row.status, row.exit_code), (Status::Exited, Some(5)));
}
