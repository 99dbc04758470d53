//! Starting, stopping, signalling, pausing, removing and exec'ing into containers.

use std::io::Read;
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use nix::sys::signal::Signal;

use super::{record_event, Roots};
use crate::runtime::{self, ExecMode, Runtime};
use crate::state::deferred::or_defer;
use crate::state::{ContainerRecord, ExitRecord, StateDb, Status};

/// How `start` hands the container over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartMode {
    /// Return once it runs.
    Detached,
    /// The monitor waits (up to 10 s) for an attach client before it starts the process, so the
    /// client sees all output.
    WaitForAttach,
}

/// A monitor that was spawned and has not yet reported whether the container started.
pub struct MonitorStart {
    sync: std::fs::File,
    name: String,
    log: PathBuf,
}

impl MonitorStart {
    /// Whether the monitor already reported (or died): then [`wait`](Self::wait) does not block.
    pub fn reported(&self, timeout: Duration) -> bool {
        use std::os::fd::AsFd;
        let mut fds = [nix::poll::PollFd::new(self.sync.as_fd(), nix::poll::PollFlags::POLLIN)];
        let ms = u16::try_from(timeout.as_millis()).unwrap_or(u16::MAX);
        nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(ms)).is_ok_and(|n| n > 0)
    }

    /// Waits until the monitor reports that the container started, or why it did not.
    pub fn wait(mut self) -> anyhow::Result<()> {
        let mut answer = String::new();
        self.sync.read_to_string(&mut answer)?;
        match answer.trim() {
            "ok" => Ok(()),
            a => {
                let detail = a.strip_prefix("error: ").unwrap_or(a);
                let detail = if detail.is_empty() {
                    std::fs::read_to_string(&self.log).unwrap_or_else(|_| "the monitor died".into())
                } else {
                    detail.to_string()
                };
                Err(StartFailed { name: self.name.clone(), detail: detail.trim().to_string() }.into())
            }
        }
    }
}

/// The runtime did not start a container (its monitor said why).
#[derive(Debug, thiserror::Error)]
#[error("cannot start `{name}`: {detail}")]
pub struct StartFailed {
    /// The container.
    pub name: String,
    /// What the runtime said.
    pub detail: String,
}

/// The berth binary to re-execute as a monitor or supervisor. A long-lived supervisor whose
/// binary was replaced (an upgrade, a rebuild) runs the new one found at the same path.
pub fn berth_exe() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe().context("cannot find the berth binary")?;
    if exe.exists() {
        return Ok(exe);
    }
    let s = exe.to_string_lossy();
    match s.strip_suffix(" (deleted)") {
        Some(path) if std::path::Path::new(path).exists() => Ok(PathBuf::from(path)),
        _ => anyhow::bail!("the berth binary {} is gone", exe.display()),
    }
}

/// Spawns the container's monitor and waits until it reports the container started (or failed).
pub fn spawn_monitor(roots: &Roots, rec: &ContainerRecord, mode: StartMode) -> anyhow::Result<()> {
    launch_monitor(roots, rec, mode)?.wait()
}

/// Spawns the container's monitor (detached from this process) without waiting for its report:
/// through the [launcher](crate::monitor::launcher) when this command started one, else by
/// executing `berth __monitor`.
pub fn launch_monitor(roots: &Roots, rec: &ContainerRecord, mode: StartMode) -> anyhow::Result<MonitorStart> {
    let run_dir = roots.run_dir(&rec.id);
    std::fs::create_dir_all(&run_dir)?;
    // A monitor that never started leaves no run directory behind.
    launch_monitor_in(roots, rec, mode, &run_dir).inspect_err(|_| crate::monitor::remove_run_dir(roots, &rec.id))
}

