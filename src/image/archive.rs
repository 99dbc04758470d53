//! `berth image load` and `berth image save`: OCI image-layout archives and `docker save` tarballs.
//!
//! An OCI archive is a tar of an image layout: `oci-layout`, `index.json` (descriptors whose
//! annotations `io.containerd.image.name` / `org.opencontainers.image.ref.name` name the image) and
//! `blobs/sha256/<hex>`. A `docker save` tarball has `manifest.json`
//! (`[{"Config": "<file>", "RepoTags": [...], "Layers": ["<dir>/layer.tar", ...]}]`), the config
//! file and uncompressed layer tars; older Docker versions deduplicate layers with symlinks between
//! `<dir>/layer.tar` files. Docker 25+ writes both forms in one archive; the OCI index wins then.
//! The archive is first extracted (regular files only, symlinks resolved inside it) into the
//! store's `tmp/`, then every blob is hashed and moved into the store and every layer unpacked and
//! checked against its diff id, exactly like a pull.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{self, BufReader, Read};
use std::path::{Component, Path, PathBuf};

use serde_json::{json, Value};

use super::digest::digest_file;
use super::platform::{pick_platform, platform_of};
use super::store::now_secs;
use super::unpack::safe_rel_path;
use super::{Digest, ImageError, ImageRecord, ImageStore, LayerRecord, Platform, Reference, Result};
use crate::events::{Event, EventSink};

const MT_OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const MT_DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
const ANN_CONTAINERD_NAME: &str = "io.containerd.image.name";
const ANN_REF_NAME: &str = "org.opencontainers.image.ref.name";

fn bad(path: &Path, detail: impl Into<String>) -> ImageError {
    ImageError::InvalidArchive { path: path.to_path_buf(), detail: detail.into() }
}

/// Loads every image of the archive at `path`; returns their names (or ids when untagged).
pub fn load_archive(store: &ImageStore, path: &Path, events: &dyn EventSink) -> Result<Vec<String>> {
    let _guard = store.writer_guard()?;
    let tmp = tempfile::Builder::new()
        .prefix("load-")
        .tempdir_in(store.tmp_dir())
        .map_err(ImageError::io("create temp directory in", store.tmp_dir()))?;
    extract(path, tmp.path())?;
    let dir = tmp.path();
    if dir.join("index.json").is_file() {
        load_oci(store, path, dir, events)
    } else if dir.join("manifest.json").is_file() {
        load_docker(store, path, dir)
    } else {
        Err(bad(path, "neither `index.json` (OCI layout) nor `manifest.json` (docker save) found"))
    }
}

/// Extracts regular files and directories; symlinks are replaced by hard links to their target
/// inside the archive (or rejected).
fn extract(archive: &Path, dest: &Path) -> Result<()> {
    let mut f = File::open(archive).map_err(ImageError::io("open", archive))?;
    let mut magic = [0u8; 2];
    let gz = f.read_exact(&mut magic).is_ok() && magic == [0x1f, 0x8b];
    let f = File::open(archive).map_err(ImageError::io("open", archive))?;
    let reader: Box<dyn Read> =
        if gz { Box::new(flate2::read::MultiGzDecoder::new(BufReader::new(f))) } else { Box::new(BufReader::new(f)) };
    let mut ar = tar::Archive::new(reader);
    let mut links = Vec::new();
    for entry in ar.entries().map_err(ImageError::io("read", archive))? {
        let mut entry = entry.map_err(ImageError::io("read", archive))?;
        let raw = entry.path().map_err(ImageError::io("read", archive))?.into_owned();
        let rel = safe_rel_path(&raw)?;
        if rel.as_os_str().is_empty() {
            continue;
        }
        let out = dest.join(&rel);
        match entry.header().entry_type() {
            tar::EntryType::Directory => fs::create_dir_all(&out).map_err(ImageError::io("create directory", &out))?,
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                if let Some(p) = out.parent() {
                    fs::create_dir_all(p).map_err(ImageError::io("create directory", p))?;
                }
                let mut file = File::create(&out).map_err(ImageError::io("create", &out))?;
                io::copy(&mut entry, &mut file).map_err(ImageError::io("write", &out))?;
            }
            tar::EntryType::Symlink | tar::EntryType::Link => {
                let target =
                    entry.link_name().map_err(ImageError::io("read", archive))?.unwrap_or_default().into_owned();
                let is_symlink = entry.header().entry_type() == tar::EntryType::Symlink;
                links.push((rel, target, is_symlink));
            }
            _ => {}
        }
    }
    for (rel, target, is_symlink) in links {
        // Symlink targets are relative to the link's directory, hard-link targets to the root.
        let base = if is_symlink { rel.parent().unwrap_or(Path::new("")).to_path_buf() } else { PathBuf::new() };
        let resolved = normalize(&base.join(&target))
            .ok_or_else(|| bad(archive, format!("link `{}` points outside the archive", rel.display())))?;
        let out = dest.join(&rel);
        if let Some(p) = out.parent() {
            fs::create_dir_all(p).map_err(ImageError::io("create directory", p))?;
        }
        fs::hard_link(dest.join(&resolved), &out).map_err(ImageError::io("link", &out))?;
    }
    Ok(())
}

