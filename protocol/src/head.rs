//! The published head: `"{epoch}:{version}"` in ASCII. It is the value of
//! the `P:head` key and the head notice sent on the channel instead of a
//! delta too big for pub/sub. One parser, so both planes read it alike.
//!
//! The head key itself is unsigned (a cheap check). What an edge trusts
//! about the head's age is the leader's [`Statement`], signed and renewed
//! every few seconds.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The leader's signed statement "the head was `(epoch, version)` at
/// `issued_at_ms`", sealed as an envelope of kind
/// [`Kind::Statement`](crate::Kind) and renewed every few seconds even when
/// nothing changes. A Redis that keeps answering the same head (frozen, or
/// replaying old statements) cannot make it newer, so an edge can tell a
/// quiet registry from a freeze by the newest statement's age.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Statement {
    pub epoch: u64,
    pub version: u64,
    /// The leader's clock, Unix milliseconds.
    pub issued_at_ms: i64,
}

/// The newest published state, named by `(epoch, version)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Head {
    pub epoch: u64,
    pub version: u64,
}

/// Why a head was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeadError {
    #[error("head is not of the form \"epoch:version\"")]
    Malformed,
    #[error("head is longer than {MAX_HEAD_LEN} bytes")]
    TooLong,
}

/// Two u64 and a colon: anything longer is not a head.
pub const MAX_HEAD_LEN: usize = 41;

impl Head {
    /// Parses a head from raw bytes (a Redis value or a pub/sub message).
    pub fn parse(raw: &[u8]) -> Result<Self, HeadError> {
        if raw.len() > MAX_HEAD_LEN {
            return Err(HeadError::TooLong);
        }
        std::str::from_utf8(raw).map_err(|_| HeadError::Malformed)?.parse()
    }
}

impl FromStr for Head {
    type Err = HeadError;
    fn from_str(s: &str) -> Result<Self, HeadError> {
        if s.len() > MAX_HEAD_LEN {
            return Err(HeadError::TooLong);
        }
        let (epoch, version) = s.split_once(':').ok_or(HeadError::Malformed)?;
        let digits = |p: &str| {
            if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
                return Err(HeadError::Malformed);
            }
            p.parse::<u64>().map_err(|_| HeadError::Malformed)
        };
        Ok(Head { epoch: digits(epoch)?, version: digits(version)? })
    }
}

impl fmt::Display for Head {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.epoch, self.version)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_its_text() {
        let h = Head { epoch: u64::MAX, version: 42 };
        let text = h.to_string();
        assert_eq!(text, format!("{}:42", u64::MAX));
        assert_eq!(Head::parse(text.as_bytes()), Ok(h));
    }

    #[test]
    fn refuses_anything_else() {
        for bad in
            ["", "1", ":1", "1:", "1:2:3", "-1:2", "+1:2", " 1:2", "a:b", "1:99999999999999999999"]
        {
            assert!(Head::parse(bad.as_bytes()).is_err(), "{bad}");
        }
        assert_eq!(Head::parse(b"NXUS\x01\x00\x02"), Err(HeadError::Malformed));
        assert_eq!(Head::parse(&[b'1'; 100]), Err(HeadError::TooLong));
    }
}
