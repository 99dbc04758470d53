//! `berth up`: plan what must change for the project to be as the files say, do it, and leave the
//! project's supervisor running. In the foreground it then streams the containers' logs until they
//! exit or Ctrl-C stops them; with `-d` it returns (after `--wait`, once everything is healthy).

use std::time::Duration;

use clap::Args;

use super::containers::{Ctx, RuntimeArgs};
use super::render::logs::Printer;

#[path = "up/options.rs"]
mod options;
use super::ProjectArgs;
use berth::app;

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
    #[command(flatten)]
    recreate: options::RecreateArgs,
    /// Do not start the named services' dependencies
    #[arg(long)]
    no_deps: bool,
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
    #[command(flatten)]
    foreground: options::ForegroundArgs,
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
    args.check(&ctx)?;
    let opts = args.up_options(&ctx)?;
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
    if args.detach {
        return Ok(());
    }
    let fg = args.foreground(&session, &selected, since);
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
    let mut printer = Printer::new(args.style());
    let code = app::foreground::run(&session, &fg, &app::interrupts::count, &mut |shown| printer.foreground(shown));
    if let Some((stop, thread)) = watching {
        stop.store(true, std::sync::atomic::Ordering::SeqCst);
        // The watcher reports its own errors; a panic in it has been printed already.
        let _ = thread.join();
    }
    super::containers::exit_with(code?)
}
