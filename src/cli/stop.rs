//! `berth stop`: stops running containers (stop signal, then SIGKILL after the grace period),
//! the named services only (all: dependents first).

use std::time::Duration;

use berth::container;
use berth::graph::ServiceGraph;
use clap::Args;

use crate::cli::containers::{progress, Ctx};
use crate::cli::ProjectArgs;

/// Arguments of `berth stop`.
#[derive(Args, Debug, Default)]
pub struct StopArgs {
    /// Services to stop (default: all); only those, as in Compose: their dependents keep running
    pub services: Vec<String>,
    /// Seconds to wait for the stop signal before SIGKILL (default: each service's
    /// `stop_grace_period`, else 10)
    #[arg(short = 't', long = "timeout")]
    pub timeout: Option<f64>,
}

/// Runs `berth stop`.
pub fn run(project: &ProjectArgs, args: StopArgs) -> anyhow::Result<()> {
    let ctx = Ctx::load(project)?;
    let _lock = ctx.lock("stop")?;
    ctx.check_services(&args.services)?;
    let timeout = args.timeout.map(|t| Duration::from_secs_f64(t.max(0.0)));
    let graph = ServiceGraph::new(&ctx.project);
    let list = ctx.containers(&args.services, true)?;
    let mut levels = graph.stop_levels();
    // Containers of services the files no longer have (and one-offs) go last.
    levels.push(list.iter().map(|c| c.service.clone()).collect());
    let mut done = std::collections::BTreeSet::new();
    for level in levels {
        for c in list.iter().filter(|c| level.contains(&c.service)) {
            if !done.insert(c.id.clone()) {
                continue;
            }
            if container::stop(&ctx.roots, &ctx.db, c, timeout)? {
                progress(&c.name, "Stopped");
            }
        }
    }
    super::containers::tell_supervisor(&ctx);
    Ok(())
}
