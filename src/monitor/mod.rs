//! The per-container monitor: `berth __monitor <id>`, like conmon or containerd's shim.
//!
//! Forked by the [`launcher`] of the command that starts the container (or executed as
//! `berth __monitor ID` where there is none), it detaches (forks, `setsid`), becomes the child
//! subreaper, mounts the container's rootfs, and starts the runtime's `run --detach` (`create` and
//! `start` in one call, one runtime process per start) with the container's stdio being pipes it
//! holds (or receives the pty master over `--console-socket`); while that runs it opens the attach
//! socket and the log file. It reports success or the error on fd 3 (a pipe its
//! starter reads to end of file) and then:
//! - copies the container's output into the log file (rotated) and to attached clients;
//! - forwards attached clients' input to the container's stdin;
//! - reaps every child (as subreaper the container's init becomes its child when the runtime
//!   exits); when the init exits it drains the output, records the exit code (128 + signal when
//!   killed; `oom_killed` from the memory cgroup), deletes the runtime's container, unmounts the
//!   rootfs, and exits. A `run --rm` container is removed here.
//!
//! Nothing ties it to the process that started it: that process may die (even `kill -9`) and the
//! container keeps running, logging, and has its exit code recorded.

pub mod attach;
mod exit;
pub mod forward;
pub mod launcher;
pub mod log;
mod start;
mod streams;

