//! `berth down`: stop and remove the project's containers, then its networks (and, with `-v`,
//! its volumes).

use clap::Args;

use super::containers::Ctx;
use super::ProjectArgs;
use berth::plan::down::DownOptions;

/// Arguments of `berth down`.
#[derive(Args, Debug, Default)]
pub struct DownArgs {
    /// Only these services' containers (networks and volumes stay)
    services: Vec<String>,
    /// Also remove the project's named volumes (never external ones)
    #[arg(short, long)]
    volumes: bool,
    /// Also remove containers of services no longer in the files
    #[arg(long, env = "COMPOSE_REMOVE_ORPHANS")]
    remove_orphans: bool,
    /// Print the plan and change nothing
    #[arg(long)]
    dry_run: bool,
    /// Seconds to wait for each container's stop signal before SIGKILL (default: each service's
    /// `stop_grace_period`, else 10)
    #[arg(short = 't', long = "timeout")]
    timeout: Option<f64>,
}

/// Runs `berth down`.
pub fn run(project: &ProjectArgs, args: DownArgs) -> anyhow::Result<()> {
    let ctx = Ctx::load(project)?;
    ctx.check_services(&args.services)?;
    let _lock = ctx.lock("down")?;
    let observed = super::stack::observe(&ctx, !args.dry_run)?;
    let opts = DownOptions {
        volumes: args.volumes,
        remove_orphans: args.remove_orphans || ctx.env_flag("COMPOSE_REMOVE_ORPHANS"),
        services: args.services.clone(),
    };
    let plan = berth::plan::down::reconcile(&ctx.project, &observed, &opts);
    if args.dry_run {
        print!("{plan}");
        return Ok(());
    }
    for w in &plan.warnings {
        berth::output::warn(w);
    }
    let stop_timeout = args.timeout.map(|t| std::time::Duration::from_secs_f64(t.max(0.0)));
    let anonymous = super::stack::Anonymous { renew: false, remove: args.volumes, stop_timeout };
    super::stack::execute(&ctx, &plan, "runc", anonymous, false)?;
    // Nothing left to supervise: stop the supervisor now rather than when it notices.
    if ctx.db.containers(&ctx.project.name)?.iter().all(|c| c.oneoff) {
        berth::supervise::client::shutdown(&ctx.roots, &ctx.project.name)?;
    }
    ctx.db.remove_project_if_empty(&ctx.project.name)?;
    Ok(())
}
