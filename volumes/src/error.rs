//! Errors of the volumes crate: each names the object and the path involved.

use std::path::PathBuf;

/// A volume, bind or secret operation that failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// File system work on a path failed.
    #[error("failed to {action} `{path}`: {source}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// The path.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A mount or unmount failed.
    #[error("failed to {action} `{path}`: {errno}")]
    Mount {
        /// What was being done.
        action: &'static str,
        /// The mount point.
        path: PathBuf,
        /// The cause.
        errno: nix::Error,
    },
    /// The named volume does not exist.
    #[error("no such volume: {0:?}")]
    NoSuchVolume(String),
    /// The volume is used by a container.
    #[error("volume {name:?} is in use by {users}")]
    InUse {
        /// The volume.
        name: String,
        /// The containers using it.
        users: String,
    },
    /// A volume name Compose would not accept.
    #[error(
        "invalid volume name {0:?}: use at least two letters, digits, `_`, `.` or `-`, starting with a letter or digit"
    )]
    InvalidName(String),
    /// Unsupported or inconsistent `driver`/`driver_opts`.
    #[error("volume {name:?}: {message}")]
    Driver {
        /// The volume.
        name: String,
        /// What is wrong.
        message: String,
    },
    /// A bind mount source that does not exist and may not be created.
    #[error("bind source path `{0}` does not exist (and `create_host_path` is false)")]
    MissingBindSource(PathBuf),
    /// A secret or config whose content cannot be found.
    #[error("{kind} {name:?}: {message}")]
    SecretSource {
        /// `secret` or `config`.
        kind: &'static str,
        /// Its name.
        name: String,
        /// What is wrong.
        message: String,
    },
    /// The metadata file of a volume is unreadable.
    #[error("volume metadata `{path}` is corrupt: {message}")]
    Metadata {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// An operation failed, and undoing what it had done failed too: `left` stays behind.
    #[error("{error} ({left} was left behind: {undo})")]
    LeftBehind {
        /// The failure.
        error: Box<Error>,
        /// What stays behind.
        left: String,
        /// Why undoing failed.
        undo: Box<Error>,
    },
}

impl Error {
    /// This error, or [`Error::LeftBehind`] with it when `undo` (undoing what the failed
    /// operation had done) failed too, naming what stays behind.
    pub(crate) fn undone(self, left: impl FnOnce() -> String, undo: Result<()>) -> Self {
        match undo {
            Ok(()) => self,
            Err(u) => Error::LeftBehind { error: Box::new(self), left: left(), undo: Box::new(u) },
        }
    }
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Wraps an I/O error with what was done to which path.
pub(crate) fn io(action: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Error {
    let path = path.into();
    move |source| Error::Io { action, path, source }
}
