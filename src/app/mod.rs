//! The use cases behind the commands: each takes a [`Session`] (a loaded project with its state)
//! and resolved, typed options, emits events for a renderer and returns a typed result. The
//! command-line layer (`cli/`) only maps arguments onto these.

use std::time::Duration;

use berth_compose::Project;

use crate::container::Roots;
use crate::events::EventSink;
use crate::state::StateDb;

pub mod attach;
pub mod boot;
pub mod build;
pub mod commit;
pub mod foreground;
pub mod images;
pub mod interrupts;
pub mod logs;
pub mod networks;
pub mod projects;
pub mod ps;
pub mod pull;
pub mod restart;
pub mod rollback;
pub mod run;
pub mod stack;
pub mod start;
pub mod up;
pub mod volumes;

/// A loaded project, its state, and where its events go.
pub struct Session<'a> {
    /// The project as the compose files describe it.
    pub project: &'a Project,
    /// State and run roots.
    pub roots: &'a Roots,
    /// The state database.
    pub db: &'a StateDb,
    /// Where progress and warnings go.
    pub events: &'a dyn EventSink,
    /// Steps run at once (`--parallel`; `None`: unbounded).
    pub parallel: Option<usize>,
    /// Stops take this long at most (`-t`) instead of each service's `stop_grace_period`.
    pub stop_timeout: Option<Duration>,
    /// Services whose new containers are made from an image by id rather than from the one
    /// their reference names (`rollback`), by service.
    pub pinned: std::collections::BTreeMap<String, String>,
}

impl Session<'_> {
    /// Emits a warning.
    pub fn warn(&self, message: impl Into<String>) {
        self.events.emit(crate::events::Event::Warning { message: message.into() });
    }
}
