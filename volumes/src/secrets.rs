//! Secrets and configs for one container: their bytes are written to a tmpfs of the
//! container's own (under the run directory, never the state root) with the requested
//! owner and mode, and each file is bind-mounted read-only at its target.
//!
//! Compose outside swarm ignores `uid`, `gid` and `mode`; berth honours them. Secret bytes
//! are never put into the environment or logs.

use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use nix::mount::{mount, umount2, MntFlags, MsFlags};

use crate::error::{io, Error, Result};
use crate::{Mount, MountKind};

/// Secret or config.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A secret: default target `/run/secrets/<name>`, default mode 0444.
    Secret,
    /// A config: default target `/<name>`, default mode 0444.
    Config,
}

impl Kind {
    fn word(self) -> &'static str {
        match self {
            Kind::Secret => "secret",
            Kind::Config => "config",
        }
    }
}

/// Where a secret's or config's bytes come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// A host file.
    File(PathBuf),
    /// An environment variable of berth's environment.
    Environment(String),
    /// Inline content (configs).
    Content(String),
}

/// One file to provide to a container.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SecretFile {
    /// Secret or config.
    pub kind: Kind,
    /// Its name in the compose file.
    pub name: String,
    /// Absolute path in the container.
    pub target: String,
    /// The content.
    pub data: Vec<u8>,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Permission bits.
    pub mode: u32,
}

/// The container path for a secret or config: Compose's defaults, and relative targets of
/// secrets placed under `/run/secrets`.
pub fn target_path(kind: Kind, name: &str, target: Option<&str>) -> String {
    match (kind, target) {
        (_, Some(t)) if t.starts_with('/') => t.to_string(),
        (Kind::Secret, Some(t)) => format!("/run/secrets/{t}"),
        (Kind::Secret, None) => format!("/run/secrets/{name}"),
        (Kind::Config, Some(t)) => format!("/{t}"),
        (Kind::Config, None) => format!("/{name}"),
    }
}

/// Reads a secret's or config's bytes; `env` looks variables up.
pub fn read_source(kind: Kind, name: &str, source: &Source, env: &dyn Fn(&str) -> Option<String>) -> Result<Vec<u8>> {
    let fail = |message: String| Error::SecretSource { kind: kind.word(), name: name.to_string(), message };
    match source {
        Source::File(p) => std::fs::read(p).map_err(|e| fail(format!("cannot read `{}`: {e}", p.display()))),
        Source::Environment(var) => {
            env(var).map(String::into_bytes).ok_or_else(|| fail(format!("environment variable {var} is not set")))
        }
        Source::Content(c) => Ok(c.clone().into_bytes()),
    }
}

/// A container's secrets tmpfs; [`SecretsDir::remove`] unmounts and deletes it.
#[derive(Debug)]
pub struct SecretsDir {
    path: PathBuf,
}

impl SecretsDir {
    /// Mounts a small tmpfs at `dir` (created), writes `files` into it with their owners and
    /// modes, and returns the read-only bind mounts that put each file at its target. On
    /// failure nothing is left mounted.
    pub fn create(dir: &Path, files: &[SecretFile]) -> Result<(SecretsDir, Vec<Mount>)> {
        std::fs::create_dir_all(dir).map_err(io("create", dir))?;
        let flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
        mount(Some("tmpfs"), dir, Some("tmpfs"), flags, Some("mode=0700,size=8m")).map_err(|errno| Error::Mount {
            action: "mount the secrets tmpfs on",
            path: dir.to_path_buf(),
            errno,
        })?;
        let secrets = SecretsDir { path: dir.to_path_buf() };
        match secrets.write(files) {
            Ok(mounts) => Ok((secrets, mounts)),
            Err(e) => {
                let left = || format!("the secrets tmpfs at `{}`", dir.display());
                Err(e.undone(left, secrets.remove()))
            }
        }
    }

    fn write(&self, files: &[SecretFile]) -> Result<Vec<Mount>> {
        let mut mounts = Vec::new();
        for (i, f) in files.iter().enumerate() {
            let path = self.path.join(format!("{i}-{}-{}", f.kind.word(), f.name));
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&path)
                .map_err(io("create", &path))?;
            std::io::Write::write_all(&mut file, &f.data).map_err(io("write", &path))?;
            std::os::unix::fs::chown(&path, Some(f.uid), Some(f.gid)).map_err(io("chown", &path))?;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(f.mode)).map_err(io("chmod", &path))?;
            mounts.push(Mount {
                source: path.display().to_string(),
                destination: f.target.clone(),
                kind: MountKind::Bind,
                options: vec!["bind".into(), "ro".into(), "rprivate".into()],
                origin: crate::Origin::Private,
            });
        }
        Ok(mounts)
    }

    /// Where the tmpfs is mounted.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Unmounts the tmpfs (its bytes are gone with it) and removes the directory.
    pub fn remove(self) -> Result<()> {
        remove_dir(&self.path)
    }
}

/// Unmounts and removes a secrets directory left by an earlier run (e.g. after a crash).
pub fn remove_dir(path: &Path) -> Result<()> {
    unmount(path)?;
    match std::fs::remove_dir_all(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io("remove", path)(e)),
        _ => Ok(()),
    }
}

/// Unmounts the secrets tmpfs at `path` when one is mounted there.
pub fn unmount(path: &Path) -> Result<()> {
    if crate::store::is_mount_point(path) {
        umount2(path, MntFlags::MNT_DETACH).map_err(|errno| Error::Mount {
            action: "unmount the secrets tmpfs from",
            path: path.to_path_buf(),
            errno,
        })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_targets() {
        assert_eq!(target_path(Kind::Secret, "token", None), "/run/secrets/token");
        assert_eq!(target_path(Kind::Secret, "token", Some("api")), "/run/secrets/api");
        assert_eq!(target_path(Kind::Secret, "token", Some("/etc/tok")), "/etc/tok");
        assert_eq!(target_path(Kind::Config, "nginx", None), "/nginx");
        assert_eq!(target_path(Kind::Config, "nginx", Some("/etc/nginx.conf")), "/etc/nginx.conf");
    }

    #[test]
    fn sources() {
        let env = |k: &str| (k == "TOKEN").then(|| "s3cret".to_string());
        assert_eq!(read_source(Kind::Secret, "t", &Source::Environment("TOKEN".into()), &env).unwrap(), b"s3cret");
        let e = read_source(Kind::Secret, "t", &Source::Environment("NOPE".into()), &env).unwrap_err();
        assert_eq!(e.to_string(), "secret \"t\": environment variable NOPE is not set");
        let e = read_source(Kind::Secret, "t", &Source::File("/does/not/exist".into()), &env).unwrap_err();
        assert!(e.to_string().starts_with("secret \"t\": cannot read `/does/not/exist`"));
        assert_eq!(read_source(Kind::Config, "c", &Source::Content("x=1".into()), &env).unwrap(), b"x=1");
    }
}
