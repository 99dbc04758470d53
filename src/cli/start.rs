//! `berth start`: starts the project's existing containers, dependencies first, each service
//! once its dependencies meet their `depends_on` conditions (started, healthy, completed), as
//! Compose's `start` does; `--wait` then waits until everything runs and is healthy. A container
//! whose network namespace is gone (after a reboot) is attached to its networks again first.

use std::time::Duration;

use berth::graph::ServiceGraph;
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
    let events = ctx.progress();
    berth::app::start::start(&ctx.session(&events), &wanted, &list, &mut |name| progress(name, "Started"))?;
    drop(lock);
    if args.wait {
        return berth::app::up::wait_ready(&ctx.session(&events), &all, args.wait_timeout.map(Duration::from_secs));
    }
    Ok(())
}
