//! A container's storage on the host: its volumes made ready (anonymous ones created, local
//! driver options mounted, image content copied up into new volumes), bind sources checked,
//! tmpfs mounts, the volumes and binds of the containers its `volumes_from` names, and its
//! secrets and configs on a tmpfs of its own — as the list of mounts its bundle gets.
//! [`Prepared::release`] undoes the per-container parts.
//!
//! A container holds each volume it mounts (the store's `acquire`), so a volume whose
//! `driver_opts` describe a file system is mounted while some container uses it and unmounted
//! when the last one is removed ([`release_volumes`]). Its mounts are kept in its state row
//! (`ContainerConfig::mounts`); `volumes_from` reads them from there ([`volumes_from_mounts`]).
//! [`preflight`] checks what a plan's new containers need before anything is made.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use berth_compose::model::Service;
use berth_compose::resolved::{ResolvedService, VolumesFromSource};
use berth_compose::Project;
use berth_volumes::bind::{prepare_bind, volume_mount};
use berth_volumes::secrets::{read_source, SecretFile, SecretsDir};
use berth_volumes::store::{VolumeSpec, VolumeStore};
use berth_volumes::{Mount, Origin};
use sha2::{Digest, Sha256};

use super::volmodel::{secret_requests, service_mounts, MountRequest, PROJECT_LABEL};
use crate::leftover::Undone;
use crate::plan::Plan;
use crate::state::{ContainerRecord, StateDb};

/// The name of a container's anonymous volume for `target`: stable for the service's replica,
/// so a recreated container gets the same data back (as Compose does).
pub fn anonymous_volume_name(project: &str, service: &str, number: u32, target: &str) -> String {
    let hash = hex::encode(Sha256::digest(format!("{project}/{service}/{number}/{target}")));
    format!("{project}_{service}_{number}_anon_{}", &hash[..12])
}

/// The name of one-off container `container`'s anonymous volume for `target`: its own, as
/// Docker's are for `run`, so a later one-off never finds an earlier one's data.
pub fn oneoff_anonymous_volume_name(project: &str, container: &str, target: &str) -> String {
    let hash = hex::encode(Sha256::digest(format!("{project}/{container}/{target}")));
    format!("{container}_anon_{}", &hash[..12])
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
    /// The store and the container that holds `volumes` in it.
    holder: (VolumeStore, String),
}

impl Prepared {
    /// Unmounts and deletes the secrets tmpfs and lets go of the volumes (for a container that
    /// was not made after all).
    pub fn release(self) -> anyhow::Result<()> {
        let (store, holder) = &self.holder;
        let released = release_volumes(store, &self.volumes, holder);
        if let Some(s) = self.secrets {
            s.remove()?;
        }
        released
    }
}

/// Lets go of `volumes` for container `holder`, unmounting the `driver_opts` file systems no
/// other container holds; keeps going and reports every failure.
pub fn release_volumes(store: &VolumeStore, volumes: &[String], holder: &str) -> anyhow::Result<()> {
    let failures: Vec<String> =
        volumes.iter().filter_map(|v| store.release(v, holder).err()).map(|e| e.to_string()).collect();
    if !failures.is_empty() {
        bail!("{}", failures.join("; "));
    }
    Ok(())
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
    /// Prepares the storage of replica `number` of `svc`, for the container named as `up`
    /// names it. On failure nothing per-container is left mounted.
    pub fn prepare(&self, project: &Project, svc: &Service, number: u32) -> anyhow::Result<Prepared> {
        let name = project.container_name(svc, number);
        self.prepare_for(project, svc, number, &name, &[])
    }

    /// Prepares the storage of replica `number` of `svc` for container `container`, with
    /// `borrowed` (the mounts its `volumes_from` takes over, see [`volumes_from_mounts`]) first
    /// and its own mounts after them; its own mount wins where both have the same
    /// destination. On failure nothing per-container is left mounted or held.
    pub fn prepare_for(
        &self,
        project: &Project,
        svc: &Service,
        number: u32,
        container: &str,
        borrowed: &[Mount],
    ) -> anyhow::Result<Prepared> {
        let anon = |t: &str| anonymous_volume_name(&project.name, &svc.name, number, t);
        self.prepare_with(project, svc, &anon, container, borrowed)
    }

    /// [`prepare_for`](Self::prepare_for) with the anonymous volumes named by `anon` (from
    /// their target): [`anonymous_volume_name`] for a replica, [`oneoff_anonymous_volume_name`]
    /// for a one-off container.
    pub fn prepare_with(
        &self,
        project: &Project,
        svc: &Service,
        anon: &dyn Fn(&str) -> String,
        container: &str,
        borrowed: &[Mount],
    ) -> anyhow::Result<Prepared> {
        let mut held = Vec::new();
        match self.mounts(project, svc, anon, container, borrowed, &mut held) {
            Ok(mounts) => {
                let holder = (self.volumes.clone(), container.to_string());
                Ok(Prepared { mounts: mounts.0, volumes: held, secrets: mounts.1, holder })
            }
            Err(e) => {
                let left = || format!("volumes held for `{container}`");
                Err(e.undone(left, release_volumes(self.volumes, &held, container)))
            }
        }
    }

    /// The mounts and the secrets tmpfs; `held` collects the volumes acquired so far.
    fn mounts(
        &self,
        project: &Project,
        svc: &Service,
        anon: &dyn Fn(&str) -> String,
        container: &str,
        borrowed: &[Mount],
        held: &mut Vec<String>,
    ) -> anyhow::Result<(Vec<Mount>, Option<SecretsDir>)> {
        let mut mounts = Vec::new();
        for req in service_mounts(project, svc, anon)? {
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
                    self.volumes.get(&name)?.with_context(|| format!("volume {name:?} does not exist"))?;
                    let data = self.volumes.acquire(&name, container)?;
                    if !held.contains(&name) {
                        held.push(name.clone());
                    }
                    // Read after mounting: a fresh tmpfs volume is empty again.
                    let info = self.volumes.get(&name)?.with_context(|| format!("volume {name:?} does not exist"))?;
                    if !nocopy && !info.populated {
                        self.copy_up(&name, &target)?;
                    }
                    mounts.push(volume_mount(&name, &data, subpath.as_deref(), &target, read_only)?);
                }
                MountRequest::Bind(b) => mounts.push(prepare_bind(&b)?),
                MountRequest::Tmpfs(m) => mounts.push(m),
            }
        }
        let own: BTreeSet<String> = mounts.iter().map(|m| m.destination.clone()).collect();
        let mut all = Vec::new();
        for m in borrowed.iter().filter(|m| !own.contains(&m.destination)) {
            if let Origin::Volume(name) = &m.origin {
                if !held.contains(name) {
                    self.volumes.acquire(name, container)?;
                    held.push(name.clone());
                }
            }
            all.push(m.clone());
        }
        all.extend(mounts);
        let secrets = self.secrets(project, svc, &mut all)?;
        Ok((all, secrets))
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
        let removed = match self.scratch.parent() {
            Some(base) => crate::container::paths::remove_tree(base, &self.scratch),
            None => Ok(()),
        };
        copied?;
        unmounted?;
        removed.with_context(|| format!("cannot remove `{}`", self.scratch.display()))
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