fn launch_monitor_in(
    roots: &Roots,
    rec: &ContainerRecord,
    mode: StartMode,
    run_dir: &std::path::Path,
) -> anyhow::Result<MonitorStart> {
    let log_path = run_dir.join("monitor.log");
    let log = std::fs::File::create(&log_path)?;
    let (sync_r, sync_w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
    let wait_attach = mode == StartMode::WaitForAttach;
    if !crate::monitor::launcher::launch(&rec.id, wait_attach, log.as_raw_fd(), sync_w.as_raw_fd()) {
        let mut cmd = Command::new(berth_exe()?);
        cmd.arg("__monitor").arg(&rec.id);
        if wait_attach {
            cmd.arg("--wait-attach");
        }
        cmd.env("BERTH_ROOT", &roots.root).env("BERTH_RUN", &roots.run);
        cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(log);
        let w = sync_w.as_raw_fd();
        // SAFETY: only async-signal-safe calls between fork and exec.
        unsafe {
            cmd.pre_exec(move || {
                if libc::dup2(w, crate::monitor::SYNC_FD) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                crate::monitor::close_inherited();
                let mut set: libc::sigset_t = std::mem::zeroed();
                libc::sigemptyset(&mut set);
                libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
                Ok(())
            });
        }
        let mut child = cmd.spawn().context("cannot start the container monitor")?;
        drop(cmd);
        child.wait()?;
    }
    drop(sync_w);
    Ok(MonitorStart { sync: std::fs::File::from(sync_r), name: rec.name.clone(), log: log_path })
}

/// Starts a created or exited container; a running one is left alone. Its `post_start` hooks
/// run once it runs; one that fails fails the start (the container keeps running).
pub fn start(roots: &Roots, db: &StateDb, rec: &ContainerRecord, mode: StartMode) -> anyhow::Result<bool> {
    let mut rec = refresh(roots, db, rec)?;
    // A start already under way (its command was killed, its monitor goes on): let it finish.
    let deadline = Instant::now() + Duration::from_secs(30);
    while !rec.status.is_alive() && monitor_active(roots, &rec.id) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
        rec = refresh(roots, db, &rec)?;
    }
    if rec.status.is_alive() && db.supervision(&rec.id)?.stop_requested {
        // A stop under way (perhaps of a command killed since): let it end, then start anew.
        let grace = rec.config.stop_grace_secs;
        if let Some(r) = wait_exit(roots, db, &rec.id, Some(Duration::from_secs_f64(grace + 2.0)))? {
            rec = r;
        }
    }
    if rec.status.is_alive() {
        // It stays up: no stop is pending any more.
        or_defer(db.set_stop_requested(&rec.id, false), || format!("the start of `{}`", rec.name))?;
        return Ok(false);
    }
    join_shared_namespaces(roots, db, &rec)?;
    spawn_monitor(roots, &rec, mode)?;
    if mode == StartMode::Detached {
        run_hooks(roots, db, &rec, Hooks::PostStart)?;
    }
    Ok(true)
}

/// Points the bundle at the current `ipc`/`pid`/`uts` namespaces of the containers it shares
/// them with (their processes change with every start, so this happens at each start).
fn join_shared_namespaces(roots: &Roots, db: &StateDb, rec: &ContainerRecord) -> anyhow::Result<()> {
    let Some(spec) = &rec.config.supervise else { return Ok(()) };
    if spec.share.is_empty() {
        return Ok(());
    }
    let path = roots.bundle(&rec.id).join("config.json");
    let mut bundle: serde_json::Value = serde_json::from_slice(&std::fs::read(&path)?)?;
    for (kind, target) in &spec.share {
        let owner = db.container_by_name(target)?.map(|t| refresh(roots, db, &t)).transpose()?;
        let Some(pid) = owner.filter(|t| t.status.is_alive()).and_then(|t| t.pid) else {
            bail!("container `{}` shares the {kind} namespace of `{target}`, which is not running", rec.name);
        };
        let Some(list) = bundle["linux"]["namespaces"].as_array_mut() else { continue };
        list.retain(|n| n["type"] != kind.as_str());
        list.push(serde_json::json!({"type": kind, "path": format!("/proc/{pid}/ns/{kind}")}));
        if kind == "uts" {
            // The names belong to the namespace's owner: setting them would rename it.
            if let Some(b) = bundle.as_object_mut() {
                b.remove("hostname");
                b.remove("domainname");
            }
            if let Some(sysctl) = bundle["linux"]["sysctl"].as_object_mut() {
                sysctl.remove("kernel.domainname");
                sysctl.remove("kernel.hostname");
            }
        }
    }
    std::fs::write(&path, serde_json::to_vec_pretty(&bundle)?)?;
    Ok(())
}

/// Which lifecycle hooks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Hooks {
    PostStart,
    PreStop,
}

