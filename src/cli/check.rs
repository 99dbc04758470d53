//! `berth check`: is the project ready for production? Prints the findings of
//! [`berth::check`] and exits 1 when one of them is an error.

use clap::Args;

use crate::cli::ProjectArgs;

/// Arguments of `berth check`.
#[derive(Args, Debug, Default)]
pub struct CheckArgs {
    /// Output format
    #[arg(long, value_enum, default_value_t)]
    pub format: CheckFormat,
    /// Only these services
    #[arg(value_name = "SERVICE")]
    pub services: Vec<String>,
}

/// `check --format`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum CheckFormat {
    /// A table
    #[default]
    Table,
    /// JSON
    Json,
    /// SARIF, for code scanning tools
    Sarif,
}

/// Runs `berth check`.
pub fn run(project: &ProjectArgs, args: CheckArgs) -> anyhow::Result<()> {
    let mut opts = project.load_options()?;
    opts.services = args.services.clone();
    let loaded = berth_compose::load(&opts)?;
    for w in &loaded.warnings {
        berth::output::warn(w);
    }
    let images = berth::check::StoreImages::open(&berth::image::ImageStore::default_state_root());
    let report = berth::check::check(&loaded, &images, &args.services)?;
    let text = match args.format {
        CheckFormat::Json => berth::check::render::json(&report),
        CheckFormat::Sarif => berth::check::render::sarif(&report),
        CheckFormat::Table => berth::check::render::table(&report),
    };
    print!("{text}");
    if report.has_errors() {
        super::containers::exit_with(1);
    }
    Ok(())
}
