//! Log lines with per-container coloured `service-1 |` prefixes, for `logs` and a foreground
//! `up` (which also says when a container exits and when the run stops).

use std::io::{IsTerminal, Write};

use berth::app::foreground;
use berth::app::logs;
use berth::monitor::log::LogEntry;

const COLORS: [&str; 6] = ["36", "33", "32", "35", "34", "31"];

/// How log lines look.
#[derive(Clone, Copy, Debug, Default)]
pub struct Style {
    /// `--no-color`.
    pub no_color: bool,
    /// `--no-log-prefix`.
    pub no_prefix: bool,
    /// `--timestamps`.
    pub timestamps: bool,
}

/// Prints log entries of containers known by index.
pub struct Printer {
    style: Style,
    labels: Vec<String>,
    prefix: Vec<String>,
}

impl Printer {
    /// A printer; [`Printer::containers`] names the containers before their lines come.
    pub fn new(style: Style) -> Printer {
        Printer { style, labels: Vec::new(), prefix: Vec::new() }
    }

    /// The containers' labels, by index.
    pub fn containers(&mut self, labels: &[String]) {
        let color = !self.style.no_color && berth::output::color_for(std::io::stdout().is_terminal());
        let width = labels.iter().map(|l| l.len()).max().unwrap_or(0);
        self.prefix = labels
            .iter()
            .enumerate()
            .map(|(i, l)| match (self.style.no_prefix, color) {
                (true, _) => String::new(),
                (false, true) => format!("\x1b[{}m{l:<width$} |\x1b[0m ", COLORS[i % COLORS.len()]),
                (false, false) => format!("{l:<width$} | "),
            })
            .collect();
        self.labels = labels.to_vec();
    }

    /// Prints one entry of container `i`.
    pub fn print(&self, out: &mut impl Write, i: usize, e: &LogEntry) -> std::io::Result<()> {
        let mut line = self.prefix.get(i).cloned().unwrap_or_default();
        if self.style.timestamps {
            line.push_str(&e.time);
            line.push(' ');
        }
        line.push_str(&e.log);
        if !line.ends_with('\n') {
            line.push('\n');
        }
        out.write_all(line.as_bytes())
    }

    /// Shows what `logs` shows; false once stdout is closed (its reader went away).
    pub fn logs(&mut self, shown: logs::Shown) -> bool {
        let mut out = std::io::stdout().lock();
        match shown {
            logs::Shown::Unreadable(name) => berth::output::warn(&format!(
                "container {name}: configured logging driver does not support reading (its service's `logging.driver` is `none`: its output is not kept)"
            )),
            logs::Shown::Containers(labels) => self.containers(&labels),
            // A failed write shows at the next flush, which ends the run.
            logs::Shown::Line(i, e) => drop(self.print(&mut out, i, &e)),
            logs::Shown::Flush => return out.flush().is_ok(),
        }
        true
    }

    /// Shows what a foreground `up` shows.
    pub fn foreground(&mut self, shown: foreground::Shown) {
        match shown {
            foreground::Shown::Attached(labels) => self.containers(&labels),
            foreground::Shown::Lines(lines) => {
                let mut out = std::io::stdout().lock();
                for (i, e) in &lines {
                    // Nowhere left to report a failed write to stdout.
                    let _ = self.print(&mut out, *i, e);
                }
                // Nowhere left to report a failed write to stdout.
                let _ = out.flush();
            }
            foreground::Shown::Exited { index, code } => {
                println!("{} exited with code {code}", self.labels.get(index).map(String::as_str).unwrap_or("?"));
                // Nowhere left to report a failed write to stdout.
                let _ = std::io::stdout().flush();
            }
            foreground::Shown::Stopping => eprintln!("Gracefully stopping... (press Ctrl+C again to force)"),
            foreground::Shown::Aborting => eprintln!("Aborting on container exit..."),
            foreground::Shown::Stopped(name) => eprintln!(" Container {name}  Stopped"),
        }
    }
}
