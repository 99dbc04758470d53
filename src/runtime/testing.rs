//! A recording fake of the [`Runtime`] trait: containers as entries in a table that follow the
//! OCI state transitions (`created` → `running` → `stopped`), every call written down with its
//! arguments, and scripted outcomes (a create or start that fails, a process that ignores its
//! stop signal or exits by itself with a code). Clones share one table.

use std::collections::{BTreeMap, BTreeSet};
use std::os::fd::OwnedFd;
use std::path::Path;
use std::sync::{Arc, Mutex};

use nix::sys::signal::Signal;

use super::{CreateIo, ExecMode, Result, Runtime, RuntimeError, RuntimeState};

/// One call made to the fake, with its arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Call {
    /// `create ID` from a bundle.
    Create(String),
    /// `start ID`.
    Start(String),
    /// `state ID`.
    State(String),
    /// `kill [--all] ID SIGNAL`.
    Kill(String, Signal, bool),
    /// `delete [--force] ID`.
    Delete(String, bool),
    /// `exec ID`.
    Exec(String),
    /// `pause ID`.
    Pause(String),
    /// `resume ID`.
    Resume(String),
}

/// A container the fake knows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// `created`, `running`, `paused` or `stopped`.
    pub status: String,
    /// Its init's pid (made up).
    pub pid: i32,
    /// How its process ended, once stopped.
    pub exit_code: Option<i32>,
}

#[derive(Default)]
struct Table {
    calls: Vec<Call>,
    containers: BTreeMap<String, Entry>,
    fail_create: BTreeMap<String, String>,
    fail_start: BTreeMap<String, String>,
    ignored: BTreeMap<String, BTreeSet<Signal>>,
    exec_codes: BTreeMap<String, Vec<i32>>,
    next_pid: i32,
}

/// The recording fake runtime.
#[derive(Clone, Default)]
pub struct FakeRuntime {
    table: Arc<Mutex<Table>>,
}

impl FakeRuntime {
    fn table(&self) -> std::sync::MutexGuard<'_, Table> {
        self.table.lock().expect("fake runtime")
    }

    /// Every call so far, in order.
    pub fn calls(&self) -> Vec<Call> {
        self.table().calls.clone()
    }

    /// The calls so far that change something (`state` left out).
    pub fn actions(&self) -> Vec<Call> {
        self.calls().into_iter().filter(|c| !matches!(c, Call::State(_))).collect()
    }

    /// What the fake knows of container `id`.
    pub fn entry(&self, id: &str) -> Option<Entry> {
        self.table().containers.get(id).cloned()
    }

    /// `create` of `id` fails with `message`.
    pub fn fail_create(&self, id: &str, message: &str) {
        self.table().fail_create.insert(id.into(), message.into());
    }

    /// `start` of `id` fails with `message` (the container stays `created`).
    pub fn fail_start(&self, id: &str, message: &str) {
        self.table().fail_start.insert(id.into(), message.into());
    }

    /// Container `id`'s process does not end on `signal`.
    pub fn ignore(&self, id: &str, signal: Signal) {
        self.table().ignored.entry(id.into()).or_default().insert(signal);
    }

    /// The next `exec`s in `id` exit with these codes, in order (then 0).
    pub fn exec_codes(&self, id: &str, codes: &[i32]) {
        self.table().exec_codes.entry(id.into()).or_default().extend(codes);
    }

    /// Container `id`'s process exits by itself with `code`.
    pub fn exit(&self, id: &str, code: i32) {
        if let Some(e) = self.table().containers.get_mut(id) {
            e.status = "stopped".into();
            e.exit_code = Some(code);
        }
    }

    fn failed(op: &str, id: &str, stderr: &str) -> RuntimeError {
        RuntimeError::Failed { runtime: "fake".into(), op: op.into(), id: id.into(), stderr: stderr.into() }
    }

    fn unsupported(op: &str, id: &str) -> RuntimeError {
        Self::failed(op, id, "not supported by the fake runtime")
    }

    /// Applies `f` to the known container `id`, or fails as the runtime does for an unknown one.
    fn with<T>(&self, op: &str, id: &str, f: impl FnOnce(&mut Entry) -> Result<T>) -> Result<T> {
        let mut t = self.table();
        match t.containers.get_mut(id) {
            Some(e) => f(e),
            None => Err(Self::failed(op, id, "container does not exist")),
        }
    }

    fn record(&self, call: Call) {
        self.table().calls.push(call);
    }
}

impl Runtime for FakeRuntime {
    fn name(&self) -> &str {
        "fake"
    }