/// Runs a container's `post_start` or `pre_stop` hooks (from what `up` recorded), in order.
fn run_hooks(roots: &Roots, db: &StateDb, rec: &ContainerRecord, which: Hooks) -> anyhow::Result<()> {
    let Some(spec) = &rec.config.supervise else { return Ok(()) };
    let (hooks, name) = match which {
        Hooks::PostStart => (&spec.post_start, "post_start"),
        Hooks::PreStop => (&spec.pre_stop, "pre_stop"),
    };
    if hooks.is_empty() {
        return Ok(());
    }
    let rec = db.container(&rec.id)?.unwrap_or_else(|| rec.clone());
    for (i, h) in hooks.iter().enumerate() {
        let req = ExecRequest {
            command: h.command.clone(),
            user: h.user.clone(),
            working_dir: h.working_dir.clone(),
            env: h.environment.iter().filter_map(|(k, v)| Some((k.clone(), v.clone()?))).collect(),
            privileged: h.privileged.unwrap_or(false),
            quiet: true,
            ..ExecRequest::default()
        };
        let code = exec(roots, db, &rec, &req)?;
        if code != 0 {
            bail!("container `{}`: {name} hook {i} ({}) exited with code {code}", rec.name, h.command.join(" "));
        }
        record_event(db, &rec, &format!("{name}_hook"), &[("command", h.command.join(" ").into())]);
    }
    Ok(())
}

/// Checks a row that says the container runs against reality: when its monitor is gone the
/// container is marked exited/dead (after cleaning up what the monitor would have).
pub fn refresh(roots: &Roots, db: &StateDb, rec: &ContainerRecord) -> anyhow::Result<ContainerRecord> {
    let Some(rec) = db.container(&rec.id)? else { return Ok(rec.clone()) };
    let rec = &rec;
    if !rec.status.is_alive() && rec.status != Status::Restarting {
        return Ok(rec.clone());
    }
    let monitor_alive = rec.monitor_pid.is_some_and(pid_alive);
    if monitor_alive || monitor_active(roots, &rec.id) {
        return Ok(rec.clone());
    }
    if rec.status == Status::Restarting && rec.monitor_pid.is_none() {
        return Ok(rec.clone());
    }
    let rt = runtime::by_name(&rec.runtime, &roots.run)?;
    let state = rt.state(&rec.id).ok().flatten();
    if state.as_ref().is_some_and(|s| s.status == "running" || s.status == "paused") {
        // Orphaned but alive: it keeps running; its exit code will be unknown.
        return Ok(rec.clone());
    }
    cleanup_runtime(roots, &rt, &rec.id);
    let exit = ExitRecord { code: None, oom_killed: false };
    let recorded = or_defer(db.record_exit(&rec.id, exit), || format!("the exit of `{}`", rec.name))?;
    if recorded.is_none() {
        // Not written down (no space): the row catches up at the next look; this one is true.
        let mut gone = rec.clone();
        gone.status = Status::Dead;
        gone.pid = None;
        gone.monitor_pid = None;
        return Ok(gone);
    }
    Ok(db.container(&rec.id)?.unwrap_or_else(|| rec.clone()))
}

fn cleanup_runtime(roots: &Roots, rt: &runtime::OciCli, id: &str) {
    // The runtime keeps a directory per container under its root; none means nothing to delete.
    if rt.root().join(id).exists() {
        let _ = rt.delete(id, true);
    }
    let rootfs = roots.rootfs(id);
    if super::is_mount_point(&rootfs) {
        let _ = nix::mount::umount2(&rootfs, nix::mount::MntFlags::MNT_DETACH);
    }
    crate::monitor::remove_run_dir(roots, id);
}

/// Takes container `id`'s monitor lock for the calling process (a monitor), or says that another
/// monitor holds it. The file stays open (close-on-exec) for the rest of the process's life.
pub fn hold_monitor_lock(roots: &Roots, id: &str) -> anyhow::Result<std::fs::File> {
    let path = roots.monitor_lock(id);
    let file = std::fs::OpenOptions::new().write(true).create(true).truncate(false).open(&path)?;
    // A monitor that recorded its container's exit may take a moment more to go away.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        // SAFETY: flock on a descriptor owned here.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
            return Ok(file);
        }
        if Instant::now() > deadline {
            bail!("container {id} already has a monitor");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Whether a monitor lives for container `id` (it holds the lock from before it starts the
/// container until it exits), including one that has not yet recorded itself in the row: a
/// start begun by a command that was killed goes on in its monitor.
pub fn monitor_active(roots: &Roots, id: &str) -> bool {
    let Ok(file) = std::fs::File::open(roots.monitor_lock(id)) else { return false };
    // SAFETY: flock on a descriptor owned here; a lock taken is released when `file` closes.
    unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_SH | libc::LOCK_NB) != 0 }
}

