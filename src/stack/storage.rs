//! A container's storage on the host: its volumes made ready (anonymous ones created, local
//! driver options mounted, image content copied up into new volumes), bind sources checked,
//! tmpfs mounts, and its secrets and configs on a tmpfs of its own — as the list of mounts
//! its bundle gets. [`Prepared::release`] undoes the per-container parts.

use std::path::{Path, PathBuf};

use anyhow::Context;
use berth_compose::model::Service;
use berth_compose::Project;
use berth_volumes::bind::{prepare_bind, volume_mount};
use berth_volumes::secrets::{read_source, SecretFile, SecretsDir};
use berth_volumes::store::{VolumeSpec, VolumeStore};
use berth_volumes::Mount;
use sha2::{Digest, Sha256};

use super::volmodel::{secret_requests, service_mounts, MountRequest, PROJECT_LABEL};

/// The name of a container's anonymous volume for `target`: stable for the service's replica,
/// so a recreated container gets the same data back (as Compose does).
pub fn anonymous_volume_name(project: &str, service: &str, number: u32, target: &str) -> String {
    let hash = hex::encode(Sha256::digest(format!("{project}/{service}/{number}/{target}")));
    format!("{project}_{service}_{number}_anon_{}", &hash[..12])
}

/// What a container's storage came to.
#[derive(Debug)]
pub struct Prepared {
    /// Mounts for the bundle, in order.
    pub mounts: Vec<Mount>,
    /// The volumes it uses (for `volume rm` to refuse while it exists).
    pub volumes: Vec<String>,
    /// Its secrets tmpfs, if it has secrets or configs.
    pub secrets: Option<SecretsDir>,
}

impl Prepared {
    /// Unmounts and deletes the secrets tmpfs.
    pub fn release(self) -> anyhow::Result<()> {
        if let Some(s) = self.secrets {
            s.remove()?;
        }
        Ok(())
    }
}

/// Where a container's storage comes from.
pub struct Storage<'a> {
    /// The volume store.
    pub volumes: &'a VolumeStore,
    /// The image's layer directories, bottom first (for copy-up).
    pub layers: &'a [PathBuf],
    /// A scratch directory for this container (copy-up mounts the image here briefly).
    pub scratch: PathBuf,
    /// Where the container's secrets tmpfs goes.
    pub secrets_dir: PathBuf,
    /// Looks up environment variables for `environment:` secrets.
    pub env: &'a dyn Fn(&str) -> Option<String>,
    /// Start anonymous volumes afresh (`up -V`) instead of reusing the replica's earlier ones.
    pub renew_anonymous: bool,
}

impl Storage<'_> {
    /// Prepares the storage of replica `number` of `svc`. On failure nothing per-container is
    /// left mounted.
    pub fn prepare(&self, project: &Project, svc: &Service, number: u32) -> anyhow::Result<Prepared> {
        let anon = |t: &str| anonymous_volume_name(&project.name, &svc.name, number, t);
        let mut mounts = Vec::new();
        let mut volumes = Vec::new();
        for req in service_mounts(project, svc, &anon)? {
            match req {
                MountRequest::Volume { name, anonymous, target, read_only, nocopy, subpath } => {
                    if anonymous && self.renew_anonymous && self.volumes.get(&name)?.is_some() {
                        self.volumes.remove(&name, &[])?;
                    }
                    if anonymous {
                        let mut spec = VolumeSpec { name: name.clone(), anonymous: true, ..VolumeSpec::default() };
                        spec.labels.insert(PROJECT_LABEL.into(), project.name.clone());
                        self.volumes.create(&spec)?;
                    }
                    let info = self.volumes.get(&name)?.with_context(|| format!("volume {name:?} does not exist"))?;
                    let data = self.volumes.activate(&name)?;
                    if !nocopy && !info.populated {
                        self.copy_up(&name, &target)?;
                    }
                    mounts.push(volume_mount(&data, subpath.as_deref(), &target, read_only)?);
                    volumes.push(name);
                }
                MountRequest::Bind(b) => mounts.push(prepare_bind(&b)?),
                MountRequest::Tmpfs(m) => mounts.push(m),
            }
        }
        let secrets = self.secrets(project, svc, &mut mounts)?;
        Ok(Prepared { mounts, volumes, secrets })
    }

    /// Copies the image's content at `target` into the new volume `name` (Docker's copy-up),
    /// reading it through a read-only overlay of the image's layers.
    fn copy_up(&self, name: &str, target: &str) -> anyhow::Result<()> {
        if self.layers.is_empty() {
            return Ok(());
        }
        let view = self.scratch.join("image");
        let (upper, work) = (self.scratch.join("upper"), self.scratch.join("work"));
        crate::image::mount_rootfs(self.layers, &upper, &work, &view)?;
        let copied = self.volumes.copy_up(name, &view, target);
        let unmounted = crate::image::unmount_rootfs(&view);
        let _ = std::fs::remove_dir_all(&self.scratch);
        copied?;
        unmounted?;
        Ok(())
    }

    fn secrets(&self, project: &Project, svc: &Service, mounts: &mut Vec<Mount>) -> anyhow::Result<Option<SecretsDir>> {
        let requests = secret_requests(project, svc)?;
        if requests.is_empty() {
            return Ok(None);
        }
        let mut files = Vec::new();
        for r in requests {
            let data = read_source(r.kind, &r.name, &r.source, self.env)?;
            files.push(SecretFile {
                kind: r.kind,
                name: r.name,
                target: r.target,
                data,
                uid: r.uid,
                gid: r.gid,
                mode: r.mode,
            });
        }
        let (dir, file_mounts) = SecretsDir::create(&self.secrets_dir, &files)?;
        mounts.extend(file_mounts);
        Ok(Some(dir))
    }
}

/// Removes a container's secrets tmpfs left by an earlier run, if any.
pub fn remove_secrets(dir: &Path) -> anyhow::Result<()> {
    Ok(berth_volumes::secrets::remove_dir(dir)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anonymous_names_are_stable_and_distinct() {
        let a = anonymous_volume_name("shop", "db", 1, "/data");
        assert_eq!(a, anonymous_volume_name("shop", "db", 1, "/data"));
        assert_ne!(a, anonymous_volume_name("shop", "db", 2, "/data"));
        assert!(a.starts_with("shop_db_1_anon_"));
        assert!(berth_volumes::store::valid_name(&a));
    }
}
