//! `berth image ls|rm|prune|inspect|load|save`: the local image store.

use std::io::Write;
use std::path::PathBuf;

use berth::app::images::Images;
use clap::{Args, Subcommand};

use crate::cli::render::image::{self as render, ignore_broken_pipe};

/// Arguments of `berth image`.
#[derive(Args, Debug)]
pub struct ImageArgs {
    #[command(subcommand)]
    pub command: ImageCommand,
}

/// The `berth image` subcommands.
#[derive(Subcommand, Debug)]
pub enum ImageCommand {
    /// List stored images
    #[command(alias = "list")]
    Ls {
        /// Only print image ids
        #[arg(short, long)]
        quiet: bool,
        /// Output format
        #[arg(long, value_enum, default_value_t)]
        format: crate::cli::ListFormat,
    },
    /// Remove images (refuses while a container uses one)
    #[command(alias = "remove")]
    Rm {
        /// Images by reference or id
        #[arg(required = true)]
        images: Vec<String>,
        /// Remove an image by id even when several tags point at it
        #[arg(short, long)]
        force: bool,
    },
    /// Remove unused images
    Prune {
        /// Remove every image not used by a container, not only untagged ones
        #[arg(short, long)]
        all: bool,
    },
    /// Print the image configuration (OCI config) as JSON
    Inspect {
        /// Images by reference or id
        #[arg(required = true)]
        images: Vec<String>,
    },
    /// Load images from an OCI archive or a `docker save` tarball
    Load {
        /// The archive
        #[arg(short, long, value_name = "FILE")]
        input: PathBuf,
        /// Print nothing
        #[arg(short, long)]
        quiet: bool,
    },
    /// Give an image another name (`docker tag`)
    Tag {
        /// The image, by reference or id
        source: String,
        /// The new name (`registry/repository:tag`)
        target: String,
    },
    /// Save images to an OCI archive
    Save {
        /// Images by reference or id
        #[arg(required = true)]
        images: Vec<String>,
        /// The archive to write
        #[arg(short, long, value_name = "FILE")]
        output: PathBuf,
    },
}

/// Runs `berth image ...`.
pub fn run(args: ImageArgs) -> anyhow::Result<()> {
    let images = Images::open()?;
    match args.command {
        ImageCommand::Ls { quiet, format } => render::rows(&images.store.list()?, quiet, format),
        ImageCommand::Tag { source, target } => images.tag(&source, &target),
        ImageCommand::Rm { images: names, force } => {
            // Nothing left to report a failed write to stdout to: the removal itself is done.
            images.remove(&names, force, &mut |rep| drop(render::removal(&rep)))
        }
        ImageCommand::Prune { all } => render::pruned(&images.prune(all)?),
        ImageCommand::Inspect { images: names } => {
            let configs = images.inspect(&names)?;
            ignore_broken_pipe(writeln!(std::io::stdout().lock(), "{}", serde_json::to_string_pretty(&configs)?))
        }
        ImageCommand::Load { input, quiet } => {
            let names = images.load(&input, crate::cli::pull::renderer(quiet).as_ref())?;
            let mut out = std::io::stdout().lock();
            names.iter().filter(|_| !quiet).try_for_each(|n| ignore_broken_pipe(writeln!(out, "Loaded image: {n}")))
        }
        ImageCommand::Save { images: names, output } => images.save(&names, &output),
    }
}
