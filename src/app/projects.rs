//! `ls`: the projects berth knows, with their containers' states and whether their supervisor
//! runs.

use std::collections::BTreeMap;

use anyhow::Context;

use crate::container::Roots;
use crate::events::{Event, EventSink};

/// A project as `ls` lists it.
#[derive(Clone, Debug, serde::Serialize)]
pub struct ProjectRow {
    /// Its name.
    pub name: String,
    /// Its containers' states with their counts: `running(2), exited(1)`.
    pub status: String,
    /// The project's supervisor: `running`, `stopped (pid N)` or `none` (then restart
    /// policies, health checks, DNS and published ports are not served).
    pub supervisor: String,
    /// The compose files it was last used with, comma-separated.
    pub config_files: String,
}

/// The projects with containers (with running ones only unless `all`) whose names match one of
/// `patterns` (every project when empty). A state row that cannot be read is a warning.
pub fn list(roots: &Roots, patterns: &[String], all: bool, events: &dyn EventSink) -> anyhow::Result<Vec<ProjectRow>> {
    let db = crate::state::StateDb::open(&roots.root).context("cannot open the state database")?;
    let mut rows = Vec::new();
    // A project is known by its containers, as Compose knows it by their labels: the projects
    // table keeps a row for every project a command was run in (also after `down` or `rm`), so
    // one without containers is not listed, not even with `-a`.
    for name in db.projects()? {
        if !patterns.is_empty() && !patterns.iter().any(|p| name_matches(p, &name)) {
            continue;
        }
        let mut counts: BTreeMap<&'static str, usize> = BTreeMap::new();
        let (containers, unreadable) = db.scan_containers(&name)?;
        for e in unreadable {
            events.emit(Event::Warning { message: e.to_string() });
        }
        for c in containers {
            *counts.entry(c.status.as_str()).or_default() += 1;
        }
        if counts.is_empty() || (!all && !counts.contains_key("running")) {
            continue;
        }
        let status = counts.iter().map(|(s, n)| format!("{s}({n})")).collect::<Vec<_>>().join(", ");
        let files = db.project_files(&name)?.iter().map(|f| f.display().to_string()).collect::<Vec<_>>().join(",");
        let supervisor = crate::supervise::client::describe_liveness(roots, &name);
        rows.push(ProjectRow { name, status, supervisor, config_files: files });
    }
    Ok(rows)
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
    }
}
