//! Errors of a build. Each one says what went wrong where: a Dockerfile problem names the file
//! and line, a failing `RUN` its exit code and last output lines.

use std::io;
use std::path::{Path, PathBuf};

use super::layer::LayerError;
use crate::image::ImageError;

/// Why a build failed.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The Dockerfile (or one of its instructions, as expanded) is wrong.
    #[error(transparent)]
    Dockerfile(#[from] berth_dockerfile::Error),
    /// An instruction cannot be carried out as written (a missing or excluded `COPY` source, a
    /// URL for `ADD`, an unknown secret): named by file and line.
    #[error("{file}:{line}: {message}")]
    Step {
        /// The Dockerfile.
        file: String,
        /// The instruction's first line.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// A `RUN` command exited with a non-zero status.
    #[error("{file}:{line}: `{command}` exited with code {code}{}", tail_text(.tail))]
    RunFailed {
        /// The Dockerfile.
        file: String,
        /// The instruction's first line.
        line: usize,
        /// The command as written.
        command: String,
        /// Its exit code.
        code: i32,
        /// Its last output lines.
        tail: Vec<String>,
    },
    /// The build context or Dockerfile cannot be read.
    #[error("{what} `{}`: {detail}", .path.display())]
    Input {
        /// What it is (`build context`, `Dockerfile`).
        what: &'static str,
        /// Where.
        path: PathBuf,
        /// What is wrong with it.
        detail: String,
    },
    /// An option of the build is not supported.
    #[error("{0}")]
    Unsupported(String),
    /// The build network could not be set up or taken down.
    #[error("build network: {0}")]
    Network(String),
    /// The image store failed (a base image missing or unreachable, a blob not written).
    #[error(transparent)]
    Image(#[from] ImageError),
    /// A file-system operation failed (reading the context, writing a layer).
    #[error(transparent)]
    Layer(#[from] LayerError),
    /// The OCI runtime failed to run a `RUN` container.
    #[error("{file}:{line}: {message}")]
    Runtime {
        /// The Dockerfile.
        file: String,
        /// The instruction's first line.
        line: usize,
        /// What the runtime said.
        message: String,
    },
}

fn tail_text(tail: &[String]) -> String {
    if tail.is_empty() {
        return String::new();
    }
    format!("; its last output:\n  {}", tail.join("\n  "))
}

/// Result type of builds.
pub type Result<T, E = BuildError> = std::result::Result<T, E>;

/// Maps an I/O error on `path` while doing `action`.
pub fn io_err<'p>(action: &'static str, path: &'p Path) -> impl FnOnce(io::Error) -> BuildError + 'p {
    move |source| BuildError::Layer(LayerError::Io { action, path: path.to_path_buf(), source })
}

/// Where an instruction is, for its errors.
#[derive(Debug, Clone)]
pub struct At {
    /// The Dockerfile.
    pub file: String,
    /// The instruction's first line.
    pub line: usize,
}

impl At {
    /// A [`BuildError::Step`] here.
    pub fn fail(&self, message: impl Into<String>) -> BuildError {
        BuildError::Step { file: self.file.clone(), line: self.line, message: message.into() }
    }
}

impl From<crate::state::StateError> for BuildError {
    fn from(e: crate::state::StateError) -> Self {
        BuildError::Network(e.to_string())
    }
}
