//! [`Secret`]: a configuration value that must never reach a log. Both
//! planes hold theirs in it (the JWT secret, a database or Redis URL that may
//! carry a password), so redaction is written once.

use std::fmt;

/// `Debug` prints `<redacted>`; the value is read only where it is used,
/// through [`Secret::expose`]. No `Display`, so `{}` cannot leak it either.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The value itself, for the one call that needs it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_value() {
        let s = Secret::new("redis://:pw@host");
        assert_eq!(format!("{s:?}"), "<redacted>");
        assert_eq!(format!("{:?}", Some(&s)), "Some(<redacted>)");
        assert_eq!(s.expose(), "redis://:pw@host");
    }
}
