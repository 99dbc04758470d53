//! Restarting services: their containers stopped and started again in dependency order, with
//! the dependents that ask for it (`depends_on: {restart: true}`, transitively).

use std::time::Duration;

use crate::app::Session;
use crate::graph::ServiceGraph;

/// Restarts the containers of `services` (all when empty) and, with `dependents`, of the
/// services that follow them; `on_restart` hears each container's name once it runs again.
pub fn restart(
    s: &Session<'_>,
    services: &[String],
    dependents: bool,
    timeout: Option<Duration>,
    on_restart: &mut dyn FnMut(&str),
) -> anyhow::Result<()> {
    let graph = ServiceGraph::new(s.project);
    let mut services: Vec<String> =
        if services.is_empty() { s.project.services.keys().cloned().collect() } else { services.to_vec() };
    if dependents {
        let mut i = 0;
        while i < services.len() {
            for (d, edge) in graph.dependents(&services[i]) {
                if edge.restart && !services.iter().any(|x| x == d) {
                    services.push(d.to_string());
                }
            }
            i += 1;
        }
    }
    let list = crate::container::select(s.db, &s.project.name, &services, false)?;
    if list.iter().any(crate::stack::engine::needs_supervisor) {
        crate::supervise::client::ensure(s.roots, &s.project.name)?;
    }
    let engine = crate::stack::engine::StackEngine::new(s.project, s.roots.clone(), s.events)?;
    for level in graph.start_levels() {
        for c in list.iter().filter(|c| level.contains(&c.service)) {
            // After a reboot its namespace is gone: it gets its networks back first.
            engine.give_network_back(&c.name)?;
            crate::container::restart(s.roots, s.db, c, timeout)?;
            on_restart(&c.name);
        }
    }
    if crate::supervise::client::socket_path(s.roots, &s.project.name).exists() {
        if let Err(e) = crate::supervise::client::refresh(s.roots, &s.project.name, Duration::from_secs(5)) {
            s.warn(format!("the project's supervisor did not take in the restarts: {e:#}"));
        }
    }
    Ok(())
}
