//! Pulling images from a registry with `oci-client`: manifest (and index) resolution, streaming
//! layer downloads with resume, verification, unpacking, and recording in the store.
//!
//! Protocol notes (OCI distribution spec): `GET /v2/<repo>/manifests/<tag|digest>` with an `Accept`
//! list returns either an image manifest or an index/manifest list; an index names one manifest per
//! platform, fetched again by digest. `GET /v2/<repo>/blobs/<digest>` returns a blob; with
//! `Range: bytes=N-` a registry may answer 206 with the rest (resume) or 200 with everything.
//! Every manifest and blob is hashed here, whatever the library or the registry says.
//!
//! Each layer is downloaded to `tmp/<hex>.partial`, renamed into `blobs/` only after its digest
//! matched, and unpacked on a blocking thread while other layers keep downloading. A layer that
//! several images of one `pull_many` share is fetched once: the others wait on its lock and then
//! find it stored.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use futures_util::{StreamExt, TryStreamExt};
use oci_client::client::{BlobResponse, ClientConfig, ClientProtocol};
use oci_client::manifest::OciDescriptor;
use oci_client::secrets::RegistryAuth;
use sha2::{Digest as _, Sha256};
use tokio::io::AsyncWriteExt;

use super::auth::registry_auth;
use super::platform::{pick_platform, platform_of};
use super::store::now_secs;
use super::{Digest, ImageError, ImageRecord, ImageStore, LayerRecord, Platform, Reference, Result};
use crate::events::{Event, EventSink};

const MT_OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const MT_DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
const MT_OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const MT_DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
const ACCEPT: &[&str] = &[MT_OCI_INDEX, MT_DOCKER_LIST, MT_OCI_MANIFEST, MT_DOCKER_MANIFEST];
const PROGRESS_STEP: u64 = 512 * 1024;

/// How to pull.
#[derive(Debug, Clone)]
pub struct PullOptions {
    /// Platform to pick from an index (default: the host's).
    pub platform: Option<Platform>,
    /// Registries (host[:port]) reached over plain HTTP besides loopback ones; the environment
    /// variable `BERTH_INSECURE_REGISTRIES` (comma-separated) adds more.
    pub insecure_registries: Vec<String>,
    /// Layers downloaded at the same time per image.
    pub max_concurrent_layers: usize,
}

impl Default for PullOptions {
    fn default() -> Self {
        PullOptions { platform: None, insecure_registries: Vec::new(), max_concurrent_layers: 6 }
    }
}

/// The result of pulling one image.
#[derive(Debug, Clone)]
pub struct PullOutcome {
    /// What was pulled.
    pub reference: Reference,
    /// Image id (config digest).
    pub id: Digest,
    /// The digest the reference resolved to (an index digest for multi-platform images).
    pub digest: Digest,
    /// Bytes downloaded.
    pub downloaded: u64,
    /// Whether the store already had this exact image.
    pub up_to_date: bool,
}

/// Pulls one image into `store`.
pub async fn pull(
    store: &ImageStore,
    reference: &Reference,
    opts: &PullOptions,
    events: &dyn EventSink,
) -> Result<PullOutcome> {
    let mut v = pull_many(store, &[(reference.clone(), None)], opts, events).await;
    v.pop().expect("one result per reference")
}

/// Pulls several images concurrently (each with an optional platform overriding `opts.platform`),
/// downloading every shared layer once. Results are in the order of `refs`.
pub async fn pull_many(
    store: &ImageStore,
    refs: &[(Reference, Option<Platform>)],
    opts: &PullOptions,
    events: &dyn EventSink,
) -> Vec<Result<PullOutcome>> {
    let _guard = match store.writer_guard() {
        Ok(g) => g,
        Err(e) => {
            let msg = e.to_string();
            return refs
                .iter()
                .map(|_| Err(ImageError::Registry { reference: "store".into(), detail: msg.clone() }))
                .collect();
        }
    };
    let mut insecure = opts.insecure_registries.clone();
    if let Ok(env) = std::env::var("BERTH_INSECURE_REGISTRIES") {
        insecure.extend(env.split(',').map(str::trim).filter(|s| !s.is_empty()).map(String::from));
    }
    insecure.extend(refs.iter().filter(|(r, _)| r.is_loopback()).map(|(r, _)| r.registry().to_string()));
    let config = ClientConfig {
        protocol: ClientProtocol::HttpsExcept(insecure),
        platform_resolver: None,
        connect_timeout: Some(std::time::Duration::from_secs(15)),
        read_timeout: Some(std::time::Duration::from_secs(120)),
        ..Default::default()
    };
    let puller =
        Puller { store, client: oci_client::Client::new(config), opts, events, inflight: Mutex::new(HashMap::new()) };
    let futs = refs.iter().map(|(r, p)| puller.pull_one(r, p.as_ref().or(opts.platform.as_ref())));
    futures_util::future::join_all(futs).await
}