/// Lexically resolves `.` and `..`; None when the path leaves the root or is absolute.
fn normalize(p: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    return None;
                }
            }
            _ => return None,
        }
    }
    Some(out)
}

fn read_json(path: &Path, archive: &Path) -> Result<Value> {
    let data = fs::read(path).map_err(ImageError::io("read", path))?;
    serde_json::from_slice(&data).map_err(|e| {
        bad(archive, format!("`{}` is not valid JSON: {e}", path.file_name().unwrap_or_default().to_string_lossy()))
    })
}

fn layout_blob(dir: &Path, d: &Digest) -> PathBuf {
    dir.join("blobs/sha256").join(d.hex())
}

/// Moves `file` into the store if its digest is `expected` (or just computes it when None).
fn take_blob(store: &ImageStore, file: &Path, expected: Option<&Digest>, archive: &Path) -> Result<(Digest, u64)> {
    if let Some(d) = expected {
        if store.has_blob(d) {
            return Ok((d.clone(), fs::metadata(store.blob_path(d)).map(|m| m.len()).unwrap_or(0)));
        }
    }
    if !file.is_file() {
        return Err(bad(archive, format!("missing blob `{}`", file.display())));
    }
    store.import_blob_file(file, expected)
}

fn load_oci(store: &ImageStore, archive: &Path, dir: &Path, events: &dyn EventSink) -> Result<Vec<String>> {
    let index = read_json(&dir.join("index.json"), archive)?;
    let mut loaded = Vec::new();
    for desc in index["manifests"].as_array().cloned().unwrap_or_default() {
        let digest = Digest::parse(desc["digest"].as_str().unwrap_or_default())?;
        let ann = &desc["annotations"];
        let name = ann[ANN_CONTAINERD_NAME].as_str().or(ann[ANN_REF_NAME].as_str()).filter(|n| n.contains([':', '/']));
        let reference = name.map(Reference::parse).transpose()?;
        let id = import_oci_manifest(store, archive, dir, &digest, reference.as_ref())?;
        match reference.as_ref().and_then(Reference::tagged_name) {
            Some(t) => loaded.push(t),
            None => {
                events.emit(Event::Warning {
                    message: format!(
                        "image {} in `{}` has no name; it is loaded untagged",
                        id.short(),
                        archive.display()
                    ),
                });
                loaded.push(id.to_string());
            }
        }
    }
    Ok(loaded)
}

