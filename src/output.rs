//! Renderers for what berth tells the user on stderr: errors (reported once, with causes
//! and an optional hint), warnings and events. Colour only on a terminal and without `NO_COLOR`.

use std::io::{IsTerminal, Write};

use crate::events::{Event, EventSink};

/// Rows as aligned columns separated by three spaces, the last column as it is; one line each.
pub fn columns(rows: &[Vec<String>]) -> String {
    let cols = rows.iter().map(|r| r.len()).max().unwrap_or(0);
    let widths: Vec<usize> = (0..cols)
        .map(|i| rows.iter().map(|r| r.get(i).map(|s| s.chars().count()).unwrap_or(0)).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for r in rows {
        let mut line = String::new();
        for (i, cell) in r.iter().enumerate() {
            if i + 1 == r.len() {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<w$}   ", w = widths[i]));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// `--ansi`: 0 auto, 1 never, 2 always.
static ANSI: std::sync::atomic::AtomicU8 = std::sync::atomic::AtomicU8::new(0);

/// Sets `--ansi` (`None`: auto, on a terminal without `NO_COLOR`).
pub fn set_ansi(always: Option<bool>) {
    let v = match always {
        None => 0,
        Some(false) => 1,
        Some(true) => 2,
    };
    ANSI.store(v, std::sync::atomic::Ordering::Relaxed);
}

/// Whether output to a stream that `is_terminal` (or not) is coloured: `--ansi`, else a
/// terminal without `NO_COLOR`.
pub fn color_for(is_terminal: bool) -> bool {
    match ANSI.load(std::sync::atomic::Ordering::Relaxed) {
        1 => false,
        2 => true,
        _ => is_terminal && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()),
    }
}

/// True when stderr may be coloured.
pub fn color_enabled() -> bool {
    color_for(std::io::stderr().is_terminal())
}

fn paint(text: &str, code: &str) -> String {
    if color_enabled() {
        format!("\x1b[{code}m{text}\x1b[0m")
    } else {
        text.to_string()
    }
}

/// Writes an error, its causes and its hint to stderr.
pub fn report_error(err: &anyhow::Error) {
    let mut stderr = std::io::stderr().lock();
    // Nowhere left to report a failed write to stderr.
    let _ = writeln!(stderr, "{} {err}", paint("error:", "1;31"));
    for cause in err.chain().skip(1) {
        // As above.
        let _ = writeln!(stderr, "  {} {cause}", paint("caused by:", "1"));
    }
    let hint = err.chain().find_map(|c| c.downcast_ref::<berth_compose::Error>().and_then(|e| e.hint.clone()));
    if let Some(hint) = hint {
        // As above.
        let _ = writeln!(stderr, "{} {hint}", paint("hint:", "1;36"));
    }
}

/// Writes a warning to stderr.
pub fn warn(message: &str) {
    // Nowhere left to report a failed write to stderr.
    let _ = writeln!(std::io::stderr().lock(), "{} {message}", paint("warning:", "1;33"));
}

/// Tells what the state could not record for want of space (it catches up later).
pub fn report_deferred(waited: &[String]) {
    warn(&format!(
        "no space left on the state file system: done, but not recorded: {}; free some space and the next berth command brings the state up to date",
        waited.join("; ")
    ));
}

/// Renders events as plain lines on stderr.
pub struct PlainRenderer;

impl EventSink for PlainRenderer {
    fn emit(&self, event: Event) {
        match event {
            Event::Warning { message } => warn(&message),
            other => {
                let line = serde_json::to_string(&other).unwrap_or_default();
                // Nowhere left to report a failed write to stderr.
                let _ = writeln!(std::io::stderr().lock(), "{line}");
            }
        }
    }
}
