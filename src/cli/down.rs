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
    /// Seconds to wait for each container's stop signal before SIGKILL (default: each service's
    /// `stop_grace_period`, else 10)
    #[arg(short = 't', long = "timeout")]
    timeout: Option<f64>,
    /// Also remove the services' images: `local` those without a name of their own
    /// (`<project>-<service>`), `all` every one (images a container still uses stay)
    #[arg(long, value_name = "TYPE", value_enum)]
    rmi: Option<Rmi>,
}

/// `down --rmi`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum Rmi {
    /// Images without a name of their own
    Local,
    /// Every service's image
    All,
}

/// Runs `berth down`.
pub fn run(project: &ProjectArgs, args: DownArgs) -> anyhow::Result<()> {
    let mut ctx = Ctx::load_named(project)?;
    ctx.check_services(&args.services)?;
    let _lock = ctx.lock("down")?;
    ctx.stop_timeout = args.timeout.map(|t| std::time::Duration::from_secs_f64(t.max(0.0)));
    let progress = ctx.progress();
    let session = ctx.session(&progress);
    let observed = berth::app::stack::observe_past_unreadable(&session, !project.dry_run)?;
    let opts = DownOptions {
        volumes: args.volumes,
        remove_orphans: args.remove_orphans || ctx.env_flag("COMPOSE_REMOVE_ORPHANS"),
        services: args.services.clone(),
    };
    let plan = berth::plan::down::reconcile(&ctx.project, &observed, &opts);
    if project.dry_run {
        print!("{plan}");
        return Ok(());
    }
    for w in &plan.warnings {
        berth::output::warn(w);
    }
    berth::app::stack::execute(&session, &plan, None, false)?;
    // Nothing left to supervise: stop the supervisor now rather than when it notices (a row
    // that cannot be read is not supervised either).
    if ctx.db.scan_containers(&ctx.project.name)?.0.iter().all(|c| c.oneoff) {
        berth::supervise::client::shutdown(&ctx.roots, &ctx.project.name)?;
    }
    ctx.db.remove_project_if_empty(&ctx.project.name)?;
    if let Some(kind) = args.rmi {
        let events = ctx.progress();
        berth::app::images::remove_project_images(&ctx.session(&events), kind == Rmi::All, &mut |name| {
            eprintln!(" Image {name}  Removed")
        })?;
    }
    Ok(())
}
