//! `cp` between a container and the host, both ways, with `docker cp`'s placement rules: copying
//! onto an existing directory puts the source inside it, otherwise the source takes the
//! destination's name.
//!
//! The container side is read or written by a forked child that `chroot`s into the container's
//! root (`/proc/<pid>/root` while it runs — which sees its mounts — else a temporary mount of its
//! rootfs), so symlinks in the container resolve inside it and can never reach host files. The two
//! sides exchange a tar stream over a pipe.

use std::fs::File;
use std::io::{Read, Write};
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
    let (root, _mount) = container_root(roots, &rec)?;
    match (from, to) {
        (CopyEndpoint::Container(src), CopyEndpoint::Host(dst)) => {
            let (r, w) = nix::unistd::pipe()?;
            let src = src.clone();
            let child = in_container(&root, move || pack(&src, File::from(w)))?;
            let result = place(File::from(r), dst);
            finish(child, "read from the container")?;
            result
        }
        (CopyEndpoint::Host(src), CopyEndpoint::Container(dst)) => {
            if !src.exists() {
                bail!("`{}` does not exist", src.display());
            }
            let (r, w) = nix::unistd::pipe()?;
            let dst = dst.clone();
            let child = in_container(&root, move || place(File::from(r), &dst))?;
            let packed = pack(src, File::from(w));
            finish(child, "write into the container")?;
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

/// Runs `f` in a forked child chrooted at `root`.
fn in_container(root: &Path, f: impl FnOnce() -> anyhow::Result<()>) -> anyhow::Result<nix::unistd::Pid> {
    let root_fd = File::open(root).with_context(|| format!("cannot open `{}`", root.display()))?;
    // SAFETY: the CLI is single-threaded when it copies; the child only chroots, copies and exits.
    match unsafe { nix::unistd::fork() }? {
        nix::unistd::ForkResult::Child => {
            use std::os::fd::AsRawFd;
            let ok = nix::unistd::fchdir(root_fd.as_raw_fd()).is_ok()
                && nix::unistd::chroot(".").is_ok()
                && nix::unistd::chdir("/").is_ok();
            let code = if !ok {
                2
            } else {
                match f() {
                    Ok(()) => 0,
                    Err(e) => {
                        eprintln!("error: {e:#}");
                        1
                    }
                }
            };
            // SAFETY: leave without running the parent's destructors.
            unsafe { libc::_exit(code) }
        }
        nix::unistd::ForkResult::Parent { child } => Ok(child),
    }
}

fn finish(child: nix::unistd::Pid, what: &str) -> anyhow::Result<()> {
    match nix::sys::wait::waitpid(child, None)? {
        nix::sys::wait::WaitStatus::Exited(_, 0) => Ok(()),
        s => bail!("cannot {what} ({s:?})"),
    }
}

/// Writes `src` as a tar stream whose top entry is `src`'s file name.
fn pack(src: &Path, out: impl Write) -> anyhow::Result<()> {
    let meta = std::fs::symlink_metadata(src).with_context(|| format!("`{}` does not exist", src.display()))?;
    let name = src.file_name().map(PathBuf::from).unwrap_or_else(|| PathBuf::from("."));
    let mut b = tar::Builder::new(out);
    b.follow_symlinks(false);
    if meta.is_dir() {
        b.append_dir_all(&name, src)?;
    } else {
        b.append_path_with_name(src, &name)?;
    }
    b.into_inner()?.flush()?;
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
