//! `berth history SERVICE`: what a service ran when, with image digests, and which deployment
//! is known-good, runs now, and is the one `berth rollback` would return to.

use std::io::Write;

use clap::Args;

use crate::cli::containers::Ctx;
use crate::cli::ProjectArgs;

/// Arguments of `berth history`.
#[derive(Args, Debug, Default)]
pub struct HistoryArgs {
    /// The service
    pub service: String,
    /// Output format
    #[arg(long, value_parser = ["table", "json"], default_value = "table")]
    pub format: String,
}

/// Runs `berth history`.
pub fn run(project: &ProjectArgs, args: HistoryArgs) -> anyhow::Result<()> {
    let ctx = Ctx::load(project)?;
    let events = ctx.progress();
    let history = berth::app::rollback::history(&ctx.session(&events), &args.service)?;
    let mut out = std::io::stdout().lock();
    if args.format == "json" {
        writeln!(out, "{}", serde_json::to_string_pretty(&history)?)?;
        return Ok(());
    }
    let header = ["DEPLOYED", "IMAGE", "DIGEST", "CONFIG", "OUTCOME", ""].map(String::from).to_vec();
    let mut rows = vec![header];
    for d in history.deployments.iter().rev() {
        let mark = match (Some(d.seq) == history.current, Some(d.seq) == history.rollback) {
            (true, _) => "current",
            (_, true) => "rollback target",
            _ => "",
        };
        rows.push(vec![
            berth::monitor::log::format_rfc3339(d.deployed_at * 1_000_000),
            d.image.clone(),
            short(&d.image_digest),
            d.config_hash.chars().take(12).collect(),
            d.outcome.as_str().to_string(),
            mark.to_string(),
        ]);
    }
    write!(out, "{}", berth::output::columns(&rows))?;
    Ok(())
}

/// A digest as `sha256:` and its first 12 hex digits.
fn short(digest: &str) -> String {
    match digest.split_once(':') {
        Some((algo, hex)) => format!("{algo}:{}", &hex[..hex.len().min(12)]),
        None => digest.chars().take(12).collect(),
    }
}
