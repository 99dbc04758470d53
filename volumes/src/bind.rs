//! Bind mounts and volume mounts for a container: source checks, `create_host_path`,
//! read-only, propagation and `subpath`.

use std::path::{Component, Path, PathBuf};

use crate::error::{io, Error, Result};
use crate::{Mount, MountKind, Origin};

/// How a bind mount was asked for.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BindRequest {
    /// Host path (absolute; the loader resolves relative paths and `~`).
    pub source: PathBuf,
    /// Path in the container.
    pub destination: String,
    /// Create a missing source directory (Compose's default for the short syntax).
    pub create_host_path: bool,
    /// Mount read-only.
    pub read_only: bool,
    /// `rprivate` (default), `private`, `rshared`, `shared`, `rslave` or `slave`.
    pub propagation: Option<String>,
    /// SELinux relabelling (`z`/`Z`): accepted; a no-op on hosts without SELinux.
    pub selinux: Option<String>,
}

/// Creates `dir` and its missing parents as Docker does, 0755 whatever the process's umask.
fn create_open_dirs(dir: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let missing: Vec<&Path> = dir.ancestors().take_while(|p| !p.as_os_str().is_empty() && !p.exists()).collect();
    std::fs::create_dir_all(dir).map_err(io("create the bind source", dir))?;
    for p in missing {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755)).map_err(io("chmod", p))?;
    }
    Ok(())
}

/// Checks a bind mount's source (creating it when allowed) and returns the mount.
pub fn prepare_bind(req: &BindRequest) -> Result<Mount> {
    if !req.source.exists() {
        if !req.create_host_path {
            return Err(Error::MissingBindSource(req.source.clone()));
        }
        create_open_dirs(&req.source)?;
    }
    Ok(bind_mount(&req.source, &req.destination, req.read_only, req.propagation.as_deref(), Origin::Bind))
}

/// Volume `name`'s data at `data` (or a `subpath` inside it) mounted at `destination`. The
/// subpath must exist and stay inside the volume.
pub fn volume_mount(
    name: &str,
    data: &Path,
    subpath: Option<&str>,
    destination: &str,
    read_only: bool,
) -> Result<Mount> {
    let source = match subpath {
        None => data.to_path_buf(),
        Some(sub) => {
            let fail = |message: &str| Error::Driver {
                name: data.display().to_string(),
                message: format!("subpath {sub:?} {message}"),
            };
            if Path::new(sub).components().any(|c| !matches!(c, Component::Normal(_) | Component::CurDir)) {
                return Err(fail("must be a relative path inside the volume"));
            }
            // Containers write into volumes: a symlink there must not turn the bind source into
            // a host path, so no component of the subpath may be a symlink.
            let mut path = data.to_path_buf();
            for c in Path::new(sub).components() {
                path.push(c);
                match std::fs::symlink_metadata(&path) {
                    Ok(m) if m.file_type().is_symlink() => return Err(fail("must not go through a symbolic link")),
                    Ok(_) => {}
                    Err(_) => return Err(fail("does not exist in the volume")),
                }
            }
            path
        }
    };
    Ok(bind_mount(&source, destination, read_only, None, Origin::Volume(name.to_string())))
}

fn bind_mount(source: &Path, destination: &str, read_only: bool, propagation: Option<&str>, origin: Origin) -> Mount {
    let mut options = vec!["rbind".to_string()];
    if read_only {
        options.push("ro".into());
    }
    options.push(propagation.unwrap_or("rprivate").to_string());
    Mount {
        source: source.display().to_string(),
        destination: destination.to_string(),
        kind: MountKind::Bind,
        options,
        origin,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creates_missing_sources_only_when_allowed() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("a/b");
        let mut req = BindRequest { source: src.clone(), destination: "/x".into(), ..Default::default() };
        let e = prepare_bind(&req).unwrap_err().to_string();
        assert!(e.contains("does not exist (and `create_host_path` is false)"), "{e}");
        assert!(!src.exists(), "nothing created");
        req.create_host_path = true;
        req.read_only = true;
        let m = prepare_bind(&req).unwrap();
        assert!(src.is_dir());
        assert_eq!(m.options, ["rbind", "ro", "rprivate"]);
        assert_eq!(m.origin, Origin::Bind);
    }

    #[test]
    fn subpaths_stay_inside_the_volume() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        let m = volume_mount("v", dir.path(), Some("sub"), "/d", false).unwrap();
        assert_eq!(m.origin, Origin::Volume("v".into()));
        assert!(volume_mount("v", dir.path(), Some("../etc"), "/d", false).is_err());
        assert!(volume_mount("v", dir.path(), Some("/etc"), "/d", false).is_err());
        assert!(volume_mount("v", dir.path(), Some("missing"), "/d", false).is_err());
        std::os::unix::fs::symlink("/", dir.path().join("evil")).unwrap();
        let e = volume_mount("v", dir.path(), Some("evil"), "/d", false).unwrap_err().to_string();
        assert!(e.contains("must not go through a symbolic link"), "{e}");
    }
}
