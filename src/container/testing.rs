//! A fake [`Driver`] for tests: the [recording fake runtime](FakeRuntime), monitors that are
//! entries in a table, and a clock that moves only when someone sleeps.
//!
//! A launch does what a monitor does, with the fake runtime: `create` and `start` (the real monitor
//! makes both in one `run --detach`), the start recorded in the row; a start that fails is
//! deleted from the runtime and leaves no run directory. Whenever time passes ([`Driver::sleep`],
//! or [`FakeDriver::settle`]), the monitor of each container whose process ended releases it
//! from the runtime and records its exit, as the real one does when it reaps the init.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::{record_event, Driver, Roots, StartFailed, StartMode};
use crate::runtime::testing::FakeRuntime;
use crate::runtime::{CreateIo, Runtime};
use crate::state::{ContainerRecord, ExitRecord, StateDb};

/// The fake driver of one state root.
pub struct FakeDriver {
    /// The runtime every container is made with, whatever its row names.
    pub runtime: FakeRuntime,
    /// The monitors' own connection to the state database.
    db: Mutex<StateDb>,
    /// Live monitors: container id → the monitor's (made-up) pid.
    monitors: Mutex<BTreeMap<String, i32>>,
    epoch: Instant,
    elapsed: Mutex<Duration>,
    next_pid: Mutex<i32>,
}

impl FakeDriver {
    /// A driver for the containers under `roots`.
    pub fn new(roots: &Roots) -> FakeDriver {
        FakeDriver {
            runtime: FakeRuntime::default(),
            db: Mutex::new(StateDb::open(&roots.root).expect("state database")),
            monitors: Mutex::new(BTreeMap::new()),
            epoch: Instant::now(),
            elapsed: Mutex::new(Duration::ZERO),
            next_pid: Mutex::new(50_000),
        }
    }

    /// How far the fake clock moved.
    pub fn elapsed(&self) -> Duration {
        *self.elapsed.lock().expect("clock")
    }

    /// Container `id`'s monitor dies (killed) without recording anything.
    pub fn kill_monitor(&self, id: &str) {
        self.monitors.lock().expect("monitors").remove(id);
    }

    /// Each monitor whose container's process ended releases the container and records the exit.
    pub fn settle(&self) {
        let ended: Vec<(String, Option<i32>)> = self
            .monitors
            .lock()
            .expect("monitors")
            .keys()
            .filter_map(|id| match self.runtime.entry(id) {
                Some(e) if e.status == "stopped" => Some((id.clone(), e.exit_code)),
                None => Some((id.clone(), None)),
                Some(_) => None,
            })
            .collect();
        for (id, code) in ended {
            // The fake runtime: deleting a stopped container it holds does not fail.
            let _ = self.runtime.delete(&id, false);
            let db = self.db.lock().expect("db");
            db.record_exit(&id, ExitRecord { code, oom_killed: false }).expect("record exit");
            self.monitors.lock().expect("monitors").remove(&id);
        }
    }

    fn started(&self, rec: &ContainerRecord) -> anyhow::Result<()> {
        let rt = &self.runtime;
        rt.create(&rec.id, &std::path::PathBuf::from("/bundle"), &std::path::PathBuf::from("/pid"), no_io())?;
        Ok(rt.start(&rec.id)?)
    }
}

fn no_io() -> CreateIo {
    CreateIo::Console { socket: "/nonexistent/console.sock".into() }
}

impl Driver for FakeDriver {
    fn runtime(&self, _roots: &Roots, _name: &str) -> anyhow::Result<Box<dyn Runtime>> {
        Ok(Box::new(self.runtime.clone()))
    }

    fn launch(&self, roots: &Roots, rec: &ContainerRecord, _mode: StartMode) -> anyhow::Result<()> {
        if self.monitors.lock().expect("monitors").contains_key(&rec.id) {
            anyhow::bail!("container {} already has a monitor", rec.id);
        }
        let run_dir = roots.run_dir(&rec.id);
        std::fs::create_dir_all(&run_dir)?;
        if let Err(e) = self.started(rec) {
            // The fake runtime: a forced delete does not fail; the start error is what is reported.
            let _ = self.runtime.delete(&rec.id, true);
            std::fs::remove_dir_all(&run_dir)?;
            return Err(StartFailed { name: rec.name.clone(), oneoff: rec.oneoff, detail: format!("{e:#}") }.into());
        }
        let pid = self.runtime.entry(&rec.id).map_or(0, |e| e.pid);
        let monitor = {
            let mut next = self.next_pid.lock().expect("pids");
            *next += 1;
            *next
        };
        self.monitors.lock().expect("monitors").insert(rec.id.clone(), monitor);
        let db = self.db.lock().expect("db");
        db.record_start(&rec.id, pid, monitor)?;
        record_event(&db, rec, "start", &[]);
        Ok(())
    }

    fn monitor_active(&self, _roots: &Roots, id: &str) -> bool {
        self.monitors.lock().expect("monitors").contains_key(id)
    }

    fn pid_alive(&self, pid: i32) -> bool {
        self.monitors.lock().expect("monitors").values().any(|p| *p == pid)
    }

    fn now(&self) -> Instant {
        self.epoch + self.elapsed()
    }

    fn sleep(&self, d: Duration) {
        *self.elapsed.lock().expect("clock") += d;
        self.settle();
    }
}
