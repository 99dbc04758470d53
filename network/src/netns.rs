//! Network namespaces that outlive processes: created on a dedicated thread and bind-mounted onto a
//! file, so the OCI runtime can be handed the file's path (`{"type": "network", "path": ...}`).
//!
//! Namespaces belong to threads, not processes: `unshare(CLONE_NEWNET)` and `setns` change only
//! the calling thread. Everything here therefore runs on a fresh thread that is thrown away
//! afterwards, so no pooled thread (tokio's or the caller's) is ever left in the wrong namespace.
//! A netlink socket opened on such a thread after `setns` talks to that namespace.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::{setns, unshare, CloneFlags};

use crate::error::{Error, Result};

/// Creates a new network namespace and bind-mounts it onto `path` (its parent must exist).
pub fn create(path: &Path) -> Result<()> {
    let path = path.to_path_buf();
    on_thread(move || {
        OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o444)
            .open(&path)
            .map_err(|e| Error::io("create network namespace file", &path, e))?;
        let undo = |e: nix::Error, op| {
            let removed = std::fs::remove_file(&path).map_err(|u| Error::io("remove", &path, u));
            Error::io(op, &path, e.into()).undone(|| format!("file `{}`", path.display()), removed)
        };
        unshare(CloneFlags::CLONE_NEWNET).map_err(|e| undo(e, "unshare a network namespace for"))?;
        mount(Some("/proc/thread-self/ns/net"), &path, None::<&str>, MsFlags::MS_BIND, None::<&str>)
            .map_err(|e| undo(e, "bind-mount a network namespace onto"))?;
        Ok(())
    })?
}

/// Whether `path` is a network namespace (an nsfs bind mount), not merely the empty file one is
/// mounted on (which is all a process killed between creating and mounting it leaves).
pub fn is_namespace(path: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    const NSFS_MAGIC: i64 = 0x6e73_6673;
    let Ok(c) = std::ffi::CString::new(path.as_os_str().as_bytes()) else { return false };
    // SAFETY: statfs fills a zeroed struct from a NUL-terminated path.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    (unsafe { libc::statfs(c.as_ptr(), &mut st) } == 0) && st.f_type as i64 == NSFS_MAGIC
}

/// Unmounts and deletes a namespace file; a missing file is not an error. The namespace itself
/// goes away once no process and no other mount holds it.
pub fn remove(path: &Path) -> Result<()> {
    if !path.exists() {
        return Ok(());
    }
    match umount2(path, MntFlags::MNT_DETACH) {
        Ok(()) | Err(nix::Error::EINVAL) | Err(nix::Error::ENOENT) => {}
        Err(e) => return Err(Error::io("unmount network namespace", path, e.into())),
    }
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Error::io("remove network namespace file", path, e)),
        _ => Ok(()),
    }
}

/// Runs `f` on a fresh thread inside the namespace at `path` (the host's when `None`).
pub fn run_in<T: Send>(path: Option<&Path>, f: impl FnOnce() -> T + Send) -> Result<T> {
    let ns = match path {
        Some(p) => Some(File::open(p).map_err(|e| Error::io("open network namespace", p, e))?),
        None => None,
    };
    let path = path.map(Path::to_path_buf);
    on_thread(move || {
        if let Some(ns) = ns {
            let p = path.expect("path with file");
            setns(ns, CloneFlags::CLONE_NEWNET).map_err(|e| Error::io("enter network namespace", &p, e.into()))?;
        }
        Ok(f())
    })?
}

fn on_thread<T: Send>(f: impl FnOnce() -> T + Send) -> Result<T> {
    std::thread::scope(|s| s.spawn(f).join())
        .map_err(|_| Error::io("run a thread for", "network namespace", std::io::Error::other("thread panicked")))
}