/// Running or paused, or being restarted while its monitor still runs: a process to signal.
fn has_process(rec: &ContainerRecord) -> bool {
    rec.status.is_alive() || (rec.status == Status::Restarting && rec.monitor_pid.is_some())
}

/// Whether `pid` runs (a zombie counts as gone).
pub(crate) fn pid_alive(pid: i32) -> bool {
    // A zombie counts as gone.
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| s.rsplit_once(')').is_some_and(|(_, rest)| !rest.trim_start().starts_with('Z')))
        .unwrap_or(false)
}

/// Parses a signal name or number (`SIGTERM`, `TERM`, `15`).
pub fn parse_signal(s: &str) -> anyhow::Result<Signal> {
    let canonical = crate::runtime::bundle::canonical_signal(s).ok_or_else(|| anyhow!("unknown signal `{s}`"))?;
    canonical.parse().map_err(|_| anyhow!("unknown signal `{s}`"))
}

/// Waits until the container's row is no longer running/paused (its monitor recorded the exit).
/// A container whose monitor died is watched through the runtime instead and marked dead when it
/// is gone. Returns the row, or `None` on timeout.
pub fn wait_exit(
    roots: &Roots,
    db: &StateDb,
    id: &str,
    timeout: Option<Duration>,
) -> anyhow::Result<Option<ContainerRecord>> {
    let start = Instant::now();
    let mut delay = Duration::from_millis(2);
    loop {
        let Some(rec) = db.container(id)? else { return Ok(None) };
        if !rec.status.is_alive() && rec.monitor_pid.is_none() {
            return Ok(Some(rec));
        }
        if rec.monitor_pid.is_none_or(|p| !pid_alive(p)) {
            let rec = refresh(roots, db, &rec)?;
            if !rec.status.is_alive() {
                return Ok(Some(rec));
            }
        }
        if timeout.is_some_and(|t| start.elapsed() >= t) {
            return Ok(None);
        }
        std::thread::sleep(delay);
        delay = (delay * 2).min(Duration::from_millis(50));
    }
}

/// Stops a running container: its stop signal, then SIGKILL after `timeout` (default: the
/// service's `stop_grace_period`). Returns whether it was running.
pub fn stop(roots: &Roots, db: &StateDb, rec: &ContainerRecord, timeout: Option<Duration>) -> anyhow::Result<bool> {
    let rec = refresh(roots, db, rec)?;
    // The user's stop, also of a container waiting to be restarted: restart policies leave it
    // alone until it starts again.
    or_defer(db.set_stop_requested(&rec.id, true), || format!("the stop request of `{}`", rec.name))?;
    if !has_process(&rec) {
        return Ok(false);
    }
    let config = &rec.config;
    let rt = runtime::by_name(&rec.runtime, &roots.run)?;
    let grace = timeout.unwrap_or_else(|| Duration::from_secs_f64(config.stop_grace_secs));
    if rec.status == Status::Paused {
        // A frozen process cannot handle its signal.
        let _ = rt.resume(&rec.id);
        or_defer(db.set_status(&rec.id, Status::Running), || format!("the status of `{}`", rec.name))?;
    }
    if rec.status == Status::Running {
        // A failing hook does not keep the container from stopping.
        let _ = run_hooks(roots, db, &rec, Hooks::PreStop);
    }
    let signal = parse_signal(&config.stop_signal).unwrap_or(Signal::SIGTERM);
    if !grace.is_zero() {
        let _ = rt.kill(&rec.id, signal, false);
        if wait_exit(roots, db, &rec.id, Some(grace))?.is_some() {
            record_event(db, &rec, "stop", &[]);
            return Ok(true);
        }
    }
    let _ = rt.kill(&rec.id, Signal::SIGKILL, true);
    if wait_exit(roots, db, &rec.id, Some(Duration::from_secs(30)))?.is_none() {
        bail!("container `{}` did not exit after SIGKILL", rec.name);
    }
    record_event(db, &rec, "stop", &[]);
    Ok(true)
}

