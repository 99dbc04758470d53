//! Where a container's files live.
//!
//! ```text
//! $BERTH_ROOT/containers/<id>/           kept until `rm`
//!     bundle/config.json                 the OCI bundle config
//!     bundle/rootfs/                     overlay mount point (mounted only while it runs)
//!     upper/ work/                       the container's writable layer
//!     hosts hostname resolv.conf         bind-mounted into /etc
//!     logs/container.log[.N]             JSON lines, rotated
//! $BERTH_RUN/c/<id, 16 digits>/          exists only while a monitor runs
//!     attach.sock console.sock pid runtime.log monitor.log
//! $BERTH_RUN/runtime/<runc|crun>/        the runtime's --root
//! ```

use std::path::{Path, PathBuf};

/// The two roots: persistent data and runtime state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Roots {
    /// `$BERTH_ROOT` or `/var/lib/berth`.
    pub root: PathBuf,
    /// `$BERTH_RUN` or `/run/berth`.
    pub run: PathBuf,
}

impl Roots {
    /// From the environment.
    pub fn from_env() -> Roots {
        let var = |k: &str, d: &str| {
            std::env::var_os(k).filter(|v| !v.is_empty()).map(PathBuf::from).unwrap_or_else(|| d.into())
        };
        Roots { root: var("BERTH_ROOT", "/var/lib/berth"), run: var("BERTH_RUN", "/run/berth") }
    }

    /// The container's persistent directory.
    pub fn container_dir(&self, id: &str) -> PathBuf {
        self.root.join("containers").join(id)
    }

    /// The container's runtime directory. Named by the first 16 digits of the id: Unix socket
    /// paths must stay under 108 bytes.
    pub fn run_dir(&self, id: &str) -> PathBuf {
        self.run.join("c").join(&id[..id.len().min(16)])
    }

    /// The bundle directory.
    pub fn bundle(&self, id: &str) -> PathBuf {
        self.container_dir(id).join("bundle")
    }

    /// The rootfs mount point.
    pub fn rootfs(&self, id: &str) -> PathBuf {
        self.bundle(id).join("rootfs")
    }

    /// The current log file.
    pub fn log_file(&self, id: &str) -> PathBuf {
        self.container_dir(id).join("logs").join("container.log")
    }

    /// The attach socket of the container's monitor.
    pub fn attach_socket(&self, id: &str) -> PathBuf {
        self.run_dir(id).join("attach.sock")
    }
}

/// Whether `path` is a mount point (its device differs from its parent's, or it is listed in
/// `/proc/self/mountinfo`).
pub fn is_mount_point(path: &Path) -> bool {
    let Ok(text) = std::fs::read_to_string("/proc/self/mountinfo") else { return false };
    let p = path.to_string_lossy();
    text.lines().any(|l| l.split(' ').nth(4) == Some(&*p))
}
