//! Undoing what a half-made change made: each step registers how to undo itself; if the change
//! does not complete, the undos run in reverse order when the guard is dropped (on an error
//! return or a panic alike), and every undo that fails is reported as a warning naming what is
//! left, never dropped.

use crate::events::{Event, EventSink};

type Undo<'a> = Box<dyn FnOnce() -> anyhow::Result<()> + 'a>;

/// A stack of undos, run on drop unless [`Rollback::commit`] was called.
pub struct Rollback<'a> {
    what: String,
    undos: Vec<(&'static str, Undo<'a>)>,
    events: &'a dyn EventSink,
}

impl<'a> Rollback<'a> {
    /// A guard for making `what` (named in the warnings).
    pub fn new(what: impl Into<String>, events: &'a dyn EventSink) -> Rollback<'a> {
        Rollback { what: what.into(), undos: Vec::new(), events }
    }

    /// Registers how to undo the step just done (`step` names it).
    pub fn push(&mut self, step: &'static str, undo: impl FnOnce() -> anyhow::Result<()> + 'a) {
        self.undos.push((step, Box::new(undo)));
    }

    /// The change is complete: nothing is undone.
    pub fn commit(mut self) {
        self.undos.clear();
    }
}

impl Drop for Rollback<'_> {
    fn drop(&mut self) {
        while let Some((step, undo)) = self.undos.pop() {
            if let Err(e) = undo() {
                let message = format!("{}: undoing {step} failed, it may be left behind: {e:#}", self.what);
                self.events.emit(Event::Warning { message });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::Recorder;
    use std::cell::RefCell;

    #[test]
    fn undos_run_in_reverse_unless_committed_and_failures_are_told() {
        let events = Recorder::default();
        let log = RefCell::new(Vec::new());
        {
            let mut r = Rollback::new("container x", &events);
            r.push("the network", || {
                log.borrow_mut().push("network");
                Ok(())
            });
            r.push("the mounts", || anyhow::bail!("busy"));
            r.push("the bundle", || {
                log.borrow_mut().push("bundle");
                Ok(())
            });
        }
        assert_eq!(*log.borrow(), ["bundle", "network"]);
        assert_eq!(
            events.events(),
            [Event::Warning { message: "container x: undoing the mounts failed, it may be left behind: busy".into() }]
        );
        let r = Rollback::new("container y", &events);
        r.commit();
        assert_eq!(events.events().len(), 1);
    }
}
