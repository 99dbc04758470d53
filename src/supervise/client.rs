//! Talking to a project's supervisor from other berth processes: where its socket, lock and log
//! are, one request over the socket, whether one runs (its lock), starting it when none does
//! (and saying so when one holds the lock but does not answer), and stopping it.

use std::io::{BufRead, BufReader, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;

use super::protocol::{self, Mismatch, Reply, Request, Status};
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

/// Sends one request to a project's supervisor and returns its answer. An answer in another
/// version of the protocol is a [`Mismatch`] error.
pub fn call(roots: &Roots, project: &str, request: &Request, timeout: Duration) -> anyhow::Result<Reply> {
    let path = socket_path(roots, project);
    let mut s = UnixStream::connect(&path).with_context(|| format!("no supervisor for project {project:?}"))?;
    s.set_read_timeout(Some(timeout))?;
    s.set_write_timeout(Some(timeout))?;
    writeln!(s, "{}", protocol::encode_request(request))?;
    let mut line = String::new();
    BufReader::new(s).read_line(&mut line)?;
    protocol::decode_reply(project, &line)
}

/// Sends a request that is answered [`Reply::Done`]; an error answer is an error.
fn call_done(roots: &Roots, project: &str, request: &Request, timeout: Duration) -> anyhow::Result<()> {
    match call(roots, project, request, timeout)? {
        Reply::Done => Ok(()),
        Reply::Error { error } => anyhow::bail!("supervisor: {error}"),
        other => anyhow::bail!("unexpected answer from the supervisor of project {project:?}: {other:?}"),
    }
}

/// Has the supervisor make a pass now, and waits until it is done: what it serves (names,
/// ports, probes) follows the state rows as they are now.
pub fn refresh(roots: &Roots, project: &str, timeout: Duration) -> anyhow::Result<()> {
    call_done(roots, project, &Request::Refresh, timeout)
}

/// Has the supervisor switch container `from`'s names and ports to its successor `to` (ids).
pub fn handover(roots: &Roots, project: &str, from: &str, to: &str) -> anyhow::Result<()> {
    let request = Request::Handover { from: from.to_string(), to: to.to_string() };
    call_done(roots, project, &request, Duration::from_secs(10))
}

/// What the supervisor serves.
pub fn status(roots: &Roots, project: &str, timeout: Duration) -> anyhow::Result<Status> {
    match call(roots, project, &Request::Status, timeout)? {
        Reply::Status(s) => Ok(s),
        Reply::Error { error } => anyhow::bail!("supervisor: {error}"),
        other => anyhow::bail!("unexpected answer from the supervisor of project {project:?}: {other:?}"),
    }
}

/// Sends request `op` (`refresh`, `status` or `shutdown`) and returns the answer as JSON.
/// Kept for callers from before the typed protocol: use [`refresh`], [`status`] or [`shutdown`].
pub fn request(roots: &Roots, project: &str, op: &str, timeout: Duration) -> anyhow::Result<serde_json::Value> {
    let request = match op {
        "refresh" => Request::Refresh,
        "status" => Request::Status,
        "shutdown" => Request::Shutdown,
        other => anyhow::bail!("unknown supervisor request {other:?}"),
    };
    match call(roots, project, &request, timeout)? {
        Reply::Error { error } => anyhow::bail!("supervisor: {error}"),
        reply => Ok(serde_json::to_value(reply)?),
    }
}

/// The pid of a project's running supervisor, if one answers.
pub fn running(roots: &Roots, project: &str) -> Option<i32> {
    status(roots, project, Duration::from_secs(2)).ok().map(|s| s.pid)
}

/// The pid of a project's running supervisor if one answers, `None` if none does, and an error
/// when one answers in another version of the protocol.
fn answering(roots: &Roots, project: &str) -> Result<Option<i32>, Mismatch> {
    match status(roots, project, Duration::from_secs(2)) {
        Ok(s) => Ok(Some(s.pid)),
        Err(e) => match e.downcast::<Mismatch>() {
            Ok(m) => Err(m),
            Err(_) => Ok(None),
        },
    }
}

/// How often a container's monitor checks that its project is supervised.
pub const REVIVE_EVERY: Duration = Duration::from_secs(2);

/// Whether a project has a supervisor, told by its lock (no request: nothing waits).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Liveness {
    /// One holds the lock (its pid, once it has written it).
    Running(Option<i32>),
    /// One holds the lock but is stopped (SIGSTOP): it answers nothing.
    Stopped(i32),
    /// None: restart policies, health checks, DNS and published ports are not served.
    Absent,
}

