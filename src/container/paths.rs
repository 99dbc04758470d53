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
//! $BERTH_RUN/{netns,secrets,scratch}/<container name>
//! ```
//!
//! Every path below a root is built from a container id or from a name checked by [`leaf`]: one
//! path component that cannot hold `/`, be `.` or `..`, or hold a NUL byte. The loader refuses
//! such names with file:line first; this is the second wall, for names from anywhere else (a
//! state row, a command-line argument). Deletions go through [`remove_tree`], which refuses a
//! path that does not sit directly in the directory it is meant to be in.

use std::path::{Path, PathBuf};

/// A name that cannot be used as a file name under berth's directories.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{name:?} cannot name a file under berth's directories: {why}")]
pub struct UnsafeName {
    /// The name as given.
    pub name: String,
    /// What is wrong with it.
    pub why: &'static str,
}

/// `name` when it is usable as one path component: not empty, not `.` or `..`, no `/`, no NUL,
/// at most 255 bytes.
pub fn leaf(name: &str) -> Result<&str, UnsafeName> {
    let why = if name.is_empty() {
        "it is empty"
    } else if name == "." || name == ".." {
        "it is a relative directory name"
    } else if name.contains('/') {
        "it contains `/`"
    } else if name.contains('\0') {
        "it contains a NUL byte"
    } else if name.len() > 255 {
        "it is longer than 255 bytes"
    } else {
        return Ok(name);
    };
    Err(UnsafeName { name: name.to_string(), why })
}

/// Whether Docker would accept `name` for a container: `[a-zA-Z0-9][a-zA-Z0-9_.-]*`.
pub fn valid_container_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
        && name.len() <= 255
}

