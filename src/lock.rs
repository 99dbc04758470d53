//! One writer per project: the lock every command that changes a project holds while it does.
//!
//! A `flock` on `$BERTH_RUN/locks/<project>.lock`, taken by `up`, `down`, `create`, `start`,
//! `stop`, `restart`, `kill`, `rm`, `pause`, `unpause`, `scale` and `run` for the time they change
//! things (not while a foreground `up` or `run` streams output). A second such command waits for
//! the first and says whom it waits for; commands that only read (`ps`, `logs`, `config`, ...)
//! never take it. The kernel drops the lock when its holder exits, however it exits, so a killed
//! command never leaves the project locked. The file names its holder (pid and command) for the
//! message; the file's descriptor is close-on-exec, so processes berth starts never hold it.

use std::fs::File;
use std::io::{Read, Seek, Write};
use std::os::fd::AsRawFd;
use std::path::PathBuf;

use crate::container::paths::{leaf, UnsafeName};
use crate::container::Roots;

/// Why the lock could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// The project name cannot name a file.
    #[error(transparent)]
    Name(#[from] UnsafeName),
    /// The lock file could not be made or locked.
    #[error("cannot lock project {project:?} (`{path}`): {source}")]
    Io {
        /// The project.
        project: String,
        /// The lock file.
        path: PathBuf,
        /// What failed.
        #[source]
        source: std::io::Error,
    },
}

/// A held project lock; dropping it lets the next writer in.
#[derive(Debug)]
pub struct ProjectLock {
    _file: File,
}

/// The lock file of `project`.
pub fn path(roots: &Roots, project: &str) -> Result<PathBuf, UnsafeName> {
    Ok(roots.run.join("locks").join(format!("{}.lock", leaf(project)?)))
}

fn flock(file: &File, nonblocking: bool) -> std::io::Result<()> {
    let flags = libc::LOCK_EX | if nonblocking { libc::LOCK_NB } else { 0 };
    loop {
        // SAFETY: flock on a descriptor this function borrows.
        if unsafe { libc::flock(file.as_raw_fd(), flags) } == 0 {
            return Ok(());
        }
        let e = std::io::Error::last_os_error();
        if e.kind() != std::io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

impl ProjectLock {
    /// Takes `project`'s lock for `command`. When another command holds it, `waiting` is told
    /// who (`"berth up (pid 123)"`) once, and this waits until it is free.
    pub fn acquire(
        roots: &Roots,
        project: &str,
        command: &str,
        waiting: impl FnOnce(&str),
    ) -> Result<ProjectLock, LockError> {
        let path = path(roots, project)?;
        let io = |source| LockError::Io { project: project.to_string(), path: path.clone(), source };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let mut file =
            std::fs::OpenOptions::new().read(true).write(true).create(true).truncate(false).open(&path).map_err(io)?;
        match flock(&file, true) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(libc::EWOULDBLOCK) => {
                let mut holder = String::new();
                // Only for the message: an unreadable holder is "another berth command".
                let _ = file.read_to_string(&mut holder);
                let holder = holder.trim();
                waiting(if holder.is_empty() { "another berth command" } else { holder });
                flock(&file, false).map_err(io)?;
            }
            Err(e) => return Err(io(e)),
        }
        // Who holds it, for the next one's message (best effort: a full disk does not matter here).
        let _ = file.set_len(0).and_then(|_| file.rewind());
        let _ = write!(file, "berth {command} (pid {})", std::process::id());
        Ok(ProjectLock { _file: file })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_writer_waits_and_is_told_for_whom() {
        let tmp = tempfile::tempdir().unwrap();
        let roots = Roots { root: tmp.path().join("root"), run: tmp.path().join("run") };
        let first = ProjectLock::acquire(&roots, "shop", "up", |_| panic!("nobody holds it yet")).unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let roots2 = roots.clone();
        let second = std::thread::spawn(move || {
            ProjectLock::acquire(&roots2, "shop", "down", |who| tx.send(who.to_string()).unwrap()).unwrap()
        });
        let who = rx.recv().unwrap();
        assert_eq!(who, format!("berth up (pid {})", std::process::id()));
        std::thread::sleep(std::time::Duration::from_millis(50));
        assert!(!second.is_finished(), "the second waits while the first holds the lock");
        drop(first);
        drop(second.join().unwrap());
        // Another project is never blocked, and a name that is not a file name is refused.
        let _a = ProjectLock::acquire(&roots, "shop", "up", |_| panic!("free again")).unwrap();
        let _b = ProjectLock::acquire(&roots, "other", "up", |_| panic!("another project")).unwrap();
        assert!(ProjectLock::acquire(&roots, "../x", "up", |_| {}).is_err());
    }
}
