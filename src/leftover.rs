//! What an undo leaves behind when it fails. An operation that fails part way undoes what it
//! did; when the undo fails too, what stays (a mount, a namespace, a row, a directory) is named
//! in the error that is returned, never dropped.

use std::fmt::Display;

/// Adds a failed undo to the error that made it necessary.
pub trait Undone {
    /// This error, unchanged when `undo` succeeded, or with a note naming `left` and why undoing
    /// failed. The original error stays in the chain (its exit code and causes with it).
    fn undone<T, E: Display>(self, left: impl FnOnce() -> String, undo: Result<T, E>) -> Self;
}

impl Undone for anyhow::Error {
    fn undone<T, E: Display>(self, left: impl FnOnce() -> String, undo: Result<T, E>) -> Self {
        match undo {
            Ok(_) => self,
            Err(u) => self.context(format!("{} was left behind: {u:#}", left())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_undo_names_what_is_left_and_keeps_the_cause() {
        let failed = anyhow::anyhow!("cannot mount `/x`");
        let kept = failed.undone(|| "volume `data`".into(), Err::<(), _>("device busy"));
        assert_eq!(kept.to_string(), "volume `data` was left behind: device busy");
        assert_eq!(kept.root_cause().to_string(), "cannot mount `/x`");
        let clean = anyhow::anyhow!("boom").undone(|| "nothing".into(), Ok::<(), String>(()));
        assert_eq!(format!("{clean:#}"), "boom");
    }
}
