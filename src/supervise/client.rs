//! Talking to a project's supervisor from other berth processes: where its socket, lock and log
//! are, one request over the socket, starting it when none answers, and stopping it.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::json;

use crate::container::{self, Roots};

/// Where a project's supervisor keeps its socket, lock and log.
pub fn dir(roots: &Roots) -> PathBuf {
    roots.run.join("supervisors")
}

/// The supervisor's socket.
pub fn socket_path(roots: &Roots, project: &str) -> PathBuf {
    dir(roots).join(format!("{project}.sock"))
}

/// The lock the running supervisor holds.
pub(crate) fn lock_path(roots: &Roots, project: &str) -> PathBuf {
    dir(roots).join(format!("{project}.lock"))
}

/// The supervisor's own diagnostics.
pub fn log_path(roots: &Roots, project: &str) -> PathBuf {
    dir(roots).join(format!("{project}.log"))
}

/// Sends one request to a project's supervisor and returns its answer.
pub fn request(roots: &Roots, project: &str, op: &str, timeout: Duration) -> anyhow::Result<serde_json::Value> {
    let path = socket_path(roots, project);
    let mut s = UnixStream::connect(&path).with_context(|| format!("no supervisor for project {project:?}"))?;
    s.set_read_timeout(Some(timeout))?;
    s.set_write_timeout(Some(timeout))?;
    writeln!(s, "{}", json!({ "op": op }))?;
    let mut line = String::new();
    BufReader::new(s).read_line(&mut line)?;
    let v: serde_json::Value = serde_json::from_str(&line).context("bad answer from the supervisor")?;
    if let Some(e) = v.get("error").and_then(|e| e.as_str()) {
        anyhow::bail!("supervisor: {e}");
    }
    Ok(v)
}

/// The pid of a project's running supervisor, if one answers.
pub fn running(roots: &Roots, project: &str) -> Option<i32> {
    let v = request(roots, project, "status", Duration::from_secs(2)).ok()?;
    v.get("pid").and_then(|p| p.as_i64()).map(|p| p as i32)
}

/// Starts the project's supervisor unless one runs, and waits until it answers.
pub fn ensure(roots: &Roots, project: &str) -> anyhow::Result<i32> {
    if let Some(pid) = running(roots, project) {
        return Ok(pid);
    }
    std::fs::create_dir_all(dir(roots))?;
    let exe = container::berth_exe()?;
    let log = std::fs::OpenOptions::new().create(true).append(true).open(log_path(roots, project))?;
    let mut cmd = Command::new(exe);
    cmd.arg("__supervise").arg(project);
    cmd.env("BERTH_ROOT", &roots.root).env("BERTH_RUN", &roots.run);
    cmd.stdin(Stdio::null()).stdout(log.try_clone()?).stderr(log);
    // Its own session: a Ctrl-C meant for the command that started it does not reach it.
    // SAFETY: setsid is async-signal-safe.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(&mut cmd, || {
            libc::setsid();
            Ok(())
        });
    }
    let mut child = cmd.spawn().context("cannot start the project supervisor")?;
    let start = Instant::now();
    loop {
        if let Some(pid) = running(roots, project) {
            // Reap it later without blocking: it lives on in its own session.
            std::thread::spawn(move || child.wait());
            return Ok(pid);
        }
        if let Ok(Some(status)) = child.try_wait() {
            // Another supervisor may have won the lock between our check and its start.
            if let Some(pid) = running(roots, project) {
                return Ok(pid);
            }
            let log = std::fs::read_to_string(log_path(roots, project)).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(5).collect();
            anyhow::bail!(
                "the project supervisor exited ({status}): {}",
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            );
        }
        if start.elapsed() > Duration::from_secs(10) {
            let _ = child.kill();
            anyhow::bail!("the project supervisor did not answer within 10 s");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Asks the project's supervisor to stop and waits until it is gone.
pub fn shutdown(roots: &Roots, project: &str) -> anyhow::Result<()> {
    let Some(pid) = running(roots, project) else { return Ok(()) };
    let _ = request(roots, project, "shutdown", Duration::from_secs(5));
    let start = Instant::now();
    while container::pid_alive(pid) {
        if start.elapsed() > Duration::from_secs(10) {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    Ok(())
}
