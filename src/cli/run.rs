//! `berth run`: a one-off container of a service (`<project>-<service>-run-<12 hex>`), made by the
//! stack engine as `up` makes containers (networks, volumes, secrets), after its dependencies
//! are up (unless `--no-deps`); attached to the terminal unless `-d`; its exit code becomes
//! berth's.

use std::io::IsTerminal;
use std::path::PathBuf;

use anyhow::{bail, Context};
use berth::container::{self, StartMode};
use berth::image::PullPolicy;
use berth::runtime::bundle::RunOverrides;
use berth::stack::engine::{run_service, OneOff, RunChanges, StackEngine};
use berth_compose::model::VolumeType;
use clap::Args;

use crate::cli::containers::{exit_with, Ctx, RuntimeArgs};
use crate::cli::exec::env_pairs;
use crate::cli::ProjectArgs;

#[path = "run/attach.rs"]
pub(crate) mod attach;

/// `run --pull`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum PullChoice {
    /// The service's `pull_policy` (pull when missing by default)
    #[default]
    Policy,
    /// Pull every time
    Always,
    /// Pull when the image is not present
    Missing,
    /// Never pull; fail when the image is not present
    Never,
}

/// Arguments of `berth run`.
#[derive(Args, Debug, Default)]
#[command(trailing_var_arg = true)]
pub struct RunArgs {
    /// Service
    pub service: String,
    /// Command and arguments (default: the service's)
    #[arg(allow_hyphen_values = true)]
    pub command: Vec<String>,
    /// Remove the container, its anonymous volumes and its network attachments when it exits
    #[arg(long)]
    pub rm: bool,
    /// Run in the background and print the container name
    #[arg(short, long)]
    pub detach: bool,
    /// Set an environment variable (`KEY=VALUE`, or `KEY` to take it from berth's environment)
    #[arg(short, long = "env")]
    pub env: Vec<String>,
    /// Set environment variables from a file (`KEY=VALUE` lines, as `docker run --env-file`), before `-e`
    #[arg(long = "env-from-file", value_name = "FILE")]
    pub env_from_file: Vec<PathBuf>,
    /// Add or override a label (`KEY=VALUE`)
    #[arg(short, long = "label", value_name = "KEY=VALUE")]
    pub label: Vec<String>,
    /// Run as this user
    #[arg(short, long)]
    pub user: Option<String>,
    /// Working directory in the container
    #[arg(short, long)]
    pub workdir: Option<String>,
    /// Override the image's entrypoint (an empty string clears it)
    #[arg(long)]
    pub entrypoint: Option<String>,
    /// Container name
    #[arg(long)]
    pub name: Option<String>,
    /// Publish a container port on the host (`[IP:][HOST:]CONTAINER[/PROTO]`); none by default
    #[arg(short, long = "publish", value_name = "PORT")]
    pub publish: Vec<String>,
    /// Publish the service's own ports
    #[arg(short = 'P', long)]
    pub service_ports: bool,
    /// Mount a volume or bind a host path (`[SOURCE:]TARGET[:MODE]`; relative paths are from the current directory)
    #[arg(short, long = "volume", value_name = "VOLUME")]
    pub volume: Vec<String>,
    /// Add a Linux capability
    #[arg(long = "cap-add", value_name = "CAP")]
    pub cap_add: Vec<String>,
    /// Drop a Linux capability
    #[arg(long = "cap-drop", value_name = "CAP")]
    pub cap_drop: Vec<String>,
    /// Pull the image before running
    #[arg(long, value_enum, default_value_t)]
    pub pull: PullChoice,
    /// Be known by the service's name and network aliases too (default: by the container's name only)
    #[arg(long)]
    pub use_aliases: bool,
    /// Do not start the service's dependencies (nor wait for them)
    #[arg(long)]
    pub no_deps: bool,
    /// Do not allocate a terminal (default: one when stdin is a terminal)
    #[arg(short = 'T', long = "no-TTY")]
    pub no_tty: bool,
    /// Keep stdin open (on by default)
    #[arg(short = 'i', long = "interactive")]
    pub interactive: bool,
    #[command(flatten)]
    pub runtime: RuntimeArgs,
}