/// `berth login`'s check: can these credentials authenticate against `registry`?
pub async fn check_login(registry: &str, creds: &super::Credentials, insecure: bool) -> Result<()> {
    let probe = Reference::parse(&format!("{registry}/berth/login-check"))?;
    let protocol = if insecure || probe.is_loopback() { ClientProtocol::Http } else { ClientProtocol::Https };
    let client = oci_client::Client::new(ClientConfig { protocol, ..Default::default() });
    let auth = RegistryAuth::Basic(creds.username.clone(), creds.password.clone());
    let oci_ref = probe.to_oci();
    client
        .auth(&oci_ref, &auth, oci_client::RegistryOperation::Pull)
        .await
        .map_err(|e| ImageError::from_registry(&probe, e))?;
    // Basic-auth registries are only checked by a request: an unknown repository (404) is fine,
    // 401 is not.
    match client.pull_manifest_raw(&oci_ref, &auth, ACCEPT).await {
        Ok(_) => Ok(()),
        Err(e) => match ImageError::from_registry(&probe, e) {
            ImageError::UnknownImage { .. } | ImageError::UnknownManifest { .. } => Ok(()),
            ImageError::Denied { .. } => Err(ImageError::Denied {
                reference: registry.to_string(),
                detail: "the registry refused these credentials".into(),
            }),
            other => Err(other),
        },
    }
}

struct Puller<'a> {
    store: &'a ImageStore,
    client: oci_client::Client,
    opts: &'a PullOptions,
    events: &'a dyn EventSink,
    inflight: Mutex<HashMap<Digest, Arc<tokio::sync::Mutex<()>>>>,
}

/// A layer as the manifest describes it, with its diff id from the config.
struct LayerSpec {
    desc: OciDescriptor,
    digest: Digest,
    diff_id: Digest,
}

