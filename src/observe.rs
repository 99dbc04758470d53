//! Observing what exists for a project — its containers in the state database, its images in
//! the image store, its volumes and networks — in the terms a plan needs.

use berth_compose::Project;

use crate::image::{ImageStore, Reference};
use crate::plan::{Observed, ObservedContainer};
use crate::state::StateDb;

/// Where to look.
pub struct Sources<'a> {
    /// The state database.
    pub db: &'a StateDb,
    /// The image store.
    pub images: &'a ImageStore,
    /// The volume store.
    pub volumes: &'a berth_volumes::store::VolumeStore,
    /// Whether a network (by name) exists on the host.
    pub network_exists: &'a dyn Fn(&str) -> bool,
    /// Whether a container (by id) still has its bundle.
    pub bundle_exists: &'a dyn Fn(&str) -> bool,
    /// Told of each container row that cannot be read, which is then left out (for `down`,
    /// which takes down the rest); `None`: such a row is an error.
    pub unreadable: Option<&'a dyn Fn(&crate::state::StateError)>,
}

/// Reads the observed state of `project`.
pub fn observe(project: &Project, src: &Sources) -> anyhow::Result<Observed> {
    let mut o = Observed::default();
    let rows = match src.unreadable {
        None => src.db.containers(&project.name)?,
        Some(tell) => {
            let (rows, unreadable) = src.db.scan_containers(&project.name)?;
            unreadable.iter().for_each(tell);
            rows
        }
    };
    for rec in rows {
        // A container being stopped (by a command that may have been killed since) counts as
        // stopped: `up` starts it again once it is down.
        let stopping = rec.status.is_alive() && src.db.supervision(&rec.id)?.stop_requested;
        let status = if stopping { crate::state::Status::Exited } else { rec.status };
        o.containers.push(ObservedContainer {
            key: rec.config.key.clone(),
            name: rec.name.clone(),
            service: rec.service.clone(),
            number: rec.number,
            one_off: rec.oneoff,
            config_hash: rec.config_hash.clone(),
            config: Some(rec.config.service).filter(|s| !s.is_null()),
            image_digest: Some(rec.image_digest.clone()),
            status,
            broken: !(src.bundle_exists)(&rec.id),
        });
    }
    for (key, net) in &project.networks {
        let name = net.name.clone().unwrap_or_else(|| key.clone());
        if (src.network_exists)(&name) {
            o.networks.insert(name);
        }
    }
    for (key, vol) in &project.volumes {
        let name = vol.name.clone().unwrap_or_else(|| key.clone());
        if src.volumes.get(&name)?.is_some() {
            o.volumes.insert(name);
        }
    }
    for svc in project.services.values() {
        let image = svc.image_name(project);
        let Ok(reference) = Reference::parse(&image) else { continue };
        if let Some(rec) = src.images.lookup(&reference)? {
            if let Ok(age) = std::time::SystemTime::now().duration_since(rec.pulled_at()) {
                o.image_ages.insert(image.clone(), age);
            }
            o.images.insert(image, rec.id.to_string());
        }
    }
    Ok(o)
}