/// The mounts `svc`'s `volumes_from` takes over, in order: the volumes and binds of each
/// source container as its state row records them (read-only with `:ro`). A `service:` source
/// is the service's first container, which `up` has made before (`volumes_from` is an implicit
/// dependency); a `container:` source is any container by name.
pub fn volumes_from_mounts(project: &Project, svc: &Service, db: &StateDb) -> anyhow::Result<Vec<Mount>> {
    let mut out = Vec::new();
    for entry in ResolvedService::new(svc)?.volumes_from {
        let rec = volumes_from_source(project, svc, db, &entry.source)?;
        for m in rec.config.mounts.into_iter().filter(|m| matches!(m.origin, Origin::Volume(_) | Origin::Bind)) {
            out.push(if entry.read_only { m.read_only() } else { m });
        }
    }
    Ok(out)
}

fn volumes_from_source(
    project: &Project,
    svc: &Service,
    db: &StateDb,
    source: &VolumesFromSource,
) -> anyhow::Result<ContainerRecord> {
    match source {
        VolumesFromSource::Service(name) => {
            let mut theirs: Vec<ContainerRecord> =
                db.containers(&project.name)?.into_iter().filter(|c| &c.service == name && !c.oneoff).collect();
            theirs.sort_by_key(|c| c.number);
            theirs.into_iter().next().with_context(|| {
                format!("services.{}.volumes_from: service {name:?} has no container to take volumes from", svc.name)
            })
        }
        VolumesFromSource::Container(name) => db
            .container_by_name(name)?
            .with_context(|| format!("services.{}.volumes_from: no such container {name:?}", svc.name)),
    }
}

/// Checks, before anything is made, what the containers `plan` creates need from the host:
/// secret and config sources readable, bind sources that may not be created present,
/// `volumes_from` entries valid and their `container:` sources there. `env` looks up
/// `environment:` secrets.
pub fn preflight(
    project: &Project,
    plan: &Plan,
    db: &StateDb,
    env: &dyn Fn(&str) -> Option<String>,
) -> anyhow::Result<()> {
    let services: BTreeSet<&str> = plan.creates().map(|(_, target)| target.service.as_str()).collect();
    for svc in services.iter().filter_map(|s| project.services.get(*s)) {
        for (i, req) in service_mounts(project, svc, &|t| t.to_string())?.into_iter().enumerate() {
            if let MountRequest::Bind(b) = req {
                if !b.create_host_path && !b.source.exists() {
                    let e = berth_volumes::Error::MissingBindSource(b.source.clone());
                    bail!("services.{}.volumes[{i}]: {e}", svc.name);
                }
            }
        }
        for (i, r) in secret_requests(project, svc)?.iter().enumerate() {
            if let Err(e) = read_source(r.kind, &r.name, &r.source, env) {
                let key = match r.kind {
                    berth_volumes::secrets::Kind::Secret => "secrets",
                    berth_volumes::secrets::Kind::Config => "configs",
                };
                let i = i - if key == "configs" { svc.secrets.len() } else { 0 };
                bail!("services.{}.{key}[{i}]: {e}", svc.name);
            }
        }
        for entry in ResolvedService::new(svc)?.volumes_from {
            if let VolumesFromSource::Container(_) = &entry.source {
                volumes_from_source(project, svc, db, &entry.source)?;
            }
        }
    }
    Ok(())
}

/// Removes a container's secrets tmpfs left by an earlier run, if any.
pub fn remove_secrets(base: &Path, dir: &Path) -> anyhow::Result<()> {
    berth_volumes::secrets::unmount(dir)?;
    crate::container::paths::remove_tree(base, dir)
        .with_context(|| format!("cannot remove the secrets directory `{}`", dir.display()))
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
        let o = oneoff_anonymous_volume_name("shop", "shop-db-run-0123456789ab", "/data");
        assert!(o.starts_with("shop-db-run-0123456789ab_anon_") && berth_volumes::store::valid_name(&o), "{o}");
        assert_ne!(o, oneoff_anonymous_volume_name("shop", "shop-db-run-ba9876543210", "/data"));
    }
}
