//! `berth pause` and `berth unpause`: freeze and thaw running containers.

use berth::container;
use clap::Args;

use crate::cli::containers::{progress, Ctx};
use crate::cli::ProjectArgs;

/// Arguments of `berth pause` and `berth unpause`.
#[derive(Args, Debug, Default)]
pub struct PauseArgs {
    /// Services (default: all)
    pub services: Vec<String>,
}

/// Runs `berth pause`.
pub fn pause(project: &ProjectArgs, args: PauseArgs) -> anyhow::Result<()> {
    let ctx = Ctx::load(project)?;
    let _lock = ctx.lock("pause")?;
    ctx.check_services(&args.services)?;
    for c in ctx.containers(&args.services, false)? {
        container::pause(&ctx.roots, &ctx.db, &c)?;
        progress(&c.name, "Paused");
    }
    Ok(())
}

/// Runs `berth unpause`.
pub fn unpause(project: &ProjectArgs, args: PauseArgs) -> anyhow::Result<()> {
    let ctx = Ctx::load(project)?;
    let _lock = ctx.lock("unpause")?;
    ctx.check_services(&args.services)?;
    for c in ctx.containers(&args.services, false)? {
        container::unpause(&ctx.roots, &ctx.db, &c)?;
        progress(&c.name, "Unpaused");
    }
    Ok(())
}
