//! `export`: a container's own file system (its image's layers and what it changed, without
//! volumes, binds or the kernel's file systems mounted over it) as a tar stream, as `docker
//! export` writes it. A forked child chrooted at the container's root writes the archive, so
//! symbolic links resolve inside the container.

use std::fs::{File, Metadata};
use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use anyhow::Context;

use super::copy::{container_root, in_container};
use super::Roots;
use crate::state::{ContainerRecord, StateDb};

/// Writes container `rec`'s file system to `out` as a tar archive. Special files (devices,
/// FIFOs, sockets) are left out, as are other file systems mounted inside it.
///
/// # Safety
/// The calling process must have one thread: the container side runs in a forked child that
/// goes on running Rust code (allocating), which is only sound when no other thread can hold a
/// lock at the fork.
pub unsafe fn export(roots: &Roots, db: &StateDb, rec: &ContainerRecord, mut out: impl Write) -> anyhow::Result<()> {
    let rec = super::refresh(roots, db, rec)?;
    let (root, _mount) = container_root(roots, &rec)?;
    let (r, w) = nix::unistd::pipe()?;
    // SAFETY: one thread by this function's contract.
    let child = unsafe { in_container(&root, &[r.as_raw_fd()], move || write_tree(File::from(w)))? };
    let copied = std::io::copy(&mut File::from(r), &mut out).context("cannot write the archive");
    child.finish("read the container's file system")?;
    copied?;
    out.flush()?;
    Ok(())
}

fn write_tree(out: File) -> anyhow::Result<()> {
    let mut b = tar::Builder::new(out);
    b.follow_symlinks(false);
    let root = std::fs::symlink_metadata("/")?;
    walk(&mut b, Path::new("/"), root.dev())?;
    b.into_inner()?.flush()?;
    Ok(())
}

fn walk(b: &mut tar::Builder<File>, dir: &Path, dev: u64) -> anyhow::Result<()> {
    let mut names: Vec<_> = std::fs::read_dir(dir)?.filter_map(|e| e.ok().map(|e| e.file_name())).collect();
    names.sort();
    for name in names {
        let path = dir.join(&name);
        let Ok(meta) = std::fs::symlink_metadata(&path) else { continue };
        let rel = path.strip_prefix("/").unwrap_or(&path);
        if meta.is_dir() {
            b.append_dir(rel, &path).with_context(|| format!("cannot export `{}`", path.display()))?;
            // A mount point stays as an empty directory; what is mounted on it is not the
            // container's own (proc, sys, volumes, secrets).
            if meta.dev() == dev {
                walk(b, &path, dev)?;
            }
        } else if is_plain(&meta) && meta.dev() == dev {
            if meta.file_type().is_symlink() {
                b.append_path_with_name(&path, rel)?;
            } else {
                use std::os::unix::fs::OpenOptionsExt;
                let Ok(mut f) = std::fs::OpenOptions::new()
                    .read(true)
                    .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
                    .open(&path)
                else {
                    continue;
                };
                b.append_file(rel, &mut f).with_context(|| format!("cannot export `{}`", path.display()))?;
            }
        }
    }
    Ok(())
}

fn is_plain(meta: &Metadata) -> bool {
    let t = meta.file_type();
    t.is_file() || t.is_symlink()
}
