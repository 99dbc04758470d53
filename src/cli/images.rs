//! `berth images`: the images the project's services use, as stored locally.

use clap::Args;

use crate::cli::ProjectArgs;

/// Arguments of `berth images`.
#[derive(Args, Debug, Default)]
pub struct ImagesArgs {
    /// Services whose images to show (default: all)
    pub services: Vec<String>,
    /// Only print image ids
    #[arg(short, long)]
    pub quiet: bool,
    /// Output format
    #[arg(long, value_enum, default_value_t)]
    pub format: crate::cli::ListFormat,
}

/// Runs `berth images`.
pub fn run(project: &ProjectArgs, args: ImagesArgs) -> anyhow::Result<()> {
    let loaded = berth_compose::load(&project.load_options()?)?;
    let rows = berth::app::images::of_project(&loaded.project, &args.services)?;
    crate::cli::render::image::rows(&rows, args.quiet, args.format)
}
