//! How volumes look: a table, names, or JSON.

use crate::cli::ListFormat;
use std::io::Write;

use berth_volumes::store::VolumeInfo;

/// `volume ls` and `volumes`: JSON with `--format json`, names with `quiet`, else a table.
pub fn list(vols: &[VolumeInfo], quiet: bool, format: ListFormat) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    if format == ListFormat::Json {
        writeln!(out, "{}", serde_json::to_string_pretty(vols)?)?;
    } else if quiet {
        vols.iter().try_for_each(|v| writeln!(out, "{}", v.spec.name))?;
    } else {
        writeln!(out, "DRIVER    VOLUME NAME")?;
        vols.iter().try_for_each(|v| writeln!(out, "local     {}", v.spec.name))?;
    }
    Ok(())
}
