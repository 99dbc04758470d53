//! How `ls` looks: a table, names, or JSON.

use crate::cli::ListFormat;
use std::io::Write;

use berth::app::projects::ProjectRow;

/// The projects as JSON with `--format json`, names with `quiet`, else a table.
pub fn projects(rows: &[ProjectRow], quiet: bool, format: ListFormat) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    if format == ListFormat::Json {
        writeln!(out, "{}", serde_json::to_string_pretty(rows)?)?;
    } else if quiet {
        rows.iter().try_for_each(|r| writeln!(out, "{}", r.name))?;
    } else {
        let w = rows.iter().map(|r| r.name.len()).max().unwrap_or(0).max(4);
        let sw = rows.iter().map(|r| r.status.len()).max().unwrap_or(0).max(6);
        let pw = rows.iter().map(|r| r.supervisor.len()).max().unwrap_or(0).max(10);
        writeln!(out, "{:w$}   {:sw$}   {:pw$}   CONFIG FILES", "NAME", "STATUS", "SUPERVISOR")?;
        for r in rows {
            writeln!(out, "{:w$}   {:sw$}   {:pw$}   {}", r.name, r.status, r.supervisor, r.config_files)?;
        }
    }
    Ok(())
}
