//! Releasing what the project side made for a container from what its state row records, for
//! when the service it was made from is not at hand: an orphan (its service is gone from the
//! files), and a `run --rm` container, whose monitor removes it once it exits and loads no
//! project. The row names the container's volumes and mounts; its namespace and secrets sit at
//! paths derived from its name, and its leases go with its row.

use std::path::Path;

use anyhow::{bail, Context};
use berth_network::{Host, NetlinkHost};
use berth_volumes::store::VolumeStore;

use crate::container::{self, Roots};
use crate::stack::networking::NetStores;
use crate::stack::storage::{release_volumes, remove_secrets};
use crate::state::deferred::or_defer_any;
use crate::state::{ContainerRecord, StateDb};

/// Removes a container's network namespace at `netns`, if there is one (its interfaces go with
/// it). Its leases stay until its row goes.
pub(super) fn remove_netns(host: &dyn Host, netns: &Path) -> anyhow::Result<()> {
    if netns.exists() {
        host.remove_netns(netns).with_context(|| format!("remove namespace `{}`", netns.display()))?;
    }
    Ok(())
}

/// Releases container `rec`'s secrets tmpfs and its hold on its volumes (the last holder
/// unmounts a `driver_opts` file system); with `anonymous`, removes its anonymous volumes that
/// no other container (`users` of a volume, by name) uses. Each outcome goes to `settle`.
pub(super) fn release_storage(
    roots: &Roots,
    volumes: &VolumeStore,
    rec: &ContainerRecord,
    anonymous: bool,
    users: &dyn Fn(&str) -> anyhow::Result<Vec<String>>,
    settle: &mut dyn FnMut(anyhow::Result<()>, &str),
) {
    let secrets = roots.secrets(rec.key()).map_err(Into::into);
    settle(secrets.and_then(|d| remove_secrets(&roots.secrets_dir(), &d)), "the secrets");
    let names = &rec.volumes;
    settle(release_volumes(volumes, names, rec.key()), "the volumes");
    if !anonymous {
        return;
    }
    for v in names {
        // Another container may use it still (through `volumes_from`): it stays then.
        let is_anonymous = volumes.get(v).ok().flatten().is_some_and(|i| i.spec.anonymous);
        let removed = match users(v) {
            Ok(users) if is_anonymous && users.iter().all(|u| *u == rec.name) => {
                volumes.remove(v, &[]).map_err(Into::into)
            }
            Ok(_) => Ok(()),
            Err(e) => Err(e),
        };
        settle(removed, "an anonymous volume");
    }
}

/// Removes exited container `rec` from its row alone, as the monitor of a `run --rm` container
/// does once it has exited: its runtime state and files, its network namespace and leases, its
/// secrets, its hold on its volumes and its anonymous volumes, and the row last, only when all
/// of that is gone (else the row stays, and `rm` or `down` finish the job).
pub fn remove_exited(roots: &Roots, db: &StateDb, rec: &ContainerRecord) -> anyhow::Result<()> {
    let rec = container::dismantle(roots, db, rec, false)?;
    let name = rec.name.clone();
    let mut failures = Vec::new();
    let mut waiting = false;
    let mut settle = |r: anyhow::Result<()>, what: &str| match or_defer_any(r, || format!("{what} of `{name}`")) {
        Ok(Some(())) => {}
        Ok(None) => waiting = true,
        Err(e) => failures.push(format!("{e:#}")),
    };
    let netns = roots.netns(rec.key())?;
    if netns.exists() {
        // Under the host's network lock, as every change to namespaces and bridges.
        let released = NetStores::open(&roots.root).and_then(|_held| remove_netns(&NetlinkHost, &netns));
        settle(released, "the network namespace");
    }
    let volumes = VolumeStore::open(roots.root.join("volumes"))?;
    let users = |v: &str| Ok(db.volume_holders(v)?);
    release_storage(roots, &volumes, &rec, true, &users, &mut settle);
    if !failures.is_empty() {
        bail!("container {:?} removed, but: {}", rec.name, failures.join("; "));
    }
    if !waiting {
        container::forget(db, &rec)?;
    }
    Ok(())
}
