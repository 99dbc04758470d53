//! The monitor launcher: a small process the CLI forks at its start, before it opens the state
//! database or starts a thread, that forks container monitors on request.
//!
//! A monitor is a long-lived process of its own (it must outlive the command that starts its
//! container). Executing berth again for each one costs an `exec`, the dynamic loader and the
//! command-line parser: CPU time taken from the runtime, which starts the container at the same
//! moment. Forking the CLI itself later is not safe once it has an SQLite connection open (one
//! must never cross a `fork`) or more than one thread. The launcher is forked while neither is
//! true and stays that way: it only receives requests (a container id, and the monitor's log
//! file and sync pipe as descriptors), forks, and lets the child become the monitor exactly as
//! `berth __monitor` would ([`super::main`]). It exits when the CLI closes its end.
//!
//! Where no launcher runs (the supervisor, library callers) or it is gone, the caller executes
//! `berth __monitor` as before.

use std::io::IoSlice;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::{Mutex, OnceLock};

use nix::sys::socket::{
    recvmsg, sendmsg, socketpair, AddressFamily, ControlMessage, ControlMessageOwned, MsgFlags, SockFlag, SockType,
};

use crate::container::Roots;

static LAUNCHER: OnceLock<Mutex<OwnedFd>> = OnceLock::new();

/// Forks the launcher. Call it first thing in a command that may start containers. Does nothing
/// when it cannot fork.
///
/// # Safety
/// The calling process must have one thread and no SQLite connection: the launcher child keeps
/// running Rust code after `fork`, which is only sound when no other thread can hold a lock (the
/// allocator's included) at the moment of the fork.
pub unsafe fn start(roots: &Roots) {
    let Ok((ours, theirs)) = socketpair(AddressFamily::Unix, SockType::SeqPacket, None, SockFlag::SOCK_CLOEXEC) else {
        return;
    };
    // SAFETY: single-threaded by this function's contract; the child runs `serve`, which never
    // returns.
    match unsafe { nix::unistd::fork() } {
        Ok(nix::unistd::ForkResult::Child) => {
            drop(ours);
            serve(roots, theirs)
        }
        Ok(nix::unistd::ForkResult::Parent { .. }) => {
            drop(theirs);
            // Set once: `start` runs once per process.
            let _ = LAUNCHER.set(Mutex::new(ours));
        }
        Err(_) => {}
    }
}

/// Asks the launcher for a monitor of container `id`; false when there is no launcher (or it is
/// gone), and then the caller starts the monitor itself. `log` becomes the monitor's stderr and
/// `sync` its fd 3; the caller closes its own copies.
pub(crate) fn launch(id: &str, wait_attach: bool, log: RawFd, sync: RawFd) -> bool {
    let Some(sock) = LAUNCHER.get() else { return false };
    let Ok(sock) = sock.lock() else { return false };
    let msg = format!("{} {id}", u8::from(wait_attach));
    let fds = [log, sync];
    let cmsg = [ControlMessage::ScmRights(&fds)];
    // MSG_NOSIGNAL: a launcher that died must not take this process with it (SIGPIPE).
    sendmsg::<()>(sock.as_raw_fd(), &[IoSlice::new(msg.as_bytes())], &cmsg, MsgFlags::MSG_NOSIGNAL, None).is_ok()
}

/// The launcher's loop: one request, one monitor, until the CLI goes away.
fn serve(roots: &Roots, sock: OwnedFd) -> ! {
    super::set_name(c"berth-launcher");
    // Hold nothing of the CLI's (no terminal, no pipe a shell waits on, no file): stdio on
    // /dev/null, the socket moved to fd 3, everything else closed.
    // SAFETY: plain descriptor calls in a single-threaded child; the socket's old descriptor is
    // closed by `close_inherited` (or is fd 3 itself), so its owner is forgotten, not dropped.
    let sock = unsafe {
        let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDWR);
        for fd in 0..3 {
            libc::dup2(null, fd);
        }
        libc::dup2(sock.as_raw_fd(), super::SYNC_FD);
        std::mem::forget(sock);
        super::close_inherited();
        OwnedFd::from_raw_fd(super::SYNC_FD)
    };
    let mut buf = [0u8; 512];
    loop {
        let mut space = nix::cmsg_space!([RawFd; 2]);
        let mut iov = [std::io::IoSliceMut::new(&mut buf)];
        let msg = match recvmsg::<()>(sock.as_raw_fd(), &mut iov, Some(&mut space), MsgFlags::MSG_CMSG_CLOEXEC) {
            Ok(m) => m,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => break,
        };
        if msg.bytes == 0 {
            break;
        }
        let mut fds: Vec<OwnedFd> = Vec::new();
        if let Ok(cmsgs) = msg.cmsgs() {
            for c in cmsgs {
                if let ControlMessageOwned::ScmRights(received) = c {
                    // SAFETY: the kernel just installed these descriptors in this process.
                    fds.extend(received.into_iter().map(|fd| unsafe { OwnedFd::from_raw_fd(fd) }));
                }
            }
        }
        let n = msg.bytes;
        let text = String::from_utf8_lossy(&buf[..n]).into_owned();
        let Some((wait, id)) = text.split_once(' ') else { continue };
        let [log, sync] = &fds[..] else { continue };
        // SAFETY: the launcher is single-threaded (it was forked from a single-threaded CLI and
        // starts no thread); the child sets up its descriptors and becomes the monitor, itself
        // single-threaded, as `super::main` requires.
        match unsafe { nix::unistd::fork() } {
            Ok(nix::unistd::ForkResult::Child) => unsafe {
                libc::dup2(log.as_raw_fd(), 2);
                libc::dup2(sync.as_raw_fd(), super::SYNC_FD);
                super::close_inherited();
                super::main(roots, id, wait == "1")
            },
            Ok(nix::unistd::ForkResult::Parent { child }) => {
                drop(fds);
                // The child forks the monitor and exits at once.
                let _ = nix::sys::wait::waitpid(child, None);
            }
            Err(_) => drop(fds),
        }
    }
    // SAFETY: leaving without the CLI's exit handlers (they belong to the CLI).
    unsafe { libc::_exit(0) }
}
