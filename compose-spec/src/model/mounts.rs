//! A service's mounts: volumes, binds, tmpfs and image mounts, and secret/config references.

use serde::{Deserialize, Serialize};

use super::*;

/// A `secrets`/`configs` entry of a service.
#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct FileRef {
    pub source: String,
    pub target: Option<String>,
    pub uid: Option<String>,
    pub gid: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", with = "octal_mode")]
    pub mode: Option<u32>,
}

mod octal_mode {
    use std::fmt;

    use serde::{de, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &Option<u32>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(m) => s.collect_str(&format_args!("0{m:o}")),
            None => s.serialize_none(),
        }
    }

    /// Integers are taken as they are (YAML's `0440` is already octal); strings are read
    /// as octal, like a mode written by a person.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
        struct V;
        impl<'de> de::Visitor<'de> for V {
            type Value = Option<u32>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a file mode such as 0440")
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(None)
            }
            fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(None)
            }
            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
                d.deserialize_any(V)
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                u32::try_from(v)
                    .ok()
                    .filter(|m| *m <= 0o7777)
                    .map(Some)
                    .ok_or_else(|| E::custom(format!("invalid file mode {v}")))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                self.visit_i64(v as i64)
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                let s = v.trim().trim_start_matches("0o");
                u32::from_str_radix(s, 8)
                    .ok()
                    .filter(|m| *m <= 0o7777)
                    .map(Some)
                    .ok_or_else(|| E::custom(format!("invalid file mode {v:?}: use an octal number like 0440")))
            }
        }
        d.deserialize_option(V)
    }
}

/// The kind of a service mount.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VolumeType {
    /// A named or anonymous volume.
    #[default]
    Volume,
    /// A host path.
    Bind,
    /// A tmpfs.
    Tmpfs,
    /// An image's content.
    Image,
    /// A named pipe (Windows; accepted, not supported).
    Npipe,
    /// A cluster volume (accepted, not supported).
    Cluster,
}

/// A service mount, long form.
#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ServiceVolume {
    #[serde(rename = "type")]
    pub kind: VolumeType,
    pub source: Option<String>,
    pub target: String,
    pub read_only: Option<bool>,
    pub consistency: Option<String>,
    pub bind: Option<BindOptions>,
    pub volume: Option<VolumeOptions>,
    pub tmpfs: Option<TmpfsOptions>,
    pub image: Option<ImageOptions>,
    #[serde(rename = "__ext", default, skip_serializing_if = "Extensions::is_empty")]
    pub extensions: Extensions,
}

/// Bind mount options.
#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct BindOptions {
    pub propagation: Option<String>,
    pub create_host_path: Option<bool>,
    pub recursive: Option<String>,
    pub selinux: Option<String>,
}

/// Volume mount options.
#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct VolumeOptions {
    pub nocopy: Option<bool>,
    pub subpath: Option<String>,
}

/// tmpfs mount options.
#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TmpfsOptions {
    pub size: Option<Bytes>,
    #[serde(skip_serializing_if = "Option::is_none", with = "plain_mode")]
    pub mode: Option<u32>,
}

mod plain_mode {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &Option<u32>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(m) => s.serialize_u32(*m),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
        Option::<u32>::deserialize(d)
    }
}

/// Image mount options.
#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ImageOptions {
    pub subpath: Option<String>,
}
