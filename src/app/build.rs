//! `build`: the images of the services that have a `build:` section, each image once.

use std::collections::BTreeSet;

use anyhow::{bail, Context};
use berth_compose::Project;

use crate::build::compose::{self, ComposeBuildOptions};
use crate::container::Roots;
use crate::events::EventSink;

/// Which services' images to build.
#[derive(Clone, Debug, Default)]
pub struct Services {
    /// Those named (every buildable one when empty).
    pub named: Vec<String>,
    /// The named services' dependencies too.
    pub with_dependencies: bool,
}

/// Builds the images of `services` with `opts`; progress goes to `events`.
pub fn build(
    project: &Project,
    roots: &Roots,
    services: &Services,
    opts: &ComposeBuildOptions,
    events: &dyn EventSink,
) -> anyhow::Result<()> {
    for s in &services.named {
        if !project.services.contains_key(s) {
            bail!("no such service: `{s}`");
        }
    }
    let mut wanted: BTreeSet<String> = services.named.iter().cloned().collect();
    if services.with_dependencies && !wanted.is_empty() {
        let named: Vec<String> = wanted.iter().cloned().collect();
        wanted.extend(crate::graph::ServiceGraph::new(project).with_dependencies(&named));
    }
    // Images a build uses (`additional_contexts: service:NAME`) are built first, and always.
    let mut todo: Vec<String> = wanted.iter().cloned().collect();
    while let Some(name) = todo.pop() {
        for dep in project.services.get(&name).map(compose::image_dependencies).unwrap_or_default() {
            if wanted.insert(dep.clone()) {
                todo.push(dep);
            }
        }
    }
    let mut built = BTreeSet::new();
    for name in build_order(project) {
        let svc = &project.services[&name];
        if (!wanted.is_empty() && !wanted.contains(&name)) || !compose::buildable(svc) {
            continue;
        }
        if !built.insert(svc.image_name(project)) {
            continue;
        }
        let req = compose::request(project, svc, opts).with_context(|| format!("service `{name}`"))?;
        crate::build::build(&req, roots, events).with_context(|| format!("service `{name}`: build failed"))?;
    }
    Ok(())
}

/// The project's services, each after the services whose images its build uses (by name
/// otherwise); a cycle is left to fail when its image is missing.
fn build_order(p: &Project) -> Vec<String> {
    fn visit(p: &Project, name: &str, seen: &mut BTreeSet<String>, out: &mut Vec<String>) {
        if !seen.insert(name.to_string()) {
            return;
        }
        for dep in p.services.get(name).map(compose::image_dependencies).unwrap_or_default() {
            visit(p, &dep, seen, out);
        }
        out.push(name.to_string());
    }
    let (mut seen, mut out) = (BTreeSet::new(), Vec::new());
    for name in p.services.keys() {
        visit(p, name, &mut seen, &mut out);
    }
    out.retain(|n| p.services.contains_key(n));
    out
}
