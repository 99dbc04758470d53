//! Removing images: untagging, `image rm`, `image prune`, and the collection of blobs and
//! layer directories that no image references any more.

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;

use nix::fcntl::{Flock, FlockArg};

use super::super::{Digest, ImageError, Reference, Result};
use super::ImageStore;

/// What `remove` did.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct RemoveReport {
    /// Tags removed.
    pub untagged: Vec<String>,
    /// Image ids deleted.
    pub deleted: Vec<Digest>,
    /// Bytes freed on disk (blobs and layer directories).
    pub reclaimed: u64,
}

/// What `prune` did.
pub type PruneReport = RemoveReport;

impl ImageStore {
    /// `berth image rm`: a tag is untagged, and the image deleted when no tag is left; an id deletes
    /// the image (with `force` even when several tags point at it). Refuses while `is_in_use(id)`.
    pub fn remove(&self, name: &str, force: bool, is_in_use: &dyn Fn(&Digest) -> bool) -> Result<RemoveReport> {
        let mut report = self.update(|idx| {
            let id = idx.resolve(name)?;
            let tags = idx.tags_of(&id);
            let by_tag = Reference::parse(name).ok().and_then(|r| r.tagged_name()).filter(|t| tags.contains(t));
            let mut report = RemoveReport::default();
            let to_untag = match &by_tag {
                Some(t) => vec![t.clone()],
                None if tags.len() > 1 && !force => return Err(ImageError::Ambiguous(name.to_string())),
                None => tags.clone(),
            };
            let deletes = to_untag.len() == tags.len();
            if deletes && is_in_use(&id) {
                return Err(ImageError::InUse(name.to_string()));
            }
            for t in to_untag {
                idx.tags.remove(&t);
                report.untagged.push(t);
            }
            if deletes {
                idx.images.remove(&id);
                report.deleted.push(id);
            }
            Ok(report)
        })?;
        report.reclaimed = self.gc()?;
        Ok(report)
    }

    /// `berth image prune`: deletes dangling images (no tag, not pulled by digest) or, with `all`,
    /// every image, unless in use.
    pub fn prune(&self, all: bool, is_in_use: &dyn Fn(&Digest) -> bool) -> Result<PruneReport> {
        let mut report = self.update(|idx| {
            let mut report = RemoveReport::default();
            let ids: Vec<Digest> = idx.images.keys().cloned().collect();
            for id in ids {
                let tags = idx.tags_of(&id);
                // Dangling: neither a tag nor a digest reference (images pulled by digest stay).
                let dangling = tags.is_empty() && idx.images[&id].repo_digests.is_empty();
                if (!all && !dangling) || is_in_use(&id) {
                    continue;
                }
                for t in tags {
                    idx.tags.remove(&t);
                    report.untagged.push(t);
                }
                idx.images.remove(&id);
                report.deleted.push(id);
            }
            Ok(report)
        })?;
        report.reclaimed = self.gc()?;
        Ok(report)
    }

    /// Deletes blobs and layer directories that no image references, plus leftovers in `tmp/`.
    /// Skipped (returns 0) while a pull or load holds the writer guard.
    pub fn gc(&self) -> Result<u64> {
        let (f, _) = self.lock_file("gc.lock")?;
        let Ok(_guard) = Flock::lock(f, FlockArg::LockExclusiveNonblock) else {
            return Ok(0);
        };
        let (blobs, layers) = self.read(|idx| {
            let mut blobs = BTreeSet::new();
            let mut layers = BTreeSet::new();
            for r in idx.images.values() {
                blobs.insert(r.id.hex().to_string());
                blobs.insert(r.manifest_digest.hex().to_string());
                for l in &r.layers {
                    blobs.insert(l.digest.hex().to_string());
                    layers.insert(l.diff_id.hex().to_string());
                }
            }
            Ok((blobs, layers))
        })?;
        let mut freed = 0;
        freed += sweep(&self.dir.join("blobs/sha256"), &blobs)?;
        freed += sweep(&self.dir.join("layers"), &layers)?;
        freed += sweep(&self.tmp_dir(), &BTreeSet::new())?;
        Ok(freed)
    }
}

fn sweep(dir: &Path, keep: &BTreeSet<String>) -> Result<u64> {
    let mut freed = 0;
    for entry in fs::read_dir(dir).map_err(ImageError::io("list", dir))? {
        let entry = entry.map_err(ImageError::io("list", dir))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if keep.contains(&name) {
            continue;
        }
        let path = entry.path();
        let meta = fs::symlink_metadata(&path).map_err(ImageError::io("inspect", &path))?;
        if meta.is_dir() {
            freed += dir_size(&path);
            fs::remove_dir_all(&path).map_err(ImageError::io("remove", &path))?;
        } else {
            freed += meta.len();
            fs::remove_file(&path).map_err(ImageError::io("remove", &path))?;
        }
    }
    Ok(freed)
}

/// Bytes of regular files under `dir` (symlinks not followed).
pub(crate) fn dir_size(dir: &Path) -> u64 {
    let mut total = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = fs::read_dir(&d) else { continue };
        for e in rd.flatten() {
            match e.file_type() {
                Ok(t) if t.is_dir() => stack.push(e.path()),
                Ok(t) if t.is_file() => total += e.metadata().map(|m| m.len()).unwrap_or(0),
                _ => {}
            }
        }
    }
    total
}