fn import_oci_manifest(
    store: &ImageStore,
    archive: &Path,
    dir: &Path,
    digest: &Digest,
    reference: Option<&Reference>,
) -> Result<Digest> {
    let path = layout_blob(dir, digest);
    let bytes = fs::read(&path).map_err(|_| bad(archive, format!("missing blob {digest}")))?;
    digest.verify(&Digest::of(&bytes), format!("manifest {digest} in `{}`", archive.display()))?;
    let v: Value = serde_json::from_slice(&bytes).map_err(|e| bad(archive, format!("manifest {digest}: {e}")))?;
    if v["manifests"].is_array() {
        let child = pick_platform(&v, &Platform::host(), &archive.display())?;
        return import_oci_manifest(store, archive, dir, &child, reference);
    }
    let config_digest = Digest::parse(v["config"]["digest"].as_str().unwrap_or_default())?;
    take_blob(store, &layout_blob(dir, &config_digest), Some(&config_digest), archive)?;
    let config: Value =
        serde_json::from_slice(&store.read_blob(&config_digest)?).map_err(|e| bad(archive, format!("config: {e}")))?;
    let diff_ids = config["rootfs"]["diff_ids"].as_array().cloned().unwrap_or_default();
    let descs = v["layers"].as_array().cloned().unwrap_or_default();
    if descs.len() != diff_ids.len() {
        return Err(bad(
            archive,
            format!("manifest {digest} has {} layers but its config {} diff ids", descs.len(), diff_ids.len()),
        ));
    }
    let mut layers = Vec::new();
    for (desc, diff) in descs.iter().zip(&diff_ids) {
        let ld = Digest::parse(desc["digest"].as_str().unwrap_or_default())?;
        let diff_id = Digest::parse(diff.as_str().unwrap_or_default())?;
        let (_, size) = take_blob(store, &layout_blob(dir, &ld), Some(&ld), archive)?;
        let (unpacked_size, _) = store.ensure_layer(&ld, &diff_id, false)?;
        layers.push(LayerRecord {
            digest: ld,
            diff_id,
            media_type: desc["mediaType"].as_str().unwrap_or_default().to_string(),
            size,
            unpacked_size,
        });
    }
    store.write_blob(&bytes)?;
    let record = ImageRecord {
        id: config_digest.clone(),
        manifest_digest: digest.clone(),
        repo_digests: reference.map(|r| format!("{}@{digest}", r.name())).into_iter().collect(),
        layers,
        created: config["created"].as_str().map(String::from),
        platform: platform_of(&config),
        pulled_at: now_secs(),
    };
    store.commit(record, reference.and_then(Reference::tagged_name))?;
    Ok(config_digest)
}

fn load_docker(store: &ImageStore, archive: &Path, dir: &Path) -> Result<Vec<String>> {
    let manifest = read_json(&dir.join("manifest.json"), archive)?;
    let mut loaded = Vec::new();
    // Files already moved into the store, by path: images may share layer files.
    let mut taken: HashMap<PathBuf, (Digest, u64)> = HashMap::new();
    let mut take = |path: PathBuf| -> Result<(Digest, u64)> {
        if let Some(v) = taken.get(&path) {
            return Ok(v.clone());
        }
        let (d, _) = digest_file(&path)?;
        let v = take_blob(store, &path, Some(&d), archive)?;
        taken.insert(path, v.clone());
        Ok(v)
    };
    for item in manifest.as_array().cloned().unwrap_or_default() {
        let config_file =
            item["Config"].as_str().ok_or_else(|| bad(archive, "manifest.json entry without `Config`"))?;
        let config_path = dir.join(safe_rel_path(Path::new(config_file))?);
        let (config_digest, config_size) = take(config_path)?;
        let config: Value = serde_json::from_slice(&store.read_blob(&config_digest)?)
            .map_err(|e| bad(archive, format!("config: {e}")))?;
        let diff_ids = config["rootfs"]["diff_ids"].as_array().cloned().unwrap_or_default();
        let files = item["Layers"].as_array().cloned().unwrap_or_default();
        if files.len() != diff_ids.len() {
            return Err(bad(
                archive,
                format!("{} layers listed but the config has {} diff ids", files.len(), diff_ids.len()),
            ));
        }
        let (layers, descs) = docker_layers(store, dir, &files, &diff_ids, &mut take)?;
        let manifest_bytes = serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": MT_DOCKER_MANIFEST,
            "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "size": config_size, "digest": config_digest},
            "layers": descs,
        }))
        .expect("json value serializes");
        let manifest_digest = store.write_blob(&manifest_bytes)?;
        let tags: Vec<Reference> = item["RepoTags"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(Reference::parse)
            .collect::<Result<_>>()?;
        let record = ImageRecord {
            id: config_digest.clone(),
            manifest_digest,
            repo_digests: Vec::new(),
            layers,
            created: config["created"].as_str().map(String::from),
            platform: platform_of(&config),
            pulled_at: now_secs(),
        };
        if tags.is_empty() {
            store.commit(record.clone(), None)?;
            loaded.push(config_digest.to_string());
        }
        for t in tags {
            store.commit(record.clone(), t.tagged_name())?;
            loaded.extend(t.tagged_name());
        }
    }
    Ok(loaded)
}

