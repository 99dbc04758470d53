//! The build cache: which layer an instruction made, keyed by everything the layer depends on.
//!
//! A stage's key starts from its base (the base image's id, or the key of the stage it builds
//! on) and every instruction chains onto it: `key = sha256(parent key, the instruction as
//! expanded, its inputs)`. Inputs are what the text does not show: the digest of the files a
//! `COPY`/`ADD` copies (after `.dockerignore`), the environment, user and working directory a
//! `RUN` runs with, the files its bind mounts and secrets bring in, and `SOURCE_DATE_EPOCH`
//! (it changes the layers' times). Config-only instructions chain too, so a later layer depends
//! on them. An entry records the layer (or that the instruction made none) and lives in
//! `<state root>/build/cache/<key>.json`; an entry whose layer is gone from the image store is a
//! miss.

use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};

use crate::image::{ImageStore, LayerRecord};

/// A cache key: hex sha256.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Key(pub String);

impl Key {
    /// The key a stage starts from.
    pub fn base(base: &str, clamp: Option<u64>) -> Key {
        Key::chain(&Key(String::new()), "FROM", &[base, &clamp.map(|c| c.to_string()).unwrap_or_default()])
    }

    /// The key of `instruction` with `inputs` after `parent`.
    pub fn chain(parent: &Key, instruction: &str, inputs: &[&str]) -> Key {
        let mut h = Sha256::new();
        h.update(parent.0.as_bytes());
        h.update([0]);
        h.update(instruction.as_bytes());
        for i in inputs {
            h.update([0]);
            h.update((i.len() as u64).to_le_bytes());
            h.update(i.as_bytes());
        }
        Key(hex::encode(h.finalize()))
    }
}

/// What the cache knows of one instruction.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Entry {
    /// The layer it made; `None` when it changed no file.
    pub layer: Option<LayerRecord>,
    /// When it was made (RFC 3339): a layer from the cache keeps its time, so a rebuild with
    /// nothing changed gives the same image.
    #[serde(default)]
    pub created: String,
}

/// The cache under the state root.
#[derive(Debug, Clone)]
pub struct Cache {
    dir: PathBuf,
}

impl Cache {
    /// The cache of the state root `root`.
    pub fn open(root: &Path) -> std::io::Result<Cache> {
        let dir = root.join("build/cache");
        std::fs::create_dir_all(&dir)?;
        Ok(Cache { dir })
    }

    /// The entry for `key`, when its layer is still in `store`.
    pub fn get(&self, key: &Key, store: &ImageStore) -> Option<Entry> {
        let data = std::fs::read(self.dir.join(format!("{}.json", key.0))).ok()?;
        let entry: Entry = serde_json::from_slice(&data).ok()?;
        match &entry.layer {
            Some(l) if !(store.has_blob(&l.digest) && store.layer_dir(&l.diff_id).is_dir()) => None,
            _ => Some(entry),
        }
    }

    /// Records `entry` for `key` (atomically; a failure only costs a later cache miss).
    pub fn put(&self, key: &Key, entry: &Entry) {
        let path = self.dir.join(format!("{}.json", key.0));
        let Ok(mut tmp) = tempfile::NamedTempFile::new_in(&self.dir) else { return };
        if serde_json::to_writer(&mut tmp, entry).is_ok() {
            // An entry not written is a step run again; the temporary file removes itself.
            let _ = tmp.persist(path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_depend_on_parent_text_and_inputs() {
        let base = Key::base("sha256:aa", None);
        assert_ne!(base, Key::base("sha256:bb", None), "the base image");
        assert_ne!(base, Key::base("sha256:aa", Some(1)), "SOURCE_DATE_EPOCH");
        let run = Key::chain(&base, "RUN make", &["PATH=/bin"]);
        assert_eq!(run, Key::chain(&base, "RUN make", &["PATH=/bin"]), "stable");
        assert_ne!(run, Key::chain(&base, "RUN make", &["PATH=/usr/bin"]), "the environment");
        assert_ne!(run, Key::chain(&base, "RUN make install", &["PATH=/bin"]), "the text");
        assert_ne!(run, Key::chain(&Key::base("sha256:bb", None), "RUN make", &["PATH=/bin"]), "the parent");
        assert_ne!(Key::chain(&base, "X", &["ab", "c"]), Key::chain(&base, "X", &["a", "bc"]), "input boundaries");
    }

    #[test]
    fn entries_whose_layer_is_gone_are_misses() {
        let root = tempfile::tempdir().unwrap();
        let store = ImageStore::open(root.path()).unwrap();
        let cache = Cache::open(root.path()).unwrap();
        let key = Key::base("x", None);
        assert_eq!(cache.get(&key, &store), None);
        cache.put(&key, &Entry { layer: None, created: String::new() });
        assert_eq!(cache.get(&key, &store), Some(Entry { layer: None, created: String::new() }));
        let gone = LayerRecord {
            digest: crate::image::Digest::of(b"a"),
            diff_id: crate::image::Digest::of(b"b"),
            media_type: String::new(),
            size: 1,
            unpacked_size: 1,
        };
        cache.put(&key, &Entry { layer: Some(gone), created: String::new() });
        assert_eq!(cache.get(&key, &store), None);
    }
}
