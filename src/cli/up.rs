//! `berth up`: plan what must change for the project to be as the files say, do it, and leave the
//! project's supervisor running. In the foreground it then streams the containers' logs until they
//! exit or Ctrl-C stops them; with `-d` it returns (after `--wait`, once everything is healthy).

use std::time::Duration;

use anyhow::bail;
use clap::Args;

use super::containers::{Ctx, RuntimeArgs};
use super::ProjectArgs;
use berth::plan::up::UpOptions;

/// Arguments of `berth up`.
#[derive(Args, Debug)]
pub struct UpArgs {
    /// Run in the background
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
    /// Wait until the containers run (and are healthy, if they have a health check); implies -d
    #[arg(long)]
    wait: bool,
    /// Seconds `--wait` waits at most
    #[arg(long, value_name = "SECONDS")]
    wait_timeout: Option<u64>,
    /// Stop every container when one exits
    #[arg(long)]
    abort_on_container_exit: bool,
    /// Stop every container when one exits with a non-zero code
    #[arg(long)]
    abort_on_container_failure: bool,
    /// Exit with this service's exit code (implies --abort-on-container-exit)
    #[arg(long, value_name = "SERVICE")]
    exit_code_from: Option<String>,
    /// Show the logs of these services only (repeatable)
    #[arg(long, value_name = "SERVICE")]
    attach: Vec<String>,
    /// Do not show the logs of these services (repeatable)
    #[arg(long, value_name = "SERVICE")]
    no_attach: Vec<String>,
    /// Show the logs of the dependencies too
    #[arg(long)]
    attach_dependencies: bool,
    /// Show timestamps in the logs
    #[arg(long)]
    timestamps: bool,
    /// Do not prefix log lines with the container name
    #[arg(long)]
    no_log_prefix: bool,
    /// Monochrome logs
    #[arg(long)]
    no_color: bool,
    /// Seconds to wait for containers to stop (Ctrl-C, abort) before killing them
    #[arg(short = 't', long, value_name = "SECONDS")]
    timeout: Option<u64>,
    #[command(flatten)]
    runtime: RuntimeArgs,
    /// Services (default: all), with their dependencies unless `--no-deps`
    services: Vec<String>,
}

/// Runs `berth up`.
pub fn run(project: &ProjectArgs, args: UpArgs) -> anyhow::Result<()> {
    let since = berth::state::now_nanos();
    let mut ctx = Ctx::load_for(project, &args.services)?;
    // `-t` bounds the stops of containers `up` replaces too, as in Compose.
    ctx.stop_timeout = args.timeout.map(Duration::from_secs);
    ctx.check_services(&args.services)?;
    let scale = super::scale::parse_scale(&args.scale).map_err(|e| anyhow::anyhow!("--scale: {e}"))?;
    let detach = args.detach || args.wait;
    if detach && (args.abort_on_container_exit || args.abort_on_container_failure || args.exit_code_from.is_some()) {
        bail!("--abort-on-container-exit, --abort-on-container-failure and --exit-code-from need a foreground `up` (no -d/--wait)");
    }
    if args.abort_on_container_exit && args.abort_on_container_failure {
        bail!("--abort-on-container-exit and --abort-on-container-failure cannot be used together");
    }
    if let Some(s) = &args.exit_code_from {
        ctx.check_services(std::slice::from_ref(s))?;
    }
    let opts = UpOptions {
        services: args.services.clone(),
        no_deps: args.no_deps,
        force_recreate: args.force_recreate,
        no_recreate: args.no_recreate,
        always_recreate_deps: args.always_recreate_deps,
        renew_anon_volumes: args.renew_anon_volumes,
        remove_orphans: args.remove_orphans || ctx.env_flag("COMPOSE_REMOVE_ORPHANS"),
        no_start: args.no_start,
        pull: args.pull.clone(),
        scale,
    };
    // What is there is read under the lock: two `up`s never plan from the same picture.
    let lock = if args.dry_run { None } else { Some(ctx.lock("up")?) };
    let observed = super::stack::observe(&ctx, !args.dry_run)?;
    let plan = berth::plan::up::reconcile(&ctx.project, &observed, &opts)?;
    let selected: Vec<String> = berth::plan::up::selected(&ctx.project, &opts)?.into_iter().collect();
    check_health_checks(&ctx, &selected)?;
    let runtime = ctx.runtime_name(&args.runtime)?;
    if args.dry_run {
        super::stack::check_host(&ctx, &plan, &runtime)?;
        print!("{plan}");
        return Ok(());
    }
    for w in &plan.warnings {
        berth::output::warn(w);
    }
    apply(&ctx, &plan, &runtime, !args.no_start)?;
    drop(lock);
    if args.no_start {
        return Ok(());
    }
    if args.wait {
        let timeout = args.wait_timeout.map(Duration::from_secs);
        return super::foreground::wait(&ctx, &selected, timeout);
    }
    if detach {
        return Ok(());
    }
    let attached = attached_services(&ctx, &args, &selected);
    let stop_services = if args.services.is_empty() { selected.clone() } else { args.services.clone() };
    let fg = super::foreground::Foreground {
        attached,
        stop_services,
        abort_on_exit: args.abort_on_container_exit || args.exit_code_from.is_some(),
        abort_on_failure: args.abort_on_container_failure,
        exit_code_from: args.exit_code_from.clone(),
        since,
        timestamps: args.timestamps,
        no_log_prefix: args.no_log_prefix,
        no_color: args.no_color,
        timeout: args.timeout.map(Duration::from_secs),
    };
    let code = fg.run(&ctx)?;
    super::containers::exit_with(code)
}

