//! `berth wait`: blocks until the services' containers stop, prints their exit codes and exits
//! with the code of the one that stopped last (as Compose); with `--down-project`, until the
//! first one stops, then takes the project down and exits with its code.

use std::time::Duration;

use berth::container;
use clap::Args;

use crate::cli::containers::{exit_with, Ctx};
use crate::cli::ProjectArgs;

/// Arguments of `berth wait`.
#[derive(Args, Debug, Default)]
pub struct WaitArgs {
    /// Services to wait for (default: all)
    pub services: Vec<String>,
    /// Take the project down (as `down` does) when the first container stops
    #[arg(long)]
    pub down_project: bool,
}

/// Runs `berth wait`.
pub fn run(project: &ProjectArgs, args: WaitArgs) -> anyhow::Result<()> {
    let ctx = Ctx::load(project)?;
    ctx.check_services(&args.services)?;
    let list = ctx.containers(&args.services, false)?;
    if list.is_empty() {
        anyhow::bail!("no containers for project {:?}", ctx.project.name);
    }
    if !args.down_project {
        let mut last = (i64::MIN, 0);
        for c in list {
            let c = container::refresh(&ctx.roots, &ctx.db, &c)?;
            let done =
                if c.status.is_alive() { container::wait_exit(&ctx.roots, &ctx.db, &c.id, None)? } else { Some(c) };
            let code = done.as_ref().and_then(|r| r.exit_code).unwrap_or(-1);
            println!("{code}");
            let finished = done.and_then(|r| r.finished_at).unwrap_or(i64::MIN);
            if finished >= last.0 {
                last = (finished, code);
            }
        }
        exit_with(last.1);
    }
    // The first to stop (of those running now) decides.
    let code = loop {
        let mut first = None;
        for c in &list {
            if ctx.db.container(&c.id)?.is_none() {
                first = Some(-1);
                break;
            }
            if let Some(r) = container::wait_exit(&ctx.roots, &ctx.db, &c.id, Some(Duration::from_millis(20)))? {
                first = Some(r.exit_code.unwrap_or(-1));
                break;
            }
        }
        if let Some(code) = first {
            break code;
        }
    };
    println!("{code}");
    drop(ctx);
    super::down::run(project, super::down::DownArgs::default())?;
    exit_with(code)
}