impl Puller<'_> {
    async fn pull_one(&self, reference: &Reference, platform: Option<&Platform>) -> Result<PullOutcome> {
        let image = reference.to_string();
        self.events.emit(Event::PullStarted { image: image.clone() });
        let auth = registry_auth(reference.registry())?;
        let oci_ref = reference.to_oci();
        let (manifest_bytes, manifest_digest, top_digest) = self.resolve_manifest(reference, platform, &auth).await?;
        let manifest: oci_client::manifest::OciImageManifest =
            serde_json::from_slice(&manifest_bytes).map_err(|e| ImageError::InvalidContent {
                what: format!("manifest of `{reference}`"),
                detail: e.to_string(),
            })?;
        let config_digest = Digest::parse(&manifest.config.digest)?;
        let tag = reference.tagged_name();
        let repo_digest = format!("{}@{top_digest}", reference.name());

        if let Some(mut rec) = self.complete_local(&config_digest, &manifest_digest) {
            rec.repo_digests = vec![repo_digest];
            rec.pulled_at = now_secs();
            self.store.commit(rec, tag)?;
            return Ok(self.done(reference, config_digest, top_digest, 0, true));
        }

        let config_bytes = self.fetch_small_blob(reference, &oci_ref, &manifest.config, &config_digest).await?;
        let config: serde_json::Value = parse_json(&config_bytes, "image config", reference)?;
        let diff_ids = config["rootfs"]["diff_ids"].as_array().cloned().unwrap_or_default();
        if diff_ids.len() != manifest.layers.len() {
            return Err(ImageError::InvalidContent {
                what: format!("image `{reference}`"),
                detail: format!(
                    "{} layers in the manifest but {} diff ids in the config",
                    manifest.layers.len(),
                    diff_ids.len()
                ),
            });
        }
        let mut specs = Vec::new();
        for (desc, diff) in manifest.layers.iter().zip(&diff_ids) {
            specs.push(LayerSpec {
                digest: Digest::parse(&desc.digest)?,
                diff_id: Digest::parse(diff.as_str().unwrap_or_default())?,
                desc: desc.clone(),
            });
        }
        let results: Vec<(LayerRecord, u64)> =
            futures_util::stream::iter(specs.iter().map(|s| self.layer(&image, &oci_ref, s)))
                .buffered(self.opts.max_concurrent_layers.max(1))
                .try_collect()
                .await?;
        let downloaded = results.iter().map(|(_, n)| n).sum();
        self.store.write_blob(&manifest_bytes)?;
        let record = ImageRecord {
            id: config_digest.clone(),
            manifest_digest,
            repo_digests: vec![repo_digest],
            layers: results.into_iter().map(|(l, _)| l).collect(),
            created: config["created"].as_str().map(String::from),
            platform: platform_of(&config),
            pulled_at: now_secs(),
        };
        self.store.commit(record, tag)?;
        Ok(self.done(reference, config_digest, top_digest, downloaded, false))
    }

    /// The stored image with this config and manifest, if every blob and layer of it is present.
    fn complete_local(&self, config: &Digest, manifest: &Digest) -> Option<ImageRecord> {
        let rec = self.store.resolve(config.as_str()).ok()?;
        let complete =
            rec.layers.iter().all(|l| self.store.layer_dir(&l.diff_id).is_dir() && self.store.has_blob(&l.digest));
        (complete && &rec.manifest_digest == manifest && self.store.has_blob(manifest)).then_some(rec)
    }

    /// Fetches the manifest a reference names; for an index, the one for `platform` (default: the
    /// host's). Returns (manifest bytes, manifest digest, digest the reference resolved to).
    async fn resolve_manifest(
        &self,
        reference: &Reference,
        platform: Option<&Platform>,
        auth: &RegistryAuth,
    ) -> Result<(Vec<u8>, Digest, Digest)> {
        let oci_ref = reference.to_oci();
        let (top_bytes, _) = match self
            .client
            .pull_manifest_raw(&oci_ref, auth, ACCEPT)
            .await
            .map_err(|e| ImageError::from_registry(reference, e))
        {
            Ok(v) => v,
            Err(ImageError::UnknownManifest { .. }) => {
                // Registries answer MANIFEST_UNKNOWN for missing repositories too; the tag list tells.
                if let Err(e @ ImageError::UnknownImage { .. }) = self
                    .client
                    .list_tags(&oci_ref, auth, Some(1), None)
                    .await
                    .map_err(|e| ImageError::from_registry(reference, e))
                {
                    return Err(e);
                }
                return Err(ImageError::UnknownManifest { reference: reference.to_string() });
            }
            Err(e) => return Err(e),
        };
        let top_digest = Digest::of(&top_bytes);
        if let Some(pinned) = reference.digest() {
            pinned.verify(&top_digest, format!("manifest of `{reference}`"))?;
        }
        let top: serde_json::Value = parse_json(&top_bytes, "manifest", reference)?;
        if !is_index(&top) {
            return Ok((top_bytes, top_digest.clone(), top_digest));
        }
        let want = platform.cloned().unwrap_or_else(Platform::host);
        let child = pick_platform(&top, &want, reference)?;
        let child_ref = reference.with_digest(child.clone()).to_oci();
        let (bytes, _) = self
            .client
            .pull_manifest_raw(&child_ref, auth, ACCEPT)
            .await
            .map_err(|e| ImageError::from_registry(reference, e))?;
        child.verify(&Digest::of(&bytes), format!("manifest {child} of `{reference}`"))?;
        Ok((bytes, child, top_digest))
    }

    fn done(
        &self,
        reference: &Reference,
        id: Digest,
        digest: Digest,
        downloaded: u64,
        up_to_date: bool,
    ) -> PullOutcome {
        self.events.emit(Event::ImagePulled {
            image: reference.to_string(),
            digest: digest.to_string(),
            id: id.to_string(),
            downloaded,
            up_to_date,
        });
        PullOutcome { reference: reference.clone(), id, digest, downloaded, up_to_date }
    }

    async fn fetch_small_blob(
        &self,
        reference: &Reference,
        oci_ref: &oci_client::Reference,
        desc: &OciDescriptor,
        digest: &Digest,
    ) -> Result<Vec<u8>> {
        if self.store.has_blob(digest) {
            if let Ok(data) = self.store.read_blob(digest) {
                return Ok(data);
            }
        }
        let mut data = Vec::new();
        self.client.pull_blob(oci_ref, desc, &mut data).await.map_err(|e| ImageError::from_registry(reference, e))?;
        digest.verify(&Digest::of(&data), format!("config of `{reference}`"))?;
        self.store.write_blob(&data)?;
        Ok(data)
    }

    /// Makes one layer present (blob stored and unpacked); returns its record and bytes downloaded.
    async fn layer(
        &self,
        image: &str,
        oci_ref: &oci_client::Reference,
        spec: &LayerSpec,
    ) -> Result<(LayerRecord, u64)> {
        let lock = self.inflight.lock().expect("inflight lock").entry(spec.digest.clone()).or_default().clone();
        let _held = lock.lock().await;
        // Another berth process may be fetching the same layer: wait for it (the lock files stay
        // in tmp/ until garbage collection, which never runs while a pull holds the writer guard).
        let _cross_process = self.store.layer_lock(&spec.digest).await?;
        let short = spec.digest.short().to_string();
        let mut downloaded = 0;
        let cached = self.store.has_blob(&spec.digest) && self.store.layer_dir(&spec.diff_id).is_dir();
        let fresh = !self.store.has_blob(&spec.digest);
        if fresh {
            downloaded = self.download(image, oci_ref, spec).await?;
        }
        let store = self.store.clone();
        let (blob, diff) = (spec.digest.clone(), spec.diff_id.clone());
        let (unpacked_size, warnings) = tokio::task::spawn_blocking(move || store.ensure_layer(&blob, &diff, fresh))
            .await
            .map_err(|e| ImageError::Registry {
                reference: image.to_string(),
                detail: format!("unpack task failed: {e}"),
            })?
            .inspect_err(|_| {
                // A blob that does not unpack to its diff id is not trusted again.
                self.discard(&self.store.blob_path(&spec.digest));
            })?;
        for message in warnings {
            self.events.emit(Event::Warning { message: format!("{image}: layer {short}: {message}") });
        }
        self.events.emit(Event::LayerDone { image: image.to_string(), layer: short, cached });
        let record = LayerRecord {
            digest: spec.digest.clone(),
            diff_id: spec.diff_id.clone(),
            media_type: spec.desc.media_type.clone(),
            size: u64::try_from(spec.desc.size).unwrap_or(0),
            unpacked_size,
        };
        Ok((record, downloaded))
    }

    /// Streams a blob to `tmp/<hex>.partial` (resuming a previous partial download when the
    /// registry honours `Range`), verifies it, and moves it into the blob store.
    async fn download(&self, image: &str, oci_ref: &oci_client::Reference, spec: &LayerSpec) -> Result<u64> {
        let total = u64::try_from(spec.desc.size).unwrap_or(0);
        let short = spec.digest.short().to_string();
        let partial: PathBuf = self.store.tmp_dir().join(format!("{}.partial", spec.digest.hex()));
        let (mut offset, mut hasher) = resume_point(&partial, total).await?;
        self.events.emit(Event::LayerStarted { image: image.to_string(), layer: short.clone(), size: total });
        let reference = Reference::parse(image)?;
        let response = self
            .client
            .pull_blob_stream_partial(oci_ref, &spec.desc, offset, None)
            .await
            .map_err(|e| ImageError::from_registry(&reference, e))?;
        let mut stream = match response {
            BlobResponse::Partial(s) => s,
            BlobResponse::Full(s) => {
                offset = 0;
                hasher = Sha256::new();
                s
            }
        };
        let file = tokio::fs::OpenOptions::new()
            .create(true)
            .write(true)
            .append(offset > 0)
            .truncate(offset == 0)
            .open(&partial)
            .await
            .map_err(ImageError::io("create", &partial))?;
        let out = tokio::io::BufWriter::with_capacity(1 << 20, file);
        let mut blob = PartialBlob { path: partial.clone(), out, hasher, len: offset };
        self.copy_stream(image, spec, &mut stream, &mut blob).await?;
        let current = blob.len;
        let actual = Digest::from_hasher(blob.hasher);
        if let Err(e) = spec.digest.verify(&actual, format!("layer {} of `{image}`", spec.digest)) {
            self.discard(&partial);
            return Err(e);
        }
        let dest = self.store.blob_path(&spec.digest);
        tokio::fs::rename(&partial, &dest).await.map_err(ImageError::io("store blob", &dest))?;
        self.events.emit(Event::LayerProgress { image: image.to_string(), layer: short, current, total });
        Ok(current - offset)
    }

    /// Removes a downloaded file that failed its check; one that cannot be removed is named in
    /// a warning (the next pull would check it again and fail the same way).
    fn discard(&self, path: &std::path::Path) {
        match std::fs::remove_file(path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => self.events.emit(Event::Warning {
                message: format!("cannot remove `{}`, which failed its digest check: {e}", path.display()),
            }),
            _ => {}
        }
    }

    /// Appends the response body to the partial blob, hashing it and reporting progress.
    async fn copy_stream(
        &self,
        image: &str,
        spec: &LayerSpec,
        stream: &mut oci_client::client::SizedStream,
        blob: &mut PartialBlob,
    ) -> Result<()> {
        let total = u64::try_from(spec.desc.size).unwrap_or(0);
        let short = spec.digest.short().to_string();
        let partial = blob.path.as_path();
        let mut last_report = 0;
        while let Some(chunk) = stream.next().await {
            let chunk = match chunk {
                Ok(c) => c,
                // oci-client checks full (non-range) responses itself and fails the last read.
                Err(e) if e.to_string().starts_with("Invalid digest") => {
                    self.discard(partial);
                    return Err(ImageError::DigestMismatch {
                        what: format!("layer {} of `{image}`", spec.digest),
                        expected: spec.digest.to_string(),
                        actual: Digest::from_hasher(blob.hasher.clone()).to_string(),
                    });
                }
                Err(e) => {
                    return Err(ImageError::Registry {
                        reference: image.to_string(),
                        detail: format!("download of layer {short} failed: {e}"),
                    })
                }
            };
            blob.hasher.update(&chunk);
            blob.out.write_all(&chunk).await.map_err(ImageError::io("write", partial))?;
            blob.len += chunk.len() as u64;
            let current = blob.len;
            if current - last_report >= PROGRESS_STEP {
                last_report = current;
                self.events.emit(Event::LayerProgress {
                    image: image.to_string(),
                    layer: short.clone(),
                    current,
                    total,
                });
            }
        }
        blob.out.flush().await.map_err(ImageError::io("write", partial))?;
        Ok(())
    }
}

