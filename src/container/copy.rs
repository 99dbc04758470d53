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
//! wait for a writer, a device would never end). The destination is untouched unless the whole
//! copy succeeds: the receiving side unpacks into a temporary directory next to the destination
//! and moves the result into place only once both sides have finished without error.

use std::ffi::OsString;
use std::fs::{File, Metadata};
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context};

use super::Roots;
use crate::state::{ContainerRecord, StateDb, Status};

/// One side of a copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CopyEndpoint {
    /// A host path.
    Host(PathBuf),
    /// A path inside the container.
    Container(PathBuf),
}

/// How `cp` copies (`docker cp`'s flags).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CopyOptions {
    /// `-a`: keep the files' owners (else the copy belongs to the user that writes it, root).
    pub archive: bool,
    /// `-L`: when the source path itself is a symbolic link, copy what it points to.
    pub follow_link: bool,
}

/// Copies `from` to `to`; exactly one side must be the container.
///
/// # Safety
/// The calling process must have one thread: the container side runs in a forked child that
/// goes on running Rust code (allocating), which is only sound when no other thread can hold a
/// lock at the fork.
pub unsafe fn copy(
    roots: &Roots,
    db: &StateDb,
    rec: &ContainerRecord,
    from: &CopyEndpoint,
    to: &CopyEndpoint,
    opts: CopyOptions,
) -> anyhow::Result<()> {
    let rec = super::refresh(roots, db, rec)?;
    match (from, to) {
        (CopyEndpoint::Container(src), CopyEndpoint::Host(dst)) => {
            check_destination(dst)?;
            let (root, _mount) = container_root(roots, &rec)?;
            let (r, w) = nix::unistd::pipe()?;
            let src = src.clone();
            let name = top_name(&src);
            // SAFETY: one thread by this function's contract.
            let child =
                unsafe { in_container(&root, &[r.as_raw_fd()], move || pack(&src, File::from(w), opts.follow_link))? };
            place(File::from(r), dst, &name, opts.archive, || child.finish("read from the container"))
        }
        (CopyEndpoint::Host(src), CopyEndpoint::Container(dst)) => {
            let meta = std::fs::symlink_metadata(src).with_context(|| format!("`{}` does not exist", src.display()))?;
            refuse_special(src, &meta)?;
            let (root, _mount) = container_root(roots, &rec)?;
            let (r, w) = nix::unistd::pipe()?;
            // The host side says on this pipe whether all it sent was read without error.
            let (done_r, done_w) = nix::unistd::pipe()?;
            let (dst, name) = (dst.clone(), top_name(src));
            // SAFETY: one thread by this function's contract.
            let child = unsafe {
                in_container(&root, &[w.as_raw_fd(), done_w.as_raw_fd()], move || {
                    check_destination(&dst)?;
                    place(File::from(r), &dst, &name, opts.archive, || {
                        let mut answer = String::new();
                        File::from(done_r).read_to_string(&mut answer)?;
                        match answer.as_str() {
                            "ok" => Ok(()),
                            _ => bail!("the host side of the copy failed"),
                        }
                    })
                })?
            };
            // A container side that stopped reading (a destination it refused) must come back
            // as an error to report, not as SIGPIPE ending berth (whose default it restores).
            // SAFETY: one thread by this function's contract; the old disposition is restored.
            let before = unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
            let packed = pack(src, File::from(w), opts.follow_link);
            // SAFETY: as above.
            unsafe { libc::signal(libc::SIGPIPE, before) };
            if packed.is_ok() {
                // A container side that stopped reading has failed, and `finish` reports its error.
                let _ = File::from(done_w).write_all(b"ok");
            } else {
                drop(done_w);
            }
            let written = child.finish("write into the container");
            match packed {
                // The container side stopped reading (a destination it refused): its error says why.
                Err(e) if broken_pipe(&e) => written.and(Err(e)),
                Err(e) => Err(e),
                Ok(()) => written,
            }
        }
        _ => bail!("one side of `cp` must be a container path (`SERVICE:PATH`) and the other a host path"),
    }
}

/// Whether `e` comes from writing to a pipe nobody reads any more.
fn broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| c.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe))
}

pub(super) struct TempMount(PathBuf);

impl Drop for TempMount {
    fn drop(&mut self) {
        // One that stays is unmounted by the container's next start, or by `rm`, which reports
        // a failure.
        let _ = nix::mount::umount2(&self.0, nix::mount::MntFlags::MNT_DETACH);
    }
}

pub(super) fn container_root(roots: &Roots, rec: &ContainerRecord) -> anyhow::Result<(PathBuf, Option<TempMount>)> {
    if rec.status.is_alive() {
        let pid = rec.pid.ok_or_else(|| anyhow!("container `{}` has no pid", rec.name))?;
        return Ok((PathBuf::from(format!("/proc/{pid}/root")), None));
    }
    if rec.status == Status::Restarting {
        bail!("container `{}` is restarting; try again", rec.name);
    }
    let cfg = &rec.config;
    let dir = roots.container_dir(&rec.id);
    let target = roots.rootfs(&rec.id);
    crate::image::mount_rootfs(&cfg.layers, &dir.join("upper"), &dir.join("work"), &target)?;
    Ok((target.clone(), Some(TempMount(target))))
}

/// The forked child of a copy, and the pipe its error message comes back on.
pub(super) struct Child {
    pid: nix::unistd::Pid,
    errors: File,
}

