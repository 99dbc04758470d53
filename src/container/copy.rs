//! `cp` between a container and the host, both ways, with `docker cp`'s placement rules: copying
//! onto an existing directory puts the source inside it, otherwise the source takes the
//! destination's name.
//!
//! The container side is read or written by a forked child that `chroot`s into the container's
//! root (`/proc/<pid>/root` while it runs — which sees its mounts — else a temporary mount of its
//! rootfs), so symlinks in the container resolve inside it and can never reach host files. The two
//! sides exchange a tar stream over a pipe; the child's error comes back over a pipe of its own.
//!
//! Only regular files, directories and symbolic links are copied: a FIFO, socket or device, at
//! the top or inside a directory, is refused by name before it is opened (reading a FIFO would
//! wait for a writer, a device would never end).

use std::ffi::OsString;
use std::fs::{File, Metadata};
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context};

use super::{ContainerConfig, Roots};
use crate::state::{ContainerRecord, StateDb, Status};

/// One side of a copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CopyEndpoint {
    /// A host path.
    Host(PathBuf),
    /// A path inside the container.
    Container(PathBuf),
}

/// Copies `from` to `to`; exactly one side must be the container.
pub fn copy(
    roots: &Roots,
    db: &StateDb,
    rec: &ContainerRecord,
    from: &CopyEndpoint,
    to: &CopyEndpoint,
) -> anyhow::Result<()> {
    let rec = super::refresh(roots, db, rec)?;
    match (from, to) {
        (CopyEndpoint::Container(src), CopyEndpoint::Host(dst)) => {
            check_destination(dst)?;
            let (root, _mount) = container_root(roots, &rec)?;
            let (r, w) = nix::unistd::pipe()?;
            let src = src.clone();
            let child = in_container(&root, &[r.as_raw_fd()], move || pack(&src, File::from(w)))?;
            let result = place(File::from(r), dst);
            child.finish("read from the container")?;
            result
        }
        (CopyEndpoint::Host(src), CopyEndpoint::Container(dst)) => {
            let meta = std::fs::symlink_metadata(src).with_context(|| format!("`{}` does not exist", src.display()))?;
            refuse_special(src, &meta)?;
            let (root, _mount) = container_root(roots, &rec)?;
            let (r, w) = nix::unistd::pipe()?;
            let dst = dst.clone();
            let child = in_container(&root, &[w.as_raw_fd()], move || {
                check_destination(&dst)?;
                place(File::from(r), &dst)
            })?;
            let packed = pack(src, File::from(w));
            // The container side's error first: a destination it refused ends the stream early.
            child.finish("write into the container")?;
            packed
        }
        _ => bail!("one side of `cp` must be a container path (`SERVICE:PATH`) and the other a host path"),
    }
}

struct TempMount(PathBuf);

impl Drop for TempMount {
    fn drop(&mut self) {
        let _ = nix::mount::umount2(&self.0, nix::mount::MntFlags::MNT_DETACH);
    }
}

fn container_root(roots: &Roots, rec: &ContainerRecord) -> anyhow::Result<(PathBuf, Option<TempMount>)> {
    if rec.status.is_alive() {
        let pid = rec.pid.ok_or_else(|| anyhow!("container `{}` has no pid", rec.name))?;
        return Ok((PathBuf::from(format!("/proc/{pid}/root")), None));
    }
    if rec.status == Status::Restarting {
        bail!("container `{}` is restarting; try again", rec.name);
    }
    let cfg = ContainerConfig::of(rec)?;
    let dir = roots.container_dir(&rec.id);
    let target = roots.rootfs(&rec.id);
    crate::image::mount_rootfs(&cfg.layers, &dir.join("upper"), &dir.join("work"), &target)?;
    Ok((target.clone(), Some(TempMount(target))))
}

/// The forked child of a copy, and the pipe its error message comes back on.
struct Child {
    pid: nix::unistd::Pid,
    errors: File,
}

impl Child {
    /// Waits for the child: its error message when it failed.
    fn finish(self, what: &str) -> anyhow::Result<()> {
        let mut message = String::new();
        let _ = (&self.errors).read_to_string(&mut message);
        match nix::sys::wait::waitpid(self.pid, None)? {
            nix::sys::wait::WaitStatus::Exited(_, 0) => Ok(()),
            _ if !message.trim().is_empty() => Err(anyhow!(message.trim().to_string())),
            s => bail!("cannot {what} ({s:?})"),
        }
    }
}

