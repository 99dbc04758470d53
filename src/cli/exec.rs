//! `berth exec`: runs a command in a running container; its exit code becomes berth's.

use std::io::IsTerminal;

use berth::container::{self, ExecRequest};
use clap::Args;

use crate::cli::containers::{exit_with, Ctx};
use crate::cli::ProjectArgs;

/// Arguments of `berth exec`.
#[derive(Args, Debug, Default)]
#[command(trailing_var_arg = true)]
pub struct ExecArgs {
    /// Service
    pub service: String,
    /// Command and arguments
    #[arg(required = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
    /// Run in the background
    #[arg(short, long)]
    pub detach: bool,
    /// Do not allocate a terminal (default: one when stdin is a terminal)
    #[arg(short = 'T', long = "no-tty")]
    pub no_tty: bool,
    /// Allocate a terminal
    #[arg(short = 't', long = "tty")]
    pub tty: bool,
    /// Keep stdin open (always on; accepted for compatibility)
    #[arg(short = 'i', long = "interactive")]
    pub interactive: bool,
    /// Run as this user (`name`, `uid`, `uid:gid`)
    #[arg(short, long)]
    pub user: Option<String>,
    /// Working directory in the container
    #[arg(short, long)]
    pub workdir: Option<String>,
    /// Set an environment variable (`KEY=VALUE`, or `KEY` to take it from the shell)
    #[arg(short, long = "env")]
    pub env: Vec<String>,
    /// Replica number of the service
    #[arg(long, default_value_t = 1)]
    pub index: u32,
    /// Give the process every capability
    #[arg(long)]
    pub privileged: bool,
}

/// Parses `-e` values.
pub fn env_pairs(list: &[String]) -> Vec<(String, String)> {
    list.iter()
        .filter_map(|e| match e.split_once('=') {
            Some((k, v)) => Some((k.to_string(), v.to_string())),
            None => std::env::var(e).ok().map(|v| (e.clone(), v)),
        })
        .collect()
}

/// Runs `berth exec`.
pub fn run(project: &ProjectArgs, args: ExecArgs) -> anyhow::Result<()> {
    let ctx = Ctx::load(project)?;
    ctx.check_services(std::slice::from_ref(&args.service))?;
    let c = container::by_index(&ctx.db, &ctx.project.name, &args.service, args.index)?;
    let c = container::refresh(&ctx.roots, &ctx.db, &c)?;
    container::require_run_dir(&ctx.roots, &c)?;
    let tty = !args.no_tty && !args.detach && (args.tty || std::io::stdin().is_terminal());
    let req = ExecRequest {
        command: args.command,
        user: args.user,
        working_dir: args.workdir,
        env: env_pairs(&args.env),
        tty,
        detach: args.detach,
        privileged: args.privileged,
        quiet: false,
    };
    let code = container::exec(&ctx.roots, &ctx.db, &c, &req)?;
    exit_with(code)
}