/// Removes `path` (a directory tree, a file or a symlink, never followed) when it sits directly
/// in `base`: its file name is a [`leaf`] and its parent resolves to the same directory as
/// `base`. Anything else is refused, so a bad name or a planted symlink in a parent can never
/// make berth delete outside its own directories. A missing path is not an error.
pub fn remove_tree(base: &Path, path: &Path) -> std::io::Result<()> {
    let refuse = |why: &str| {
        std::io::Error::new(
            std::io::ErrorKind::PermissionDenied,
            format!(
                "refusing to remove `{}`: {why} (berth only removes what is directly in `{}`)",
                path.display(),
                base.display()
            ),
        )
    };
    let name = path.file_name().and_then(|n| n.to_str()).ok_or_else(|| refuse("it has no usable file name"))?;
    leaf(name).map_err(|e| refuse(e.why))?;
    let parent = path.parent().ok_or_else(|| refuse("it has no parent"))?;
    let (parent, base) = match (std::fs::canonicalize(parent), std::fs::canonicalize(base)) {
        (Ok(p), Ok(b)) => (p, b),
        // Nothing there, nothing to remove.
        (Err(e), _) | (_, Err(e)) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        (Err(e), _) | (_, Err(e)) => return Err(e),
    };
    if parent != base {
        return Err(refuse("its parent resolves elsewhere"));
    }
    let target = parent.join(name);
    let result = match std::fs::symlink_metadata(&target) {
        Ok(m) if m.is_dir() => std::fs::remove_dir_all(&target),
        Ok(_) => std::fs::remove_file(&target),
        Err(e) => Err(e),
    };
    match result {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        r => r,
    }
}

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

    /// Closes both roots to other users when they exist (older versions made them 0755), along
    /// with the state database's files. Best effort: a user who cannot change them (a command
    /// that only reads compose files) is not stopped by it.
    pub fn restrict(&self) {
        use std::os::unix::fs::PermissionsExt;
        let tighten = |p: &Path, mode: u32| {
            if let Ok(m) = std::fs::symlink_metadata(p) {
                if !m.file_type().is_symlink() && m.permissions().mode() & 0o077 != 0 {
                    // Tightening is best effort; the files inside have their own modes.
                    let _ = std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode));
                }
            }
        };
        tighten(&self.root, 0o700);
        tighten(&self.run, 0o700);
        for f in ["state.db", "state.db-wal", "state.db-shm"] {
            tighten(&self.root.join(f), 0o600);
        }
    }

    /// The directory of berth's network namespace files.
    pub fn netns_dir(&self) -> PathBuf {
        self.run.join("netns")
    }

    /// The network namespace file of container `name`.
    pub fn netns(&self, name: &str) -> Result<PathBuf, UnsafeName> {
        Ok(self.netns_dir().join(leaf(name)?))
    }

    /// The directory of the containers' secrets and configs mounts.
    pub fn secrets_dir(&self) -> PathBuf {
        self.run.join("secrets")
    }

    /// The secrets tmpfs mount point of container `name`.
    pub fn secrets(&self, name: &str) -> Result<PathBuf, UnsafeName> {
        Ok(self.secrets_dir().join(leaf(name)?))
    }

    /// Scratch space while container `name` is made (image content copied into volumes).
    pub fn scratch(&self, name: &str) -> Result<PathBuf, UnsafeName> {
        Ok(self.run.join("scratch").join(leaf(name)?))
    }

    /// The directory of the containers' persistent directories.
    pub fn containers_dir(&self) -> PathBuf {
        self.root.join("containers")
    }

    /// The directory of the monitors' runtime directories.
    pub fn run_dirs(&self) -> PathBuf {
        self.run.join("c")
    }

    /// The container's persistent directory.
    pub fn container_dir(&self, id: &str) -> PathBuf {
        self.containers_dir().join(id)
    }

    /// The container's runtime directory. Named by the first 16 digits of the id: Unix socket
    /// paths must stay under 108 bytes.
    pub fn run_dir(&self, id: &str) -> PathBuf {
        self.run_dirs().join(&id[..id.len().min(16)])
    }

    /// The bundle directory.
    pub fn bundle(&self, id: &str) -> PathBuf {
        self.container_dir(id).join("bundle")
    }

    /// The rootfs mount point.
    pub fn rootfs(&self, id: &str) -> PathBuf {
        self.bundle(id).join("rootfs")
    }

    /// The lock a container's monitor holds for as long as it lives (see `monitor_active`).
    pub fn monitor_lock(&self, id: &str) -> PathBuf {
        self.container_dir(id).join("monitor.lock")
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leaf_refuses_what_is_not_one_component() {
        for bad in ["", ".", "..", "a/b", "../../x/victim", "/abs", "a\0b", &"x".repeat(256)] {
            assert!(leaf(bad).is_err(), "{bad:?} accepted");
        }
        for good in ["web-1", "proj_db_1", "a.b", "..a", "x".repeat(255).as_str()] {
            assert_eq!(leaf(good), Ok(good));
        }
        let roots = Roots { root: "/r".into(), run: "/run/b".into() };
        assert!(roots.netns("../../x/victim").is_err());
        assert!(roots.secrets("a/../../x").is_err());
        assert_eq!(roots.netns("p-web-1").unwrap(), Path::new("/run/b/netns/p-web-1"));
    }

    #[test]
    fn remove_tree_stays_in_its_directory() {
        let tmp = tempfile::tempdir().unwrap();
        let base = tmp.path().join("secrets");
        let victim = tmp.path().join("victim");
        std::fs::create_dir_all(&base).unwrap();
        std::fs::create_dir_all(victim.join("data")).unwrap();
        // A path that climbs out, and a symlinked parent that points elsewhere, are refused.
        assert!(remove_tree(&base, &base.join("../victim")).is_err());
        std::os::unix::fs::symlink(&victim, base.join("link")).unwrap();
        assert!(remove_tree(&base, &base.join("link/data")).is_err());
        assert!(victim.join("data").is_dir());
        // The symlink itself goes, not what it points at.
        remove_tree(&base, &base.join("link")).unwrap();
        assert!(victim.join("data").is_dir());
        // A tree directly inside goes; a missing one is fine.
        std::fs::create_dir_all(base.join("c1/x/y")).unwrap();
        remove_tree(&base, &base.join("c1")).unwrap();
        assert!(!base.join("c1").exists());
        remove_tree(&base, &base.join("c1")).unwrap();
    }
}
