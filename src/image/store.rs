//! The content-addressed image store: blobs, unpacked layers, and the index of images and tags.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use nix::fcntl::{Flock, FlockArg};

use super::digest::digest_file;
use super::unpack::unpack;
use super::{Digest, ImageError, Reference, Result};

mod removal;

pub(crate) use removal::dir_size;
pub use removal::{PruneReport, RemoveReport};

/// One layer of an image, as recorded in the index.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LayerRecord {
    /// Digest of the blob as distributed (usually compressed).
    pub digest: Digest,
    /// Digest of the uncompressed tar; names the unpacked directory.
    pub diff_id: Digest,
    /// Media type from the manifest.
    pub media_type: String,
    /// Blob size in bytes.
    pub size: u64,
    /// Bytes of regular files in the unpacked layer.
    pub unpacked_size: u64,
}

/// One image in the store, keyed by its config digest (the image id).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ImageRecord {
    /// The image id: digest of the config blob.
    pub id: Digest,
    /// Digest of the platform-specific manifest.
    pub manifest_digest: Digest,
    /// `name@sha256:...` of the manifest (or index) it was pulled by.
    #[serde(default)]
    pub repo_digests: Vec<String>,
    /// Layers, bottom first.
    pub layers: Vec<LayerRecord>,
    /// `created` from the config.
    #[serde(default)]
    pub created: Option<String>,
    /// `os/arch[/variant]` from the config.
    #[serde(default)]
    pub platform: String,
    /// Seconds since the epoch of the last pull or load (for `daily`, `weekly`, `every_*`).
    pub pulled_at: u64,
}

impl ImageRecord {
    /// Sum of the unpacked sizes of the layers.
    pub fn size(&self) -> u64 {
        self.layers.iter().map(|l| l.unpacked_size).sum()
    }

    /// When the image was last pulled or loaded.
    pub fn pulled_at(&self) -> SystemTime {
        UNIX_EPOCH + std::time::Duration::from_secs(self.pulled_at)
    }
}

/// A row of `berth images`: one per tag, or one `<none>` row for an untagged image.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ImageSummary {
    /// Image id (config digest).
    pub id: Digest,
    /// `registry/repository`, or `<none>`.
    pub repository: String,
    /// The tag, or `<none>`.
    pub tag: String,
    /// Manifest digest.
    pub digest: Digest,
    /// Unpacked size in bytes.
    pub size: u64,
    /// `created` from the config.
    pub created: Option<String>,
}

#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
struct Index {
    #[serde(default)]
    images: BTreeMap<Digest, ImageRecord>,
    /// `registry/repository:tag` → image id.
    #[serde(default)]
    tags: BTreeMap<String, Digest>,
}

impl Index {
    fn tags_of(&self, id: &Digest) -> Vec<String> {
        self.tags.iter().filter(|(_, v)| *v == id).map(|(k, _)| k.clone()).collect()
    }

    fn resolve(&self, name: &str) -> Result<Digest> {
        let not_found = || ImageError::NotFound(name.to_string());
        let hex = name.strip_prefix("sha256:").unwrap_or(name);
        if hex.len() >= 4 && hex.len() <= 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            let hits: Vec<_> = self.images.keys().filter(|id| id.hex().starts_with(hex)).collect();
            if hits.len() == 1 {
                return Ok(hits[0].clone());
            }
        }
        let reference = Reference::parse(name)?;
        if let Some(d) = reference.digest() {
            let by_digest = format!("{}@{d}", reference.name());
            return self
                .images
                .values()
                .find(|r| {
                    r.repo_digests.contains(&by_digest)
                        || (&r.manifest_digest == d
                            && r.repo_digests.iter().any(|rd| rd.starts_with(&reference.name())))
                })
                .map(|r| r.id.clone())
                .ok_or_else(not_found);
        }
        let key = reference.tagged_name().ok_or_else(not_found)?;
        self.tags.get(&key).cloned().ok_or_else(not_found)
    }
}

/// The image store under `<state root>/images`.
#[derive(Debug, Clone)]
pub struct ImageStore {
    dir: PathBuf,
}