    fn create(&self, id: &str, _bundle: &Path, _pid_file: &Path, _io: CreateIo) -> Result<()> {
        self.record(Call::Create(id.into()));
        let mut t = self.table();
        if let Some(m) = t.fail_create.get(id) {
            return Err(Self::failed("create", id, m));
        }
        if t.containers.contains_key(id) {
            return Err(Self::failed("create", id, "container with given ID already exists"));
        }
        t.next_pid += 1;
        let pid = 1000 + t.next_pid;
        t.containers.insert(id.into(), Entry { status: "created".into(), pid, exit_code: None });
        Ok(())
    }

    fn start(&self, id: &str) -> Result<()> {
        self.record(Call::Start(id.into()));
        if let Some(m) = self.table().fail_start.get(id).cloned() {
            return Err(Self::failed("start", id, &m));
        }
        self.with("start", id, |e| match e.status.as_str() {
            "created" => {
                e.status = "running".into();
                Ok(())
            }
            other => Err(Self::failed("start", id, &format!("cannot start a container that is {other}"))),
        })
    }

    fn spawn_run(&self, id: &str, _: &Path, _: &Path, _: CreateIo) -> Result<std::process::Child> {
        Err(Self::unsupported("run", id))
    }

    fn run_finished(&self, id: &str, _: &Path, _: std::process::ExitStatus) -> Result<()> {
        Err(Self::unsupported("run", id))
    }

    fn state(&self, id: &str) -> Result<Option<RuntimeState>> {
        self.record(Call::State(id.into()));
        let e = self.entry(id);
        Ok(e.map(|e| RuntimeState { pid: if e.status == "stopped" { 0 } else { e.pid }, status: e.status }))
    }

    fn kill(&self, id: &str, signal: Signal, all: bool) -> Result<()> {
        self.record(Call::Kill(id.into(), signal, all));
        let ignores = self.table().ignored.get(id).is_some_and(|s| s.contains(&signal));
        self.with("kill", id, |e| {
            if e.status == "stopped" {
                return Err(Self::failed("kill", id, "container not running"));
            }
            // SIGKILL cannot be ignored; the signals that end a process by default do.
            let fatal = matches!(signal, Signal::SIGTERM | Signal::SIGINT | Signal::SIGQUIT | Signal::SIGHUP);
            // A frozen process handles its signal only once thawed.
            if signal == Signal::SIGKILL || (fatal && !ignores && e.status != "paused") {
                e.status = "stopped".into();
                e.exit_code = Some(128 + signal as i32);
            }
            Ok(())
        })
    }

    fn delete(&self, id: &str, force: bool) -> Result<()> {
        self.record(Call::Delete(id.into(), force));
        let mut t = self.table();
        match t.containers.get(id) {
            Some(e) if e.status == "running" && !force => Err(Self::failed("delete", id, "container is running")),
            _ => {
                t.containers.remove(id);
                Ok(())
            }
        }
    }

    fn knows(&self, id: &str) -> bool {
        self.table().containers.contains_key(id)
    }

    fn exec(&self, id: &str, _process: &Path, _mode: ExecMode) -> Result<i32> {
        self.record(Call::Exec(id.into()));
        let mut t = self.table();
        if t.containers.get(id).is_none_or(|e| e.status != "running") {
            return Err(Self::failed("exec", id, "container is not running"));
        }
        let codes = t.exec_codes.entry(id.into()).or_default();
        Ok(if codes.is_empty() { 0 } else { codes.remove(0) })
    }

    fn spawn_exec(&self, id: &str, _: &Path, _: &Path) -> Result<std::process::Child> {
        Err(Self::unsupported("exec", id))
    }

    fn spawn_attached(&self, id: &str, _: &Path, _: &Path, _: OwnedFd, _: OwnedFd) -> Result<std::process::Child> {
        Err(Self::unsupported("run", id))
    }

    fn logged_error(&self, _pid_file: &Path) -> Option<String> {
        None
    }

    fn pause(&self, id: &str) -> Result<()> {
        self.record(Call::Pause(id.into()));
        self.with("pause", id, |e| match e.status.as_str() {
            "running" => {
                e.status = "paused".into();
                Ok(())
            }
            other => Err(Self::failed("pause", id, &format!("container is {other}"))),
        })
    }

    fn resume(&self, id: &str) -> Result<()> {
        self.record(Call::Resume(id.into()));
        self.with("resume", id, |e| match e.status.as_str() {
            "paused" => {
                e.status = "running".into();
                Ok(())
            }
            other => Err(Self::failed("resume", id, &format!("container is {other}"))),
        })
    }
}
