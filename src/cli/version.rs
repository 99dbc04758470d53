//! `berth version`.

use clap::Args;

/// Arguments of `berth version`.
#[derive(Args, Debug)]
pub struct VersionArgs {
    /// Print only the version number
    #[arg(long)]
    short: bool,
    /// Output format
    #[arg(long, value_enum, default_value_t)]
    format: VersionFormat,
}

/// `version --format`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
enum VersionFormat {
    /// Text
    #[default]
    Pretty,
    /// JSON
    Json,
}

/// Prints the version.
pub fn run(args: VersionArgs) -> anyhow::Result<()> {
    let version = env!("CARGO_PKG_VERSION");
    if args.short {
        println!("{version}");
    } else if args.format == VersionFormat::Json {
        println!("{}", serde_json::json!({ "version": version }));
    } else {
        println!("berth version {version}");
    }
    Ok(())
}
