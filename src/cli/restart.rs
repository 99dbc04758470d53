//! `berth restart`: stops and starts containers again.

use std::time::Duration;

use berth::container;
use clap::Args;

use crate::cli::containers::{progress, Ctx};
use crate::cli::ProjectArgs;

/// Arguments of `berth restart`.
#[derive(Args, Debug, Default)]
pub struct RestartArgs {
    /// Services to restart (default: all)
    pub services: Vec<String>,
    /// Seconds to wait before SIGKILL
    #[arg(short = 't', long = "timeout")]
    pub timeout: Option<f64>,
}

/// Runs `berth restart`.
pub fn run(project: &ProjectArgs, args: RestartArgs) -> anyhow::Result<()> {
    let ctx = Ctx::load(project)?;
    ctx.check_services(&args.services)?;
    let timeout = args.timeout.map(|t| Duration::from_secs_f64(t.max(0.0)));
    for c in ctx.containers(&args.services, false)? {
        container::restart(&ctx.roots, &ctx.db, &c, timeout)?;
        progress(&c.name, "Restarted");
    }
    Ok(())
}
