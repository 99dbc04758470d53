//! `berth wait`: blocks until the services' containers stop and prints their exit codes.

use berth::container;
use clap::Args;

use crate::cli::containers::Ctx;
use crate::cli::ProjectArgs;

/// Arguments of `berth wait`.
#[derive(Args, Debug, Default)]
pub struct WaitArgs {
    /// Services to wait for
    #[arg(required = true)]
    pub services: Vec<String>,
}

/// Runs `berth wait`.
pub fn run(project: &ProjectArgs, args: WaitArgs) -> anyhow::Result<()> {
    let ctx = Ctx::load(project)?;
    ctx.check_services(&args.services)?;
    for c in ctx.containers(&args.services, false)? {
        let c = container::refresh(&ctx.roots, &ctx.db, &c)?;
        let done =
            if c.status.is_alive() { container::wait_exit(&ctx.roots, &ctx.db, &c.id, None)? } else { Some(c.clone()) };
        let code = done.and_then(|r| r.exit_code).unwrap_or(-1);
        println!("{code}");
    }
    Ok(())
}
