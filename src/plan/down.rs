//! Reconciling for `down`: stop containers dependents-first (independent ones in parallel),
//! remove them, then the project's networks and, with `-v`, its volumes. External resources
//! are never touched; a network another project still uses is kept.

use std::collections::BTreeMap;

use berth_compose::model::Project;

use super::up::target_of;
use super::{Observed, ObservedContainer, Operation, Plan, Resource, Status};
use crate::graph::ServiceGraph;

/// What `berth down` was asked for.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DownOptions {
    /// Remove named volumes too (`-v`).
    pub volumes: bool,
    /// Remove containers of services the project no longer has.
    pub remove_orphans: bool,
    /// Only these services' containers (`down SERVICE...`); networks and volumes then stay.
    pub services: Vec<String>,
}

/// Plans `down` for `project` given what exists.
pub fn reconcile(project: &Project, observed: &Observed, opts: &DownOptions) -> Plan {
    let mut plan = Plan::default();
    let graph = ServiceGraph::new(project);
    let (known, orphans): (Vec<&ObservedContainer>, Vec<&ObservedContainer>) =
        observed.containers.iter().partition(|c| project.services.contains_key(&c.service));
    let mut removes = Vec::new();
    let mut previous_level: Vec<usize> = Vec::new();
    for level in graph.stop_levels() {
        let mut this_level = Vec::new();
        for service in &level {
            if !opts.services.is_empty() && !opts.services.contains(service) {
                continue;
            }
            let mut mine: Vec<&&ObservedContainer> = known.iter().filter(|c| &c.service == service).collect();
            mine.sort_by_key(|c| (c.one_off, c.number));
            for c in mine {
                let stop = matches!(c.status, Status::Running | Status::Paused | Status::Restarting)
                    .then(|| plan.add(Operation::StopContainer(target_of(c)), "down", previous_level.clone()));
                this_level.extend(stop);
                let deps = stop.map(|s| vec![s]).unwrap_or_else(|| previous_level.clone());
                removes.push(plan.add(remove(c, opts), "down", deps));
            }
        }
        if !this_level.is_empty() {
            previous_level = this_level;
        }
    }
    if opts.remove_orphans {
        for c in &orphans {
            let stop = (c.status == Status::Running)
                .then(|| plan.add(Operation::StopContainer(target_of(c)), "orphan", vec![]));
            removes.push(plan.add(remove(c, opts), "orphan", stop.into_iter().collect()));
        }
    } else if !orphans.is_empty() {
        let names: Vec<&str> = orphans.iter().map(|c| c.name.as_str()).collect();
        plan.warnings.push(format!("orphan containers left running: {} (use --remove-orphans)", names.join(", ")));
    }
    if !opts.services.is_empty() {
        return plan;
    }
    for (key, net) in &project.networks {
        let name = net.name.clone().unwrap_or_else(|| key.clone());
        let resource = Resource { key: key.clone(), name: name.clone() };
        if net.external == Some(true) || !observed.networks.contains(&name) {
            continue;
        }
        if observed.networks_in_use_elsewhere.contains(&name) {
            plan.warnings.push(format!("network {name:?} is kept: containers of another project use it"));
            continue;
        }
        plan.add(Operation::RemoveNetwork(resource), "down", removes.clone());
    }
    if opts.volumes {
        let volumes: BTreeMap<String, (&String, bool)> = project
            .volumes
            .iter()
            .map(|(k, v)| (v.name.clone().unwrap_or_else(|| k.clone()), (k, v.external == Some(true))))
            .collect();
        for (name, (key, external)) in volumes {
            if !external && observed.volumes.contains(&name) {
                let resource = Resource { key: key.clone(), name };
                plan.add(Operation::RemoveVolume(resource), "down -v", removes.clone());
            }
        }
    }
    plan
}

/// Removing `c` for good, with its anonymous volumes when `-v` was given.
fn remove(c: &ObservedContainer, opts: &DownOptions) -> Operation {
    Operation::RemoveContainer { target: target_of(c), anonymous_volumes: opts.volumes, leaving: true }
}
