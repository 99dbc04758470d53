//! Build caches in local directories: `cache_to: [type=local,dest=DIR]` exports the cache
//! entries of the steps a build went through, `cache_from: [type=local,src=DIR]` imports them,
//! so that a build on another state root (another machine, a fresh CI runner) reuses every
//! layer whose key matches.
//!
//! The directory is berth's own format on top of an OCI image layout's blob area:
//!
//! ```text
//! DIR/oci-layout              {"imageLayoutVersion": "1.0.0"}
//! DIR/blobs/sha256/<hex>      layer blobs, as in the image store (gzip tars)
//! DIR/berth-cache.json        {"berthCacheVersion": 1,
//!                              "entries": {"<key>": {"layer": <layer record> | null,
//!                                                    "created": "<RFC 3339>"}}}
//! ```
//!
//! Keys are those of [`super::cache`]: they hold content digests only (the base image id,
//! copied files' digests, the instruction and its environment), never a path of the state
//! root, so they match across machines with the same base images. An export merges into what
//! the directory already holds; blobs are checked against their digests when imported. A
//! `cache_from` directory that does not exist yet is skipped (the first build makes it).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::cache::{Entry, Key};
use super::error::{io_err, BuildError, Result};
use crate::image::{Digest, ImageStore};

const INDEX: &str = "berth-cache.json";
const VERSION: u32 = 1;

#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
struct Index {
    #[serde(rename = "berthCacheVersion")]
    version: u32,
    entries: BTreeMap<String, Entry>,
}

fn blob_path(dir: &Path, d: &Digest) -> PathBuf {
    dir.join("blobs/sha256").join(d.hex())
}

fn read_index(dir: &Path) -> Result<Option<Index>> {
    let path = dir.join(INDEX);
    let data = match std::fs::read(&path) {
        Ok(d) => d,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_err("read", &path)(e)),
    };
    let index: Index = serde_json::from_slice(&data).map_err(|e| BuildError::Input {
        what: "build cache index",
        path: path.clone(),
        detail: e.to_string(),
    })?;
    if index.version != VERSION {
        return Err(BuildError::Input {
            what: "build cache index",
            path,
            detail: format!("version {} (berth reads version {VERSION})", index.version),
        });
    }
    Ok(Some(index))
}

/// Copies `from` to `to` through a temporary file beside `to` (no half-written file is seen).
fn copy_atomic(from: &Path, to: &Path) -> Result<()> {
    let parent = to.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).map_err(io_err("create", parent))?;
    let tmp = tempfile::NamedTempFile::new_in(parent).map_err(io_err("create a file in", parent))?;
    std::fs::copy(from, tmp.path()).map_err(io_err("copy", from))?;
    tmp.persist(to).map_err(|e| io_err("write", to)(e.error))?;
    Ok(())
}

/// The entries of the `cache_from` directories (the first directory holding a key wins).
#[derive(Debug, Default)]
pub struct Imported {
    entries: BTreeMap<String, (PathBuf, Entry)>,
}

impl Imported {
    /// Reads the indexes of `dirs`.
    pub fn load(dirs: &[PathBuf]) -> Result<Imported> {
        let mut entries = BTreeMap::new();
        for dir in dirs {
            for (key, entry) in read_index(dir)?.map(|i| i.entries).unwrap_or_default() {
                entries.entry(key).or_insert_with(|| (dir.clone(), entry));
            }
        }
        Ok(Imported { entries })
    }

    /// The entry for `key`, its layer brought into `store` (blob checked, layer unpacked).
    pub fn take(&self, key: &Key, store: &ImageStore) -> Result<Option<Entry>> {
        let Some((dir, entry)) = self.entries.get(&key.0) else { return Ok(None) };
        if let Some(layer) = &entry.layer {
            if !store.has_blob(&layer.digest) {
                let src = blob_path(dir, &layer.digest);
                if !src.is_file() {
                    return Ok(None);
                }
                let tmp_dir = store.tmp_dir();
                let tmp = tempfile::NamedTempFile::new_in(&tmp_dir).map_err(io_err("create a file in", &tmp_dir))?;
                std::fs::copy(&src, tmp.path()).map_err(io_err("copy", &src))?;
                let (_, path) = tmp.keep().map_err(|e| io_err("keep", &tmp_dir)(e.error))?;
                store.import_blob_file(&path, Some(&layer.digest))?;
            }
            store.ensure_layer(&layer.digest, &layer.diff_id, false)?;
        }
        Ok(Some(entry.clone()))
    }
}

/// Exports `entries` (with their layers' blobs from `store`) into the cache directory `dir`.
pub fn export(dir: &Path, entries: &[(Key, Entry)], store: &ImageStore) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(io_err("create", dir))?;
    let layout = dir.join("oci-layout");
    if !layout.exists() {
        std::fs::write(&layout, br#"{"imageLayoutVersion":"1.0.0"}"#).map_err(io_err("write", &layout))?;
    }
    let mut index = read_index(dir)?.unwrap_or(Index { version: VERSION, entries: BTreeMap::new() });
    for (key, entry) in entries {
        if let Some(layer) = &entry.layer {
            let dest = blob_path(dir, &layer.digest);
            if !dest.is_file() {
                copy_atomic(&store.blob_path(&layer.digest), &dest)?;
            }
        }
        index.entries.insert(key.0.clone(), entry.clone());
    }
    let path = dir.join(INDEX);
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(io_err("create a file in", dir))?;
    serde_json::to_writer_pretty(&mut tmp, &index).map_err(|e| io_err("write", &path)(e.into()))?;
    tmp.persist(&path).map_err(|e| io_err("write", &path)(e.error))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::LayerRecord;

    #[test]
    fn an_export_is_imported_into_another_store_and_checked() {
        let (one, two, cache) =
            (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let store = ImageStore::open(one.path()).unwrap();
        let tree = tempfile::tempdir().unwrap();
        std::fs::write(tree.path().join("f"), "layer file\n").unwrap();
        let layer: LayerRecord = super::super::layer::commit_tree(&store, tree.path(), Some(0)).unwrap();
        let (k1, k2) = (Key::base("a", None), Key::base("b", None));
        let entries = [
            (k1.clone(), Entry { layer: Some(layer.clone()), created: "t".into() }),
            (k2.clone(), Entry { layer: None, created: String::new() }),
        ];
        export(cache.path(), &entries, &store).unwrap();
        assert!(cache.path().join("oci-layout").is_file());

        let other = ImageStore::open(two.path()).unwrap();
        let missing = cache.path().join("nothing-here");
        let imported = Imported::load(&[missing, cache.path().to_path_buf()]).unwrap();
        assert_eq!(imported.take(&k1, &other).unwrap(), Some(entries[0].1.clone()));
        assert!(other.has_blob(&layer.digest));
        assert_eq!(std::fs::read_to_string(other.layer_dir(&layer.diff_id).join("f")).unwrap(), "layer file\n");
        assert_eq!(imported.take(&k2, &other).unwrap(), Some(entries[1].1.clone()));
        assert_eq!(imported.take(&Key::base("c", None), &other).unwrap(), None);

        // A blob that does not match its digest is refused.
        let third = tempfile::tempdir().unwrap();
        let third = ImageStore::open(third.path()).unwrap();
        std::fs::write(blob_path(cache.path(), &layer.digest), b"tampered").unwrap();
        assert!(imported.take(&k1, &third).is_err());
    }
}
