//! `berth kill`: sends a signal to running containers.

use berth::container;
use clap::Args;

use crate::cli::containers::{progress, Ctx};
use crate::cli::ProjectArgs;

/// Arguments of `berth kill`.
#[derive(Args, Debug, Default)]
pub struct KillArgs {
    /// Services to signal (default: all)
    pub services: Vec<String>,
    /// Signal to send
    #[arg(short = 's', long = "signal", default_value = "SIGKILL")]
    pub signal: String,
}

/// Runs `berth kill`.
pub fn run(project: &ProjectArgs, args: KillArgs) -> anyhow::Result<()> {
    let ctx = Ctx::load(project)?;
    let _lock = ctx.lock("kill")?;
    ctx.check_services(&args.services)?;
    let signal = container::parse_signal(&args.signal)?;
    for c in ctx.containers(&args.services, true)? {
        if container::kill(&ctx.roots, &ctx.db, &c, signal)? {
            progress(&c.name, "Killed");
        }
    }
    super::containers::tell_supervisor(&ctx);
    Ok(())
}
