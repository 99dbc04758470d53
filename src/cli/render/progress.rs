//! How `up`, `down` and `scale` show the steps of their plans (`--progress`): on a terminal one
//! live line per network, volume, image and container with its state and elapsed time; plain
//! lines as Compose prints them otherwise; one JSON object per line; or nothing.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use berth::events::{Event, EventSink};
use berth::plan::{Kind, Op, Subject};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A `--progress` mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Live lines.
    Tty,
    /// ` Container x  Started` lines.
    Plain,
    /// JSON lines.
    Json,
    /// Warnings and errors only.
    Quiet,
}

/// `--progress` as given.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Choice {
    /// `tty` on a terminal, else `plain`
    #[default]
    Auto,
    /// Live lines
    Tty,
    /// ` Container x  Started` lines
    Plain,
    /// JSON lines
    Json,
    /// Warnings and errors only
    Quiet,
}

impl Mode {
    /// The mode asked for; `auto` is `tty` when standard error is a terminal, else `plain`.
    pub fn of(choice: Choice) -> Mode {
        match choice {
            Choice::Auto if std::io::stderr().is_terminal() => Mode::Tty,
            Choice::Auto | Choice::Plain => Mode::Plain,
            Choice::Tty => Mode::Tty,
            Choice::Json => Mode::Json,
            Choice::Quiet => Mode::Quiet,
        }
    }
}

/// How the user reads a step: `("Container", "Started", "Starting")`.
fn words(step: &Subject) -> (&'static str, &'static str, &'static str) {
    let (done, doing) = match step.op {
        Op::Create => ("Created", "Creating"),
        Op::Start => ("Started", "Starting"),
        Op::Stop => ("Stopped", "Stopping"),
        Op::Remove => ("Removed", "Removing"),
        Op::Pull => ("Pulled", "Pulling"),
        Op::Build => ("Built", "Building"),
        Op::Switch => ("Switched", "Switching"),
        Op::Rename => ("Renamed", "Renaming"),
        Op::Connect => ("Connected", "Connecting"),
        Op::Disconnect => ("Disconnected", "Disconnecting"),
        Op::Publish => ("Published", "Publishing"),
    };
    let kind = match step.kind {
        Kind::Container => "Container",
        Kind::Network => "Network",
        Kind::Volume => "Volume",
        Kind::Image => "Image",
    };
    (kind, done, doing)
}

/// Renders plan events in one of the modes.
pub struct Progress {
    mode: Mode,
    multi: MultiProgress,
    bars: Mutex<HashMap<Subject, (ProgressBar, Instant)>>,
}

impl Progress {
    /// A renderer for `mode`.
    pub fn new(mode: Mode) -> Progress {
        let multi = MultiProgress::with_draw_target(if mode == Mode::Tty {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        });
        Progress { mode, multi, bars: Mutex::new(HashMap::new()) }
    }

    fn line(&self, text: String) {
        if self.mode == Mode::Tty {
            // Nowhere left to report a failed write to the terminal.
            let _ = self.multi.println(text);
        } else {
            eprintln!("{text}");
        }
    }

    fn json(&self, step: &Subject, status: &str, error: Option<&str>) {
        let (kind, _, _) = words(step);
        let mut v = serde_json::json!({"id": format!("{kind} {}", step.name), "status": status});
        if let Some(e) = error {
            v["error"] = e.into();
        }
        eprintln!("{v}");
    }

    fn bar_start(&self, step: &Subject) {
        let (kind, _, doing) = words(step);
        let name = &step.name;
        let bar = self.multi.add(ProgressBar::new_spinner());
        bar.set_style(ProgressStyle::with_template(" {spinner} {msg} {elapsed:>4}").expect("template"));
        bar.set_message(format!("{kind} {name}  {doing}"));
        bar.enable_steady_tick(Duration::from_millis(100));
        self.bars.lock().expect("bars").insert(step.clone(), (bar, Instant::now()));
    }

    fn bar_end(&self, step: &Subject, mark: &str, status: String) {
        let (kind, _, _) = words(step);
        let name = &step.name;
        let entry = self.bars.lock().expect("bars").remove(step);
        let (bar, started) = entry.unwrap_or_else(|| (self.multi.add(ProgressBar::new_spinner()), Instant::now()));
        bar.set_style(ProgressStyle::with_template(" {msg}").expect("template"));
        bar.finish_with_message(format!("{mark} {kind} {name}  {status}  {:.1}s", started.elapsed().as_secs_f64()));
    }
}

impl EventSink for Progress {
    fn emit(&self, event: Event) {
        match (&event, self.mode) {
            (Event::Warning { message }, Mode::Json) => eprintln!("{}", serde_json::json!({"warning": message})),
            (Event::Warning { message }, Mode::Tty) => self.line(format!("WARN {message}")),
            (Event::Warning { message }, _) => berth::output::warn(message),
            (Event::StepStarted { step }, Mode::Tty) => self.bar_start(step),
            (Event::StepStarted { step }, Mode::Json) => self.json(step, words(step).2, None),
            (Event::StepDone { step }, Mode::Tty) => self.bar_end(step, "✔", words(step).1.to_string()),
            (Event::StepDone { step }, Mode::Plain) => {
                let (kind, done, _) = words(step);
                eprintln!(" {kind} {}  {done}", step.name);
            }
            (Event::StepDone { step }, Mode::Json) => self.json(step, words(step).1, None),
            (Event::StepFailed { step, error }, Mode::Tty) => self.bar_end(step, "✘", format!("Error: {error}")),
            (Event::StepFailed { step, error }, Mode::Json) => self.json(step, "Error", Some(error)),
            (Event::StepFailed { step, error }, _) => eprintln!(" {step}  Error: {error}"),
            (Event::StepSkipped { step }, Mode::Tty) => self.bar_end(step, "-", "Skipped".into()),
            (Event::StepSkipped { step }, Mode::Json) => self.json(step, "Skipped", None),
            (_, Mode::Json) if super::build::plain_line(&event).is_some() => {
                eprintln!("{}", serde_json::to_string(&event).unwrap_or_default());
            }
            (_, Mode::Plain | Mode::Tty) => {
                if let Some(line) = super::build::plain_line(&event) {
                    self.line(line);
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_read_as_compose_prints_them() {
        let step = |kind, op| Subject { kind, name: "x".into(), op };
        assert_eq!(words(&step(Kind::Container, Op::Start)), ("Container", "Started", "Starting"));
        assert_eq!(words(&step(Kind::Network, Op::Create)), ("Network", "Created", "Creating"));
        assert_eq!(words(&step(Kind::Image, Op::Pull)), ("Image", "Pulled", "Pulling"));
        assert_eq!(Mode::of(Choice::Json), Mode::Json);
        assert_eq!(Mode::of(Choice::Quiet), Mode::Quiet);
    }
}
