//! Pushing an image from berth's store to a registry (`berth push`): its layer blobs, its config
//! and its manifest exactly as stored, so the pushed image has the same digest. Plain HTTP is
//! used for loopback registries and those in `BERTH_INSECURE_REGISTRIES`; credentials come from
//! `berth login` (the Docker config).

use oci_client::client::{ClientConfig, ClientProtocol};

use super::auth::registry_auth;
use super::{Digest, ImageError, ImageStore, Reference, Result};
use crate::events::{Event, EventSink};

/// Pushes image `source` (a name or id in the store) as `target`; returns the manifest digest.
pub async fn push(store: &ImageStore, source: &str, target: &Reference, events: &dyn EventSink) -> Result<Digest> {
    let rec = store.resolve(source)?;
    let mut insecure: Vec<String> = std::env::var("BERTH_INSECURE_REGISTRIES")
        .map(|v| v.split(',').map(str::trim).filter(|s| !s.is_empty()).map(String::from).collect())
        .unwrap_or_default();
    if target.is_loopback() {
        insecure.push(target.registry().to_string());
    }
    let client = oci_client::Client::new(ClientConfig {
        protocol: ClientProtocol::HttpsExcept(insecure),
        connect_timeout: Some(std::time::Duration::from_secs(15)),
        ..Default::default()
    });
    let auth = registry_auth(target.registry())?;
    let oci_ref = target.to_oci();
    let fail = |e| ImageError::from_registry(target, e);
    client.auth(&oci_ref, &auth, oci_client::RegistryOperation::Push).await.map_err(fail)?;
    events.emit(Event::PushStarted { image: target.to_string() });
    for layer in &rec.layers {
        let data = std::fs::read(store.blob_path(&layer.digest))
            .map_err(ImageError::io("read blob", store.blob_path(&layer.digest)))?;
        client.push_blob(&oci_ref, &data, layer.digest.as_str()).await.map_err(fail)?;
    }
    let config = store.read_blob(&rec.id)?;
    client.push_blob(&oci_ref, &config, rec.id.as_str()).await.map_err(fail)?;
    let manifest = store.read_blob(&rec.manifest_digest)?;
    let media_type = serde_json::from_slice::<serde_json::Value>(&manifest)
        .ok()
        .and_then(|m| m["mediaType"].as_str().map(String::from))
        .unwrap_or_else(|| "application/vnd.oci.image.manifest.v1+json".to_string());
    let content_type = http::HeaderValue::from_str(&media_type)
        .map_err(|e| ImageError::InvalidContent { what: format!("manifest of `{source}`"), detail: e.to_string() })?;
    client.push_manifest_raw(&oci_ref, manifest, content_type).await.map_err(fail)?;
    events.emit(Event::ImagePushed { image: target.to_string(), digest: rec.manifest_digest.to_string() });
    Ok(rec.manifest_digest)
}
