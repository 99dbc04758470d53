//! A stage's file system as the builder reads it: looking a path up through the layer
//! directories (no mount needed), a mounted view of the layers (for `COPY --from` and bind
//! mounts), and tidying a `RUN`'s upper directory before it becomes a layer.

use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use super::error::{io_err, Result};
use crate::events::{Event, EventSink};

/// The metadata of absolute path `path` in the file system made of `dirs` (top first), without
/// following symbolic links; `None` when it is not there (or deleted by a whiteout).
pub fn lower_meta(dirs: &[PathBuf], path: &str) -> Option<fs::Metadata> {
    let rel = path.trim_start_matches('/');
    if rel.is_empty() {
        return dirs.first().and_then(|d| fs::metadata(d).ok());
    }
    for d in dirs {
        match fs::symlink_metadata(d.join(rel)) {
            Ok(m) if m.file_type().is_char_device() && m.rdev() == 0 => return None,
            Ok(m) => return Some(m),
            Err(_) => continue,
        }
    }
    None
}

/// `layers` (bottom first) as overlay lower directories top first.
pub fn top_first(layers: &[PathBuf]) -> Vec<PathBuf> {
    layers.iter().rev().cloned().collect()
}

/// A mounted, throwaway-writable view of layer directories, unmounted and removed on drop.
pub struct View<'a> {
    dir: tempfile::TempDir,
    mounted: bool,
    /// Where a mount that cannot be undone is reported.
    events: &'a dyn EventSink,
}

impl<'a> View<'a> {
    /// Mounts `layers` (bottom first; none gives an empty tree) under a new directory of `parent`.
    pub fn mount(layers: &[PathBuf], parent: &Path, events: &'a dyn EventSink) -> Result<View<'a>> {
        let dir = tempfile::Builder::new()
            .prefix("view-")
            .tempdir_in(parent)
            .map_err(io_err("create a directory in", parent))?;
        let mut view = View { dir, mounted: false, events };
        let mut lower = layers.to_vec();
        if lower.is_empty() {
            let empty = view.dir.path().join("empty");
            fs::create_dir(&empty).map_err(io_err("create", &empty))?;
            lower.push(empty);
        }
        let d = view.dir.path();
        crate::image::mount_rootfs(&lower, &d.join("upper"), &d.join("work"), &d.join("merged"))?;
        view.mounted = true;
        Ok(view)
    }

    /// The mounted tree.
    pub fn path(&self) -> PathBuf {
        self.dir.path().join("merged")
    }
}

impl Drop for View<'_> {
    fn drop(&mut self) {
        if self.mounted {
            if let Err(e) = crate::image::unmount_rootfs(&self.path()) {
                self.events.emit(Event::Warning { message: format!("a build mount was left behind: {e}") });
            }
        }
    }
}

/// Paths below `root` that do not exist yet, for each of `targets` the first missing component
/// (the runtime creates mount points; they are removed from the layer afterwards).
pub fn missing_stubs(root: &Path, targets: &[String]) -> Vec<String> {
    missing_where(|p| fs::symlink_metadata(root.join(p.trim_start_matches('/'))).is_ok(), targets)
}

/// Like [`missing_stubs`], for the file system made of layer directories `dirs` (top first).
pub fn missing_in_layers(dirs: &[PathBuf], targets: &[String]) -> Vec<String> {
    missing_where(|p| lower_meta(dirs, p).is_some(), targets)
}

fn missing_where(exists: impl Fn(&str) -> bool, targets: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    for t in targets {
        let mut sofar = String::new();
        for part in t.split('/').filter(|p| !p.is_empty()) {
            sofar = format!("{sofar}/{part}");
            if !exists(&sofar) {
                if !out.contains(&sofar) {
                    out.push(sofar.clone());
                }
                break;
            }
        }
    }
    out
}

