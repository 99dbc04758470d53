//! `berth logs`: prints (and follows) the containers' logs from their log files.

use std::io::{IsTerminal, Write};
use std::time::Duration;

use berth::container;
use berth::monitor::log::{self, LogEntry, LogFollower};
use berth::state::{now_nanos, ContainerRecord, Status};
use clap::Args;

use crate::cli::containers::Ctx;
use crate::cli::ProjectArgs;

/// Arguments of `berth logs`.
#[derive(Args, Debug, Default)]
pub struct LogsArgs {
    /// Services (default: all)
    pub services: Vec<String>,
    /// Keep printing new lines (across restarts) until the containers stop
    #[arg(short, long)]
    pub follow: bool,
    /// Number of lines from the end of each container's log (`all` for every line)
    #[arg(short = 'n', long, default_value = "all")]
    pub tail: String,
    /// Only lines since this time (RFC 3339, Unix seconds, or a duration like `10m`)
    #[arg(long)]
    pub since: Option<String>,
    /// Only lines before this time (RFC 3339, Unix seconds, or a duration like `10m`)
    #[arg(long)]
    pub until: Option<String>,
    /// Show timestamps
    #[arg(short, long)]
    pub timestamps: bool,
    /// Monochrome output
    #[arg(long)]
    pub no_color: bool,
    /// Do not prefix lines with the container name
    #[arg(long)]
    pub no_log_prefix: bool,
    /// Logs of one replica only
    #[arg(long)]
    pub index: Option<u32>,
}

/// Parses `--since`/`--until`: RFC 3339, Unix seconds (with fraction), or a duration before now.
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

const COLORS: [&str; 6] = ["36", "33", "32", "35", "34", "31"];

/// Prints log entries with per-container coloured `service-1 |` prefixes.
pub(crate) struct Printer {
    prefix: Vec<String>,
    timestamps: bool,
}

impl Printer {
    /// A printer for containers labelled `labels` (index = container).
    pub(crate) fn new(labels: &[String], color: bool, no_prefix: bool, timestamps: bool) -> Printer {
        let width = labels.iter().map(|l| l.len()).max().unwrap_or(0);
        let prefix = labels
            .iter()
            .enumerate()
            .map(|(i, l)| {
                if no_prefix {
                    String::new()
                } else if color {
                    format!("\x1b[{}m{l:<width$} |\x1b[0m ", COLORS[i % COLORS.len()])
                } else {
                    format!("{l:<width$} | ")
                }
            })
            .collect();
        Printer { prefix, timestamps }
    }

    /// Prints one entry of container `i`.
    pub(crate) fn print(&self, out: &mut impl Write, i: usize, e: &LogEntry) {
        let mut line = String::new();
        line.push_str(&self.prefix[i]);
        if self.timestamps {
            line.push_str(&e.time);
            line.push(' ');
        }
        line.push_str(&e.log);
        if !line.ends_with('\n') {
            line.push('\n');
        }
        // Nowhere left to report a failed write to stdout.
        let _ = out.write_all(line.as_bytes());
    }
}

/// Runs `berth logs`.
pub fn run(project: &ProjectArgs, args: LogsArgs) -> anyhow::Result<()> {
    let ctx = Ctx::load_named(project)?;
    ctx.check_services(&args.services)?;
    let mut list: Vec<ContainerRecord> = ctx.containers(&args.services, false)?;
    if let Some(i) = args.index {
        list.retain(|c| c.number == i);
    }
    // The `none` logging driver keeps nothing to read: said as Docker says it, and the others'
    // logs are printed (Compose's `logs` succeeds with no lines for them too).
    list.retain(|c| {
        let readable = log::readable(&c.config);
        if !readable {
            berth::output::warn(&format!(
                "container {}: configured logging driver does not support reading (its service's `logging.driver` is `none`: its output is not kept)",
                c.name
            ));
        }
        readable
    });
    let since = args.since.as_deref().map(parse_time).transpose()?;
    let until = args.until.as_deref().map(parse_time).transpose()?;
    let tail: Option<usize> = if args.tail == "all" || args.tail == "-1" { None } else { Some(args.tail.parse()?) };
    let color = !args.no_color && berth::output::color_for(std::io::stdout().is_terminal());
    let labels: Vec<String> =
        list.iter().map(|c| if c.oneoff { c.name.clone() } else { format!("{}-{}", c.service, c.number) }).collect();
    let printer = Printer::new(&labels, color, args.no_log_prefix, args.timestamps);
    let mut out = std::io::stdout().lock();
    let mut followers = Vec::new();
    let mut last = Vec::new();
    for (i, c) in list.iter().enumerate() {
        let cfg = &c.config;
        let path = ctx.roots.log_file(&c.id);
        if args.follow {
            followers.push(LogFollower::at_end(&path));
        }
        let mut entries: Vec<LogEntry> = log::read_all(&path, cfg.log.max_file)
            .into_iter()
            .filter(|e| since.is_none_or(|s| e.nanos() >= s) && until.is_none_or(|u| e.nanos() < u))
            .collect();
        if let Some(n) = tail {
            let skip = entries.len().saturating_sub(n);
            entries.drain(..skip);
        }
        last.push(entries.last().map(|e| e.nanos()).unwrap_or(0));
        for e in &entries {
            printer.print(&mut out, i, e);
        }
    }
    // Nowhere left to report a failed write to stdout.
    let _ = out.flush();
    if !args.follow {
        return Ok(());
    }
    drop(out);
    let mut done = false;
    loop {
        let mut out = std::io::stdout().lock();
        for (i, f) in followers.iter_mut().enumerate() {
            for e in f.poll() {
                if e.nanos() > last[i] && until.is_none_or(|u| e.nanos() < u) {
                    printer.print(&mut out, i, &e);
                }
            }
        }
        if out.flush().is_err() || done {
            return Ok(());
        }
        drop(out);
        // Keep following while any container runs or is being restarted.
        let running = list.iter().any(|c| {
            ctx.db.container(&c.id).ok().flatten().is_some_and(|r| {
                let r = container::refresh(&ctx.roots, &ctx.db, &r).unwrap_or(r);
                r.status.is_alive() || r.status == Status::Restarting
            })
        });
        if !running {
            done = true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}
