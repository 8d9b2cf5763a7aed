//! The alias record as both planes see it.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::names::{AliasName, Context};

/// Longest canonical endpoint, in bytes. Governance may set a lower limit;
/// this one only bounds what may travel between the planes.
pub const MAX_CANONICAL_LEN: usize = 2048;
/// Longest description, in bytes.
pub const MAX_DESCRIPTION_LEN: usize = 4096;

/// Why a canonical endpoint was refused at the protocol level.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CanonicalError {
    #[error("canonical is empty")]
    Empty,
    #[error("canonical is {len} bytes long; at most {max} are allowed")]
    TooLong { len: usize, max: usize },
    #[error("canonical contains whitespace or a control character")]
    Unprintable,
}

/// The endpoint an alias resolves to. Printable, bounded, never empty;
/// which schemes and hosts are allowed is a governance decision.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Canonical(String);

impl Canonical {
    pub fn parse(raw: &str) -> Result<Self, CanonicalError> {
        Self::try_from(raw.to_owned())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Canonical {
    type Error = CanonicalError;
    fn try_from(raw: String) -> Result<Self, CanonicalError> {
        if raw.is_empty() {
            return Err(CanonicalError::Empty);
        }
        if raw.len() > MAX_CANONICAL_LEN {
            return Err(CanonicalError::TooLong { len: raw.len(), max: MAX_CANONICAL_LEN });
        }
        if raw.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(CanonicalError::Unprintable);
        }
        Ok(Self(raw))
    }
}

impl From<Canonical> for String {
    fn from(c: Canonical) -> String {
        c.0
    }
}

impl fmt::Display for Canonical {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Canonical {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

/// Where an alias lives: its context and its name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct AliasKey {
    pub context: Context,
    pub alias: AliasName,
}

/// One alias as it travels to the edges. Times are Unix milliseconds (UTC),
/// which keeps the wire format free of any date library.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AliasRecord {
    pub id: i64,
    pub context: Context,
    pub alias: AliasName,
    pub canonical: Canonical,
    pub description: Option<String>,
    pub expires_at_ms: Option<i64>,
    pub is_active: bool,
    /// Registry version of the last change to this alias.
    pub version: u64,
    pub updated_at_ms: i64,
}

impl AliasRecord {
    pub fn key(&self) -> AliasKey {
        AliasKey { context: self.context.clone(), alias: self.alias.clone() }
    }

    /// Whether the alias resolves at `now_ms`: active and not yet expired.
    pub fn is_live_at(&self, now_ms: i64) -> bool {
        self.is_active && self.expires_at_ms.is_none_or(|exp| now_ms < exp)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_rule() {
        assert!(Canonical::parse("https://api.nexus.com/v1/users/profile").is_ok());
        assert_eq!(Canonical::parse("").unwrap_err(), CanonicalError::Empty);
        assert_eq!(Canonical::parse("https://a b").unwrap_err(), CanonicalError::Unprintable);
        assert!(matches!(
            Canonical::parse(&"a".repeat(MAX_CANONICAL_LEN + 1)),
            Err(CanonicalError::TooLong { .. })
        ));
    }

    #[test]
    fn liveness_checks_activity_and_expiry() {
        let mut r = AliasRecord {
            id: 1,
            context: Context::parse("frontend").unwrap(),
            alias: AliasName::parse("a").unwrap(),
            canonical: Canonical::parse("https://x").unwrap(),
            description: None,
            expires_at_ms: Some(1_000),
            is_active: true,
            version: 1,
            updated_at_ms: 0,
        };
        assert!(r.is_live_at(999));
        assert!(!r.is_live_at(1_000));
        r.expires_at_ms = None;
        assert!(r.is_live_at(i64::MAX));
        r.is_active = false;
        assert!(!r.is_live_at(0));
    }
}
