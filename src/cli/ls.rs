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
    /// Only projects matching KEY=VALUE (repeatable): `name=PATTERN`, a regular expression
    /// found in the name as Compose matches it (`^`/`$` anchor it; `.` is any character)
    #[arg(long, value_name = "KEY=VALUE")]
    filter: Vec<String>,
}

/// `--filter name=...` patterns.
fn name_patterns(filters: &[String]) -> anyhow::Result<Vec<String>> {
    filters
        .iter()
        .map(|f| match f.split_once('=') {
            Some(("name", v)) => Ok(v.to_string()),
            Some((k, _)) => anyhow::bail!("--filter: unknown filter `{k}` (supported: name)"),
            None => anyhow::bail!("--filter {f:?}: expected KEY=VALUE (name=PATTERN)"),
        })
        .collect()
}

/// Whether `pattern` is found in `name`, as Compose's filters match (an exact name, or a
/// regular expression found in it); berth takes the part of regular expressions project names
/// need: `^` and `$` anchors, `.` for any character, `.*`, and `\` escaping the next one.
fn name_matches(pattern: &str, name: &str) -> bool {
    if pattern == name {
        return true;
    }
    let (anchored, p) = match pattern.strip_prefix('^') {
        Some(p) => (true, p),
        None => (false, pattern),
    };
    let (p, to_end) = match p.strip_suffix('$').filter(|q| !q.ends_with('\\')) {
        Some(q) => (q, true),
        None => (p, false),
    };
    let mut atoms = Vec::new(); // (char or None for any, repeated)
    let mut chars = p.chars().peekable();
    while let Some(c) = chars.next() {
        let atom = match c {
            '\\' => Some(chars.next().unwrap_or('\\')),
            '.' => None,
            c => Some(c),
        };
        let star = chars.peek() == Some(&'*');
        if star {
            chars.next();
        }
        atoms.push((atom, star));
    }
    let name: Vec<char> = name.chars().collect();
    let starts: Vec<usize> = if anchored { vec![0] } else { (0..=name.len()).collect() };
    starts.into_iter().any(|s| match_here(&atoms, &name[s..], to_end))
}

fn match_here(atoms: &[(Option<char>, bool)], text: &[char], to_end: bool) -> bool {
    let Some(((atom, star), rest)) = atoms.split_first() else { return !to_end || text.is_empty() };
    let fits = |c: &char| atom.is_none_or(|a| a == *c);
    if *star {
        let mut i = 0;
        loop {
            if match_here(rest, &text[i..], to_end) {
                return true;
            }
            if i < text.len() && fits(&text[i]) {
                i += 1;
            } else {
                return false;
            }
        }
    }
    text.first().is_some_and(fits) && match_here(rest, &text[1..], to_end)
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
    let names = name_patterns(&args.filter)?;
    let mut rows = Vec::new();
    // A project is known by its containers, as Compose knows it by their labels: the projects
    // table keeps a row for every project a command was run in (also after `down` or `rm`), so
    // one without containers is not listed, not even with `-a`.
    for name in db.projects()? {
        if !names.is_empty() && !names.iter().any(|p| name_matches(p, &name)) {
            continue;
        }
        let mut counts: BTreeMap<&'static str, usize> = BTreeMap::new();
        // A row that cannot be read is said, and the project listed by the others.
        let (containers, unreadable) = db.scan_containers(&name)?;
        for e in unreadable {
            berth::output::warn(&e.to_string());
        }
        for c in containers {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_match_as_compose_filters_do() {
        for (p, n, want) in [
            ("shop", "shop", true),
            ("sho", "shop", true),
            ("hop", "shop", true),
            ("^hop", "shop", false),
            ("^sh", "shop", true),
            ("sh$", "shop", false),
            ("op$", "shop", true),
            ("^shop$", "shop", true),
            ("^shop$", "shops", false),
            ("s.op", "shop", true),
            ("^s.*p$", "shop", true),
            ("^s.*x$", "shop", false),
            ("a\\.b", "a.b", true),
            ("a\\.b", "axb", false),
            ("web", "shop", false),
        ] {
            assert_eq!(name_matches(p, n), want, "{p} ~ {n}");
        }
        assert!(name_patterns(&["label=x".into()]).unwrap_err().to_string().contains("unknown filter `label`"));
        assert_eq!(name_patterns(&["name=a".into()]).unwrap(), vec!["a".to_string()]);
    }
}
