//! `berth rm`: removes stopped containers.

use std::time::Duration;

use berth::container;
use clap::Args;

use crate::cli::containers::{progress, Ctx};
use crate::cli::ProjectArgs;

/// Arguments of `berth rm`.
#[derive(Args, Debug, Default)]
pub struct RmArgs {
    /// Services whose containers to remove (default: all)
    pub services: Vec<String>,
    /// Remove running containers too, killing them
    #[arg(short, long)]
    pub force: bool,
    /// Stop the containers first
    #[arg(short, long)]
    pub stop: bool,
    /// Remove anonymous volumes too
    #[arg(short, long)]
    pub volumes: bool,
}

/// Runs `berth rm`.
pub fn run(project: &ProjectArgs, args: RmArgs) -> anyhow::Result<()> {
    let ctx = Ctx::load(project)?;
    let _lock = ctx.lock("rm")?;
    ctx.check_services(&args.services)?;
    let events = berth::output::PlainRenderer;
    let engine = berth::stack::engine::StackEngine::new(&ctx.project, ctx.roots.clone(), &events)?;
    let mut failures = Vec::new();
    for c in ctx.containers(&args.services, true)? {
        if args.stop {
            container::stop(&ctx.roots, &ctx.db, &c, None)?;
        }
        let c = container::refresh(&ctx.roots, &ctx.db, &c)?;
        if c.status.is_alive() && !args.force {
            failures.push(format!("container `{}` is running: stop it first or use `--force` or `-s`", c.name));
            continue;
        }
        if c.status.is_alive() {
            container::stop(&ctx.roots, &ctx.db, &c, Some(Duration::ZERO))?;
        }
        match engine.remove_container(&c.name, args.volumes) {
            Ok(()) => progress(&c.name, "Removed"),
            Err(e) => failures.push(format!("{e:#}")),
        }
    }
    if !failures.is_empty() {
        anyhow::bail!(failures.join("\n"));
    }
    super::containers::tell_supervisor(&ctx);
    Ok(())
}