/// Runs `f` in a forked child chrooted at `root`; the child first closes `close` (the parent's
/// ends of the pipes it shares with it, so that it sees their end).
fn in_container(root: &Path, close: &[RawFd], f: impl FnOnce() -> anyhow::Result<()>) -> anyhow::Result<Child> {
    let root_fd = File::open(root).with_context(|| format!("cannot open `{}`", root.display()))?;
    let (errors_r, errors_w): (OwnedFd, OwnedFd) = nix::unistd::pipe()?;
    // SAFETY: the CLI is single-threaded when it copies; the child only chroots, copies and exits.
    match unsafe { nix::unistd::fork() }? {
        nix::unistd::ForkResult::Child => {
            // SAFETY: descriptors this process inherited and never uses.
            unsafe {
                libc::close(errors_r.as_raw_fd());
                for fd in close {
                    libc::close(*fd);
                }
            }
            let entered = nix::unistd::fchdir(root_fd.as_raw_fd())
                .and_then(|()| nix::unistd::chroot("."))
                .and_then(|()| nix::unistd::chdir("/"))
                .with_context(|| format!("cannot enter the container's root `{}`", root.display()));
            let code = match entered.and_then(|()| f()) {
                Ok(()) => 0,
                Err(e) => {
                    let _ = File::from(errors_w).write_all(format!("{e:#}").as_bytes());
                    1
                }
            };
            // SAFETY: leave without running the parent's destructors.
            unsafe { libc::_exit(code) }
        }
        nix::unistd::ForkResult::Parent { child } => Ok(Child { pid: child, errors: File::from(errors_r) }),
    }
}

/// The name of the tar stream's top entry for `src` (`.` for `/`: its contents).
fn top_name(src: &Path) -> OsString {
    src.file_name().map(OsString::from).unwrap_or_else(|| ".".into())
}

/// Fails for what `cp` does not copy: FIFOs, sockets and devices.
fn refuse_special(path: &Path, meta: &Metadata) -> anyhow::Result<()> {
    let t = meta.file_type();
    let kind = if t.is_fifo() {
        "a FIFO (named pipe)"
    } else if t.is_socket() {
        "a socket"
    } else if t.is_char_device() {
        "a character device"
    } else if t.is_block_device() {
        "a block device"
    } else {
        return Ok(());
    };
    bail!("`{}` is {kind}: cp copies only regular files, directories and symbolic links", path.display())
}

/// Fails for a destination that `cp` must not replace (a FIFO, socket or device).
fn check_destination(dst: &Path) -> anyhow::Result<()> {
    match std::fs::symlink_metadata(dst) {
        Ok(meta) => refuse_special(dst, &meta),
        Err(_) => Ok(()),
    }
}

/// Writes `src` as a tar stream whose top entry is [`top_name`]: regular files, directories and
/// symbolic links (not followed); anything else fails the copy, before it is opened.
fn pack(src: &Path, out: impl Write) -> anyhow::Result<()> {
    let meta = std::fs::symlink_metadata(src).with_context(|| format!("`{}` does not exist", src.display()))?;
    let mut b = tar::Builder::new(out);
    b.follow_symlinks(false);
    append(&mut b, src, &meta, Path::new(&top_name(src)))?;
    b.into_inner()?.flush()?;
    Ok(())
}

fn append<W: Write>(b: &mut tar::Builder<W>, path: &Path, meta: &Metadata, name: &Path) -> anyhow::Result<()> {
    refuse_special(path, meta)?;
    let t = meta.file_type();
    if t.is_symlink() {
        b.append_path_with_name(path, name).with_context(|| format!("cannot copy `{}`", path.display()))?;
    } else if t.is_dir() {
        b.append_dir(name, path).with_context(|| format!("cannot copy `{}`", path.display()))?;
        let mut entries: Vec<_> = std::fs::read_dir(path)
            .and_then(|d| d.map(|e| e.map(|e| e.file_name())).collect::<Result<_, _>>())
            .with_context(|| format!("cannot read `{}`", path.display()))?;
        entries.sort();
        for entry in entries {
            let child = path.join(&entry);
            let meta =
                std::fs::symlink_metadata(&child).with_context(|| format!("cannot copy `{}`", child.display()))?;
            append(b, &child, &meta, &name.join(&entry))?;
        }
    } else {
        // Checked again on the open file, which a non-blocking open cannot hang on: the path
        // may have been replaced since it was looked at.
        use std::os::unix::fs::OpenOptionsExt;
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_NOFOLLOW)
            .open(path)
            .with_context(|| format!("cannot open `{}`", path.display()))?;
        let opened = file.metadata()?;
        refuse_special(path, &opened)?;
        if !opened.is_file() {
            bail!("`{}` changed while it was copied", path.display());
        }
        b.append_file(name, &mut file).with_context(|| format!("cannot copy `{}`", path.display()))?;
    }
    Ok(())
}

/// Unpacks a tar stream from [`pack`] at `dst` following `docker cp`'s rules.
fn place(input: impl Read, dst: &Path) -> anyhow::Result<()> {
    if dst.is_dir() {
        let mut a = tar::Archive::new(input);
        a.set_preserve_permissions(true);
        a.set_overwrite(true);
        a.unpack(dst)?;
        return Ok(());
    }
    let parent = dst.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    if !parent.is_dir() {
        bail!("`{}` does not exist", parent.display());
    }
    let tmp = tempfile::Builder::new().prefix(".berth-cp-").tempdir_in(parent)?;
    let mut a = tar::Archive::new(input);
    a.set_preserve_permissions(true);
    a.unpack(tmp.path())?;
    let top = std::fs::read_dir(tmp.path())?.next().ok_or_else(|| anyhow!("nothing to copy"))??.path();
    if dst.exists() && !dst.is_dir() {
        std::fs::remove_file(dst)?;
    }
    std::fs::rename(&top, dst)?;
    Ok(())
}
