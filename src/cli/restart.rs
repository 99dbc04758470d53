//! `berth restart`: stops and starts containers again, and with them the containers of
//! services that depend on them with `restart: true`.

use std::time::Duration;

use berth::container;
use berth::graph::ServiceGraph;
use clap::Args;

use crate::cli::containers::{progress, Ctx};
use crate::cli::ProjectArgs;

/// Arguments of `berth restart`.
#[derive(Args, Debug, Default)]
pub struct RestartArgs {
    /// Services to restart (default: all)
    pub services: Vec<String>,
    /// Seconds to wait for the stop signal before SIGKILL
    #[arg(short = 't', long = "timeout")]
    pub timeout: Option<f64>,
    /// Do not restart dependents that ask for it (`depends_on: {restart: true}`)
    #[arg(long)]
    pub no_deps: bool,
}

/// Runs `berth restart`.
pub fn run(project: &ProjectArgs, args: RestartArgs) -> anyhow::Result<()> {
    let ctx = Ctx::load(project)?;
    let _lock = ctx.lock("restart")?;
    ctx.check_services(&args.services)?;
    let timeout = args.timeout.map(|t| Duration::from_secs_f64(t.max(0.0)));
    let graph = ServiceGraph::new(&ctx.project);
    let mut services: Vec<String> =
        if args.services.is_empty() { ctx.project.services.keys().cloned().collect() } else { args.services.clone() };
    if !args.no_deps {
        // Dependents restarted along with their dependency, transitively.
        let mut i = 0;
        while i < services.len() {
            for (d, edge) in graph.dependents(&services[i]) {
                if edge.restart && !services.iter().any(|s| s == d) {
                    services.push(d.to_string());
                }
            }
            i += 1;
        }
    }
    let list = ctx.containers(&services, false)?;
    super::containers::ensure_supervisor(&ctx, &list)?;
    let events = super::progress::Progress::new(ctx.progress);
    let engine = berth::stack::engine::StackEngine::new(&ctx.project, ctx.roots.clone(), &events)?;
    for level in graph.start_levels() {
        for c in list.iter().filter(|c| level.contains(&c.service)) {
            // After a reboot its namespace is gone: it gets its networks back first.
            engine.give_network_back(&c.name)?;
            container::restart(&ctx.roots, &ctx.db, c, timeout)?;
            progress(&c.name, "Restarted");
        }
    }
    super::containers::tell_supervisor(&ctx);
    Ok(())
}
