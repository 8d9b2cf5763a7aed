//! Context and alias names: the one parsing rule both planes use.
//!
//! A name is 1 to [`MAX_CONTEXT_LEN`] / [`MAX_ALIAS_LEN`] bytes of the
//! alphabet `a-z 0-9 - _ .`, starting with a letter or digit, with no `..`.
//! ASCII upper-case letters are folded to lower case, so `User-Profile` and
//! `user-profile` are the same alias (the control plane records such a
//! collision as a conflict). Everything else — whitespace, control
//! characters, `/`, `%`, non-ASCII — is refused, which keeps names safe in
//! URL paths, Redis keys, log lines and file names without escaping.

use std::borrow::Cow;
use std::fmt;

use serde::{Deserialize, Serialize};

/// Longest context name, in bytes (the seed's `VARCHAR(50)`).
pub const MAX_CONTEXT_LEN: usize = 50;
/// Longest alias name, in bytes (the seed's `VARCHAR(255)`).
pub const MAX_ALIAS_LEN: usize = 255;

/// Why a name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("name is empty")]
    Empty,
    #[error("name is {len} bytes long; at most {max} are allowed")]
    TooLong { len: usize, max: usize },
    #[error("name contains whitespace")]
    Whitespace,
    #[error("name contains a control character")]
    ControlCharacter,
    #[error("name contains '/'")]
    Slash,
    #[error("name contains '..'")]
    DotDot,
    #[error("name must start with a letter or digit")]
    BadStart,
    #[error("name contains {0:?}; allowed are a-z, 0-9, '-', '_' and '.'")]
    InvalidCharacter(char),
}

/// Checks `raw` against the name rule and returns it normalised (lower
/// case). Borrows when `raw` is already normal, so the edge's request path
/// does not allocate for well-formed names.
pub fn normalize(raw: &str, max: usize) -> Result<Cow<'_, str>, NameError> {
    if raw.is_empty() {
        return Err(NameError::Empty);
    }
    if raw.len() > max {
        return Err(NameError::TooLong { len: raw.len(), max });
    }
    let bytes = raw.as_bytes();
    if !bytes[0].is_ascii_alphanumeric() {
        return Err(classify(raw).unwrap_or(NameError::BadStart));
    }
    let mut upper = false;
    let mut prev_dot = false;
    for &b in bytes {
        match b {
            b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' => prev_dot = false,
            b'A'..=b'Z' => {
                upper = true;
                prev_dot = false;
            }
            b'.' => {
                if prev_dot {
                    return Err(NameError::DotDot);
                }
                prev_dot = true;
            }
            _ => return Err(classify(raw).unwrap_or(NameError::BadStart)),
        }
    }
    if upper { Ok(Cow::Owned(raw.to_ascii_lowercase())) } else { Ok(Cow::Borrowed(raw)) }
}

/// Names the first offending character of a name known to be bad, in the
/// order a user would want to hear about it.
fn classify(raw: &str) -> Option<NameError> {
    let c = raw.chars().find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))?;
    Some(if c.is_whitespace() {
        NameError::Whitespace
    } else if c.is_control() {
        NameError::ControlCharacter
    } else if c == '/' {
        NameError::Slash
    } else {
        NameError::InvalidCharacter(c)
    })
}

macro_rules! name_type {
    ($(#[$doc:meta])* $name:ident, $max:expr) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// Longest accepted name, in bytes.
            pub const MAX_LEN: usize = $max;

            /// Parses and normalises a name; the only way to make one.
            pub fn parse(raw: &str) -> Result<Self, NameError> {
                normalize(raw, $max).map(|n| Self(n.into_owned()))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = NameError;
            fn try_from(raw: String) -> Result<Self, NameError> {
                match normalize(&raw, $max)? {
                    Cow::Borrowed(_) => Ok(Self(raw)),
                    Cow::Owned(n) => Ok(Self(n)),
                }
            }
        }

        impl std::str::FromStr for $name {
            type Err = NameError;
            fn from_str(raw: &str) -> Result<Self, NameError> {
                Self::parse(raw)
            }
        }

        impl From<$name> for String {
            fn from(n: $name) -> String {
                n.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Debug::fmt(&self.0, f)
            }
        }
    };
}

name_type!(
    /// A context (`frontend`, `backend`, `system`, ...).
    Context,
    MAX_CONTEXT_LEN
);
name_type!(
    /// An alias name within a context (`user-profile`).
    AliasName,
    MAX_ALIAS_LEN
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_and_folds_case() {
        assert_eq!(AliasName::parse("user-profile").unwrap().as_str(), "user-profile");
        assert_eq!(AliasName::parse("User_Profile.v2").unwrap().as_str(), "user_profile.v2");
        assert!(matches!(normalize("abc", 10), Ok(Cow::Borrowed("abc"))));
    }

    #[test]
    fn refuses_each_bad_shape_with_its_reason() {
        let cases = [
            ("", NameError::Empty),
            ("a b", NameError::Whitespace),
            ("a\tb", NameError::Whitespace),
            ("a\u{1}b", NameError::ControlCharacter),
            ("a/b", NameError::Slash),
            ("a..b", NameError::DotDot),
            (".a", NameError::BadStart),
            ("-a", NameError::BadStart),
            ("a%2f", NameError::InvalidCharacter('%')),
            ("é", NameError::InvalidCharacter('é')),
        ];
        for (raw, want) in cases {
            assert_eq!(AliasName::parse(raw).unwrap_err(), want, "{raw:?}");
        }
        let long = "a".repeat(MAX_CONTEXT_LEN + 1);
        assert_eq!(
            Context::parse(&long).unwrap_err(),
            NameError::TooLong { len: MAX_CONTEXT_LEN + 1, max: MAX_CONTEXT_LEN }
        );
        assert!(AliasName::parse(&long).is_ok());
    }

    #[test]
    fn deserialising_applies_the_rule() {
        let ok: Context = serde_json::from_str("\"Frontend\"").unwrap();
        assert_eq!(ok.as_str(), "frontend");
        assert!(serde_json::from_str::<Context>("\"front end\"").is_err());
    }
}
