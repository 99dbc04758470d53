//! `logs`: the containers' log lines from their log files, filtered by time and tail, and
//! followed (across restarts) while any of them runs. Lines go out as [`Shown`] values.

use std::time::Duration;

use crate::app::Session;
use crate::container;
use crate::monitor::log::{self, LogEntry, LogFollower};
use crate::state::{now_nanos, ContainerRecord, Status};

/// Which lines `logs` shows.
#[derive(Clone, Debug, Default)]
pub struct LogsQuery {
    /// Services (all when empty).
    pub services: Vec<String>,
    /// One replica only.
    pub index: Option<u32>,
    /// Lines at or after this time (Unix nanoseconds).
    pub since: Option<i64>,
    /// Lines before this time (Unix nanoseconds).
    pub until: Option<i64>,
    /// The last lines of each container only.
    pub tail: Option<usize>,
    /// Keep showing new lines until the containers stop.
    pub follow: bool,
}

/// What `logs` shows, in order.
#[derive(Debug)]
pub enum Shown {
    /// A container whose logging driver keeps nothing (`none`): its lines cannot be shown.
    Unreadable(String),
    /// The containers' labels (`service-1`, a one-off's name), by index; comes before any line.
    Containers(Vec<String>),
    /// A line of container `index`.
    Line(usize, LogEntry),
    /// The lines shown so far are complete for now (a follow waits for more).
    Flush,
}

/// Shows the lines `query` asks for; returns when they are shown (following: when no container
/// runs any more, or `show` returns false: its reader went away).
pub fn show(s: &Session<'_>, query: &LogsQuery, show: &mut dyn FnMut(Shown) -> bool) -> anyhow::Result<()> {
    let mut list: Vec<ContainerRecord> = container::select(s.db, &s.project.name, &query.services, false)?;
    if let Some(i) = query.index {
        list.retain(|c| c.number == i);
    }
    // The `none` logging driver keeps nothing to read; the others' logs are shown (Compose's
    // `logs` succeeds with no lines for them too).
    list.retain(|c| {
        let readable = log::readable(&c.config);
        if !readable {
            show(Shown::Unreadable(c.name.clone()));
        }
        readable
    });
    let labels = list.iter().map(|c| if c.oneoff { c.name.clone() } else { format!("{}-{}", c.service, c.number) });
    show(Shown::Containers(labels.collect()));
    let in_range = |e: &LogEntry| query.until.is_none_or(|u| e.nanos() < u);
    let mut followers = Vec::new();
    let mut last = Vec::new();
    for (i, c) in list.iter().enumerate() {
        let path = s.roots.log_file(&c.id);
        if query.follow {
            followers.push(LogFollower::at_end(&path));
        }
        let mut entries: Vec<LogEntry> = log::read_all(&path, c.config.log.max_file)
            .into_iter()
            .filter(|e| query.since.is_none_or(|since| e.nanos() >= since) && in_range(e))
            .collect();
        if let Some(n) = query.tail {
            entries.drain(..entries.len().saturating_sub(n));
        }
        last.push(entries.last().map(|e| e.nanos()).unwrap_or(0));
        for e in entries {
            show(Shown::Line(i, e));
        }
    }
    if !show(Shown::Flush) || !query.follow {
        return Ok(());
    }
    let mut done = false;
    loop {
        for (i, f) in followers.iter_mut().enumerate() {
            for e in f.poll() {
                if e.nanos() > last[i] && in_range(&e) {
                    show(Shown::Line(i, e));
                }
            }
        }
        if !show(Shown::Flush) || done {
            return Ok(());
        }
        // Keep following while any container runs or is being restarted.
        done = !list.iter().any(|c| {
            s.db.container(&c.id).ok().flatten().is_some_and(|r| {
                let r = container::refresh(s.roots, s.db, &r).unwrap_or(r);
                r.status.is_alive() || r.status == Status::Restarting
            })
        });
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Parses a `--since`/`--until` time: RFC 3339, Unix seconds (with fraction), or a duration
/// before now (`10m`); Unix nanoseconds.
pub fn parse_time(s: &str) -> anyhow::Result<i64> {
    if let Some(t) = log::parse_rfc3339(s) {
        return Ok(t);
    }
    if let Ok(secs) = s.parse::<f64>() {
        return Ok((secs * 1e9) as i64);
    }
    let d = berth_compose::units::Duration::parse(s).map_err(|e| anyhow::anyhow!("invalid time `{s}`: {e}"))?;
    Ok(now_nanos() - d.0.as_nanos() as i64)
}
