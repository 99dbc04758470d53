//! `berth start`: starts the project's existing containers, dependencies first.

use berth::container::{self, StartMode};
use berth::graph::ServiceGraph;
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
    super::containers::ensure_supervisor(&ctx, &list)?;
    for level in graph.start_levels() {
        for c in list.iter().filter(|c| level.contains(&c.service)) {
            if container::start(&ctx.roots, &ctx.db, c, StartMode::Detached)? {
                progress(&c.name, "Started");
            }
        }
        super::containers::tell_supervisor(&ctx);
    }
    Ok(())
}
