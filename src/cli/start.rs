//! `berth start`: starts the project's existing containers, dependencies first. A container
//! whose network namespace is gone (after a reboot) is attached to its networks again first.

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
}

/// Runs `berth start`.
pub fn run(project: &ProjectArgs, args: StartArgs) -> anyhow::Result<()> {
    let ctx = Ctx::load(project)?;
    let _lock = ctx.lock("start")?;
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
    let runtime = list[0].runtime.clone();
    let engine = StackEngine::new(&ctx.project, ctx.roots.clone(), &runtime, &events)?.supervised(true);
    for level in graph.start_levels() {
        for c in list.iter().filter(|c| level.contains(&c.service)) {
            if engine.start_container(&c.name)? {
                progress(&c.name, "Started");
            }
        }
    }
    Ok(())
}
