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
pub mod launcher;
pub mod log;

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context};
use nix::poll::{PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::SignalFd;
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use self::log::{LogWriter, Stream};
use crate::container::{self, ContainerConfig, Roots};
use crate::image;
use crate::runtime::{self, CreateIo, Runtime};
use crate::state::{ContainerRecord, ExitRecord, StateDb};
use crate::supervise::client;

/// The fd on which the monitor reports `ok` or `error: ...` to its starter.
pub const SYNC_FD: i32 = 3;

/// Entry point of `berth __monitor ID`, and of a monitor forked by the [`launcher`]: detaches,
/// starts the container and watches it; never returns. Its stdin and stdout are `/dev/null`, its
/// stderr the monitor's log, fd 3 the pipe its starter reads the outcome from.
pub fn main(roots: &Roots, id: &str, wait_attach: bool) -> ! {
    // Detach from the starter: the starter waits for this first process only.
    // SAFETY: called first thing in a single-threaded process.
    match unsafe { nix::unistd::fork() } {
        Ok(nix::unistd::ForkResult::Parent { .. }) => unsafe { libc::_exit(0) },
        Ok(nix::unistd::ForkResult::Child) => {}
        Err(_) => unsafe { libc::_exit(1) },
    }
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
    let _ = nix::fcntl::fcntl(SYNC_FD, nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC));
    // SAFETY: fd 3 is the sync pipe handed over by the starter (or absent, then writes fail).
    unsafe { File::from_raw_fd(SYNC_FD) }
}