impl Child {
    /// Waits for the child: its error message when it failed.
    pub(super) fn finish(self, what: &str) -> anyhow::Result<()> {
        let mut message = String::new();
        // An unreadable message leaves the exit status to report, which follows.
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
///
/// # Safety
/// The calling process must have one thread: the child runs `f` (which allocates) after `fork`,
/// which is only sound when no other thread can hold a lock (the allocator's among them).
pub(super) unsafe fn in_container(
    root: &Path,
    close: &[RawFd],
    f: impl FnOnce() -> anyhow::Result<()>,
) -> anyhow::Result<Child> {
    let root_fd = File::open(root).with_context(|| format!("cannot open `{}`", root.display()))?;
    let (errors_r, errors_w): (OwnedFd, OwnedFd) = nix::unistd::pipe()?;
    // SAFETY: the caller guarantees one thread (see above); the child only chroots, copies and exits.
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
                    // The parent reads the exit status too; the message is extra.
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
fn pack(src: &Path, out: impl Write, follow_link: bool) -> anyhow::Result<()> {
    let meta = std::fs::symlink_metadata(src).with_context(|| format!("`{}` does not exist", src.display()))?;
    let mut b = tar::Builder::new(out);
    b.follow_symlinks(false);
    // `-L`: the source itself, when a link, stands for its target (resolved where `pack` runs:
    // chrooted in the container for its side); links inside are copied as links.
    let (path, meta) = if follow_link && meta.file_type().is_symlink() {
        let target = std::fs::canonicalize(src).with_context(|| format!("`{}` points nowhere", src.display()))?;
        let meta = std::fs::symlink_metadata(&target)?;
        (target, meta)
    } else {
        (src.to_path_buf(), meta)
    };
    append(&mut b, &path, &meta, Path::new(&top_name(src)))?;
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

/// Unpacks a tar stream from [`pack`] (top entry `name`) at `dst` following `docker cp`'s rules,
/// once `commit` (the sending side's outcome) says the stream is whole. Until then everything
/// sits in a temporary directory beside the destination (inside it when it is a directory),
/// which goes on failure.
fn place(
    mut input: impl Read,
    dst: &Path,
    name: &OsString,
    archive: bool,
    commit: impl FnOnce() -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let into = dst.is_dir();
    let dir = if into {
        dst.to_path_buf()
    } else {
        let parent = dst.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        if !parent.is_dir() {
            bail!("`{}` does not exist", parent.display());
        }
        parent.to_path_buf()
    };
    let staging = tempfile::Builder::new()
        .prefix(".berth-cp-")
        .tempdir_in(&dir)
        .with_context(|| format!("cannot write in `{}`", dir.display()))?;
    let unpacked = {
        let mut a = tar::Archive::new(&mut input);
        a.set_preserve_permissions(true);
        a.set_preserve_ownerships(archive);
        a.unpack(staging.path())
    };
    if unpacked.is_ok() {
        // The end of the stream (the archive's padding) is the sender's to write: read it all,
        // so the sender never finds the pipe closed.
        let _ = std::io::copy(&mut input, &mut std::io::sink());
    }
    // A receiver that failed closes the pipe, so the sender stops too.
    drop(input);
    let committed = commit();
    unpacked.context("cannot unpack the copy")?;
    committed?;
    let top = staging.path().join(name);
    if name == "." {
        // The contents of a root directory: each entry takes its place.
        let entries: Vec<PathBuf> =
            std::fs::read_dir(staging.path())?.map(|e| e.map(|e| e.path())).collect::<Result<_, _>>()?;
        let target = |e: &Path| dst.join(e.file_name().unwrap_or_default());
        if !into {
            std::fs::create_dir(dst).with_context(|| format!("cannot create `{}`", dst.display()))?;
        }
        for e in &entries {
            check_merge(e, &target(e))?;
        }
        for e in &entries {
            merge(e, &target(e))?;
        }
        return Ok(());
    }
    if std::fs::symlink_metadata(&top).is_err() {
        bail!("nothing to copy");
    }
    if into {
        let target = dst.join(name);
        check_merge(&top, &target)?;
        return merge(&top, &target);
    }
    if std::fs::symlink_metadata(dst).is_ok_and(|m| !m.is_dir()) && is_dir(&top) {
        // `docker cp` replaces a file by a directory of the same name.
        std::fs::remove_file(dst).with_context(|| format!("cannot replace `{}`", dst.display()))?;
    }
    std::fs::rename(&top, dst).with_context(|| format!("cannot create `{}`", dst.display()))
}

/// Whether [`merge`] of `src` onto `target` can go through: a directory only merges into a
/// directory, and only a non-directory replaces a non-directory.
fn check_merge(src: &Path, target: &Path) -> anyhow::Result<()> {
    let Ok(t) = std::fs::symlink_metadata(target) else { return Ok(()) };
    let s = std::fs::symlink_metadata(src)?;
    match (s.is_dir(), t.is_dir()) {
        (true, true) => {
            for e in std::fs::read_dir(src)? {
                let e = e?;
                check_merge(&e.path(), &target.join(e.file_name()))?;
            }
            Ok(())
        }
        (false, false) => Ok(()),
        (true, false) => bail!("cannot overwrite non-directory `{}` with a directory", target.display()),
        (false, true) => bail!("cannot overwrite directory `{}` with a non-directory", target.display()),
    }
}

/// Whether `path` is a directory (not a symbolic link to one).
fn is_dir(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok_and(|m| m.is_dir())
}

/// Moves `src` to `target`; a directory onto an existing one moves its entries (and mode) over.
fn merge(src: &Path, target: &Path) -> anyhow::Result<()> {
    let both_dirs = is_dir(target) && is_dir(src);
    if !both_dirs {
        return std::fs::rename(src, target).with_context(|| format!("cannot create `{}`", target.display()));
    }
    for e in std::fs::read_dir(src)? {
        let e = e?;
        merge(&e.path(), &target.join(e.file_name()))?;
    }
    std::fs::set_permissions(target, std::fs::metadata(src)?.permissions())?;
    Ok(())
}
