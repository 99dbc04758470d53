//! `berth version`.

use clap::Args;

/// Arguments of `berth version`.
#[derive(Args, Debug)]
pub struct VersionArgs {
    /// Print only the version number
    #[arg(long)]
    short: bool,
    /// Output format
    #[arg(long, value_parser = ["pretty", "json"], default_value = "pretty")]
    format: String,
}

/// Prints the version.
pub fn run(args: VersionArgs) -> anyhow::Result<()> {
    let version = env!("CARGO_PKG_VERSION");
    if args.short {
        println!("{version}");
    } else if args.format == "json" {
        println!("{}", serde_json::json!({ "version": version }));
    } else {
        println!("berth version {version}");
    }
    Ok(())
}