/// A download in progress: `tmp/<hex>.partial`, its writer, and the hash of what it holds.
struct PartialBlob {
    path: PathBuf,
    out: tokio::io::BufWriter<tokio::fs::File>,
    hasher: Sha256,
    len: u64,
}

/// Where a download of `partial` continues: its length (0 when missing or too long) and the hash
/// state of what it already holds.
async fn resume_point(partial: &Path, total: u64) -> Result<(u64, Sha256)> {
    let len = tokio::fs::metadata(partial).await.map(|m| m.len()).unwrap_or(0);
    if len == 0 || (total > 0 && len >= total) {
        return Ok((0, Sha256::new()));
    }
    let p = partial.to_path_buf();
    let hasher = tokio::task::spawn_blocking(move || -> std::io::Result<Sha256> {
        let mut h = Sha256::new();
        std::io::copy(&mut std::fs::File::open(&p)?, &mut h)?;
        Ok(h)
    })
    .await
    .map_err(|e| ImageError::io("read", partial)(std::io::Error::other(e)))?
    .map_err(ImageError::io("read", partial))?;
    Ok((len, hasher))
}

fn parse_json(data: &[u8], what: &str, reference: &Reference) -> Result<serde_json::Value> {
    serde_json::from_slice(data)
        .map_err(|e| ImageError::InvalidContent { what: format!("{what} of `{reference}`"), detail: e.to_string() })
}

fn is_index(v: &serde_json::Value) -> bool {
    matches!(v["mediaType"].as_str(), Some(MT_OCI_INDEX | MT_DOCKER_LIST))
        || (v["manifests"].is_array() && v["layers"].is_null())
}
