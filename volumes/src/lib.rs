//! Named volumes, bind mounts, tmpfs, secrets and configs: where container data lives on the
//! host, and the mount list a container's bundle is built from.
//!
//! - [`store`]: named and anonymous volumes under the state root (`volumes/<name>/_data` plus
//!   a metadata file), the local driver's `driver_opts` (`type`, `o`, `device`), copy-up of
//!   image content into a new volume, and removal that refuses while a container uses one.
//! - [`bind`]: checks and preparation of bind mounts (`create_host_path`, propagation).
//! - [`secrets`]: a per-container tmpfs holding secret and config files with their owner and
//!   mode, so their bytes never land on disk.
//! - [`Mount`]: the mounts a container gets, in berth's own words; the runtime turns them
//!   into OCI mounts. Each says where it comes from ([`Origin`]), so that another container's
//!   `volumes_from` can take over the volumes and binds of a container from its stored mounts.

pub mod bind;
pub mod copy;
pub mod error;
pub mod secrets;
pub mod store;

use serde::{Deserialize, Serialize};

pub use error::{Error, Result};

/// One mount for a container, before it becomes an OCI mount.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mount {
    /// Host path, or `tmpfs` for a tmpfs.
    pub source: String,
    /// Path in the container.
    pub destination: String,
    /// `bind` or `tmpfs`.
    pub kind: MountKind,
    /// Mount options (`ro`, `rbind`, `rprivate`, `size=...`, `mode=...`, ...).
    pub options: Vec<String>,
    /// What the mount is for.
    #[serde(default)]
    pub origin: Origin,
}

/// Where a [`Mount`] comes from. `volumes_from` takes over a container's [`Origin::Volume`]
/// and [`Origin::Bind`] mounts, as Docker does; the others belong to the container alone.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Origin {
    /// The named or anonymous volume of this name (or a `subpath` of it).
    Volume(String),
    /// A host path.
    Bind,
    /// Made for this container alone: a tmpfs, a secret or a config file.
    #[default]
    Private,
}

/// The kind of a [`Mount`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MountKind {
    /// A bind mount of a host path.
    Bind,
    /// A fresh tmpfs.
    Tmpfs,
}

impl Mount {
    /// A tmpfs at `destination` with optional size (bytes) and mode.
    pub fn tmpfs(destination: &str, size: Option<i64>, mode: Option<u32>) -> Mount {
        let mut options = vec!["nosuid".to_string(), "nodev".to_string(), "noexec".to_string()];
        if let Some(s) = size {
            options.push(format!("size={s}"));
        }
        if let Some(m) = mode {
            options.push(format!("mode={m:o}"));
        }
        Mount {
            source: "tmpfs".into(),
            destination: destination.into(),
            kind: MountKind::Tmpfs,
            options,
            origin: Origin::Private,
        }
    }

    /// The same mount made read-only (for `volumes_from` with `:ro`).
    pub fn read_only(mut self) -> Mount {
        if !self.options.iter().any(|o| o == "ro") {
            self.options.retain(|o| o != "rw");
            self.options.push("ro".into());
        }
        self
    }

    /// Whether the mount is read-only.
    pub fn is_read_only(&self) -> bool {
        self.options.iter().any(|o| o == "ro")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mounts_keep_their_origin_through_json_and_become_read_only() {
        let m = Mount {
            source: "/v/_data".into(),
            destination: "/data".into(),
            kind: MountKind::Bind,
            options: vec!["rbind".into(), "rw".into(), "rprivate".into()],
            origin: Origin::Volume("proj_data".into()),
        };
        let json = serde_json::to_value(&m).unwrap();
        assert_eq!(json["origin"], serde_json::json!({"volume": "proj_data"}));
        assert_eq!(serde_json::from_value::<Mount>(json).unwrap(), m);
        let ro = m.read_only();
        assert_eq!(ro.options, ["rbind", "rprivate", "ro"]);
        assert!(ro.is_read_only());
        let old: Mount =
            serde_json::from_str(r#"{"source":"tmpfs","destination":"/t","kind":"tmpfs","options":[]}"#).unwrap();
        assert_eq!(old.origin, Origin::Private, "rows written before origins existed share nothing");
    }
}
