//! The loader's error: what went wrong, where (file:line:col) and at which key path.

use std::fmt;

use crate::yaml::Span;

/// A loading error. Displayed as `file:line:col: key.path: message`.
#[derive(Debug, Clone, PartialEq)]
pub struct Error {
    /// Where in which file, when known.
    pub span: Option<Span>,
    /// The key path, e.g. `services.web.ports[1]`, when known.
    pub path: Option<String>,
    /// What is wrong, lower-case, no trailing period.
    pub message: String,
    /// A suggestion for the user, if there is one.
    pub hint: Option<String>,
}

impl Error {
    /// An error at a position.
    pub fn at(span: Span, path: Option<String>, message: impl Into<String>) -> Error {
        Error { span: Some(span), path, message: message.into(), hint: None }
    }

    /// An error with no position (command-line options, missing files).
    pub fn msg(message: impl Into<String>) -> Error {
        Error { span: None, path: None, message: message.into(), hint: None }
    }

    /// Adds a hint.
    pub fn with_hint(mut self, hint: impl Into<String>) -> Error {
        self.hint = Some(hint.into());
        self
    }

    /// Sets the key path when none is set yet.
    pub fn with_path(mut self, path: &str) -> Error {
        if self.path.is_none() && !path.is_empty() {
            self.path = Some(path.to_string());
        }
        self
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(span) = &self.span {
            write!(f, "{span}: ")?;
        }
        if let Some(path) = &self.path {
            write!(f, "{path}: ")?;
        }
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

/// The loader's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
