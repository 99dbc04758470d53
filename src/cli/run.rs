//! `berth run`: a one-off container of a service (`<project>-<service>-run-<12 hex>`), made by the
//! stack engine as `up` makes containers (networks, volumes, secrets), after its dependencies
//! are up (unless `--no-deps`); attached to the terminal unless `-d`; its exit code becomes
//! berth's.

use std::io::IsTerminal;
use std::path::PathBuf;

use anyhow::bail;
use berth::app::run::{Ran, RunRequest};
use berth::container;
use berth::stack::engine::{run_service, OneOff};
use clap::Args;

use crate::cli::containers::{exit_with, Ctx, RuntimeArgs};
use crate::cli::ProjectArgs;

#[path = "run/options.rs"]
mod options;

pub use options::PullChoice;

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
    let changes = options::changes(&ctx.project, &args)?;
    let tty = !args.no_tty && !args.detach && std::io::stdin().is_terminal();
    let oneoff = OneOff {
        service: run_service(&ctx.project.services[&args.service], &changes),
        name: args.name.clone(),
        overrides: options::overrides(&args, tty)?,
        auto_remove: args.rm,
        use_aliases: args.use_aliases,
        pull: args.pull.policy(),
    };
    let runtime = ctx.runtime_name(&args.runtime)?;
    let req = RunRequest { oneoff, service: args.service, no_deps: args.no_deps, detach: args.detach, tty, runtime };
    let lock = ctx.lock("run")?;
    let progress = ctx.progress();
    match berth::app::run::run(&ctx.session(&progress), req, lock)? {
        Ran::Detached(name) => {
            println!("{name}");
            Ok(())
        }
        Ran::Exited(code) => exit_with(code),
    }
}