/// Sends `signal` to a running container's init.
pub fn kill(roots: &Roots, db: &StateDb, rec: &ContainerRecord, signal: Signal) -> anyhow::Result<bool> {
    let rec = refresh(roots, db, rec)?;
    if !has_process(&rec) {
        return Ok(false);
    }
    let rt = runtime::by_name(&rec.runtime, &roots.run)?;
    if matches!(signal, Signal::SIGKILL | Signal::SIGTERM | Signal::SIGINT | Signal::SIGQUIT) {
        or_defer(db.set_stop_requested(&rec.id, true), || format!("the stop request of `{}`", rec.name))?;
    }
    rt.kill(&rec.id, signal, false)?;
    record_event(db, &rec, "kill", &[("signal", signal.as_str().into())]);
    Ok(true)
}

/// Stops (with `timeout`) and starts again, keeping `logs -f` followers attached.
pub fn restart(roots: &Roots, db: &StateDb, rec: &ContainerRecord, timeout: Option<Duration>) -> anyhow::Result<()> {
    let rec = refresh(roots, db, rec)?;
    if rec.status.is_alive() {
        db.set_status(&rec.id, Status::Restarting)?;
        if let Err(e) = stop(roots, db, &rec, timeout) {
            db.set_status(&rec.id, Status::Running)?;
            return Err(e);
        }
    }
    let rec = db.container(&rec.id)?.ok_or_else(|| anyhow!("container `{}` is gone", rec.name))?;
    db.count_restart(&rec.id)?;
    let started = join_shared_namespaces(roots, db, &rec).and_then(|_| spawn_monitor(roots, &rec, StartMode::Detached));
    if started.is_err() {
        db.set_status(&rec.id, Status::Exited)?;
    }
    started?;
    record_event(db, &rec, "restart", &[]);
    Ok(())
}

/// Freezes a running container.
pub fn pause(roots: &Roots, db: &StateDb, rec: &ContainerRecord) -> anyhow::Result<()> {
    let rec = refresh(roots, db, rec)?;
    if rec.status != Status::Running {
        bail!("container `{}` is not running", rec.name);
    }
    runtime::by_name(&rec.runtime, &roots.run)?.pause(&rec.id)?;
    db.set_status(&rec.id, Status::Paused)?;
    record_event(db, &rec, "pause", &[]);
    Ok(())
}

/// Thaws a paused container.
pub fn unpause(roots: &Roots, db: &StateDb, rec: &ContainerRecord) -> anyhow::Result<()> {
    let rec = refresh(roots, db, rec)?;
    if rec.status != Status::Paused {
        bail!("container `{}` is not paused", rec.name);
    }
    runtime::by_name(&rec.runtime, &roots.run)?.resume(&rec.id)?;
    db.set_status(&rec.id, Status::Running)?;
    record_event(db, &rec, "unpause", &[]);
    Ok(())
}

/// Removes a container that does not run (with `force`, kills it first): runtime state, mounts,
/// files, then the state row.
pub fn remove(roots: &Roots, db: &StateDb, rec: &ContainerRecord, force: bool) -> anyhow::Result<()> {
    let rec = dismantle(roots, db, rec, force)?;
    forget(db, &rec)
}

/// What [`remove`] does before the state row goes: the container's process (with `force`),
/// runtime state, mounts and files. Returns the row as it is now.
pub fn dismantle(roots: &Roots, db: &StateDb, rec: &ContainerRecord, force: bool) -> anyhow::Result<ContainerRecord> {
    let rec = refresh(roots, db, rec)?;
    if rec.status.is_alive() {
        if !force {
            bail!("container `{}` is running: stop it first or use `--force`", rec.name);
        }
        stop(roots, db, &rec, Some(Duration::ZERO))?;
    }
    let rt = runtime::by_name(&rec.runtime, &roots.run)?;
    cleanup_runtime(roots, &rt, &rec.id);
    let dir = roots.container_dir(&rec.id);
    // Another process (a `run --rm` monitor) may be removing it at the same time.
    if let Err(e) = super::paths::remove_tree(&roots.containers_dir(), &dir) {
        if dir.exists() {
            return Err(e).with_context(|| format!("cannot remove `{}`", dir.display()));
        }
    }
    Ok(rec)
}

