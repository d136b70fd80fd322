//! The one error a request can fail parsing or validation with.

use std::fmt;

/// What is wrong with a request, and where: the JSON path of the field
/// (`render_recipients[3].profile_id`) and, for malformed JSON, the line and
/// column.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct RequestError {
    path: String,
    message: String,
    position: Option<(usize, usize)>,
}

impl RequestError {
    pub(crate) fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            message: message.into(),
            position: None,
        }
    }

    pub(crate) fn from_json(error: serde_path_to_error::Error<serde_json::Error>) -> Self {
        let path = error.path().to_string();
        let mut this = Self::from_trailing(error.into_inner());
        this.path = if path == "." { String::new() } else { path };
        this
    }

    /// An error from the JSON layer alone (e.g. trailing characters).
    pub(crate) fn from_trailing(inner: serde_json::Error) -> Self {
        let position = (inner.line() > 0).then(|| (inner.line(), inner.column()));
        // serde_json appends the position to its message; it is kept apart here.
        let mut message = inner.to_string();
        if let Some((line, column)) = position {
            let suffix = format!(" at line {line} column {column}");
            if message.ends_with(&suffix) {
                message.truncate(message.len() - suffix.len());
            }
        }
        Self {
            path: String::new(),
            message,
            position,
        }
    }

    /// JSON path of the offending field; empty when the request as a whole is at fault.
    pub fn path(&self) -> &str {
        &self.path
    }

    pub fn message(&self) -> &str {
        &self.message
    }

    /// Line and column (1-based) in the JSON document, when known.
    pub fn position(&self) -> Option<(usize, usize)> {
        self.position
    }
}

impl fmt::Display for RequestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.path.is_empty() {
            write!(f, "{}: ", self.path)?;
        }
        f.write_str(&self.message)?;
        if let Some((line, column)) = self.position {
            write!(f, " (line {line}, column {column})")?;
        }
        Ok(())
    }
}
