//! `berth attach`: the terminal joined to a running service container: its output here, this
//! input there (when the container keeps stdin open), signals passed on, until it exits.

use berth::app::attach::{join, Join};
use berth::container;
use clap::Args;

use crate::cli::containers::Ctx;
use crate::cli::ProjectArgs;

/// Arguments of `berth attach`.
#[derive(Args, Debug)]
pub struct AttachArgs {
    /// The service
    pub service: String,
    /// Replica number
    #[arg(long, default_value_t = 1)]
    pub index: u32,
    /// Do not send this terminal's input to the container
    #[arg(long)]
    pub no_stdin: bool,
    /// Pass signals berth receives on to the container
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub sig_proxy: bool,
}

/// Runs `berth attach`; exits with the container's exit code once it ends.
pub fn run(project: &ProjectArgs, args: AttachArgs) -> anyhow::Result<()> {
    let ctx = Ctx::load(project)?;
    ctx.check_services(std::slice::from_ref(&args.service))?;
    let rec = container::by_index(&ctx.db, &ctx.project.name, &args.service, args.index)?;
    let code = join(&ctx.roots, &ctx.db, &rec, Join { no_stdin: args.no_stdin, sig_proxy: args.sig_proxy })?;
    super::containers::exit_with(code)
}
