//! `berth create`: creates the containers of the services (and their dependencies) without
//! starting them, with their networks and volumes: `up --no-start`, as in Compose.

use clap::Args;

use crate::cli::containers::{Ctx, RuntimeArgs};
use crate::cli::ProjectArgs;

/// Arguments of `berth create`.
#[derive(Args, Debug, Default)]
pub struct CreateArgs {
    /// Services to create, with their dependencies (default: all)
    pub services: Vec<String>,
    /// Recreate containers even when nothing changed
    #[arg(long)]
    pub force_recreate: bool,
    /// Never recreate existing containers
    #[arg(long)]
    pub no_recreate: bool,
    #[command(flatten)]
    pub runtime: RuntimeArgs,
}

/// Runs `berth create`.
pub fn run(project: &ProjectArgs, args: CreateArgs) -> anyhow::Result<()> {
    let ctx = Ctx::load_for(project, &args.services)?;
    ctx.check_services(&args.services)?;
    let opts = berth::plan::up::UpOptions {
        services: args.services.clone(),
        force_recreate: args.force_recreate,
        no_recreate: args.no_recreate,
        no_start: true,
        ..Default::default()
    };
    let runtime = ctx.runtime_name(&args.runtime)?;
    let _lock = ctx.lock("create")?;
    berth::app::up::converge(&ctx.session(&ctx.progress()), &opts, &runtime, false)
}
