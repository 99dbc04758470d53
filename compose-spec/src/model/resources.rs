//! Top-level networks, volumes, secrets and configs, and `include` entries.

use serde::{Deserialize, Serialize};

use super::*;

/// A top-level network.
#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Network {
    pub name: Option<String>,
    pub driver: Option<String>,
    #[serde(skip_serializing_if = "StrMap::is_empty")]
    pub driver_opts: StrMap,
    pub ipam: Option<Ipam>,
    pub external: Option<bool>,
    pub internal: Option<bool>,
    pub attachable: Option<bool>,
    #[serde(skip_serializing_if = "StrMap::is_empty")]
    pub labels: StrMap,
    pub enable_ipv4: Option<bool>,
    pub enable_ipv6: Option<bool>,
    #[serde(rename = "__ext", default, skip_serializing_if = "Extensions::is_empty")]
    pub extensions: Extensions,
}

/// `ipam:`.
#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Ipam {
    pub driver: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub config: Vec<IpamPool>,
    #[serde(skip_serializing_if = "StrMap::is_empty")]
    pub options: StrMap,
}

/// One `ipam.config` entry.
#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct IpamPool {
    pub subnet: Option<String>,
    pub gateway: Option<String>,
    pub ip_range: Option<String>,
    #[serde(skip_serializing_if = "StrMap::is_empty")]
    pub aux_addresses: StrMap,
}

/// A top-level volume.
#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Volume {
    pub name: Option<String>,
    pub driver: Option<String>,
    #[serde(skip_serializing_if = "StrMap::is_empty")]
    pub driver_opts: StrMap,
    pub external: Option<bool>,
    #[serde(skip_serializing_if = "StrMap::is_empty")]
    pub labels: StrMap,
    #[serde(rename = "__ext", default, skip_serializing_if = "Extensions::is_empty")]
    pub extensions: Extensions,
}

/// A top-level secret or config.
#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Secret {
    pub name: Option<String>,
    pub file: Option<String>,
    pub environment: Option<String>,
    pub content: Option<String>,
    pub external: Option<bool>,
    #[serde(skip_serializing_if = "StrMap::is_empty")]
    pub labels: StrMap,
    pub driver: Option<String>,
    #[serde(skip_serializing_if = "StrMap::is_empty")]
    pub driver_opts: StrMap,
    pub template_driver: Option<String>,
    #[serde(rename = "__ext", default, skip_serializing_if = "Extensions::is_empty")]
    pub extensions: Extensions,
}

/// An `include` entry (long form; the short form is a path).
#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Include {
    /// The compose file(s) to include.
    #[serde(deserialize_with = "string_or_list")]
    pub path: Vec<String>,
    /// Where the included project's relative paths resolve (default: the first file's directory).
    pub project_directory: Option<String>,
    /// Env files for the included project's interpolation.
    #[serde(deserialize_with = "string_or_list", skip_serializing_if = "Vec::is_empty")]
    pub env_file: Vec<String>,
}

/// Reads a string or a list of strings as a list.
pub fn string_or_list<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    struct V;
    impl<'de> serde::de::Visitor<'de> for V {
        type Value = Vec<String>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a string or a list of strings")
        }
        fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Vec<String>, E> {
            Ok(vec![v.to_string()])
        }
        fn visit_unit<E: serde::de::Error>(self) -> Result<Vec<String>, E> {
            Ok(Vec::new())
        }
        fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<String>, A::Error> {
            let mut out = Vec::new();
            while let Some(s) = seq.next_element::<String>()? {
                out.push(s);
            }
            Ok(out)
        }
    }
    d.deserialize_any(V)
}
