//! `berth up`: plan what must change for the project to be as the files say, do it, and leave the
//! project's supervisor running. In the foreground it then streams the containers' logs until they
//! exit or Ctrl-C stops them; with `-d` it returns (after `--wait`, once everything is healthy).

use std::time::Duration;

use anyhow::bail;
use clap::Args;

use super::containers::{Ctx, RuntimeArgs};
use super::render::logs::{Printer, Style};
use super::ProjectArgs;
use berth::app;
use berth::plan::up::UpOptions;

/// Arguments of `berth up`.
#[derive(Args, Debug)]
pub struct UpArgs {
    /// Run in the background
    #[arg(short, long)]
    detach: bool,
    /// Apply the services' `develop.watch` rules as files change, while the logs stream
    #[arg(short = 'w', long)]
    watch: bool,
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
    /// Pull images: `always`, `missing` or `never` (or another `pull_policy`)
    #[arg(long, value_name = "POLICY", value_parser = berth::image::PullPolicy::parse)]
    pull: Option<berth::image::PullPolicy>,
    /// Build the images of services with a `build:` section before starting
    #[arg(long)]
    build: bool,
    /// Build no image, even a missing one
    #[arg(long)]
    no_build: bool,
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
    if detach && args.watch {
        bail!("--watch needs a foreground `up` (no -d/--wait); use `berth watch` beside a detached stack");
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
        pull: args.pull,
        scale,
        build: args.build,
        no_build: args.no_build,
        policies: Default::default(),
    };
    // What is there is read under the lock: two `up`s never plan from the same picture.
    let lock = if project.dry_run { None } else { Some(ctx.lock("up")?) };
    let progress = ctx.progress();
    let session = ctx.session(&progress);
    let observed = app::stack::observe(&session, !project.dry_run)?;
    let selected: Vec<String> = berth::plan::up::selected(&ctx.project, &opts)?.into_iter().collect();
    app::up::check_health_checks(&session, &selected)?;
    let runtime = ctx.runtime_name(&args.runtime)?;
    let plan = app::up::plan(&session, &observed, &opts, &runtime, project.dry_run)?;
    if project.dry_run {
        app::stack::check_host(&session, &plan, &runtime)?;
        print!("{plan}");
        return Ok(());
    }
    for w in &plan.warnings {
        berth::output::warn(w);
    }
    app::up::apply(&session, &plan, &runtime, !args.no_start)?;
    drop(lock);
    if args.no_start {
        return Ok(());
    }
    if args.wait {
        let timeout = args.wait_timeout.map(Duration::from_secs);
        app::up::wait_ready(&session, &selected, timeout)?;
        if let Err(e) = berth::notify::ready(&format!("project {} is up", ctx.project.name)) {
            berth::output::warn(&format!("cannot tell the init system that the project is ready: {e}"));
        }
        return Ok(());
    }
    if detach {
        return Ok(());
    }
    let attach = app::up::Attach {
        only: args.attach.clone(),
        not: args.no_attach.clone(),
        dependencies: args.attach_dependencies,
    };
    let attached = app::up::attached(&session, &attach, &args.services, &selected);
    let stop_services = if args.services.is_empty() { selected.clone() } else { args.services.clone() };
    let fg = app::foreground::Foreground {
        attached,
        stop_services,
        abort_on_exit: args.abort_on_container_exit || args.exit_code_from.is_some(),
        abort_on_failure: args.abort_on_container_failure,
        exit_code_from: args.exit_code_from.clone(),
        since,
        timeout: args.timeout.map(Duration::from_secs),
    };
    let style = Style { no_color: args.no_color, no_prefix: args.no_log_prefix, timestamps: args.timestamps };
    let watching = args.watch.then(|| {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (flag, project, services) = (stop.clone(), project.clone(), args.services.clone());
        let thread = std::thread::spawn(move || {
            let watched = Ctx::load_for(&project, &services)
                .and_then(|ctx| super::watch::watch(ctx, &project, &services, &runtime, false, flag));
            if let Err(e) = watched {
                berth::output::report_error(&e);
            }
        });
        (stop, thread)
    });
    app::interrupts::catch();
    let mut printer = Printer::new(style);
    let code = app::foreground::run(&session, &fg, &app::interrupts::count, &mut |shown| printer.foreground(shown));
    if let Some((stop, thread)) = watching {
        stop.store(true, std::sync::atomic::Ordering::SeqCst);
        // The watcher reports its own errors; a panic in it has been printed already.
        let _ = thread.join();
    }
    super::containers::exit_with(code?)
}
