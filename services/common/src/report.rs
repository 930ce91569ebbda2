//! An error with every cause it carries, for the one place that handles
//! it (a log line, a status message). Errors keep their causes as
//! `source()`s and say only their own part in `Display`; this walks them.

use std::error::Error;
use std::fmt;

/// Displays an error and its sources: `outer: inner: root`.
#[derive(Clone, Copy)]
pub struct Report<'a>(pub &'a (dyn Error + 'static));

impl fmt::Display for Report<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        let mut last = self.0.to_string();
        while let Some(cause) = source {
            let text = cause.to_string();
            // `#[error(transparent)]` and wrappers that print their cause
            // would repeat it.
            if !last.ends_with(&text) {
                write!(f, ": {text}")?;
            }
            last = text;
            source = cause.source();
        }
        Ok(())
    }
}

impl fmt::Debug for Report<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("mark store (redis)")]
    struct Outer(#[source] std::io::Error);

    #[derive(Debug, thiserror::Error)]
    enum Watch {
        #[error(transparent)]
        Marks(#[from] Outer),
    }

    #[test]
    fn every_cause_is_shown_once() {
        let err = Watch::Marks(Outer(std::io::Error::other("connection refused")));
        assert_eq!(
            Report(&err).to_string(),
            "mark store (redis): connection refused"
        );
        let plain = std::io::Error::other("alone");
        assert_eq!(Report(&plain).to_string(), "alone");
    }
}
