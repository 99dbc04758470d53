//! What `berth check` learns from an image's config: its user, whether it has a health check,
//! and the digest to pin it by.

use std::path::Path;

use crate::image::ImageStore;

/// The facts about one image that the rules use.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ImageFacts {
    /// The config's `User` (empty: root).
    pub user: String,
    /// Whether the config has a health check (other than `NONE`).
    pub healthcheck: bool,
    /// `name@sha256:...` to pin the image by, when known.
    pub pinned: Option<String>,
}

/// Where `berth check` looks images up.
pub trait Images {
    /// The facts about the image `name`, `None` when it is not there.
    fn facts(&self, name: &str) -> Option<ImageFacts>;
}

/// No image is known: every image check is skipped.
pub struct NoImages;

impl Images for NoImages {
    fn facts(&self, _: &str) -> Option<ImageFacts> {
        None
    }
}

/// berth's image store, when there is one (it is not created for a check).
pub struct StoreImages {
    store: Option<ImageStore>,
}

impl StoreImages {
    /// The store under `state_root`, if it exists and can be opened.
    pub fn open(state_root: &Path) -> StoreImages {
        let store = if state_root.join("images").is_dir() { ImageStore::open(state_root).ok() } else { None };
        StoreImages { store }
    }
}

impl Images for StoreImages {
    fn facts(&self, name: &str) -> Option<ImageFacts> {
        let store = self.store.as_ref()?;
        let rec = store.resolve(name).ok()?;
        let config = store.config_of(&rec, name).ok()?;
        let mut facts = facts_of(&config);
        // The digest it was pulled by (an index's works on every platform), else its manifest's.
        let digest = rec.repo_digests.first().and_then(|d| d.split_once('@')).map(|(_, d)| d.to_string());
        let digest = digest.unwrap_or_else(|| rec.manifest_digest.as_str().to_string());
        facts.pinned = Some(format!("{}@{digest}", untagged(name)));
        Some(facts)
    }
}

/// The name as the user wrote it, without its tag or digest.
pub(super) fn untagged(written: &str) -> &str {
    let last_slash = written.rfind('/').map_or(0, |i| i + 1);
    match written[last_slash..].find([':', '@']) {
        Some(i) => &written[..last_slash + i],
        None => written,
    }
}

/// The user and health check of an image config (the JSON of the config blob).
pub fn facts_of(config: &serde_json::Value) -> ImageFacts {
    let user = config.pointer("/config/User").and_then(|u| u.as_str()).unwrap_or_default().to_string();
    let healthcheck = crate::supervise::health::image_healthcheck(config)
        .is_some_and(|h| !matches!(h.test, berth_compose::resolved::HealthTest::None));
    ImageFacts { user, healthcheck, pinned: None }
}

#[cfg(test)]
mod tests {
    use super::{facts_of, untagged};

    #[test]
    fn an_image_config_gives_its_user_and_health_check() {
        let config = serde_json::json!({"config": {"User": "app", "Healthcheck": {"Test": ["CMD", "true"]}}});
        let facts = facts_of(&config);
        assert_eq!((facts.user.as_str(), facts.healthcheck), ("app", true));
        let none = facts_of(&serde_json::json!({"config": {"Healthcheck": {"Test": ["NONE"]}}}));
        assert_eq!((none.user.as_str(), none.healthcheck), ("", false));
    }

    #[test]
    fn names_lose_their_tag_but_keep_their_registry() {
        assert_eq!(untagged("localhost:5000/app:1.2"), "localhost:5000/app");
        assert_eq!(untagged("postgres"), "postgres");
        assert_eq!(untagged("ghcr.io/o/app@sha256:abc"), "ghcr.io/o/app");
    }
}