/// Makes `upper` (a `RUN`'s overlay upper directory) hold only what the command changed: the
/// mount points the runtime created (`stubs`) go when they are still empty, and so does every
/// directory that was only copied up (empty, not opaque, same mode and owner as below).
pub fn tidy_upper(upper: &Path, lower: &[PathBuf], stubs: &[String]) -> Result<()> {
    for s in stubs {
        let p = upper.join(s.trim_start_matches('/'));
        if only_empty(&p) {
            // An empty leftover that stays is an empty directory in the layer, harmless.
            let _ = if p.is_dir() { fs::remove_dir_all(&p) } else { fs::remove_file(&p) };
        }
    }
    prune(upper, upper, lower)?;
    Ok(())
}

fn only_empty(p: &Path) -> bool {
    match fs::symlink_metadata(p) {
        Ok(m) if m.is_dir() => fs::read_dir(p).map(|d| d.flatten().all(|e| only_empty(&e.path()))).unwrap_or(false),
        Ok(m) => m.is_file() && m.len() == 0,
        Err(_) => true,
    }
}

/// Removes copied-up directories below `dir`; returns whether `dir` itself is now empty.
fn prune(upper: &Path, dir: &Path, lower: &[PathBuf]) -> Result<bool> {
    let mut empty = true;
    for entry in fs::read_dir(dir).map_err(io_err("read", dir))? {
        let entry = entry.map_err(io_err("read", dir))?;
        let path = entry.path();
        let meta = fs::symlink_metadata(&path).map_err(io_err("read", &path))?;
        if !meta.is_dir() || !prune(upper, &path, lower)? {
            empty = false;
            continue;
        }
        let rel = path.strip_prefix(upper).unwrap_or(&path).to_string_lossy().into_owned();
        let same = lower_meta(lower, &rel)
            .is_some_and(|l| l.is_dir() && l.mode() == meta.mode() && l.uid() == meta.uid() && l.gid() == meta.gid());
        if same && !super::layer::is_opaque(&path) {
            fs::remove_dir(&path).map_err(io_err("remove", &path))?;
        } else {
            empty = false;
        }
    }
    Ok(empty)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookups_go_top_down_and_stop_at_whiteouts() {
        let top = tempfile::tempdir().unwrap();
        let bottom = tempfile::tempdir().unwrap();
        fs::create_dir_all(bottom.path().join("etc")).unwrap();
        fs::write(bottom.path().join("etc/gone"), "x").unwrap();
        fs::write(bottom.path().join("etc/kept"), "x").unwrap();
        fs::create_dir_all(top.path().join("etc")).unwrap();
        nix::sys::stat::mknod(
            &top.path().join("etc/gone"),
            nix::sys::stat::SFlag::S_IFCHR,
            nix::sys::stat::Mode::from_bits_truncate(0o600),
            0,
        )
        .expect("mknod needs root (tests run as root)");
        let dirs = vec![top.path().to_path_buf(), bottom.path().to_path_buf()];
        assert!(lower_meta(&dirs, "/etc").unwrap().is_dir());
        assert!(lower_meta(&dirs, "/etc/kept").is_some());
        assert!(lower_meta(&dirs, "/etc/gone").is_none());
        assert_eq!(missing_stubs(bottom.path(), &["/etc/kept".into(), "/run/secrets/x".into()]), ["/run"]);
        let targets = ["/etc/gone".to_string(), "/etc/kept".into(), "/proc".into()];
        assert_eq!(missing_in_layers(&dirs, &targets), ["/etc/gone", "/proc"]);
    }

    #[test]
    fn copied_up_directories_and_stubs_are_tidied() {
        let lower = tempfile::tempdir().unwrap();
        let upper = tempfile::tempdir().unwrap();
        fs::create_dir_all(lower.path().join("etc")).unwrap();
        fs::create_dir_all(upper.path().join("etc")).unwrap();
        fs::write(upper.path().join("etc/hosts"), "").unwrap();
        fs::create_dir_all(upper.path().join("new")).unwrap();
        fs::create_dir_all(upper.path().join("etc2/x")).unwrap();
        tidy_upper(upper.path(), &[lower.path().to_path_buf()], &["/etc/hosts".into()]).unwrap();
        let mut left: Vec<String> = fs::read_dir(upper.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(left, ["etc2", "new"], "new directories are changes; a copied-up one is not");
    }
}
