//! Starting a project's existing containers: dependencies first, each service once its
//! dependencies meet their `depends_on` conditions (started, healthy, completed), as Compose's
//! `start` does. A container whose network namespace is gone (after a reboot) is attached to its
//! networks again first. `berth boot` uses it for the containers a reboot must bring back.

use std::collections::BTreeSet;

use crate::app::Session;
use crate::execute::{Engine, Readiness};
use crate::graph::ServiceGraph;
use crate::stack::engine::StackEngine;
use crate::state::ContainerRecord;

/// Starts `containers` (of the services `wanted`) in dependency order; `on_start` hears each
/// one that was not running.
pub fn start(
    s: &Session<'_>,
    wanted: &BTreeSet<String>,
    containers: &[ContainerRecord],
    on_start: &mut dyn FnMut(&str),
) -> anyhow::Result<()> {
    if containers.iter().any(crate::stack::engine::needs_supervisor) {
        crate::supervise::client::ensure(s.roots, &s.project.name)?;
    }
    let graph = ServiceGraph::new(s.project);
    let engine = StackEngine::new(s.project, s.roots.clone(), s.events)?.supervised(true);
    for level in graph.start_levels() {
        for service in level.iter().filter(|x| wanted.contains(*x)) {
            // Its dependencies (started earlier) first meet their conditions.
            for (dep, edge) in graph.dependencies(service) {
                if !wanted.contains(dep) {
                    continue;
                }
                let ready = Readiness { service: dep.to_string(), condition: edge.condition, required: edge.required };
                if let Err(e) = engine.wait_ready(&ready) {
                    if edge.required {
                        anyhow::bail!("service {service:?}: {e}");
                    }
                    s.warn(format!("service {service:?}: {e} (an optional dependency)"));
                }
            }
            for c in containers.iter().filter(|c| &c.service == service) {
                if engine.start_container(&c.name)? {
                    on_start(&c.name);
                }
            }
        }
    }
    Ok(())
}
