//! How builds look: BuildKit-like plain lines (`#5 [build 2/4] RUN make`, `#5 CACHED`, `RUN`
//! output), JSON lines, or nothing but errors.

use berth::events::{Event, EventSink};

use super::progress::Mode;

/// The text line of a build event in plain output, BuildKit's way.
pub fn plain_line(event: &Event) -> Option<String> {
    Some(match event {
        Event::BuildStarted { image, steps } => format!("#0 building {image} ({steps} steps)"),
        Event::BuildStep { step, stage, position, instruction, .. } => {
            format!("#{step} [{stage} {position}] {instruction}")
        }
        Event::BuildOutput { step, line, .. } => format!("#{step} {line}"),
        Event::BuildStepDone { step, cached: true, .. } => format!("#{step} CACHED"),
        Event::BuildStepDone { step, millis, .. } => format!("#{step} DONE {:.1}s", *millis as f64 / 1000.0),
        Event::ImageBuilt { image, id, steps, cached, containers, millis } => format!(
            " Image {image}  Built  {}  ({steps} steps, {cached} layers cached, {containers} RUN containers, {:.1}s)",
            id.strip_prefix("sha256:").unwrap_or(id).get(..12).unwrap_or(id),
            *millis as f64 / 1000.0
        ),
        _ => return None,
    })
}

/// Renders build events.
pub struct Renderer {
    /// How.
    pub mode: Mode,
}

impl EventSink for Renderer {
    fn emit(&self, event: Event) {
        match (&event, self.mode) {
            (Event::Warning { message }, Mode::Json) => eprintln!("{}", serde_json::json!({"warning": message})),
            (Event::Warning { message }, _) => berth::output::warn(message),
            (_, Mode::Quiet) => {}
            (_, Mode::Json) => eprintln!("{}", serde_json::to_string(&event).unwrap_or_default()),
            _ => {
                if let Some(line) = plain_line(&event) {
                    eprintln!("{line}");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_lines_look_like_buildkit() {
        let e = Event::BuildStep {
            image: "x".into(),
            step: 5,
            stage: "build".into(),
            position: "2/4".into(),
            instruction: "RUN make".into(),
        };
        assert_eq!(plain_line(&e).unwrap(), "#5 [build 2/4] RUN make");
        let d = Event::BuildStepDone { image: "x".into(), step: 5, cached: true, millis: 3 };
        assert_eq!(plain_line(&d).unwrap(), "#5 CACHED");
    }
}
