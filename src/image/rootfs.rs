//! A container's root file system: an overlayfs mount of the image's layer directories (read-only
//! lower dirs) plus the container's own upper and work directories.
//!
//! overlayfs (Documentation/filesystems/overlayfs.rst): `lowerdir=top:...:bottom` lists lower
//! layers top first; whiteouts are character devices 0/0 and opaque directories carry
//! `trusted.overlay.opaque=y`, which is exactly how layers are unpacked here. `upperdir` and
//! `workdir` must be empty directories on the same file system. The mount options string is limited
//! to one page: deep images are mounted with lower dirs named relative to the layer directory.

use std::path::{Path, PathBuf};

use nix::mount::{mount, umount2, MntFlags, MsFlags};

use super::{ImageError, Result};

/// Mounts `layers` (bottom first, as [`super::ImageStore::layer_dirs`] returns them) with `upper`
/// and `work` (created if missing) on `target` (created if missing).
pub fn mount_rootfs(layers: &[PathBuf], upper: &Path, work: &Path, target: &Path) -> Result<()> {
    mount_overlay(layers, upper, work, target, false)
}

/// [`mount_rootfs`] with overlayfs' `volatile` option, for a writable layer that is thrown away
/// after one run (`run --rm`): neither unmount nor `syncfs` then flush the upper file system.
/// Kernels before 5.10 lack the option and get a plain mount. overlayfs leaves
/// `<work>/incompat/volatile` behind and refuses to mount over it again; it is removed first.
pub fn mount_rootfs_volatile(layers: &[PathBuf], upper: &Path, work: &Path, target: &Path) -> Result<()> {
    // Usually absent; one that stays makes the mount fail with its error.
    let _ = std::fs::remove_dir_all(work.join("incompat"));
    // Any failure is retried without the option: the plain mount's error is the one to report.
    mount_overlay(layers, upper, work, target, true).or_else(|_| mount_rootfs(layers, upper, work, target))
}

fn mount_overlay(layers: &[PathBuf], upper: &Path, work: &Path, target: &Path, volatile: bool) -> Result<()> {
    if layers.is_empty() {
        return Err(ImageError::InvalidContent {
            what: "rootfs".into(),
            detail: "an image needs at least one layer".into(),
        });
    }
    if !upper.exists() {
        // The upper directory's mode is the container's `/`: open, as an image's root is.
        std::fs::create_dir_all(upper).map_err(ImageError::io("create directory", upper))?;
        std::fs::set_permissions(upper, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .map_err(ImageError::io("chmod", upper))?;
    }
    for d in [work, target] {
        std::fs::create_dir_all(d).map_err(ImageError::io("create directory", d))?;
    }
    let names: Vec<&str> = layers.iter().rev().map(|l| option_path(l)).collect::<Result<_>>()?;
    let volatile = if volatile { ",volatile" } else { "" };
    let tail = format!(",upperdir={},workdir={}{volatile}", option_path(upper)?, option_path(work)?);
    let opts = format!("lowerdir={}{tail}", names.join(":"));
    if opts.len() < MAX_OPTIONS {
        return mount(Some("overlay"), target, Some("overlay"), MsFlags::empty(), Some(opts.as_str()))
            .map_err(|source| ImageError::Mount { action: "mount", target: target.to_path_buf(), source });
    }
    mount_relative(layers, &tail, target)
}

/// mount(2) takes at most one page of options.
const MAX_OPTIONS: usize = 4000;

fn option_path(p: &Path) -> Result<&str> {
    p.to_str().filter(|s| !s.contains([':', ','])).ok_or_else(|| ImageError::InvalidContent {
        what: "layer path".into(),
        detail: format!("`{}` cannot be used in overlay options", p.display()),
    })
}

/// Deep images: lower dirs named relative to their common parent, by `mount(8)` running in that
/// directory (the kernel resolves relative paths against the caller's working directory, and
/// changing ours would race with other threads). About 60 layers of 64-hex names fit.
fn mount_relative(layers: &[PathBuf], tail: &str, target: &Path) -> Result<()> {
    let too_long = |detail: String| ImageError::InvalidContent { what: "rootfs".into(), detail };
    let parent = layers[0].parent().ok_or_else(|| too_long("layer directory without a parent".into()))?;
    let mut names = Vec::new();
    for l in layers.iter().rev() {
        if l.parent() != Some(parent) {
            return Err(too_long(format!("{} layers do not fit in one mount(2) option page", layers.len())));
        }
        names.push(option_path(Path::new(l.file_name().unwrap_or_default()))?);
    }
    let opts = format!("lowerdir={}{tail}", names.join(":"));
    if opts.len() >= MAX_OPTIONS {
        return Err(too_long(format!("{} layers do not fit in one mount(2) option page", layers.len())));
    }
    let out = std::process::Command::new("mount")
        .current_dir(parent)
        .args(["-t", "overlay", "overlay", "-o", &opts])
        .arg(target)
        .output()
        .map_err(ImageError::io("run `mount` for", target))?;
    if out.status.success() {
        return Ok(());
    }
    let msg = String::from_utf8_lossy(&out.stderr).trim().to_string();
    Err(ImageError::io("mount overlay at", target)(std::io::Error::other(msg)))
}

/// Unmounts a rootfs mounted by [`mount_rootfs`].
pub fn unmount_rootfs(target: &Path) -> Result<()> {
    umount2(target, MntFlags::empty()).map_err(|source| ImageError::Mount {
        action: "unmount",
        target: target.to_path_buf(),
        source,
    })
}
