//! `berth rollback [SERVICE...]`: returns services to their last known-good deployment other
//! than the current one (the stored configuration and image), without downtime for
//! `start-first` services.

use clap::Args;

use super::containers::{Ctx, RuntimeArgs};
use crate::cli::ProjectArgs;

/// Arguments of `berth rollback`.
#[derive(Args, Debug, Default)]
pub struct RollbackArgs {
    /// Seconds to wait for replaced containers to stop before killing them
    #[arg(short = 't', long, value_name = "SECONDS")]
    pub timeout: Option<u64>,
    #[command(flatten)]
    pub runtime: RuntimeArgs,
    /// Services to roll back (default: every service with a known-good deployment to return to)
    pub services: Vec<String>,
}

/// Runs `berth rollback`.
pub fn run(project: &ProjectArgs, args: RollbackArgs) -> anyhow::Result<()> {
    let mut ctx = Ctx::load(project)?;
    ctx.stop_timeout = args.timeout.map(std::time::Duration::from_secs);
    let _lock = ctx.lock("rollback")?;
    let runtime = ctx.runtime_name(&args.runtime)?;
    let progress = ctx.progress();
    let done = berth::app::rollback::rollback(&ctx.session(&progress), &args.services, &runtime)?;
    for r in done {
        let digest = &r.to.image_digest;
        eprintln!(" Service {}  Rolled back to {} ({digest}, deployed {})", r.service, r.to.image, {
            berth::monitor::log::format_rfc3339(r.to.deployed_at * 1_000_000)
        });
    }
    Ok(())
}