/// Whether `project` has a supervisor. Probing takes a shared lock for an instant, which a
/// supervisor starting at that instant waits out.
pub fn liveness(roots: &Roots, project: &str) -> Liveness {
    let path = lock_path(roots, project);
    let Ok(file) = std::fs::File::open(&path) else { return Liveness::Absent };
    // SAFETY: flock on a descriptor owned here; a lock taken is released when `file` closes.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_SH | libc::LOCK_NB) } == 0 {
        return Liveness::Absent;
    }
    // The pid it wrote, unless that is a previous supervisor's (one that has just taken the lock
    // writes its own next): the process must be this project's supervisor.
    let pid = std::fs::read_to_string(&path)
        .ok()
        .and_then(|s| s.trim().parse::<i32>().ok())
        .filter(|pid| is_supervisor(*pid, project));
    match pid {
        Some(pid) if process_stopped(pid) => Liveness::Stopped(pid),
        pid => Liveness::Running(pid),
    }
}

/// Whether `pid` runs `berth __supervise PROJECT`.
fn is_supervisor(pid: i32, project: &str) -> bool {
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
    args.windows(2).any(|w| w[0] == b"__supervise" && w[1] == project.as_bytes())
}

/// Whether `pid` is stopped by a signal (or a tracer).
fn process_stopped(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        s.rsplit_once(')').is_some_and(|(_, rest)| matches!(rest.trim_start().chars().next(), Some('T' | 't')))
    })
}

/// What is wrong when a supervisor holds its lock but does not answer, and what to do.
pub fn not_answering(roots: &Roots, project: &str, pid: Option<i32>, stopped: bool) -> String {
    let who = match pid {
        Some(pid) => format!("the supervisor of project {project:?} (pid {pid})"),
        None => format!("the supervisor of project {project:?}"),
    };
    let n = pid.map(|p| p.to_string()).unwrap_or_else(|| "PID".into());
    let new_one = "`berth up -d` (or, within seconds, the monitor of a running container) starts a new one";
    if stopped {
        format!("{who} is not answering: it is stopped (SIGSTOP); `kill -CONT {n}` resumes it, or `kill -9 {n}` ends it and {new_one}")
    } else {
        format!(
            "{who} is not answering; `kill -9 {n}` ends it and {new_one} (its log: {})",
            log_path(roots, project).display()
        )
    }
}

