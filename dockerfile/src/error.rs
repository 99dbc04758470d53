//! The crate's error type: every error names the Dockerfile and the 1-based line it is about, as
//! `Dockerfile:12: unknown instruction: FORM`.

use thiserror::Error;

use crate::shell::ShellError;

/// An error in a Dockerfile, located at a line of a named file.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{file}:{line}: {kind}")]
pub struct Error {
    /// The file name the Dockerfile was parsed under (as given by the caller).
    pub file: String,
    /// The first line (1-based) of the instruction or directive at fault.
    pub line: usize,
    /// The last line of that instruction (equal to `line` for one-line instructions).
    pub end_line: usize,
    /// What is wrong.
    pub kind: ErrorKind,
}

impl Error {
    /// An error at lines `line..=end_line` of `file`.
    pub fn new(file: impl Into<String>, line: usize, end_line: usize, kind: ErrorKind) -> Self {
        Error { file: file.into(), line, end_line: end_line.max(line), kind }
    }
}

/// What an [`Error`] is about.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ErrorKind {
    /// A word in instruction position that is no Dockerfile instruction.
    #[error("unknown instruction: {0}")]
    UnknownInstruction(String),
    /// A `--flag` the instruction does not take.
    #[error("unknown flag for {instruction}: {flag}")]
    UnknownFlag {
        /// The instruction, upper case.
        instruction: String,
        /// The flag as written (`--foo`).
        flag: String,
    },
    /// Malformed input: wrong argument count, bad flag value, bad directive, unterminated heredoc...
    #[error("{0}")]
    Syntax(String),
    /// Word expansion failed (bad `${...}`, unterminated quote, `${VAR?msg}`).
    #[error("{0}")]
    Expansion(#[from] ShellError),
    /// A stage reference that cannot be resolved (unknown target, forward or circular reference).
    #[error("{0}")]
    Stage(String),
}

impl ErrorKind {
    /// A [`ErrorKind::Syntax`] with this message.
    pub fn syntax(msg: impl Into<String>) -> Self {
        ErrorKind::Syntax(msg.into())
    }
}

/// Shorthand for results in this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