use std::fs::File;
use std::io::Write;
use std::os::fd::{AsFd, FromRawFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::time::{Duration, Instant};

use anyhow::anyhow;
use nix::poll::{PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::SignalFd;

use self::log::LogWriter;
use crate::container::{self, ContainerConfig, Roots};
use crate::runtime;
use crate::state::StateDb;
use crate::supervise::client;
use start::launch;

/// The fd on which the monitor reports `ok` or `error: ...` to its starter.
pub const SYNC_FD: i32 = 3;

/// Entry point of `berth __monitor ID`, and of a monitor forked by the [`launcher`]: detaches,
/// starts the container and watches it; never returns. Its stdin and stdout are `/dev/null`, its
/// stderr the monitor's log, fd 3 the pipe its starter reads the outcome from.
///
/// # Safety
/// Call it first thing in a single-threaded process: it forks to detach and goes on running Rust
/// code in the child, which is only sound when no other thread can hold a lock at the fork.
pub unsafe fn main(roots: &Roots, id: &str, wait_attach: bool) -> ! {
    // Detach from the starter: the starter waits for this first process only.
    // SAFETY: single-threaded by this function's contract.
    match unsafe { nix::unistd::fork() } {
        Ok(nix::unistd::ForkResult::Parent { .. }) => unsafe { libc::_exit(0) },
        Ok(nix::unistd::ForkResult::Child) => {}
        Err(_) => unsafe { libc::_exit(1) },
    }
    // Fails only for a process group leader, which a freshly forked child is not.
    let _ = nix::unistd::setsid();
    set_name(c"berth-monitor");
    let sync = take_sync_fd();
    // One monitor per container, held until this process exits; a second one leaves everything
    // (the run directory included) to the first.
    match container::hold_monitor_lock(roots, id) {
        Ok(lock) => std::mem::forget(lock),
        Err(e) => report_and_run(sync, Err(e)),
    }
    let started = prepare_process().and_then(|()| {
        let db = StateDb::open(&roots.root)?;
        let rec = db.container(id)?.ok_or_else(|| anyhow!("no container {id}"))?;
        let launched = launch(roots, &rec)?;
        Monitor::adopt(roots, rec, db, launched, wait_attach)
    });
    if started.is_err() {
        // Whatever failed (the container was removed meanwhile, its root file system is gone),
        // the run directory its starter made for this monitor goes with it: nothing else would
        // remove it once the container's row is gone.
        remove_run_dir(roots, id);
    }
    report_and_run(sync, started)
}

/// Names this process (`ps -C`, `top`): a monitor forked by the launcher would otherwise carry
/// the name of the command that started it.
pub(crate) fn set_name(name: &std::ffi::CStr) {
    // SAFETY: prctl with a NUL-terminated name that outlives the call.
    unsafe {
        libc::prctl(libc::PR_SET_NAME, name.as_ptr() as libc::c_ulong, 0, 0, 0);
    }
}

/// Closes every descriptor above the sync pipe: a monitor lives as long as its container and
/// must not keep open what its starter inherited (a pipe some shell waits on). Async-signal-safe:
/// one system call (Linux 5.9).
pub(crate) fn close_inherited() {
    // SAFETY: close_range takes plain integers.
    unsafe {
        libc::syscall(libc::SYS_close_range, SYNC_FD as u32 + 1, u32::MAX, 0u32);
    }
}

/// The sync pipe, which must not leak into the runtime or the container (its reader waits for EOF).
fn take_sync_fd() -> File {
    // Fails only when fd 3 is not open: then there is no starter to report to.
    let _ = nix::fcntl::fcntl(SYNC_FD, nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC));
    // SAFETY: fd 3 is the sync pipe handed over by the starter (or absent, then writes fail).
    unsafe { File::from_raw_fd(SYNC_FD) }
}

fn report_and_run(mut sync: File, started: anyhow::Result<Monitor>) -> ! {
    let code = match started {
        Ok(mut m) => {
            // A starter that went away does not want the outcome.
            let _ = sync.write_all(b"ok\n");
            drop(sync);
            m.run();
            0
        }
        Err(e) => {
            // A starter that went away does not want the outcome.
            let _ = writeln!(sync, "error: {e:#}");
            1
        }
    };
    std::process::exit(code)
}

/// Becomes the child subreaper (the container's init is reparented here when the runtime
/// exits); SIGCHLD is read from a signalfd, so it is blocked before any child exists (an exit
/// before the signalfd does stays pending); SIGPIPE (a client that went away) and SIGHUP are
/// ignored.
fn prepare_process() -> anyhow::Result<()> {
    // SAFETY: plain prctl with integer arguments.
    unsafe {
        libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
    }
    let mut mask = SigSet::empty();
    mask.add(Signal::SIGCHLD);
    mask.thread_block()?;
    // SAFETY: ignoring SIGPIPE and SIGHUP installs no handler code.
    unsafe {
        nix::sys::signal::signal(Signal::SIGPIPE, nix::sys::signal::SigHandler::SigIgn)?;
        nix::sys::signal::signal(Signal::SIGHUP, nix::sys::signal::SigHandler::SigIgn)?;
    }
    Ok(())
}

/// Removes the container's run directory; idempotent. A client may be creating a file in it at
/// that moment (an `exec` or a health probe writes its process file there), which makes the
/// final `rmdir` fail: then the removal is tried again, so no empty directory stays behind.
pub(crate) fn remove_run_dir(roots: &Roots, id: &str) {
    let dir = roots.run_dir(id);
    for _ in 0..10 {
        if container::paths::remove_tree(&roots.run_dirs(), &dir).is_ok() || !dir.exists() {
            return;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    eprintln!("monitor: cannot remove `{}`", dir.display());
}

enum Output {
    Pipes { stdout: Option<File>, stderr: Option<File>, stdin: Option<File> },
    Tty { master: Option<File> },
}

struct Client {
    stream: UnixStream,
    inbuf: Vec<u8>,
}

struct Monitor {
    roots: Roots,
    id: String,
    db: StateDb,
    runtime: runtime::OciCli,
    config: ContainerConfig,
    pid: i32,
    output: Output,
    log: LogWriter,
    attach: UnixListener,
    clients: Vec<Client>,
    signals: SignalFd,
    /// The project whose supervisor serves this container (made by `up`), and the container's
    /// name: checked every [`client::REVIVE_EVERY`] and when the container exits, a supervisor
    /// found gone is started again.
    supervised: Option<(String, String)>,
    next_check: Instant,
}

impl Monitor {
    /// The event loop: output, clients and child exits, until the container is gone.
    fn run(&mut self) {
        let mut exit: Option<i32> = None;
        let mut exited_at: Option<Instant> = None;
        loop {
            if exit.is_some()
                && (self.outputs_closed() || exited_at.is_some_and(|t| t.elapsed() > Duration::from_secs(2)))
            {
                break;
            }
            let (ready, n_out) = {
                let mut fds: Vec<PollFd> = Vec::new();
                fds.push(PollFd::new(self.signals.as_fd(), PollFlags::POLLIN));
                fds.push(PollFd::new(self.attach.as_fd(), PollFlags::POLLIN));
                let outs: Vec<&File> = match &self.output {
                    Output::Pipes { stdout, stderr, .. } => stdout.iter().chain(stderr.iter()).collect(),
                    Output::Tty { master } => master.iter().collect(),
                };
                let n_out = outs.len();
                for f in &outs {
                    fds.push(PollFd::new(f.as_fd(), PollFlags::POLLIN));
                }
                for c in &self.clients {
                    fds.push(PollFd::new(c.stream.as_fd(), PollFlags::POLLIN));
                }
                let timeout = if exit.is_some() {
                    PollTimeout::from(100u8)
                } else if self.supervised.is_some() {
                    let left = self.next_check.saturating_duration_since(Instant::now()).as_millis();
                    PollTimeout::from(left.min(u16::MAX as u128) as u16)
                } else {
                    PollTimeout::NONE
                };
                match nix::poll::poll(&mut fds, timeout) {
                    Ok(_) => {}
                    Err(nix::errno::Errno::EINTR) => continue,
                    Err(_) => break,
                }
                let ready: Vec<bool> = fds.iter().map(|f| f.revents().is_some_and(|r| !r.is_empty())).collect();
                (ready, n_out)
            };
            if exit.is_none() && self.supervised.is_some() && Instant::now() >= self.next_check {
                self.next_check = Instant::now() + client::REVIVE_EVERY;
                self.check_supervisor("is running");
            }
            if ready[0] {
                while self.signals.read_signal().ok().flatten().is_some() {}
                if let Some(code) = self.reap() {
                    exit = Some(code);
                    exited_at = Some(Instant::now());
                }
            }
            if ready[1] {
                while let Ok((stream, _)) = self.attach.accept() {
                    // A client whose socket cannot be set up fails its first write and is dropped.
                    let _ = stream.set_nonblocking(true);
                    self.clients.push(Client { stream, inbuf: Vec::new() });
                }
            }
            for i in 0..n_out {
                if ready[2 + i] {
                    self.pump_output(i);
                }
            }
            let base = 2 + n_out;
            let n_clients = ready.len() - base;
            let mut gone = Vec::new();
            for i in 0..n_clients {
                if ready[base + i] && !self.pump_client(i) {
                    gone.push(i);
                }
            }
            for i in gone.into_iter().rev() {
                self.clients.remove(i);
            }
        }
        // Whatever is still buffered in the pipes.
        for i in 0..2 {
            self.pump_output(i);
        }
        self.finish(exit);
    }
}
