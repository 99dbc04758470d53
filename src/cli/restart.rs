//! `berth restart`: stops and starts containers again, and with them the containers of
//! services that depend on them with `restart: true`.

use std::time::Duration;

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
    let events = ctx.progress();
    let session = ctx.session(&events);
    berth::app::restart::restart(&session, &args.services, !args.no_deps, timeout, &mut |name| {
        progress(name, "Restarted")
    })
}
