//! How pulls look: per-layer progress bars on a terminal, plain lines otherwise, warnings only
//! with `--quiet` (for `pull` and `image pull`).

use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::sync::Mutex;

use berth::events::{Event, EventSink};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// The event renderer for pulls: bars on a terminal, plain lines otherwise, warnings only with `quiet`.
pub fn renderer(quiet: bool) -> Box<dyn EventSink> {
    if quiet {
        Box::new(QuietRenderer)
    } else if std::io::stderr().is_terminal() {
        Box::new(BarRenderer::default())
    } else {
        Box::new(LineRenderer)
    }
}

struct QuietRenderer;

impl EventSink for QuietRenderer {
    fn emit(&self, event: Event) {
        if let Event::Warning { message } = event {
            berth::output::warn(&message);
        }
    }
}

/// Plain lines on stderr, for logs and pipes.
struct LineRenderer;

impl EventSink for LineRenderer {
    fn emit(&self, event: Event) {
        let line = match event {
            Event::Warning { message } => return berth::output::warn(&message),
            Event::PullStarted { image } => format!("{image}: pulling"),
            Event::LayerStarted { image, layer, size } => {
                format!("{image}: layer {layer}: downloading {}", human_size(size))
            }
            Event::LayerDone { image, layer, cached: true } => format!("{image}: layer {layer}: already present"),
            Event::LayerDone { image, layer, cached: false } => format!("{image}: layer {layer}: done"),
            Event::ImagePulled { image, up_to_date: true, .. } => format!("{image}: up to date"),
            Event::ImagePulled { image, digest, downloaded, .. } => {
                format!("{image}: pulled {digest} ({})", human_size(downloaded))
            }
            Event::ImageSkipped { image, reason } => format!("{image}: skipped ({reason})"),
            _ => return,
        };
        // Nowhere left to report a failed write to stderr.
        let _ = writeln!(std::io::stderr().lock(), "{line}");
    }
}

/// One progress bar per layer on a terminal.
struct BarRenderer {
    multi: MultiProgress,
    bars: Mutex<HashMap<(String, String), ProgressBar>>,
}

impl Default for BarRenderer {
    fn default() -> Self {
        BarRenderer {
            multi: MultiProgress::with_draw_target(ProgressDrawTarget::stderr()),
            bars: Mutex::new(HashMap::new()),
        }
    }
}

impl EventSink for BarRenderer {
    fn emit(&self, event: Event) {
        let mut bars = self.bars.lock().expect("bars lock");
        match event {
            Event::Warning { message } => {
                // Nowhere left to report a failed write to the terminal.
                let _ = self.multi.println(format!("warning: {message}"));
            }
            Event::LayerStarted { image, layer, size } => {
                let bar = self.multi.add(ProgressBar::new(size));
                let style =
                    ProgressStyle::with_template("{prefix} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} {msg}")
                        .unwrap_or_else(|_| ProgressStyle::default_bar())
                        .progress_chars("=> ");
                bar.set_style(style);
                bar.set_prefix(format!("{} {layer}", short_name(&image)));
                bars.insert((image, layer), bar);
            }
            Event::LayerProgress { image, layer, current, total } => {
                if let Some(b) = bars.get(&(image, layer)) {
                    b.set_position(current);
                    if current >= total {
                        b.set_message("unpacking");
                    }
                }
            }
            Event::LayerDone { image, layer, .. } => {
                if let Some(b) = bars.remove(&(image, layer)) {
                    b.finish_and_clear();
                    self.multi.remove(&b);
                }
            }
            Event::ImagePulled { image, up_to_date, digest, .. } => {
                let what = if up_to_date { "up to date".to_string() } else { format!("pulled {digest}") };
                // Nowhere left to report a failed write to the terminal.
                let _ = self.multi.println(format!("{image}: {what}"));
            }
            Event::ImageSkipped { image, reason } => {
                // Nowhere left to report a failed write to the terminal.
                let _ = self.multi.println(format!("{image}: skipped ({reason})"));
            }
            _ => {}
        }
    }
}

fn short_name(image: &str) -> &str {
    image.rsplit('/').next().unwrap_or(image)
}

/// Decimal sizes as Docker prints them: `2.1MB`.
pub fn human_size(bytes: u64) -> String {
    let units = ["B", "kB", "MB", "GB", "TB"];
    let mut v = bytes as f64;
    let mut i = 0;
    while v >= 1000.0 && i + 1 < units.len() {
        v /= 1000.0;
        i += 1;
    }
    if i == 0 {
        format!("{bytes}B")
    } else {
        format!("{v:.3}").chars().take(4).collect::<String>().trim_end_matches('.').to_string() + units[i]
    }
}
