//! Starting the container: the runtime's `run --detach` on the container's stdio ([`launch`]),
//! and the monitor taking over once it succeeded ([`Monitor::adopt`]).

use std::fs::File;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::time::Instant;

use anyhow::Context;
use nix::poll::{PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::SignalFd;

use super::log::LogWriter;
use super::{remove_run_dir, Client, Monitor, Output};
use crate::container::{self, ContainerConfig, Roots};
use crate::image;
use crate::runtime::{self, CreateIo, Runtime};
use crate::state::{ContainerRecord, StateDb};
use crate::supervise::client;

/// The runtime process [`launch`] started, and the container's stdio.
pub(super) struct Launched {
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
        // Already exited (and then reaped here) is fine: only its exit status is lost.
        let _ = self.process.kill();
        let _ = self.process.wait();
        release_failed(roots, id, &self.runtime);
    }
}

/// Mounts the root file system and starts the runtime's `run --detach` with the
/// container's stdio on pipes (or a console socket), without waiting for it.
pub(super) fn launch(roots: &Roots, rec: &ContainerRecord) -> anyhow::Result<Launched> {
    let id = rec.id.as_str();
    let config = rec.config.clone();
    let runtime = runtime::by_name(&rec.runtime, &roots.run)?;
    let run_dir = roots.run_dir(id);
    std::fs::create_dir_all(&run_dir)?;
    // What an earlier monitor (killed part way) may have left, `runc`'s temporary pid file too.
    for f in ["attach.sock", "console.sock", "pid", ".pid"] {
        // Usually absent; one that stays makes the bind or the runtime fail below, with its error.
        let _ = std::fs::remove_file(run_dir.join(f));
    }
    if runtime.root().join(id).exists() {
        runtime.delete(id, true)?;
    }
    let rootfs = roots.rootfs(id);
    if container::is_mount_point(&rootfs) {
        // A stale mount that stays is mounted over: the new one is what the container sees.
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
/// What it cannot remove goes to the monitor's log (`rm` tries again).
fn release_failed(roots: &Roots, id: &str, runtime: &runtime::OciCli) {
    if runtime.root().join(id).exists() {
        if let Err(e) = runtime.delete(id, true) {
            eprintln!("monitor: {e}");
        }
    }
    let rootfs = roots.rootfs(id);
    if let Err(e) = nix::mount::umount2(&rootfs, nix::mount::MntFlags::MNT_DETACH) {
        // Not mounted yet is the usual case of a start that failed early.
        if e != nix::errno::Errno::EINVAL {
            eprintln!("monitor: cannot unmount `{}`: {e}", rootfs.display());
        }
    }
    remove_run_dir(roots, id);
}

impl Monitor {
    /// While the runtime runs, opens what the monitor needs (the attach socket, the log file);
    /// then waits for the runtime and records the start.
    pub(super) fn adopt(
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
        let source = super::forward::Source { name: rec.name.clone(), id: rec.id.clone(), image: rec.image.clone() };
        let log = LogWriter::for_container(&roots.log_file(id), &launched.config, source)?;
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
            supervised: (!rec.oneoff && rec.config.supervise.is_some())
                .then(|| (rec.project.clone(), rec.name.clone())),
            next_check: Instant::now() + client::REVIVE_EVERY,
        })
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
