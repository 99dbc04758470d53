//! A new image made here (by a build or a commit): its config blob, an OCI manifest over its
//! layers, and its record in the index, tagged with the names asked for.

use super::{Digest, ImageError, ImageRecord, ImageStore, LayerRecord, Reference, Result};

/// What a new image is made of.
#[derive(Debug, Clone)]
pub struct NewImage<'a> {
    /// The whole config blob (`created`, `architecture`, `os`, `config`, `rootfs`, `history`).
    pub config: &'a serde_json::Value,
    /// Its layers, bottom first (the same as the config's `rootfs.diff_ids`).
    pub layers: &'a [LayerRecord],
    /// `os/arch[/variant]`.
    pub platform: String,
    /// Names to tag it with (`name[:tag]`; none leaves it untagged).
    pub tags: &'a [String],
    /// Seconds since the epoch it counts as pulled at.
    pub now: u64,
}

impl ImageStore {
    /// Writes `image`'s config and manifest blobs, records it and tags it; returns its id.
    pub fn write_image(&self, image: &NewImage<'_>) -> Result<Digest> {
        let tags = image
            .tags
            .iter()
            .map(|t| {
                let r = Reference::parse(t)?;
                Ok(r.tagged_name().unwrap_or_else(|| r.to_string()))
            })
            .collect::<Result<Vec<String>>>()?;
        let invalid =
            |e: serde_json::Error| ImageError::InvalidContent { what: "new image".into(), detail: e.to_string() };
        let config_bytes = serde_json::to_vec(image.config).map_err(invalid)?;
        let id = self.write_blob(&config_bytes)?;
        let manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": id.to_string(), "size": config_bytes.len()},
            "layers": image.layers.iter().map(|l| serde_json::json!({"mediaType": l.media_type, "digest": l.digest.to_string(), "size": l.size})).collect::<Vec<_>>(),
        });
        let manifest_digest = self.write_blob(&serde_json::to_vec(&manifest).map_err(invalid)?)?;
        let record = ImageRecord {
            id: id.clone(),
            manifest_digest,
            repo_digests: Vec::new(),
            layers: image.layers.to_vec(),
            created: image.config.get("created").and_then(|c| c.as_str()).map(str::to_string),
            platform: image.platform.clone(),
            pulled_at: image.now,
        };
        if tags.is_empty() {
            self.commit(record.clone(), None)?;
        }
        for tag in tags {
            self.commit(record.clone(), Some(tag))?;
        }
        Ok(id)
    }
}