/// Starts the project's supervisor unless one runs, and waits until it answers. One that holds
/// its lock without answering (stopped, or hung) is an error that says so and what to do.
pub fn ensure(roots: &Roots, project: &str) -> anyhow::Result<i32> {
    let deadline = Instant::now() + Duration::from_secs(6);
    loop {
        match liveness(roots, project) {
            Liveness::Absent => break,
            Liveness::Stopped(pid) => anyhow::bail!(not_answering(roots, project, Some(pid), true)),
            Liveness::Running(pid) => {
                // A pass may be under way, or it is still opening its socket: give it a moment.
                if let Some(pid) = answering(roots, project)? {
                    return Ok(pid);
                }
                if Instant::now() > deadline {
                    anyhow::bail!(not_answering(roots, project, pid, false));
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
    let mut child = spawn(roots, project)?;
    let start = Instant::now();
    loop {
        if let Some(pid) = answering(roots, project)? {
            // Reap it later without blocking: it lives on in its own session.
            std::thread::spawn(move || child.wait());
            return Ok(pid);
        }
        if let Ok(Some(status)) = child.try_wait() {
            // Another supervisor (started by a monitor, or another command) won the lock: wait
            // for that one to answer.
            if liveness(roots, project) != Liveness::Absent {
                return ensure(roots, project);
            }
            let log = std::fs::read_to_string(log_path(roots, project)).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(5).collect();
            anyhow::bail!(
                "the project supervisor exited ({status}): {}",
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            );
        }
        if start.elapsed() > Duration::from_secs(10) {
            // It may have exited meanwhile; either way it is not answering.
            let _ = child.kill();
            anyhow::bail!("the project supervisor did not answer within 10 s");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Starts a supervisor for `project` when none holds its lock, without waiting for it (what a
/// container's monitor does when it finds its project unsupervised); `why` goes to the
/// supervisor's log. True when one was started.
pub fn revive(roots: &Roots, project: &str, why: &str) -> bool {
    if liveness(roots, project) != Liveness::Absent {
        return false;
    }
    if let Ok(mut log) = std::fs::OpenOptions::new().create(true).append(true).open(log_path(roots, project)) {
        // Only a note in the log: the new supervisor starts either way.
        let _ = writeln!(log, "berth: {why}: starting a new supervisor");
    }
    spawn(roots, project).is_ok()
}

/// Starts `berth __supervise PROJECT` in its own session, its output going to its log.
fn spawn(roots: &Roots, project: &str) -> anyhow::Result<std::process::Child> {
    std::fs::create_dir_all(dir(roots))?;
    let exe = container::berth_exe()?;
    let log = std::fs::OpenOptions::new().create(true).append(true).open(log_path(roots, project))?;
    let mut cmd = Command::new(exe);
    cmd.arg("__supervise").arg(project);
    cmd.env("BERTH_ROOT", &roots.root).env("BERTH_RUN", &roots.run);
    cmd.stdin(Stdio::null()).stdout(log.try_clone()?).stderr(log);
    // Its own session: a Ctrl-C meant for the command that started it does not reach it. A
    // monitor that starts it ignores SIGHUP; the supervisor starts with the default.
    // SAFETY: setsid and signal are async-signal-safe.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(&mut cmd, || {
            libc::setsid();
            libc::signal(libc::SIGHUP, libc::SIG_DFL);
            Ok(())
        });
    }
    cmd.spawn().context("cannot start the project supervisor")
}

/// Asks the project's supervisor to stop and waits until it is gone. One that holds its lock but
/// does not answer (stopped, hung) is killed.
pub fn shutdown(roots: &Roots, project: &str) -> anyhow::Result<()> {
    let pid = match answering(roots, project) {
        Ok(Some(pid)) => {
            // Not answering is handled below: it is killed when it does not go.
            let _ = call(roots, project, &Request::Shutdown, Duration::from_secs(5));
            pid
        }
        // One of another berth: it stops (as cleanly) on SIGTERM.
        Err(_) => match liveness(roots, project) {
            Liveness::Running(Some(pid)) | Liveness::Stopped(pid) => {
                // Already gone is fine; one that does not go is killed below.
                let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGTERM);
                pid
            }
            _ => return Ok(()),
        },
        Ok(None) => match liveness(roots, project) {
            Liveness::Running(Some(pid)) | Liveness::Stopped(pid) => {
                // Already gone is fine: that is what the loop below waits for.
                let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
                pid
            }
            _ => return Ok(()),
        },
    };
    let start = Instant::now();
    while container::pid_alive(pid) {
        if start.elapsed() > Duration::from_secs(10) {
            // Already gone is fine; SIGKILL cannot be refused.
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    Ok(())
}

/// Whether any of `containers` needs its project's supervisor: one made by `up` that runs, or
/// that exited with a restart policy that may start it again, and that no user stopped.
pub fn needs_supervisor(db: &crate::state::StateDb, containers: &[crate::state::ContainerRecord]) -> bool {
    use super::restart::Condition;
    use crate::state::Status;
    containers.iter().filter(|c| !c.oneoff).any(|c| {
        let Some(spec) = &c.config.supervise else { return false };
        let may_restart = match spec.restart.condition {
            Condition::Never => false,
            Condition::OnFailure => c.exit_code != Some(0),
            Condition::Always | Condition::UnlessStopped => true,
        };
        let wants = c.status.is_alive() || (matches!(c.status, Status::Exited | Status::Dead) && may_restart);
        wants && !db.supervision(&c.id).is_ok_and(|s| s.stop_requested)
    })
}

/// What a command that finds the project's supervisor missing does (`ps`): when `containers`
/// need one ([`needs_supervisor`]) and none holds the lock, starts one without waiting for it;
/// returns what to tell the user then, and when the one holding the lock is stopped.
pub fn look_after(
    roots: &Roots,
    db: &crate::state::StateDb,
    project: &str,
    containers: &[crate::state::ContainerRecord],
) -> Option<String> {
    let stopped = "restart policies, health checks, DNS and published ports are stopped";
    match liveness(roots, project) {
        Liveness::Running(_) => None,
        _ if !needs_supervisor(db, containers) => None,
        Liveness::Absent => {
            let started = revive(roots, project, "`berth ps` found the project unsupervised");
            let what = if started {
                "a new supervisor is starting".to_string()
            } else {
                format!("no new supervisor could be started (see {})", log_path(roots, project).display())
            };
            Some(format!(
                "project {project:?} is not supervised: {stopped}; {what} (the monitors of its running containers \
                 also start one within {} s, and `berth up -d` does)",
                REVIVE_EVERY.as_secs()
            ))
        }
        Liveness::Stopped(pid) => Some(format!(
            "the supervisor of project {project:?} (pid {pid}) is stopped (SIGSTOP): {stopped}; `kill -CONT {pid}` \
             resumes it, or `kill -9 {pid}` ends it and a new one starts within {} s",
            REVIVE_EVERY.as_secs()
        )),
    }
}

/// The project's supervisor in a word or two, for `ls`: `running`, `stopped (pid N)`, `none`.
pub fn describe_liveness(roots: &Roots, project: &str) -> String {
    match liveness(roots, project) {
        Liveness::Running(_) => "running".into(),
        Liveness::Stopped(pid) => format!("stopped (pid {pid})"),
        Liveness::Absent => "none".into(),
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::net::UnixListener;

    use super::*;

    /// A supervisor that answers one connection with `answer`, and the request it got.
    fn answering_once(roots: &Roots, project: &str, answer: &'static str) -> std::thread::JoinHandle<String> {
        std::fs::create_dir_all(dir(roots)).unwrap();
        let listener = UnixListener::bind(socket_path(roots, project)).unwrap();
        std::thread::spawn(move || {
            let (conn, _) = listener.accept().unwrap();
            let mut line = String::new();
            BufReader::new(&conn).read_line(&mut line).unwrap();
            writeln!(&conn, "{answer}").unwrap();
            line
        })
    }

    #[test]
    fn a_supervisor_of_another_protocol_is_named_with_what_to_do() {
        let tmp = tempfile::tempdir().unwrap();
        let roots = Roots { root: tmp.path().join("root"), run: tmp.path().join("run") };
        // One from before the protocol had a version answers refresh with `{"ok": true}`.
        let old = answering_once(&roots, "old", r#"{"ok":true}"#);
        let err = refresh(&roots, "old", Duration::from_secs(5)).unwrap_err();
        assert_eq!(old.join().unwrap(), "{\"v\":1,\"op\":\"refresh\"}\n");
        assert_eq!(err.downcast_ref::<Mismatch>().map(|m| m.theirs), Some(0), "{err:#}");
        assert!(err.to_string().contains("speaks protocol 0, this berth speaks 1: run `berth down`"), "{err:#}");
        // One of this protocol answers in kind; the wrapper for untyped callers still works.
        let new = answering_once(&roots, "new", r#"{"v":1,"reply":"done"}"#);
        refresh(&roots, "new", Duration::from_secs(5)).unwrap();
        new.join().unwrap();
        // The temporary state root goes with the test.
        let _ = std::fs::remove_file(socket_path(&roots, "new"));
        let new = answering_once(&roots, "new", r#"{"v":1,"reply":"error","error":"no"}"#);
        let err = request(&roots, "new", "refresh", Duration::from_secs(5)).unwrap_err();
        assert_eq!(err.to_string(), "supervisor: no");
        new.join().unwrap();
    }
}