/// Runs `berth run`.
pub fn run(project: &ProjectArgs, args: RunArgs) -> anyhow::Result<()> {
    let ctx = Ctx::load_for(project, std::slice::from_ref(&args.service))?;
    ctx.check_services(std::slice::from_ref(&args.service))?;
    // Bad input makes nothing: checked before any dependency starts.
    if let Some(n) = args.name.as_deref().filter(|n| !container::paths::valid_container_name(n)) {
        bail!("invalid container name {n:?}: only [a-zA-Z0-9][a-zA-Z0-9_.-]* is allowed");
    }
    let changes = changes(&ctx, &args)?;
    let stdin_tty = std::io::stdin().is_terminal();
    let tty = !args.no_tty && !args.detach && stdin_tty;
    let overrides = overrides(&args, tty)?;
    let rt = ctx.runtime_name(&args.runtime)?;
    // Held while the container is made and started, not while it runs attached.
    let lock = ctx.lock("run")?;
    if !args.no_deps {
        start_dependencies(&ctx, &args.service, &rt)?;
    }
    let progress = super::progress::Progress::new(ctx.progress);
    let engine = StackEngine::new(&ctx.project, ctx.roots.clone(), &progress)?.runtime(&rt).supervised(true);
    if !args.no_deps {
        for w in engine.wait_dependencies(&args.service)? {
            berth::output::warn(&w);
        }
    }
    let pull = match args.pull {
        PullChoice::Policy => None,
        PullChoice::Always => Some(PullPolicy::Always),
        PullChoice::Missing => Some(PullPolicy::Missing),
        PullChoice::Never => Some(PullPolicy::Never),
    };
    let oneoff = OneOff {
        service: run_service(&ctx.project.services[&args.service], &changes),
        name: args.name.clone(),
        overrides,
        auto_remove: args.rm,
        use_aliases: args.use_aliases,
        pull,
    };
    let rec = engine.create_oneoff(&oneoff)?;
    // With `--rm`, a container that cannot start is removed too, with what was made for it.
    let discard = |e: anyhow::Error| {
        if args.rm {
            if let Err(r) = engine.remove_container(&rec.name, true) {
                berth::output::warn(&format!("{r:#}"));
            }
        }
        e
    };
    engine.supervise_oneoff(&rec).map_err(discard)?;
    // Its published ports are held by the supervisor until it runs; then theirs to serve.
    let release = || {
        if !rec.published.is_empty() {
            berth::supervise::reserve::release(&ctx.roots, &ctx.project.name);
        }
    };
    if args.detach {
        let started = engine.start_container(&rec.name);
        release();
        started.map_err(discard)?;
        println!("{}", rec.name);
        return Ok(());
    }
    let started = container::launch_monitor(&ctx.roots, &rec, StartMode::WaitForAttach).map_err(discard)?;
    drop(lock);
    let code = attach::attached(&ctx, &rec, started, tty);
    release();
    exit_with(code.map_err(discard)?)
}

/// Brings up the dependencies of `service` as `up` would (created if missing or changed,
/// started), without the service itself.
fn start_dependencies(ctx: &Ctx, service: &str, runtime: &str) -> anyhow::Result<()> {
    let graph = berth::graph::ServiceGraph::new(&ctx.project);
    let deps: Vec<String> = graph.dependencies(service).into_iter().map(|(d, _)| d.to_string()).collect();
    if deps.is_empty() {
        return Ok(());
    }
    let opts = berth::plan::up::UpOptions { services: deps, ..Default::default() };
    berth::app::up::converge(&ctx.session(&ctx.progress()), &opts, runtime, true)
}

/// `run`'s changes to the service: published ports, volumes, labels, capabilities.
fn changes(ctx: &Ctx, args: &RunArgs) -> anyhow::Result<RunChanges> {
    if args.service_ports && !args.publish.is_empty() {
        bail!("--service-ports and --publish are incompatible");
    }
    let mut publish = Vec::new();
    for p in &args.publish {
        publish.extend(berth_compose::short::parse_port(p).map_err(|e| anyhow::anyhow!("--publish: {e}"))?);
    }
    let mut volumes = Vec::new();
    for v in &args.volume {
        let mut vol = berth_compose::short::parse_volume(v).map_err(|e| anyhow::anyhow!("--volume: {e}"))?;
        match (vol.kind, vol.source.as_deref()) {
            (VolumeType::Bind, Some(s)) => {
                let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_default();
                let path = match s.strip_prefix('~') {
                    Some(rest) => home.join(rest.trim_start_matches('/')),
                    None => std::env::current_dir()?.join(s),
                };
                vol.source = Some(path.to_string_lossy().into_owned());
            }
            (VolumeType::Volume, Some(key)) if !ctx.project.volumes.contains_key(key) => {
                bail!("--volume {v:?}: volume {key:?} is not declared in the project's `volumes`");
            }
            _ => {}
        }
        volumes.push(vol);
    }
    let labels = args
        .label
        .iter()
        .map(|l| l.split_once('=').map(|(k, v)| (k.to_string(), v.to_string())))
        .collect::<Option<Vec<_>>>()
        .context("--label: a label is KEY=VALUE")?;
    Ok(RunChanges {
        service_ports: args.service_ports,
        publish,
        volumes,
        labels,
        cap_add: args.cap_add.clone(),
        cap_drop: args.cap_drop.clone(),
    })
}

/// Command, entrypoint, environment (`--env-from-file` files in order, then `-e`), user,
/// working directory, terminal.
fn overrides(args: &RunArgs, tty: bool) -> anyhow::Result<RunOverrides> {
    let mut env = Vec::new();
    for file in &args.env_from_file {
        let text = std::fs::read_to_string(file).with_context(|| format!("--env-from-file `{}`", file.display()))?;
        let lookup = |k: &str| std::env::var(k).ok();
        let entries = berth_compose::dotenv::parse_raw_with_lookup(&text, &lookup)
            .map_err(|e| anyhow::anyhow!("--env-from-file `{}`: {e}", file.display()))?;
        env.extend(entries.into_iter().map(|e| (e.key, e.value)));
    }
    env.extend(env_pairs(&args.env));
    let entrypoint = args.entrypoint.as_ref().map(|e| if e.is_empty() { Vec::new() } else { vec![e.clone()] });
    Ok(RunOverrides {
        command: (!args.command.is_empty()).then(|| args.command.clone()),
        entrypoint,
        env,
        user: args.user.clone(),
        working_dir: args.workdir.clone(),
        tty: Some(tty),
        stdin_open: Some(!args.detach),
    })
}
