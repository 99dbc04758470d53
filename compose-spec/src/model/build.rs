//! `build:`: how a service's image is built.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::*;

/// `build:`.
#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Build {
    pub context: Option<String>,
    pub dockerfile: Option<String>,
    pub dockerfile_inline: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub entitlements: Vec<String>,
    #[serde(skip_serializing_if = "OptMap::is_empty")]
    pub args: OptMap,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ssh: Vec<String>,
    #[serde(skip_serializing_if = "StrMap::is_empty")]
    pub labels: StrMap,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub cache_from: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub cache_to: Vec<String>,
    pub no_cache: Option<bool>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub no_cache_filter: Vec<String>,
    #[serde(skip_serializing_if = "StrMap::is_empty")]
    pub additional_contexts: StrMap,
    pub network: Option<String>,
    pub provenance: Option<serde_json::Value>,
    pub sbom: Option<serde_json::Value>,
    pub pull: Option<bool>,
    pub target: Option<String>,
    pub shm_size: Option<Bytes>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub extra_hosts: Vec<String>,
    pub isolation: Option<String>,
    pub privileged: Option<bool>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<FileRef>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub ulimits: BTreeMap<String, Ulimit>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub platforms: Vec<String>,
    #[serde(rename = "__ext", default, skip_serializing_if = "Extensions::is_empty")]
    pub extensions: Extensions,
}

/// A `cache_from`/`cache_to` entry, `type=local,src=DIR` or `user/app:cache` (a registry
/// reference, as Compose reads a bare value).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CacheEntry<'a> {
    /// `type=` (default `registry`).
    pub kind: &'a str,
    /// The other `key=value` fields.
    pub fields: BTreeMap<&'a str, &'a str>,
}

impl<'a> CacheEntry<'a> {
    /// Reads one entry.
    pub fn parse(entry: &'a str) -> CacheEntry<'a> {
        if !entry.contains('=') {
            return CacheEntry { kind: "registry", fields: BTreeMap::from([("ref", entry)]) };
        }
        let mut fields: BTreeMap<&str, &str> = entry.split(',').filter_map(|f| f.split_once('=')).collect();
        let kind = fields.remove("type").unwrap_or("registry");
        CacheEntry { kind, fields }
    }
}

#[cfg(test)]
mod cache_entry_tests {
    use super::CacheEntry;

    #[test]
    fn entries_are_typed() {
        let local = CacheEntry::parse("type=local,src=/c,mode=max");
        assert_eq!((local.kind, local.fields["src"], local.fields["mode"]), ("local", "/c", "max"));
        assert_eq!(CacheEntry::parse("user/app:cache").kind, "registry");
        assert_eq!(CacheEntry::parse("ref=user/app:cache").kind, "registry");
        assert_eq!(CacheEntry::parse("type=gha").kind, "gha");
    }
}
