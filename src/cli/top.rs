//! `berth top`: the processes of the running containers, from their cgroups.

use berth::container;
use clap::Args;

use crate::cli::containers::Ctx;
use crate::cli::format::print_table;
use crate::cli::ProjectArgs;

/// Arguments of `berth top`.
#[derive(Args, Debug, Default)]
pub struct TopArgs {
    /// Services (default: all)
    pub services: Vec<String>,
}

/// Runs `berth top`.
pub fn run(project: &ProjectArgs, args: TopArgs) -> anyhow::Result<()> {
    let ctx = Ctx::load(project)?;
    ctx.check_services(&args.services)?;
    for c in ctx.containers(&args.services, true)? {
        let c = container::refresh(&ctx.roots, &ctx.db, &c)?;
        if !c.status.is_alive() {
            continue;
        }
        println!("{}", c.name);
        let mut rows = vec![vec!["UID".to_string(), "PID".into(), "PPID".into(), "CMD".into()]];
        for (uid, pid, ppid, cmd) in container::top(&c)? {
            rows.push(vec![uid.to_string(), pid.to_string(), ppid.to_string(), cmd]);
        }
        print_table(&rows);
        println!();
    }
    Ok(())
}
