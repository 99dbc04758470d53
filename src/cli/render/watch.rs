//! How `watch` looks: one line per action the watcher took.

use berth::events::{Event, EventSink};

/// Shows what the watcher did, one line per action.
pub struct Lines {
    /// Failures and warnings only.
    pub quiet: bool,
}

impl EventSink for Lines {
    fn emit(&self, event: Event) {
        match event {
            Event::Watch { service, message, failed } if failed || !self.quiet => {
                eprintln!("{service}  {message}")
            }
            Event::Warning { message } => berth::output::warn(&message),
            _ => {}
        }
    }
}
