//! Values on the command line that are more than strings. Each parses
//! into what the API's request body holds, accepting exactly what the
//! API's own deserialiser accepts (chrono's `FromStr` is what its serde
//! uses; [`ContextScope`]'s `TryFrom` is what its serde uses).

use std::str::FromStr;

use chrono::{DateTime, Utc};
use nexus_protocol::{ContextScope, NameError};

/// `alias update --expires-at`: a time, or `none` to clear it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Expiry {
    Clear,
    At(DateTime<Utc>),
}

impl Expiry {
    /// As the update body's `expires_at` holds it when present: `None`
    /// (sent as `null`) clears.
    pub(crate) fn at(self) -> Option<DateTime<Utc>> {
        match self {
            Expiry::Clear => None,
            Expiry::At(t) => Some(t),
        }
    }
}

impl FromStr for Expiry {
    type Err = chrono::ParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "none" => Ok(Expiry::Clear),
            t => t.parse().map(Expiry::At),
        }
    }
}

/// `keys create --contexts`: comma-separated contexts, or `*`.
pub(crate) fn scope(raw: &str) -> Result<ContextScope, NameError> {
    ContextScope::try_from(raw.split(',').map(|c| c.trim().to_owned()).collect::<Vec<_>>())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_is_a_time_or_none() {
        assert_eq!("none".parse(), Ok(Expiry::Clear));
        let at: Expiry = "2027-01-01T02:00:00+02:00".parse().unwrap();
        assert_eq!(at.at().map(|t| t.to_rfc3339()), Some("2027-01-01T00:00:00+00:00".into()));
        assert!("tomorrow".parse::<Expiry>().is_err());
    }

    #[test]
    fn scope_is_a_list_or_everything() {
        assert_eq!(scope("*"), Ok(ContextScope::All));
        assert_eq!(
            Vec::<String>::from(scope("frontend, backend").unwrap()),
            ["frontend", "backend"]
        );
        assert!(scope("").is_err());
    }
}
