//! `berth start`: starts the project's existing containers.

use berth::container::{self, StartMode};
use clap::Args;

use crate::cli::containers::{progress, Ctx};
use crate::cli::ProjectArgs;

/// Arguments of `berth start`.
#[derive(Args, Debug, Default)]
pub struct StartArgs {
    /// Services to start (default: all)
    pub services: Vec<String>,
}

/// Runs `berth start`.
pub fn run(project: &ProjectArgs, args: StartArgs) -> anyhow::Result<()> {
    let ctx = Ctx::load(project)?;
    ctx.check_services(&args.services)?;
    let list = ctx.containers(&args.services, false)?;
    if list.is_empty() {
        anyhow::bail!("no containers to start; run `berth create` first");
    }
    for c in list {
        if container::start(&ctx.roots, &ctx.db, &c, StartMode::Detached)? {
            progress(&c.name, "Started");
        }
    }
    Ok(())
}