/// Carries out an `up` plan: checks published ports, starts the project's supervisor (when
/// containers are to run), has it reserve the fixed host ports of the containers to start (a port
/// another project took meanwhile fails here, before anything is made) and runs the plan.
pub fn apply(ctx: &Ctx, plan: &berth::plan::Plan, runtime: &str, start: bool) -> anyhow::Result<()> {
    use berth::supervise::reserve;
    super::stack::check_host(ctx, plan, runtime)?;
    let supervised = start && plan.steps.iter().any(|s| s.container().is_some()) || observed_running(ctx)?;
    if supervised {
        berth::supervise::client::ensure(&ctx.roots, &ctx.project.name)?;
    }
    let name = &ctx.project.name;
    let wanted =
        if start && supervised { reserve::wanted(&ctx.project, plan, &ctx.db.containers(name)?)? } else { Vec::new() };
    let result = reserve::reserve(&ctx.roots, &ctx.db, name, &wanted, &reserve::frees(plan))
        .and_then(|()| super::stack::execute(ctx, plan, Some(runtime), ctx.stop_timeout, start));
    if !wanted.is_empty() {
        // The containers that started have their ports served; the rest are let go.
        reserve::release(&ctx.roots, name);
    }
    // Bad input makes nothing: no supervisor either, when the project has no container.
    if result.is_err() && ctx.db.containers(name)?.is_empty() {
        berth::supervise::client::shutdown(&ctx.roots, name)?;
    }
    result
}

/// Whether any container of the project runs (a supervisor must serve it).
fn observed_running(ctx: &Ctx) -> anyhow::Result<bool> {
    Ok(ctx.db.containers(&ctx.project.name)?.iter().any(|c| c.status.is_alive()))
}

/// Compose refuses `start_interval` without `start_period` for the services it brings up.
fn check_health_checks(ctx: &Ctx, services: &[String]) -> anyhow::Result<()> {
    for name in services {
        let Some(h) = ctx.project.services.get(name).and_then(|s| s.healthcheck.as_ref()) else { continue };
        if h.start_interval.is_some() && h.start_period.is_none_or(|p| p.0.is_zero()) {
            bail!(
                "services.{name}.healthcheck: healthcheck.start_interval requires healthcheck.start_period to be set"
            );
        }
    }
    Ok(())
}

/// Fails before anything starts when a fixed host port a container of the plan publishes is
/// taken: by a container of this project that keeps running or starts earlier in the plan, or
/// outside the project (who has it is named).
pub(super) fn check_ports(ctx: &Ctx, plan: &berth::plan::Plan) -> anyhow::Result<()> {
    use berth::supervise::{ports::HostPort, reserve};
    let rows = ctx.db.containers(&ctx.project.name)?;
    let wanted = reserve::wanted(&ctx.project, plan, &rows)?;
    let outside = |p: &HostPort| reserve::holder(&ctx.roots, &ctx.db, &ctx.project.name, p);
    reserve::check(&wanted, &rows, &reserve::frees(plan), reserve::free, outside).map_err(anyhow::Error::msg)
}

/// The services whose logs a foreground `up` shows.
fn attached_services(ctx: &Ctx, args: &UpArgs, selected: &[String]) -> Vec<String> {
    let mut out: Vec<String> = if !args.attach.is_empty() {
        args.attach.clone()
    } else if !args.services.is_empty() && !args.attach_dependencies {
        args.services.clone()
    } else {
        selected.to_vec()
    };
    // `attach: false` keeps a service's logs out of a foreground `up` unless `--attach` names it.
    let attach_off = |s: &String| ctx.project.services.get(s).is_some_and(|svc| svc.attach == Some(false));
    out.retain(|s| !args.no_attach.contains(s) && ctx.project.services.contains_key(s));
    out.retain(|s| args.attach.contains(s) || !attach_off(s));
    out
}
