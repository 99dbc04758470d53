//! `berth create`: creates the containers of the project's services without starting them.

use berth::container::{create_container, CreateRequest};
use berth::output::PlainRenderer;
use berth::runtime::bundle::RunOverrides;
use clap::Args;

use crate::cli::containers::{progress, Ctx, RuntimeArgs};
use crate::cli::ProjectArgs;

/// Arguments of `berth create`.
#[derive(Args, Debug, Default)]
pub struct CreateArgs {
    /// Services to create (default: all)
    pub services: Vec<String>,
    #[command(flatten)]
    pub runtime: RuntimeArgs,
}

/// Runs `berth create`.
pub fn run(project: &ProjectArgs, args: CreateArgs) -> anyhow::Result<()> {
    let ctx = Ctx::load(project)?;
    let _lock = ctx.lock("create")?;
    ctx.check_services(&args.services)?;
    create_missing(&ctx, &args.services, &args.runtime)?;
    Ok(())
}

/// Creates the replicas that do not exist yet; returns how many were created.
pub fn create_missing(
    ctx: &Ctx,
    services: &[String],
    runtime: &crate::cli::containers::RuntimeArgs,
) -> anyhow::Result<usize> {
    let rt = ctx.runtime_name(runtime)?;
    let existing = ctx.containers(&[], false)?;
    let mut n = 0;
    for (name, svc) in &ctx.project.services {
        if !services.is_empty() && !services.contains(name) {
            continue;
        }
        for number in 1..=svc.replicas() as u32 {
            if existing.iter().any(|c| &c.service == name && c.number == number) {
                continue;
            }
            let rec = create_container(
                &ctx.roots,
                &ctx.db,
                &CreateRequest {
                    project: &ctx.project.name,
                    service: svc,
                    number,
                    oneoff: false,
                    name: None,
                    overrides: RunOverrides::default(),
                    runtime: &rt,
                    auto_remove: false,
                    provided: None,
                },
                &PlainRenderer,
            )?;
            progress(&rec.name, "Created");
            n += 1;
        }
    }
    Ok(n)
}
