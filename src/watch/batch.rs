//! Gathering file changes into batches: the first change opens a batch, which closes once the
//! changes stop for a moment (an editor's save, a `git checkout`) or after a bound, so a single
//! quiet change is applied at once and a burst becomes one batch.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

/// How long without a change closes a batch.
pub const QUIET: Duration = Duration::from_millis(8);
/// The longest a batch stays open.
pub const MAX_OPEN: Duration = Duration::from_millis(300);

/// What a wait for changes gave.
#[derive(Debug, PartialEq, Eq)]
pub enum Batch {
    /// Changed paths.
    Changes(BTreeSet<PathBuf>),
    /// Nothing changed within the poll time.
    Idle,
    /// The sender is gone.
    Closed,
}

/// Waits up to `poll` for a change, then gathers the changes that follow it.
pub fn next(rx: &Receiver<Vec<PathBuf>>, poll: Duration) -> Batch {
    let first = match rx.recv_timeout(poll) {
        Ok(paths) => paths,
        Err(RecvTimeoutError::Timeout) => return Batch::Idle,
        Err(RecvTimeoutError::Disconnected) => return Batch::Closed,
    };
    let opened = Instant::now();
    let mut changes: BTreeSet<PathBuf> = first.into_iter().collect();
    loop {
        let left = MAX_OPEN.saturating_sub(opened.elapsed());
        if left.is_zero() {
            break;
        }
        match rx.recv_timeout(QUIET.min(left)) {
            Ok(paths) => changes.extend(paths),
            Err(_) => break,
        }
    }
    Batch::Changes(changes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_is_one_batch_and_a_quiet_change_comes_at_once() {
        let (tx, rx) = std::sync::mpsc::channel();
        let sender = std::thread::spawn(move || {
            for i in 0..100 {
                tx.send(vec![PathBuf::from(format!("f{i}"))]).unwrap();
            }
            std::thread::sleep(Duration::from_millis(100));
            tx.send(vec![PathBuf::from("late")]).unwrap();
        });
        let Batch::Changes(first) = next(&rx, Duration::from_secs(5)) else { panic!("a batch") };
        assert_eq!(first.len(), 100);
        let Batch::Changes(second) = next(&rx, Duration::from_secs(5)) else { panic!("a batch") };
        assert_eq!(second, [PathBuf::from("late")].into());
        sender.join().unwrap();
        assert_eq!(next(&rx, Duration::from_millis(1)), Batch::Closed);
    }
}
