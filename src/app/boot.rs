//! What a reboot brings back: berth has no daemon, so `berth boot` (run by the init system once
//! the network is up) starts, project by project, the containers dockerd would restart — those
//! with `restart: always`, and those with `unless-stopped` that the user had not stopped — in
//! dependency order, with their networks, volumes, published ports and names.

use std::collections::BTreeSet;

use berth_compose::resolved::{ResolvedService, RestartCondition};

use crate::app::Session;
use crate::state::ContainerRecord;

/// The services of the project whose containers a boot brings back, and those containers.
pub fn to_bring_back(s: &Session<'_>) -> anyhow::Result<(BTreeSet<String>, Vec<ContainerRecord>)> {
    let mut services = BTreeSet::new();
    let mut containers = Vec::new();
    for rec in crate::container::select(s.db, &s.project.name, &[], false)? {
        let Some(svc) = s.project.services.get(&rec.service) else { continue };
        let condition = ResolvedService::new(svc)?.restart.condition;
        let stopped_by_user = s.db.supervision(&rec.id)?.stop_requested;
        let back = match condition {
            RestartCondition::Always => true,
            RestartCondition::UnlessStopped => !stopped_by_user,
            _ => false,
        };
        if back {
            services.insert(rec.service.clone());
            containers.push(rec);
        }
    }
    Ok((services, containers))
}

/// Brings the project's containers back after a reboot (see [`to_bring_back`]); returns how
/// many were started.
pub fn boot(s: &Session<'_>, on_start: &mut dyn FnMut(&str)) -> anyhow::Result<usize> {
    for c in s.db.containers(&s.project.name)? {
        // What the state says ran before the reboot is brought up to date first.
        crate::container::refresh(s.roots, s.db, &c)?;
    }
    let (services, containers) = to_bring_back(s)?;
    if containers.is_empty() {
        return Ok(0);
    }
    let mut started = 0;
    super::start::start(s, &services, &containers, &mut |name| {
        started += 1;
        on_start(name)
    })?;
    Ok(started)
}
