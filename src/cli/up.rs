//! `berth up`: plan what must change for the project to be as the files say, then do it.

use std::collections::BTreeMap;

use anyhow::bail;
use clap::Args;

use super::containers::{Ctx, RuntimeArgs};
use super::ProjectArgs;
use berth::plan::up::UpOptions;

/// Arguments of `berth up`.
#[derive(Args, Debug)]
pub struct UpArgs {
    /// Run in the background (required for now: the foreground supervisor is not there yet)
    #[arg(short, long)]
    detach: bool,
    /// Print the plan and change nothing
    #[arg(long)]
    dry_run: bool,
    /// Create containers but do not start them
    #[arg(long)]
    no_start: bool,
    /// Recreate containers even when nothing changed
    #[arg(long)]
    force_recreate: bool,
    /// Never recreate existing containers
    #[arg(long)]
    no_recreate: bool,
    /// Recreate the dependents of recreated services
    #[arg(long)]
    always_recreate_deps: bool,
    /// Do not start the named services' dependencies
    #[arg(long)]
    no_deps: bool,
    /// Recreate anonymous volumes instead of keeping their data
    #[arg(short = 'V', long)]
    renew_anon_volumes: bool,
    /// Remove containers of services no longer in the files
    #[arg(long, env = "COMPOSE_REMOVE_ORPHANS")]
    remove_orphans: bool,
    /// Pull images: `always`, `missing` or `never`
    #[arg(long, value_name = "POLICY")]
    pull: Option<String>,
    /// Replicas of a service, `SERVICE=N` (repeatable)
    #[arg(long, value_name = "SERVICE=N")]
    scale: Vec<String>,
    #[command(flatten)]
    runtime: RuntimeArgs,
    /// Services (default: all), with their dependencies unless `--no-deps`
    services: Vec<String>,
}

/// Runs `berth up`.
pub fn run(project: &ProjectArgs, args: UpArgs) -> anyhow::Result<()> {
    let ctx = Ctx::load(project)?;
    let mut scale = BTreeMap::new();
    for s in &args.scale {
        let Some((svc, n)) = s.split_once('=') else { bail!("invalid --scale {s:?}: expected SERVICE=N") };
        let n: u64 = n.parse().map_err(|_| anyhow::anyhow!("invalid --scale {s:?}: {n:?} is not a number"))?;
        scale.insert(svc.to_string(), n);
    }
    let opts = UpOptions {
        services: args.services.clone(),
        no_deps: args.no_deps,
        force_recreate: args.force_recreate,
        no_recreate: args.no_recreate,
        always_recreate_deps: args.always_recreate_deps,
        renew_anon_volumes: args.renew_anon_volumes,
        remove_orphans: args.remove_orphans,
        no_start: args.no_start,
        pull: args.pull.clone(),
        scale,
    };
    let observed = super::stack::observe(&ctx)?;
    let plan = berth::plan::up::reconcile(&ctx.project, &observed, &opts)?;
    if args.dry_run {
        print!("{plan}");
        return Ok(());
    }
    if !args.detach {
        bail!("berth up runs in the background only for now: use `berth up -d` (the foreground supervisor comes next)");
    }
    for w in &plan.warnings {
        berth::output::warn(w);
    }
    let runtime = ctx.runtime_name(&args.runtime)?;
    let anonymous = super::stack::Anonymous { renew: args.renew_anon_volumes, remove: false };
    super::stack::execute(&ctx, &plan, &runtime, anonymous)
}
