//! `berth ls`: the projects berth knows, with their containers' states and whether their
//! supervisor runs.

use std::collections::BTreeMap;
use std::io::Write;

use anyhow::Context;
use clap::Args;

/// Arguments of `berth ls`.
#[derive(Args, Debug)]
pub struct LsArgs {
    /// Also projects whose containers are all stopped
    #[arg(short, long)]
    all: bool,
    /// Only names
    #[arg(short, long)]
    quiet: bool,
    /// Output format
    #[arg(long, value_parser = ["table", "json"], default_value = "table")]
    format: String,
}

#[derive(serde::Serialize)]
struct Row {
    name: String,
    status: String,
    /// The project's supervisor: `running`, `stopped (pid N)` or `none` (then restart
    /// policies, health checks, DNS and published ports are not served).
    supervisor: String,
    config_files: String,
}

/// Runs `berth ls`.
pub fn run(args: LsArgs) -> anyhow::Result<()> {
    let roots = berth::container::Roots::from_env();
    let db = berth::state::StateDb::open(&roots.root).context("cannot open the state database")?;
    let mut rows = Vec::new();
    // A project is known by its containers, as Compose knows it by their labels: the projects
    // table keeps a row for every project a command was run in (also after `down` or `rm`), so
    // one without containers is not listed, not even with `-a`.
    for name in db.projects()? {
        let mut counts: BTreeMap<&'static str, usize> = BTreeMap::new();
        for c in db.containers(&name)? {
            *counts.entry(c.status.as_str()).or_default() += 1;
        }
        if counts.is_empty() || (!args.all && !counts.contains_key("running")) {
            continue;
        }
        let status = counts.iter().map(|(s, n)| format!("{s}({n})")).collect::<Vec<_>>().join(", ");
        let files = db.project_files(&name)?.iter().map(|f| f.display().to_string()).collect::<Vec<_>>().join(",");
        let supervisor = berth::supervise::client::describe_liveness(&roots, &name);
        rows.push(Row { name, status, supervisor, config_files: files });
    }
    let mut out = std::io::stdout().lock();
    if args.format == "json" {
        writeln!(out, "{}", serde_json::to_string_pretty(&rows)?)?;
    } else if args.quiet {
        rows.iter().try_for_each(|r| writeln!(out, "{}", r.name))?;
    } else {
        let w = rows.iter().map(|r| r.name.len()).max().unwrap_or(0).max(4);
        let sw = rows.iter().map(|r| r.status.len()).max().unwrap_or(0).max(6);
        let pw = rows.iter().map(|r| r.supervisor.len()).max().unwrap_or(0).max(10);
        writeln!(out, "{:w$}   {:sw$}   {:pw$}   CONFIG FILES", "NAME", "STATUS", "SUPERVISOR")?;
        for r in &rows {
            writeln!(out, "{:w$}   {:sw$}   {:pw$}   {}", r.name, r.status, r.supervisor, r.config_files)?;
        }
    }
    Ok(())
}
