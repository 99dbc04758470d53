//! Making one container on this host, for `up` and `run` alike: an intent recorded first (so a
//! killed command is reclaimed by the next `up` or `down`), its network namespace attached to
//! the service's networks with leased addresses, its storage prepared by `stack::storage`
//! (volumes, binds, tmpfs, secrets and configs), its bundle and state row, and what the
//! project supervisor needs to know about it. On failure, what was made for it is undone (a
//! `Rollback` guard: in reverse order, each failure to undo reported).

use std::collections::BTreeMap;

use berth_compose::model::Service;

use super::StackEngine;
use crate::container::{self, CreateRequest, Provided};
use crate::runtime::bundle::{NetworkNs, RunOverrides};
use crate::stack::rollback::Rollback;
use crate::stack::storage::{volumes_from_mounts, Storage};

/// One container to make, as `up` or `run` asks for it.
pub(super) struct Make<'r> {
    /// Its name.
    pub(super) name: &'r str,
    /// Replica number (one-off containers are numbered when they are created).
    pub(super) number: u32,
    /// A `run` container.
    pub(super) oneoff: bool,
    /// `run`'s command, environment, user, terminal.
    pub(super) overrides: RunOverrides,
    /// `run --rm`.
    pub(super) auto_remove: bool,
    /// Known by the service's name, aliases and hostname (`up`; `run --use-aliases`), not only
    /// by its own name.
    pub(super) aliases: bool,
    /// New anonymous volumes rather than the ones a predecessor left (`up -V`).
    pub(super) renew_anonymous_volumes: bool,
}

impl StackEngine<'_> {
    /// Makes one container of `svc` (the project's, or a one-off's copy with `run`'s changes).
    pub(super) fn make(&self, svc: &Service, make: &Make<'_>) -> anyhow::Result<crate::state::ContainerRecord> {
        // Findable before anything is made: a killed `up` or `run` leaves the intent, and the
        // next `up` or `down` reclaims what it names. Anything already at this container's
        // paths is such a leftover (the container has no row: it is being created now).
        {
            // What is made for it goes by its name: a container that took another name since (a
            // start-first successor) may still hold what goes by this one.
            let db = self.db.lock().expect("db");
            let all = db.containers(&self.project.name)?;
            if let Some(holder) = all.iter().find(|c| c.key() == make.name && c.name != make.name) {
                anyhow::bail!("container name `{}` is still held by container `{}`", make.name, holder.name);
            }
        }
        self.db.lock().expect("db").add_intent(&self.project.name, &svc.name, make.name)?;
        if self.has_leftovers(make.name)? {
            self.reclaim(&svc.name, make.name)?;
        }
        let made = self.create_intended(svc, make);
        let db = self.db.lock().expect("db");
        let forgot = db.remove_intent(make.name);
        let rec = made?;
        forgot?;
        Ok(rec)
    }

    fn create_intended(&self, svc: &Service, make: &Make<'_>) -> anyhow::Result<crate::state::ContainerRecord> {
        let name = make.name;
        // A service's own `runtime:` (runc, crun or a path) over the one berth chose.
        let runtime = match (svc.runtime.as_deref(), self.runtime.as_deref()) {
            (Some(own), _) | (None, Some(own)) => own,
            (None, None) => anyhow::bail!("no OCI runtime chosen to make container `{name}`"),
        };
        // volumes_from: the source containers' mounts, looked up before anything is made.
        let borrowed = volumes_from_mounts(self.project, svc, &self.db.lock().expect("db"))?;
        let own_netns = svc.network_mode.is_none();
        let netns = self.netns_path(name)?;
        let secrets_dir = self.secrets_path(name)?;
        let scratch = self.roots.scratch(name)?;
        let specs = if own_netns { self.specs_for(svc)? } else { BTreeMap::new() };
        // Whatever is made from here on is undone if the container is not made whole.
        let mut rollback = Rollback::new(format!("container `{name}`"), self.events);
        let attached = if own_netns {
            std::fs::create_dir_all(netns.parent().expect("netns dir"))?;
            let attached = self.with_net(|n| n.attach(self.project, svc, name, &specs, &netns))?;
            rollback.push("its network attachments", || {
                self.with_net(|n| n.detach(self.project, svc, name, &specs, &netns))
            });
            Some(attached)
        } else {
            None
        };
        let layers = self.images.layer_dirs(&svc.image_name(self.project))?;
        let env = |k: &str| std::env::var(k).ok();
        let storage = Storage {
            volumes: &self.volumes,
            layers: &layers,
            scratch,
            secrets_dir,
            env: &env,
            renew_anonymous: make.renew_anonymous_volumes,
        };
        // A one-off container's anonymous volumes are its own; a replica's outlive it.
        let oneoff_anon = |t: &str| crate::stack::storage::oneoff_anonymous_volume_name(&self.project.name, name, t);
        let replica_anon =
            |t: &str| crate::stack::storage::anonymous_volume_name(&self.project.name, &svc.name, make.number, t);
        let anon: &dyn Fn(&str) -> String = if make.oneoff { &oneoff_anon } else { &replica_anon };
        let prepared = storage.prepare_with(self.project, svc, anon, name, &borrowed)?;
        let mut provided = Provided {
            network: attached.as_ref().map(|_| NetworkNs::Path(netns.clone())),
            resolv_conf: attached.as_ref().map(|a| a.resolv_conf.clone()),
            hosts: attached.as_ref().map(|a| a.hosts.clone()),
            mounts: prepared.mounts.clone(),
            volumes: prepared.volumes.clone(),
        };
        rollback.push("its volumes, mounts and secrets", || prepared.release());
        self.share_network(svc, &mut provided)?;
        let req = CreateRequest {
            project: self.project,
            service: svc,
            number: make.number,
            oneoff: make.oneoff,
            name: Some(name.to_string()),
            overrides: make.overrides.clone(),
            runtime,
            auto_remove: make.auto_remove,
            provided: Some(provided),
            image_id: self.pinned.get(&svc.name).map(String::as_str),
        };
        let rec = container::create_container(&self.roots, &self.db.lock().expect("db"), &req, self.events)?;
        let made = rec.clone();
        rollback.push("the container", move || self.lifecycle(&self.db.lock().expect("db")).remove(&made, true));
        let stored = {
            let db = self.db.lock().expect("db");
            self.record_supervision(&db, svc, &rec, attached.as_ref(), &specs, make.aliases).and_then(|()| {
                // As stored, with its supervision.
                db.container(&rec.id)?.ok_or_else(|| anyhow::anyhow!("container `{}` is gone", rec.name))
            })
        }?;
        rollback.commit();
        Ok(stored)
    }
}
