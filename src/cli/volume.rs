//! `berth volume ls|inspect|create|rm|prune`: named and anonymous volumes under the state root.

use berth::app::volumes::{self, Volumes};
use clap::{Args, Subcommand};

use super::render::volume as render;
use super::ProjectArgs;

/// Arguments of `berth volume`.
#[derive(Args, Debug)]
pub struct VolumeArgs {
    #[command(subcommand)]
    command: VolumeCommand,
}

#[derive(Subcommand, Debug)]
enum VolumeCommand {
    /// List volumes
    Ls(super::ListArgs),
    /// Show volumes as JSON
    Inspect {
        /// Volume names
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Create a volume (the local driver)
    Create {
        /// Volume name
        name: String,
        /// A label `KEY=VALUE` (repeatable)
        #[arg(long = "label", value_name = "KEY=VALUE")]
        labels: Vec<String>,
        /// A driver option `type=...`, `o=...` or `device=...` (repeatable)
        #[arg(short = 'o', long = "opt", value_name = "KEY=VALUE")]
        opts: Vec<String>,
    },
    /// Remove volumes (refused while a container uses one)
    Rm {
        /// Volume names
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Remove unused anonymous volumes (all unused volumes with `--all`)
    Prune {
        /// Also remove unused named volumes
        #[arg(short, long)]
        all: bool,
    },
}

/// Arguments of `berth volumes`.
#[derive(clap::Args, Debug)]
pub struct VolumesArgs {
    /// Services whose volumes to list (default: the whole project's)
    pub services: Vec<String>,
    #[command(flatten)]
    list: super::ListArgs,
}

/// Runs `berth volumes`: the volumes made for the project (its label), or those the named
/// services' containers use.
pub fn volumes(project: &ProjectArgs, args: VolumesArgs) -> anyhow::Result<()> {
    let ctx = super::containers::Ctx::load(project)?;
    ctx.check_services(&args.services)?;
    let events = berth::output::PlainRenderer;
    let vols = volumes::of_project(&ctx.session(&events), &args.services)?;
    render::list(&vols, args.list.quiet, args.list.format)
}

/// Runs `berth volume ...`.
pub fn run(_project: &ProjectArgs, args: VolumeArgs) -> anyhow::Result<()> {
    let vols = Volumes::open(&berth::container::Roots::from_env())?;
    match args.command {
        VolumeCommand::Ls(super::ListArgs { quiet, format }) => render::list(&vols.list()?, quiet, format)?,
        VolumeCommand::Inspect { names } => println!("{}", serde_json::to_string_pretty(&vols.find(&names)?)?),
        VolumeCommand::Create { name, labels, opts } => println!("{}", vols.create(&name, &labels, &opts)?.spec.name),
        VolumeCommand::Rm { names } => vols.remove(&names, &mut |n| println!("{n}"))?,
        VolumeCommand::Prune { all } => vols.prune(all, &mut |n| println!("Deleted: {n}"))?,
    }
    Ok(())
}
