//! How an error is written to a log: its message and every `source()`
//! below it, on one line. Logs get the whole chain; client bodies never do
//! (see `api::error`).

use std::error::Error;
use std::fmt;

/// `Display` of an error and its sources, joined by `": "`.
///
/// A source whose text its parent's message already ends with is not
/// written again: several libraries (tokio-postgres among them) put their
/// cause into their own message *and* return it from `source()`.
#[derive(Clone, Copy)]
pub(crate) struct Chain<'a>(pub &'a (dyn Error + 'static));

impl fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut shown = self.0.to_string();
        f.write_str(&shown)?;
        let mut next = self.0.source();
        while let Some(e) = next {
            let text = e.to_string();
            if !text.is_empty() && !shown.ends_with(&text) {
                write!(f, ": {text}")?;
            }
            shown = text;
            next = e.source();
        }
        Ok(())
    }
}

impl fmt::Debug for Chain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("outer")]
    struct Outer(#[source] Middle);

    #[derive(Debug, thiserror::Error)]
    #[error("middle: {0}")]
    struct Middle(#[source] std::io::Error);

    #[test]
    fn writes_every_source_once() {
        let e = Outer(Middle(std::io::Error::other("refused")));
        assert_eq!(Chain(&e).to_string(), "outer: middle: refused");
    }
}
