//! One health probe: the check's command run in the container through the runtime's `exec`,
//! waited for at most the check's timeout.
//!
//! A probe past its timeout is killed, not abandoned: waiting on it in a task that a timer gives
//! up on would leave the exec'd process (and the runtime process waiting for it) running, one
//! more at every interval. The runtime makes the exec'd process a session leader, so it is killed
//! with its process group (a `CMD-SHELL` probe's shell and what it started), then the runtime
//! process is reaped. The probe then fails with Docker's message.

use std::os::fd::{AsFd, FromRawFd, OwnedFd};
use std::path::Path;
use std::process::Child;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::container::{self, Roots};
use crate::runtime::{self, Runtime};
use crate::state::ContainerRecord;

/// What one probe found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Exit status 0.
    Pass,
    /// Another status, or the command could not run: why.
    Fail(String),
    /// Still running after the timeout (and killed): Docker's message.
    Timeout(String),
}

/// Runs `command` in the running container `rec` and waits up to `timeout` for it.
pub fn run(roots: &Roots, rec: &ContainerRecord, command: &[String], timeout: Duration) -> Outcome {
    let started = Instant::now();
    match exec(roots, rec, command, timeout, started) {
        Ok(Some(0)) => Outcome::Pass,
        Ok(Some(code)) => Outcome::Fail(format!("exit code {code}")),
        Ok(None) => Outcome::Timeout(format!("Health check exceeded timeout ({})", go_duration(timeout))),
        Err(e) => Outcome::Fail(format!("{e:#}")),
    }
}

/// The exit code, or `None` when it ran past `timeout` and was killed.
fn exec(
    roots: &Roots,
    rec: &ContainerRecord,
    command: &[String],
    timeout: Duration,
    started: Instant,
) -> anyhow::Result<Option<i32>> {
    container::require_run_dir(roots, rec)?;
    let bundle = roots.bundle(&rec.id).join("config.json");
    let spec: serde_json::Value = serde_json::from_slice(&std::fs::read(&bundle)?)?;
    let mut process = spec.get("process").cloned().ok_or_else(|| anyhow!("the bundle has no process"))?;
    process["args"] = command.into();
    process["terminal"] = false.into();
    // The process file and the pid file, in the monitor's run directory while the probe runs.
    let dir = tempfile::Builder::new().prefix("probe-").tempdir_in(roots.run_dir(&rec.id))?;
    let (process_file, pid_file) = (dir.path().join("process.json"), dir.path().join("pid"));
    std::fs::write(&process_file, serde_json::to_vec(&process)?)?;
    let rt = runtime::by_name(&rec.runtime, &roots.run)?;
    let mut child = rt.spawn_exec(&rec.id, &process_file, &pid_file)?;
    let left = timeout.saturating_sub(started.elapsed());
    if let Some(status) = wait_for(&mut child, left)? {
        return Ok(Some(exit_code(status)));
    }
    // Past the timeout: the process and its group first, while the runtime still waits for it
    // (so it is reaped), then the runtime itself.
    kill_group(&pid_file);
    // Already exited is fine: it is reaped just below.
    let _ = child.kill();
    let _ = child.wait();
    // Had the runtime not written the pid file yet, it may have been in between.
    kill_group(&pid_file);
    Ok(None)
}

/// Kills the process group led by the pid in `pid_file`, if there is one.
fn kill_group(pid_file: &Path) {
    let Some(pid) = std::fs::read_to_string(pid_file).ok().and_then(|s| s.trim().parse::<i32>().ok()) else {
        return;
    };
    if pid > 1 {
        // A group or process already gone is what is wanted.
        let _ = kill(Pid::from_raw(-pid), Signal::SIGKILL);
        let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
    }
}

/// Waits up to `timeout` for `child`; `None` when it still runs.
fn wait_for(child: &mut Child, timeout: Duration) -> anyhow::Result<Option<std::process::ExitStatus>> {
    // A pidfd becomes readable when the process exits: one poll with the timeout.
    // SAFETY: pidfd_open takes a pid and flags; a non-negative result is a new descriptor.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, child.id() as libc::pid_t, 0) };
    if fd >= 0 {
        // SAFETY: the kernel just returned this descriptor, owned by nothing else.
        let pidfd = unsafe { OwnedFd::from_raw_fd(fd as i32) };
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let ms = nix::poll::PollTimeout::try_from(left.as_millis().min(i32::MAX as u128) as i32)
                .unwrap_or(nix::poll::PollTimeout::MAX);
            let mut fds = [nix::poll::PollFd::new(pidfd.as_fd(), nix::poll::PollFlags::POLLIN)];
            match nix::poll::poll(&mut fds, ms) {
                Ok(0) => return Ok(None),
                Ok(_) => return child.wait().map(Some).context("cannot wait for the probe"),
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => return Err(e).context("cannot wait for the probe"),
            }
        }
    }
    // Without pidfds (Linux before 5.3): look every few milliseconds.
    let deadline = Instant::now() + timeout;
    let mut delay = Duration::from_millis(1);
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(Some(status));
        }
        if Instant::now() >= deadline {
            return Ok(None);
        }
        std::thread::sleep(delay.min(deadline.saturating_duration_since(Instant::now())));
        delay = (delay * 2).min(Duration::from_millis(50));
    }
}

fn exit_code(status: std::process::ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    status.code().unwrap_or_else(|| 128 + status.signal().unwrap_or(0))
}

/// A duration as Go prints it (`1s`, `1.5s`, `500ms`, `1m30s`), as Docker's messages show it.
pub fn go_duration(d: Duration) -> String {
    if d.is_zero() {
        return "0s".into();
    }
    if d < Duration::from_secs(1) {
        let ms = d.as_secs_f64() * 1000.0;
        return format!("{}ms", trim(format!("{ms:.3}")));
    }
    let total = d.as_secs();
    let (h, m) = (total / 3600, total / 60 % 60);
    let s = trim(format!("{:.9}", (total % 60) as f64 + f64::from(d.subsec_nanos()) / 1e9));
    match (h, m) {
        (0, 0) => format!("{s}s"),
        (0, m) => format!("{m}m{s}s"),
        (h, m) => format!("{h}h{m}m{s}s"),
    }
}

fn trim(s: String) -> String {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_docker_prints_them() {
        let ms = Duration::from_millis;
        let cases = [(ms(1000), "1s"), (ms(1500), "1.5s"), (ms(500), "500ms"), (ms(90_000), "1m30s")];
        for (d, text) in cases {
            assert_eq!(go_duration(d), text);
        }
        assert_eq!(go_duration(Duration::from_secs(3600)), "1h0m0s");
        assert_eq!(go_duration(Duration::from_secs(30)), "30s");
    }
}
