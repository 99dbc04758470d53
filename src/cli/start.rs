//! `berth start`: starts the project's existing containers, dependencies first, each service
//! once its dependencies meet their `depends_on` conditions (started, healthy, completed), as
//! Compose's `start` does; `--wait` then waits until everything runs and is healthy. A container
//! whose network namespace is gone (after a reboot) is attached to its networks again first.

use std::time::Duration;

use berth::execute::{Engine, Readiness};
use berth::graph::ServiceGraph;
use berth::stack::engine::StackEngine;
use clap::Args;

use crate::cli::containers::{progress, Ctx};
use crate::cli::ProjectArgs;

/// Arguments of `berth start`.
#[derive(Args, Debug, Default)]
pub struct StartArgs {
    /// Services to start, with their dependencies (default: all)
    pub services: Vec<String>,
    /// Wait until the started services run and are healthy
    #[arg(long)]
    pub wait: bool,
    /// With --wait: give up after this many seconds
    #[arg(long, requires = "wait")]
    pub wait_timeout: Option<u64>,
}

/// Runs `berth start`.
pub fn run(project: &ProjectArgs, args: StartArgs) -> anyhow::Result<()> {
    let ctx = Ctx::load(project)?;
    let lock = ctx.lock("start")?;
    ctx.check_services(&args.services)?;
    let graph = ServiceGraph::new(&ctx.project);
    let wanted = if args.services.is_empty() {
        ctx.project.services.keys().cloned().collect()
    } else {
        graph.with_dependencies(&args.services)
    };
    let all: Vec<String> = wanted.iter().cloned().collect();
    let list = ctx.containers(&all, false)?;
    if list.is_empty() {
        anyhow::bail!("no containers to start; run `berth create` or `berth up` first");
    }
    if list.iter().any(berth::stack::engine::needs_supervisor) {
        berth::supervise::client::ensure(&ctx.roots, &ctx.project.name)?;
    }
    let events = super::progress::Progress::new(ctx.progress);
    let engine = StackEngine::new(&ctx.project, ctx.roots.clone(), &events)?.supervised(true);
    for level in graph.start_levels() {
        for service in level.iter().filter(|s| wanted.contains(*s)) {
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
                    berth::output::warn(&format!("service {service:?}: {e} (an optional dependency)"));
                }
            }
            for c in list.iter().filter(|c| &c.service == service) {
                if engine.start_container(&c.name)? {
                    progress(&c.name, "Started");
                }
            }
        }
    }
    drop(lock);
    if args.wait {
        return super::foreground::wait(&ctx, &all, args.wait_timeout.map(Duration::from_secs));
    }
    Ok(())
}