/// Stores and unpacks the layer files of one `docker save` image; returns the layer records and
/// the manifest descriptors for them.
fn docker_layers(
    store: &ImageStore,
    dir: &Path,
    files: &[Value],
    diff_ids: &[Value],
    take: &mut dyn FnMut(PathBuf) -> Result<(Digest, u64)>,
) -> Result<(Vec<LayerRecord>, Vec<Value>)> {
    let mut layers = Vec::new();
    let mut descs = Vec::new();
    for (file, diff) in files.iter().zip(diff_ids) {
        let (ld, size) = take(dir.join(safe_rel_path(Path::new(file.as_str().unwrap_or_default()))?))?;
        let diff_id = Digest::parse(diff.as_str().unwrap_or_default())?;
        let (unpacked_size, _) = store.ensure_layer(&ld, &diff_id, false)?;
        let media_type = if ld == diff_id {
            "application/vnd.docker.image.rootfs.diff.tar"
        } else {
            "application/vnd.docker.image.rootfs.diff.tar.gzip"
        };
        descs.push(json!({"mediaType": media_type, "size": size, "digest": ld}));
        layers.push(LayerRecord { digest: ld, diff_id, media_type: media_type.into(), size, unpacked_size });
    }
    Ok((layers, descs))
}

/// Writes the named images (references or ids) to `out` as an OCI archive. Each tag of an image
/// given by id, or the given tag, is named in `index.json`.
pub fn save_archive(store: &ImageStore, names: &[String], out: &Path) -> Result<()> {
    let dir = out.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let tmp = tempfile::NamedTempFile::new_in(dir).map_err(ImageError::io("create temp file in", dir))?;
    let mut builder = tar::Builder::new(io::BufWriter::new(tmp.reopen().map_err(ImageError::io("open", tmp.path()))?));
    let mut entries = Vec::new();
    let mut blobs: Vec<Digest> = Vec::new();
    for name in names {
        let rec = store.resolve(name)?;
        let manifest = store.manifest_bytes(&rec)?;
        let mt = serde_json::from_slice::<Value>(&manifest)
            .ok()
            .and_then(|v| v["mediaType"].as_str().map(String::from))
            .unwrap_or(MT_OCI_MANIFEST.into());
        let tags = match Reference::parse(name).ok().and_then(|r| r.tagged_name()) {
            Some(t) if store.tags_of(&rec.id)?.contains(&t) => vec![t],
            _ => store.tags_of(&rec.id)?,
        };
        let desc = |ann: Value| json!({"mediaType": mt, "digest": rec.manifest_digest, "size": manifest.len(), "annotations": ann});
        if tags.is_empty() {
            entries.push(desc(json!({})));
        }
        for t in tags {
            let tag = t.rsplit_once(':').map(|(_, t)| t).unwrap_or("latest");
            entries.push(desc(json!({ANN_CONTAINERD_NAME: t, ANN_REF_NAME: tag})));
        }
        for d in std::iter::once(&rec.manifest_digest)
            .chain(std::iter::once(&rec.id))
            .chain(rec.layers.iter().map(|l| &l.digest))
        {
            if !blobs.contains(d) {
                blobs.push(d.clone());
            }
        }
    }
    let index = serde_json::to_vec(
        &json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": entries}),
    )
    .expect("json value serializes");
    let w = |e: io::Error| ImageError::io("write", out)(e);
    append_bytes(&mut builder, "oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#).map_err(w)?;
    append_bytes(&mut builder, "index.json", &index).map_err(w)?;
    for d in blobs {
        let path = store.blob_path(&d);
        let mut f = File::open(&path).map_err(ImageError::io("open blob", &path))?;
        builder.append_file(format!("blobs/sha256/{}", d.hex()), &mut f).map_err(w)?;
    }
    builder.into_inner().map_err(w)?.into_inner().map_err(|e| w(e.into_error()))?;
    tmp.persist(out).map_err(|e| ImageError::io("write", out)(e.error))?;
    Ok(())
}

fn append_bytes<W: io::Write>(b: &mut tar::Builder<W>, name: &str, data: &[u8]) -> io::Result<()> {
    let mut h = tar::Header::new_ustar();
    h.set_size(data.len() as u64);
    h.set_mode(0o644);
    h.set_mtime(0);
    b.append_data(&mut h, name, data)
}
