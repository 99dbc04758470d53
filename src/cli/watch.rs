//! `berth watch`: brings the services up (unless `--no-up`) and applies their `develop.watch`
//! rules as files change; a change to the compose files is reloaded and applied. Ctrl-C stops
//! watching; the stack keeps running.

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use berth::plan::up::UpOptions;
use berth_compose::Project;
use clap::Args;

use super::containers::{Ctx, RuntimeArgs};
use super::ProjectArgs;

/// Arguments of `berth watch`.
#[derive(Args, Debug)]
pub struct WatchArgs {
    /// Watch a stack that already runs: do not bring the services up first
    #[arg(long)]
    no_up: bool,
    /// Show only what failed
    #[arg(long)]
    quiet: bool,
    #[command(flatten)]
    runtime: RuntimeArgs,
    /// Services to watch (default: every service with `develop.watch` rules)
    services: Vec<String>,
}

/// Runs `berth watch`.
pub fn run(project: &ProjectArgs, args: WatchArgs) -> anyhow::Result<()> {
    let ctx = Ctx::load_for(project, &args.services)?;
    ctx.check_services(&args.services)?;
    let runtime = ctx.runtime_name(&args.runtime)?;
    if !args.no_up {
        let _lock = ctx.lock("watch")?;
        let opts = UpOptions { services: args.services.clone(), ..UpOptions::default() };
        berth::app::up::converge(&ctx.session(&ctx.progress()), &opts, &runtime, true)?;
    }
    let stop = berth::app::interrupts::flag();
    watch(ctx, project, &args.services, &runtime, args.quiet, stop)
}

/// Watches the project of `ctx` until `stop` is set (for `watch` and `up --watch`).
pub fn watch(
    ctx: Ctx,
    project: &ProjectArgs,
    services: &[String],
    runtime: &str,
    quiet: bool,
    stop: Arc<AtomicBool>,
) -> anyhow::Result<()> {
    let lines = crate::cli::render::watch::Lines { quiet };
    let config_files = berth::watch::config_files(&ctx.project, &ctx.project_dir, &ctx.files);
    let watch = berth::watch::Watch {
        roots: &ctx.roots,
        db: &ctx.db,
        events: &lines,
        project: ctx.project.clone(),
        project_dir: ctx.project_dir.clone(),
        config_files,
        services: services.to_vec(),
        stop,
    };
    let mut driver = Driver { ctx: &ctx, args: project.clone(), services: services.to_vec(), runtime: runtime.into() };
    watch.run(&mut driver)
}

/// Reloads and applies for the watcher, as `up` would.
struct Driver<'a> {
    ctx: &'a Ctx,
    args: ProjectArgs,
    services: Vec<String>,
    runtime: String,
}

impl berth::watch::Driver for Driver<'_> {
    fn reload(&mut self) -> anyhow::Result<(Project, Vec<PathBuf>)> {
        let fresh = Ctx::load_for(&self.args, &self.services)?;
        let files = berth::watch::config_files(&fresh.project, &fresh.project_dir, &fresh.files);
        Ok((fresh.project, files))
    }

    fn converge(&mut self, project: &Project) -> anyhow::Result<()> {
        // The whole project as the files now say: changed services recreated, new ones
        // created, removed ones taken away.
        self.up(project, &UpOptions { remove_orphans: true, ..UpOptions::default() })
    }

    fn rebuild(&mut self, project: &Project, service: &str) -> anyhow::Result<()> {
        // The image built again (from the cache where nothing changed), then the service
        // recreated when its image came out different.
        let opts =
            UpOptions { services: vec![service.to_string()], no_deps: true, build: true, ..UpOptions::default() };
        self.up(project, &opts)
    }
}

impl Driver<'_> {
    fn up(&mut self, project: &Project, opts: &UpOptions) -> anyhow::Result<()> {
        let _lock = self.ctx.lock("watch")?;
        let progress = self.ctx.progress();
        let mut session = self.ctx.session(&progress);
        session.project = project;
        berth::app::up::converge(&session, opts, &self.runtime, true)
    }
}
