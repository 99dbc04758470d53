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
//!   into OCI mounts.

pub mod bind;
pub mod copy;
pub mod error;
pub mod secrets;
pub mod store;

pub use error::{Error, Result};

/// One mount for a container, before it becomes an OCI mount.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mount {
    /// Host path, or `tmpfs` for a tmpfs.
    pub source: String,
    /// Path in the container.
    pub destination: String,
    /// `bind` or `tmpfs`.
    pub kind: MountKind,
    /// Mount options (`ro`, `rbind`, `rprivate`, `size=...`, `mode=...`, ...).
    pub options: Vec<String>,
}

/// The kind of a [`Mount`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
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
        Mount { source: "tmpfs".into(), destination: destination.into(), kind: MountKind::Tmpfs, options }
    }
}
