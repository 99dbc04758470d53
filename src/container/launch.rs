//! Launching a container's monitor (which starts the container with the runtime) and telling
//! whether one lives: its lock file, its process.

use std::io::Read;
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use super::Roots;
use crate::state::ContainerRecord;

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
    oneoff: bool,
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
                Err(StartFailed { name: self.name.clone(), oneoff: self.oneoff, detail: detail.trim().to_string() }
                    .into())
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
    /// A one-off container (`run`): one whose command cannot be started exits as `docker run`
    /// does (127, 126).
    pub oneoff: bool,
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
    Ok(MonitorStart { sync: std::fs::File::from(sync_r), name: rec.name.clone(), oneoff: rec.oneoff, log: log_path })
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

/// Whether `pid` runs (a zombie counts as gone).
pub(crate) fn pid_alive(pid: i32) -> bool {
    // A zombie counts as gone.
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| s.rsplit_once(')').is_some_and(|(_, rest)| !rest.trim_start().starts_with('Z')))
        .unwrap_or(false)
}
