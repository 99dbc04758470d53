//! `berth stop`: stops running containers (stop signal, then SIGKILL after the grace period).

use std::time::Duration;

use berth::container;
use clap::Args;

use crate::cli::containers::{progress, Ctx};
use crate::cli::ProjectArgs;

/// Arguments of `berth stop`.
#[derive(Args, Debug, Default)]
pub struct StopArgs {
    /// Services to stop (default: all)
    pub services: Vec<String>,
    /// Seconds to wait before SIGKILL (default: the service's `stop_grace_period`, else 10)
    #[arg(short = 't', long = "timeout")]
    pub timeout: Option<f64>,
}

/// Runs `berth stop`.
pub fn run(project: &ProjectArgs, args: StopArgs) -> anyhow::Result<()> {
    let ctx = Ctx::load(project)?;
    ctx.check_services(&args.services)?;
    let timeout = args.timeout.map(|t| Duration::from_secs_f64(t.max(0.0)));
    for c in ctx.containers(&args.services, true)? {
        if container::stop(&ctx.roots, &ctx.db, &c, timeout)? {
            progress(&c.name, "Stopped");
        }
    }
    Ok(())
}
