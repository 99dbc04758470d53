//! How images look: a table, ids, or JSON; what a removal did.

use crate::cli::ListFormat;
use std::io::Write;

use berth::app::images::Pruned;
use berth::image::{ImageSummary, RemoveReport};

use super::pull::human_size;

/// A reader that went away (`| head`) is not an error.
pub fn ignore_broken_pipe(r: std::io::Result<()>) -> anyhow::Result<()> {
    match r {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => Ok(other?),
    }
}

/// `image prune`: the known-good images kept, what was deleted and the space freed.
pub fn pruned(p: &Pruned) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    for (id, why) in &p.kept {
        writeln!(out, "Kept: {id} ({why})")?;
    }
    for d in &p.report.deleted {
        writeln!(out, "Deleted: {d}")?;
    }
    writeln!(out, "Total reclaimed space: {}", human_size(p.report.reclaimed))?;
    Ok(())
}

/// `image rm`: the `Untagged:` and `Deleted:` lines of a removal.
pub fn removal(rep: &RemoveReport) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    for t in &rep.untagged {
        writeln!(out, "Untagged: {t}")?;
    }
    for d in &rep.deleted {
        writeln!(out, "Deleted: {d}")?;
    }
    Ok(())
}

/// Image rows as a table, ids only, or JSON (one array).
pub fn rows(rows: &[ImageSummary], quiet: bool, format: ListFormat) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    if quiet {
        let mut seen = Vec::new();
        for r in rows {
            if !seen.contains(&r.id) {
                writeln!(out, "{}", r.id.short())?;
                seen.push(r.id.clone());
            }
        }
        return Ok(());
    }
    if format == ListFormat::Json {
        writeln!(out, "{}", serde_json::to_string_pretty(rows)?)?;
        return Ok(());
    }
    let table: Vec<[String; 6]> = rows
        .iter()
        .map(|r| {
            [
                r.repository.clone(),
                r.tag.clone(),
                r.id.short().to_string(),
                r.digest.to_string(),
                human_size(r.size),
                r.created.clone().unwrap_or_default(),
            ]
        })
        .collect();
    let header = ["REPOSITORY", "TAG", "IMAGE ID", "DIGEST", "SIZE", "CREATED"].map(String::from);
    let mut widths = header.clone().map(|h| h.len());
    for row in &table {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(c.len());
        }
    }
    for row in std::iter::once(&header).chain(&table) {
        let line: Vec<String> = row.iter().zip(widths).map(|(c, w)| format!("{c:<w$}")).collect();
        ignore_broken_pipe(writeln!(out, "{}", line.join("   ").trim_end()))?;
    }
    Ok(())
}