impl ImageStore {
    /// The state root: `$BERTH_ROOT` or `/var/lib/berth`.
    pub fn default_state_root() -> PathBuf {
        std::env::var_os("BERTH_ROOT").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("/var/lib/berth"))
    }

    /// Opens (creating as needed) the store under `state_root/images`.
    pub fn open(state_root: &Path) -> Result<Self> {
        let dir = state_root.join("images");
        for sub in ["blobs/sha256", "layers", "tmp"] {
            let p = dir.join(sub);
            fs::create_dir_all(&p).map_err(ImageError::io("create directory", &p))?;
        }
        // Layers hold the images' setuid files and device nodes: only root may reach them.
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o700)).map_err(ImageError::io("restrict", &dir))?;
        Ok(ImageStore { dir })
    }

    /// The `images` directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub(crate) fn blob_path(&self, d: &Digest) -> PathBuf {
        self.dir.join("blobs/sha256").join(d.hex())
    }

    /// Whether the blob is stored.
    pub fn has_blob(&self, d: &Digest) -> bool {
        self.blob_path(d).is_file()
    }

    /// The unpacked directory of the layer with this diff id.
    pub fn layer_dir(&self, diff_id: &Digest) -> PathBuf {
        self.dir.join("layers").join(diff_id.hex())
    }

    pub(crate) fn tmp_dir(&self) -> PathBuf {
        self.dir.join("tmp")
    }

    /// Stores a small blob (manifest, config) atomically; returns its digest.
    pub(crate) fn write_blob(&self, data: &[u8]) -> Result<Digest> {
        let d = Digest::of(data);
        let path = self.blob_path(&d);
        if !path.exists() {
            let mut tmp = tempfile::NamedTempFile::new_in(self.tmp_dir())
                .map_err(ImageError::io("create temp file in", self.tmp_dir()))?;
            tmp.write_all(data).map_err(ImageError::io("write", tmp.path()))?;
            tmp.persist(&path).map_err(|e| ImageError::io("store blob", &path)(e.error))?;
        }
        Ok(d)
    }

    /// Reads a stored blob and checks its digest.
    pub(crate) fn read_blob(&self, d: &Digest) -> Result<Vec<u8>> {
        let path = self.blob_path(d);
        let data = fs::read(&path).map_err(ImageError::io("read blob", &path))?;
        d.verify(&Digest::of(&data), format!("stored blob `{}`", path.display()))?;
        Ok(data)
    }

    /// Moves a finished file into the blob store after checking its digest.
    pub(crate) fn import_blob_file(&self, file: &Path, expected: Option<&Digest>) -> Result<(Digest, u64)> {
        let (actual, size) = digest_file(file)?;
        if let Some(e) = expected {
            if let Err(err) = e.verify(&actual, format!("blob {e}")) {
                // The file is under the store's `tmp/`, which `gc` empties.
                let _ = fs::remove_file(file);
                return Err(err);
            }
        }
        let dest = self.blob_path(&actual);
        fs::rename(file, &dest).map_err(ImageError::io("store blob", &dest))?;
        Ok((actual, size))
    }

    /// Makes sure the layer with `diff_id` is unpacked, from the stored blob `blob`. Unpacks into a
    /// temporary directory, checks both digests, then renames; returns (unpacked size, warnings).
    /// `blob_verified`: the caller hashed this very file moments ago (a fresh download), so only
    /// the diff id is computed while unpacking.
    pub(crate) fn ensure_layer(
        &self,
        blob: &Digest,
        diff_id: &Digest,
        blob_verified: bool,
    ) -> Result<(u64, Vec<String>)> {
        let dest = self.layer_dir(diff_id);
        if dest.is_dir() {
            return Ok((dir_size(&dest), Vec::new()));
        }
        let tmp = tempfile::Builder::new()
            .prefix("layer-")
            .tempdir_in(self.tmp_dir())
            .map_err(ImageError::io("create temp directory in", self.tmp_dir()))?;
        // A layer without a `./` entry keeps this mode for its root.
        fs::set_permissions(tmp.path(), std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .map_err(ImageError::io("chmod", tmp.path()))?;
        let report = unpack(&self.blob_path(blob), tmp.path(), !blob_verified)?;
        if let Some(actual) = &report.blob_digest {
            blob.verify(actual, format!("layer blob {blob}"))?;
        }
        diff_id.verify(&report.diff_id, format!("uncompressed content (diff id) of layer {blob}"))?;
        let tmp_path = tmp.keep();
        match fs::rename(&tmp_path, &dest) {
            Ok(()) => {}
            Err(_) if dest.is_dir() => {
                // Another process unpacked the same layer meanwhile.
                let _ = fs::remove_dir_all(&tmp_path);
            }
            Err(e) => {
                // Under `tmp/`, which `gc` empties.
                let _ = fs::remove_dir_all(&tmp_path);
                return Err(ImageError::io("store layer", &dest)(e));
            }
        }
        Ok((report.unpacked_size, report.warnings))
    }

    /// Makes `dir` (on the store's file system) the unpacked layer `diff_id`, by renaming it into
    /// place; the caller wrote the layer's blob from this very tree. Returns the unpacked size, or
    /// `None` when it could not be moved (another file system): then unpack the blob.
    pub(crate) fn adopt_layer(&self, dir: &Path, diff_id: &Digest) -> Result<Option<u64>> {
        let dest = self.layer_dir(diff_id);
        if dest.is_dir() {
            return Ok(Some(dir_size(&dest)));
        }
        let size = dir_size(dir);
        match fs::rename(dir, &dest) {
            Ok(()) => Ok(Some(size)),
            Err(_) if dest.is_dir() => Ok(Some(dir_size(&dest))),
            Err(e) if e.raw_os_error() == Some(libc::EXDEV) => Ok(None),
            Err(e) => Err(ImageError::io("store layer", &dest)(e)),
        }
    }

    /// Runs `f` on the index with an exclusive lock, writing it back if `f` succeeds.
    fn update<T>(&self, f: impl FnOnce(&mut Index) -> Result<T>) -> Result<T> {
        let _lock = self.lock(FlockArg::LockExclusive)?;
        let mut index = self.read_index()?;
        let out = f(&mut index)?;
        let path = self.dir.join("index.json");
        let mut tmp =
            tempfile::NamedTempFile::new_in(&self.dir).map_err(ImageError::io("create temp file in", &self.dir))?;
        serde_json::to_writer_pretty(&mut tmp, &index).map_err(|e| ImageError::io("write", tmp.path())(e.into()))?;
        tmp.persist(&path).map_err(|e| ImageError::io("replace", &path)(e.error))?;
        Ok(out)
    }

    fn read<T>(&self, f: impl FnOnce(&Index) -> Result<T>) -> Result<T> {
        let _lock = self.lock(FlockArg::LockShared)?;
        f(&self.read_index()?)
    }

    fn read_index(&self) -> Result<Index> {
        let path = self.dir.join("index.json");
        match fs::read(&path) {
            Ok(data) => serde_json::from_slice(&data).map_err(|e| ImageError::InvalidContent {
                what: format!("image index `{}`", path.display()),
                detail: e.to_string(),
            }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Index::default()),
            Err(e) => Err(ImageError::io("read", &path)(e)),
        }
    }

    fn lock(&self, arg: FlockArg) -> Result<Flock<File>> {
        let (f, path) = self.lock_file("lock")?;
        Flock::lock(f, arg).map_err(|(_, e)| ImageError::io("lock", &path)(e.into()))
    }

    /// The store's lock file `name`, opened (made when missing) for `flock`.
    fn lock_file(&self, name: &str) -> Result<(File, std::path::PathBuf)> {
        let path = self.dir.join(name);
        let f = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(ImageError::io("open", &path))?;
        Ok((f, path))
    }

    /// Held (shared) while a pull or load is writing blobs that are not in the index yet; garbage
    /// collection only runs when it can take this exclusively.
    pub(crate) fn writer_guard(&self) -> Result<Flock<File>> {
        let path = self.dir.join("gc.lock");
        let f = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(ImageError::io("open", &path))?;
        Flock::lock(f, FlockArg::LockShared).map_err(|(_, e)| ImageError::io("lock", &path)(e.into()))
    }

    /// Waits for and takes the inter-process lock for downloading and unpacking one blob.
    pub(crate) async fn layer_lock(&self, blob: &Digest) -> Result<Flock<File>> {
        let path = self.tmp_dir().join(format!("{}.lock", blob.hex()));
        tokio::task::spawn_blocking(move || {
            let f = OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(&path)
                .map_err(ImageError::io("open", &path))?;
            Flock::lock(f, FlockArg::LockExclusive).map_err(|(_, e)| ImageError::io("lock", &path)(e.into()))
        })
        .await
        .map_err(|e| ImageError::io("lock", self.tmp_dir())(std::io::Error::other(e)))?
    }

    /// Records an image and points `tag` (a `registry/repo:tag` name) at it.
    pub(crate) fn commit(&self, record: ImageRecord, tag: Option<String>) -> Result<()> {
        self.update(|idx| {
            let id = record.id.clone();
            match idx.images.get_mut(&id) {
                Some(existing) => {
                    for rd in record.repo_digests {
                        if !existing.repo_digests.contains(&rd) {
                            existing.repo_digests.push(rd);
                        }
                    }
                    // Same config, maybe another manifest (other media types or compression):
                    // the latest manifest and its layer blobs describe the image from now on.
                    existing.pulled_at = record.pulled_at;
                    existing.manifest_digest = record.manifest_digest;
                    existing.layers = record.layers;
                }
                None => {
                    idx.images.insert(id.clone(), record);
                }
            }
            if let Some(t) = tag {
                idx.tags.insert(t, id);
            }
            Ok(())
        })
    }

    /// Points `target` (a tagged name) at image `source` (a name or id).
    pub fn tag(&self, source: &str, target: &Reference) -> Result<()> {
        let rec = self.resolve(source)?;
        let name = target.tagged_name().ok_or_else(|| ImageError::InvalidReference {
            reference: target.to_string(),
            reason: "a tag needs a name with a tag, not a digest".into(),
        })?;
        self.update(|idx| {
            idx.tags.insert(name, rec.id.clone());
            Ok(())
        })
    }

    /// Finds an image by reference (`name:tag`, `name@digest`) or by (a prefix of) its id.
    pub fn resolve(&self, name: &str) -> Result<ImageRecord> {
        self.read(|idx| {
            let id = idx.resolve(name)?;
            Ok(idx.images[&id].clone())
        })
    }

    /// Like [`resolve`](Self::resolve) for a parsed reference; `None` when it is not stored or when
    /// one of its layers is missing on disk.
    pub fn lookup(&self, reference: &Reference) -> Result<Option<ImageRecord>> {
        match self.resolve(&reference.to_string()) {
            Ok(r) if r.layers.iter().all(|l| self.layer_dir(&l.diff_id).is_dir()) => Ok(Some(r)),
            Ok(_) | Err(ImageError::NotFound(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The tags that point at image `id`.
    pub fn tags_of(&self, id: &Digest) -> Result<Vec<String>> {
        self.read(|idx| Ok(idx.tags_of(id)))
    }

    /// Every image: one row per tag, `<none>` rows for untagged images; sorted by repository and tag.
    pub fn list(&self) -> Result<Vec<ImageSummary>> {
        self.read(|idx| {
            let mut rows = Vec::new();
            for rec in idx.images.values() {
                let tags = idx.tags_of(&rec.id);
                let mut push = |repository: String, tag: String| {
                    rows.push(ImageSummary {
                        id: rec.id.clone(),
                        repository,
                        tag,
                        digest: rec.manifest_digest.clone(),
                        size: rec.size(),
                        created: rec.created.clone(),
                    })
                };
                if tags.is_empty() {
                    // Pulled by digest only: named, but without a tag.
                    let repo = rec.repo_digests.first().and_then(|rd| rd.split_once('@')).map(|(n, _)| n.to_string());
                    push(repo.unwrap_or_else(|| "<none>".into()), "<none>".into());
                }
                for t in tags {
                    let (repo, tag) =
                        t.rsplit_once(':').map(|(r, t)| (r.to_string(), t.to_string())).unwrap_or((t, String::new()));
                    push(repo, tag);
                }
            }
            rows.sort_by(|a, b| (&a.repository, &a.tag).cmp(&(&b.repository, &b.tag)));
            Ok(rows)
        })
    }

    /// The image's config blob as JSON (what `berth image inspect` prints).
    pub fn inspect(&self, name: &str) -> Result<serde_json::Value> {
        self.config_of(&self.resolve(name)?, name)
    }

    /// The config blob of a resolved image as JSON (`name` is for messages).
    pub fn config_of(&self, rec: &ImageRecord, name: &str) -> Result<serde_json::Value> {
        let data = self.read_blob(&rec.id)?;
        serde_json::from_slice(&data)
            .map_err(|e| ImageError::InvalidContent { what: format!("config of `{name}`"), detail: e.to_string() })
    }

    /// The manifest blob of an image.
    pub(crate) fn manifest_bytes(&self, rec: &ImageRecord) -> Result<Vec<u8>> {
        self.read_blob(&rec.manifest_digest)
    }

    /// The unpacked layer directories of an image, bottom first (reverse them for `lowerdir`).
    pub fn layer_dirs(&self, name: &str) -> Result<Vec<PathBuf>> {
        self.layer_dirs_of(&self.resolve(name)?, name)
    }

    /// The unpacked layer directories of a resolved image, bottom first (`name` is for messages).
    pub fn layer_dirs_of(&self, rec: &ImageRecord, name: &str) -> Result<Vec<PathBuf>> {
        rec.layers
            .iter()
            .map(|l| {
                let d = self.layer_dir(&l.diff_id);
                if d.is_dir() {
                    Ok(d)
                } else {
                    Err(ImageError::NotFound(format!("{name} (layer {} is missing; pull again)", l.diff_id)))
                }
            })
            .collect()
    }
}

pub(crate) fn now_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}