fn report_and_run(mut sync: File, started: anyhow::Result<Monitor>) -> ! {
    let code = match started {
        Ok(mut m) => {
            let _ = sync.write_all(b"ok\n");
            drop(sync);
            m.run();
            0
        }
        Err(e) => {
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

/// The runtime process [`launch`] started, and the container's stdio.
struct Launched {
    runtime: runtime::OciCli,
    config: ContainerConfig,
    process: std::process::Child,
    /// Taken by the monitor once the runtime succeeded.
    io: Option<LaunchedIo>,
}

enum LaunchedIo {
    Pipes { stdout: OwnedFd, stderr: OwnedFd, stdin: Option<OwnedFd> },
    Console { listener: UnixListener },
}

impl Launched {
    /// Undoes [`launch`] when the monitor cannot go on (a runtime process already reaped is not
    /// signalled).
    fn abandon(&mut self, roots: &Roots, id: &str) {
        let _ = self.process.kill();
        let _ = self.process.wait();
        release_failed(roots, id, &self.runtime);
    }
}

/// Mounts the root file system and starts the runtime's `run --detach` with the
/// container's stdio on pipes (or a console socket), without waiting for it.
fn launch(roots: &Roots, rec: &ContainerRecord) -> anyhow::Result<Launched> {
    let id = rec.id.as_str();
    let config = ContainerConfig::of(rec)?;
    let runtime = runtime::by_name(&rec.runtime, &roots.run)?;
    let run_dir = roots.run_dir(id);
    std::fs::create_dir_all(&run_dir)?;
    // What an earlier monitor (killed part way) may have left, `runc`'s temporary pid file too.
    for f in ["attach.sock", "console.sock", "pid", ".pid"] {
        let _ = std::fs::remove_file(run_dir.join(f));
    }
    if runtime.root().join(id).exists() {
        runtime.delete(id, true)?;
    }
    let rootfs = roots.rootfs(id);
    if container::is_mount_point(&rootfs) {
        let _ = nix::mount::umount2(&rootfs, nix::mount::MntFlags::MNT_DETACH);
    }
    let dir = roots.container_dir(id);
    // A `run --rm` container's writable layer goes with it: nothing to flush at unmount.
    let mount = if config.auto_remove { image::mount_rootfs_volatile } else { image::mount_rootfs };
    mount(&config.layers, &dir.join("upper"), &dir.join("work"), &rootfs)
        .with_context(|| format!("cannot mount the root file system of `{}`", rec.name))?;
    let started = (|| -> anyhow::Result<(std::process::Child, LaunchedIo)> {
        let pid_file = run_dir.join("pid");
        if config.tty {
            let socket = run_dir.join("console.sock");
            let listener = UnixListener::bind(&socket)?;
            let process = runtime.spawn_run(id, &roots.bundle(id), &pid_file, CreateIo::Console { socket })?;
            return Ok((process, LaunchedIo::Console { listener }));
        }
        let (out_r, out_w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
        let (err_r, err_w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
        let (stdin_child, stdin_ours) = if config.stdin_open {
            let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
            (Some(r), Some(w))
        } else {
            (None, None)
        };
        let io = CreateIo::Pipes { stdin: stdin_child, stdout: out_w, stderr: err_w };
        let process = runtime.spawn_run(id, &roots.bundle(id), &pid_file, io)?;
        Ok((process, LaunchedIo::Pipes { stdout: out_r, stderr: err_r, stdin: stdin_ours }))
    })();
    match started {
        Ok((process, io)) => Ok(Launched { runtime, config, process, io: Some(io) }),
        Err(e) => {
            release_failed(roots, id, &runtime);
            Err(e)
        }
    }
}

/// Removes what a start that failed left: the runtime's container, the mount, the run directory.
fn release_failed(roots: &Roots, id: &str, runtime: &runtime::OciCli) {
    let _ = runtime.delete(id, true);
    let _ = nix::mount::umount2(&roots.rootfs(id), nix::mount::MntFlags::MNT_DETACH);
    remove_run_dir(roots, id);
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
    /// While the runtime runs, opens what the monitor needs (the attach socket, the log file);
    /// then waits for the runtime and records the start.
    fn adopt(
        roots: &Roots,
        rec: ContainerRecord,
        db: StateDb,
        mut launched: Launched,
        wait_attach: bool,
    ) -> anyhow::Result<Monitor> {
        Self::adopt_inner(roots, &rec, db, &mut launched, wait_attach).inspect_err(|_| launched.abandon(roots, &rec.id))
    }

    fn adopt_inner(
        roots: &Roots,
        rec: &ContainerRecord,
        db: StateDb,
        launched: &mut Launched,
        wait_attach: bool,
    ) -> anyhow::Result<Monitor> {
        let mut mask = SigSet::empty();
        mask.add(Signal::SIGCHLD);
        let signals = SignalFd::with_flags(
            &mask,
            nix::sys::signalfd::SfdFlags::SFD_CLOEXEC | nix::sys::signalfd::SfdFlags::SFD_NONBLOCK,
        )?;
        let id = rec.id.as_str();
        let run_dir = roots.run_dir(id);
        let attach = UnixListener::bind(run_dir.join("attach.sock"))?;
        std::fs::set_permissions(run_dir.join("attach.sock"), std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
        let log = LogWriter::for_container(&roots.log_file(id), &launched.config)?;
        let pid_file = run_dir.join("pid");
        let status = launched.process.wait()?;
        launched.runtime.run_finished(id, &pid_file, status)?;
        let output = match launched.io.take() {
            Some(LaunchedIo::Console { listener }) => {
                Output::Tty { master: Some(File::from(receive_console(&listener)?)) }
            }
            Some(LaunchedIo::Pipes { stdout, stderr, stdin }) => Output::Pipes {
                stdout: Some(File::from(stdout)),
                stderr: Some(File::from(stderr)),
                stdin: stdin.map(File::from),
            },
            None => anyhow::bail!("the container's stdio was already taken"),
        };
        let pid: i32 = std::fs::read_to_string(&pid_file)?.trim().parse().context("runtime pid file")?;
        db.record_start(id, pid, std::process::id() as i32)?;
        if let Some(rec) = db.container(id)? {
            container::record_event(&db, &rec, "start", &[]);
        }
        let mut clients = Vec::new();
        if wait_attach {
            // The container runs, but nothing of its output has been read yet (the pipe or the
            // terminal holds it; a container that fills it waits): the client that asked to
            // attach sees all of it. It connected while the runtime ran, so this rarely waits.
            let mut fds = [PollFd::new(attach.as_fd(), PollFlags::POLLIN)];
            if nix::poll::poll(&mut fds, PollTimeout::from(10_000u16))? > 0 {
                let (stream, _) = attach.accept()?;
                clients.push(Client { stream, inbuf: Vec::new() });
            }
        }
        attach.set_nonblocking(true)?;
        for c in &clients {
            c.stream.set_nonblocking(true)?;
        }
        Ok(Monitor {
            roots: roots.clone(),
            id: id.into(),
            db,
            runtime: launched.runtime.clone(),
            config: launched.config.clone(),
            pid,
            output,
            log,
            attach,
            clients,
            signals,
            supervised: (!rec.oneoff && rec.config.get(crate::supervise::spec::CONFIG_KEY).is_some())
                .then(|| (rec.project.clone(), rec.name.clone())),
            next_check: Instant::now() + client::REVIVE_EVERY,
        })
    }

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

    fn outputs_closed(&self) -> bool {
        match &self.output {
            Output::Pipes { stdout, stderr, .. } => stdout.is_none() && stderr.is_none(),
            Output::Tty { master } => master.is_none(),
        }
    }

    /// Reaps children; returns the container's exit code when its init was among them.
    fn reap(&mut self) -> Option<i32> {
        let mut code = None;
        loop {
            match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(pid, c)) if pid.as_raw() == self.pid => code = Some(c),
                Ok(WaitStatus::Signaled(pid, sig, _)) if pid.as_raw() == self.pid => code = Some(128 + sig as i32),
                Ok(WaitStatus::StillAlive) | Err(_) => break,
                Ok(_) => {}
            }
        }
        code
    }

    /// Reads what output `i` has (0: stdout or the terminal, 1: stderr) and passes it on.
    fn pump_output(&mut self, i: usize) {
        let (file, stream) = match &mut self.output {
            Output::Pipes { stdout, stderr, .. } => {
                let alive: Vec<(&mut Option<File>, Stream)> = [(stdout, Stream::Stdout), (stderr, Stream::Stderr)]
                    .into_iter()
                    .filter(|(f, _)| f.is_some())
                    .collect();
                match alive.into_iter().nth(i) {
                    Some(x) => x,
                    None => return,
                }
            }
            Output::Tty { master } if i == 0 && master.is_some() => (master, Stream::Stdout),
            Output::Tty { .. } => return,
        };
        let Some(f) = file.as_mut() else { return };
        let _ = nix::fcntl::fcntl(f.as_raw_fd(), nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK));
        let mut buf = [0u8; 32 * 1024];
        match f.read(&mut buf) {
            Ok(0) => *file = None,
            Ok(n) => {
                let data = &buf[..n];
                let _ = self.log.write(stream, data);
                let kind = if stream == Stream::Stdout { attach::STDOUT } else { attach::STDERR };
                self.broadcast(kind, data);
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            // A terminal whose slave side closed reads EIO.
            Err(_) => *file = None,
        }
    }

    fn broadcast(&mut self, kind: u8, data: &[u8]) {
        self.clients.retain_mut(|c| {
            let _ = c.stream.set_nonblocking(false);
            let _ = c.stream.set_write_timeout(Some(Duration::from_secs(5)));
            let ok = attach::write_frame(&mut c.stream, kind, data).is_ok();
            let _ = c.stream.set_nonblocking(true);
            ok
        });
    }

    /// Handles input from client `i`; false when it went away.
    fn pump_client(&mut self, i: usize) -> bool {
        let mut buf = [0u8; 32 * 1024];
        let c = &mut self.clients[i];
        match c.stream.read(&mut buf) {
            Ok(0) => return false,
            Ok(n) => c.inbuf.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return true,
            Err(_) => return false,
        }
        let frames = attach::take_frames(&mut c.inbuf);
        for (kind, payload) in frames {
            match (kind, &mut self.output) {
                (attach::STDIN, Output::Pipes { stdin: Some(w), .. }) => {
                    let _ = w.write_all(&payload);
                }
                (attach::STDIN, Output::Tty { master: Some(m) }) => {
                    let _ = nix::fcntl::fcntl(m.as_raw_fd(), nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::empty()));
                    let _ = m.write_all(&payload);
                }
                (attach::STDIN_CLOSE, Output::Pipes { stdin, .. }) => *stdin = None,
                (attach::RESIZE, Output::Tty { master: Some(m) }) if payload.len() == 4 => {
                    let ws = libc::winsize {
                        ws_row: u16::from_be_bytes([payload[0], payload[1]]),
                        ws_col: u16::from_be_bytes([payload[2], payload[3]]),
                        ws_xpixel: 0,
                        ws_ypixel: 0,
                    };
                    // SAFETY: TIOCSWINSZ with a valid winsize on a pty master.
                    unsafe {
                        libc::ioctl(m.as_raw_fd(), libc::TIOCSWINSZ, &ws);
                    }
                }
                _ => {}
            }
        }
        true
    }

    /// Records the exit and cleans up after the container.
    fn finish(&mut self, exit: Option<i32>) {
        let _ = self.log.flush();
        // Read before the runtime's delete removes the cgroup.
        let oom = container::host_oom_killed(&self.config.cgroups_path);
        let code = exit.unwrap_or(-1);
        if self.config.auto_remove {
            // `run --rm`: nothing will start this container again, so its client may go as soon as
            // the exit is recorded; the removal follows. Should this process die in between, the
            // row (exited) is still there and `rm` finishes the job.
            self.record(exit, oom);
            self.broadcast(attach::EXIT, &code.to_be_bytes());
            self.clients.clear();
            self.release();
            // With what the project side made for it: its network namespace and leases, secrets,
            // volumes held and anonymous volumes (a failure leaves the row for `rm` or `down`).
            if let Ok(Some(rec)) = self.db.container(&self.id) {
                if let Err(e) = crate::stack::engine::remove_exited(&self.roots, &self.db, &rec) {
                    eprintln!("monitor: {e:#}");
                }
            }
            return;
        }
        // Everything of this run is gone before the exit is recorded: a `start` may follow at once.
        self.release();
        self.record(exit, oom);
        self.broadcast(attach::EXIT, &code.to_be_bytes());
        self.clients.clear();
        // Its restart policy needs a supervisor: one killed meanwhile is started again.
        self.check_supervisor("exited");
    }

    /// Deletes the runtime's container, unmounts the rootfs and removes the run directory.
    fn release(&mut self) {
        // The init is gone, so a plain delete does; force only if the runtime disagrees.
        if self.runtime.delete(&self.id, false).is_err() {
            if let Err(e) = self.runtime.delete(&self.id, true) {
                eprintln!("monitor: {e}");
            }
        }
        let rootfs = self.roots.rootfs(&self.id);
        if nix::mount::umount2(&rootfs, nix::mount::MntFlags::empty()).is_err() {
            let _ = nix::mount::umount2(&rootfs, nix::mount::MntFlags::MNT_DETACH);
        }
        remove_run_dir(&self.roots, &self.id);
    }

    /// Writes the exit code and the `oom`/`die` events.
    fn record(&mut self, exit: Option<i32>, oom: bool) {
        let _ = self.db.record_exit(&self.id, ExitRecord { code: exit, oom_killed: oom });
        if let Ok(Some(rec)) = self.db.container(&self.id) {
            if oom {
                container::record_event(&self.db, &rec, "oom", &[]);
            }
            container::record_event(&self.db, &rec, "die", &[("exitCode", exit.unwrap_or(-1).into())]);
        }
    }

    /// Starts the project's supervisor when none runs (this container's names, ports, health
    /// check and restart policy are served by it). Light: a lock probe, and a process started
    /// without waiting for it (it is reaped with the other children).
    fn check_supervisor(&self, what: &str) {
        let Some((project, name)) = &self.supervised else { return };
        // Not while a user stops the container (`stop`, `down`): nothing is left to serve then.
        if client::liveness(&self.roots, project) == client::Liveness::Absent
            && !self.db.supervision(&self.id).is_ok_and(|s| s.stop_requested)
        {
            let why = format!("container {name} {what} and project {project:?} has no supervisor");
            client::revive(&self.roots, project, &why);
        }
    }
}

/// Accepts the runtime's connection on the console socket and receives the pty master (SCM_RIGHTS).
fn receive_console(listener: &UnixListener) -> anyhow::Result<OwnedFd> {
    use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
    let mut fds = [PollFd::new(listener.as_fd(), PollFlags::POLLIN)];
    if nix::poll::poll(&mut fds, PollTimeout::from(10_000u16))? == 0 {
        anyhow::bail!("the runtime did not send the terminal");
    }
    let (stream, _) = listener.accept()?;
    let mut buf = [0u8; 4096];
    let mut iov = [std::io::IoSliceMut::new(&mut buf)];
    let mut cmsg = nix::cmsg_space!([std::os::fd::RawFd; 1]);
    let msg = recvmsg::<()>(stream.as_raw_fd(), &mut iov, Some(&mut cmsg), MsgFlags::MSG_CMSG_CLOEXEC)?;
    for c in msg.cmsgs()? {
        if let ControlMessageOwned::ScmRights(fds) = c {
            if let Some(fd) = fds.first() {
                // SAFETY: the kernel just gave us this descriptor.
                return Ok(unsafe { OwnedFd::from_raw_fd(*fd) });
            }
        }
    }
    anyhow::bail!("the runtime sent no terminal descriptor")
}
