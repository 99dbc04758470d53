//! A container's root file system: an overlayfs mount of the image's layer directories (read-only
//! lower dirs) plus the container's own upper and work directories.
//!
//! overlayfs (Documentation/filesystems/overlayfs.rst): `lowerdir=top:...:bottom` lists lower
//! layers top first; whiteouts are character devices 0/0 and opaque directories carry
//! `trusted.overlay.opaque=y`, which is exactly how layers are unpacked here. `upperdir` and
//! `workdir` must be empty directories on the same file system. The mount options string is limited
//! to one page, so very deep images with long paths may not fit.

use std::path::{Path, PathBuf};

use nix::mount::{mount, umount2, MntFlags, MsFlags};

use super::{ImageError, Result};

/// Mounts `layers` (bottom first, as [`super::ImageStore::layer_dirs`] returns them) with `upper`
/// and `work` (created if missing) on `target` (created if missing).
pub fn mount_rootfs(layers: &[PathBuf], upper: &Path, work: &Path, target: &Path) -> Result<()> {
    if layers.is_empty() {
        return Err(ImageError::InvalidContent {
            what: "rootfs".into(),
            detail: "an image needs at least one layer".into(),
        });
    }
    for d in [upper, work, target] {
        std::fs::create_dir_all(d).map_err(ImageError::io("create directory", d))?;
    }
    let mut lower = String::new();
    for l in layers.iter().rev() {
        let s = l.to_str().filter(|s| !s.contains([':', ','])).ok_or_else(|| ImageError::InvalidContent {
            what: "layer path".into(),
            detail: format!("`{}` cannot be used in overlay options", l.display()),
        })?;
        if !lower.is_empty() {
            lower.push(':');
        }
        lower.push_str(s);
    }
    let opts = format!("lowerdir={lower},upperdir={},workdir={}", upper.display(), work.display());
    mount(Some("overlay"), target, Some("overlay"), MsFlags::empty(), Some(opts.as_str()))
        .map_err(|source| ImageError::Mount { action: "mount", target: target.to_path_buf(), source })
}

/// Unmounts a rootfs mounted by [`mount_rootfs`].
pub fn unmount_rootfs(target: &Path) -> Result<()> {
    umount2(target, MntFlags::empty()).map_err(|source| ImageError::Mount {
        action: "unmount",
        target: target.to_path_buf(),
        source,
    })
}