/// The last step of a removal: the state row goes, once nothing else of the container is left.
pub fn forget(db: &StateDb, rec: &ContainerRecord) -> anyhow::Result<()> {
    record_event(db, rec, "destroy", &[]);
    // Without space the row stays; the next `rm` or `down` finds nothing left to do but delete it.
    or_defer(db.delete_container(&rec.id), || format!("the removal of `{}`", rec.name))?;
    Ok(())
}

/// What `exec` runs.
#[derive(Debug, Clone, Default)]
pub struct ExecRequest {
    /// Command and arguments.
    pub command: Vec<String>,
    /// `-u`.
    pub user: Option<String>,
    /// `-w`.
    pub working_dir: Option<String>,
    /// `-e KEY=VALUE`.
    pub env: Vec<(String, String)>,
    /// Allocate a terminal.
    pub tty: bool,
    /// `-d`.
    pub detach: bool,
    /// `--privileged`.
    pub privileged: bool,
    /// Run with stdio on `/dev/null` and wait for the exit code (health probes).
    pub quiet: bool,
}

/// Runs a process in a running container with the caller's stdio; returns its exit code.
pub fn exec(roots: &Roots, db: &StateDb, rec: &ContainerRecord, req: &ExecRequest) -> anyhow::Result<i32> {
    let rec = refresh(roots, db, rec)?;
    if rec.status != Status::Running {
        bail!("container `{}` is not running", rec.name);
    }
    if req.command.is_empty() {
        bail!("exec needs a command");
    }
    super::require_run_dir(roots, &rec)?;
    let spec_path = roots.bundle(&rec.id).join("config.json");
    let spec: serde_json::Value = serde_json::from_slice(&std::fs::read(&spec_path)?)?;
    let mut process = spec.get("process").cloned().ok_or_else(|| anyhow!("bundle has no process"))?;
    process["args"] = req.command.clone().into();
    process["terminal"] = req.tty.into();
    if let Some(w) = &req.working_dir {
        process["cwd"] = w.clone().into();
    }
    let mut env: Vec<String> = process["env"]
        .as_array()
        .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_string)).collect())
        .unwrap_or_default();
    for (k, v) in &req.env {
        env.retain(|e| e.split_once('=').map(|(ek, _)| ek) != Some(k));
        env.push(format!("{k}={v}"));
    }
    if req.tty && !env.iter().any(|e| e.starts_with("TERM=")) {
        env.push("TERM=xterm".into());
    }
    if let Some(u) = &req.user {
        let config = &rec.config;
        let mut dirs: Vec<PathBuf> = vec![roots.container_dir(&rec.id).join("upper")];
        dirs.extend(config.layers.iter().rev().cloned());
        let users = crate::runtime::user::UserDb::from_layers(&dirs);
        let r = users.resolve(u, &[]).map_err(|e| anyhow!(e))?;
        process["user"] =
            serde_json::json!({"uid": r.uid, "gid": r.gid, "additionalGids": r.additional_gids, "umask": 0o022});
        env.retain(|e| !e.starts_with("HOME="));
        env.push(format!("HOME={}", r.home));
    }
    process["env"] = env.into();
    if req.privileged {
        let all: Vec<String> = crate::runtime::defaults::ALL_CAPS.iter().map(|c| format!("CAP_{c}")).collect();
        process["capabilities"] = serde_json::json!({"bounding": all, "effective": all, "permitted": all});
    }
    let run_dir = roots.run_dir(&rec.id);
    let file = tempfile::Builder::new().prefix("exec-").suffix(".json").tempfile_in(&run_dir)?;
    std::fs::write(file.path(), serde_json::to_vec(&process)?)?;
    let rt = runtime::by_name(&rec.runtime, &roots.run)?;
    if !req.quiet {
        // Health probes are quiet: they would bury everything else in the event log.
        record_event(db, &rec, "exec_create", &[("execCommand", req.command.join(" ").into())]);
    }
    let code = rt.exec(&rec.id, file.path(), ExecMode { tty: req.tty, detach: req.detach, quiet: req.quiet })?;
    Ok(code)
}
