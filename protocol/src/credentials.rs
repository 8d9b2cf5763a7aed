//! What every edge checks besides a token's signature: revoked token ids,
//! revoked subjects and API-key grants (by digest only: the key itself
//! never leaves the control plane's answer to its creator).
//!
//! They travel the way aliases do, in the one signed stream: a snapshot
//! carries the whole [`Credentials`] set, a delta the [`CredentialChange`]s
//! committed in its versions. An entry is kept until what it refuses would
//! have expired anyway (`until`), then dropped by [`Credentials::prune`].
//! Times are Unix seconds, as in JWT claims.
//!
//! A subject revocation is an instant (microseconds, as the control plane
//! stores it) while a token's `iat` is a whole second, so the instant is
//! rounded once, here, into the [`Cutoff`] both planes compare with: the
//! control plane checks its own requests with it and ships it unchanged,
//! so no plane can round differently.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::token::{Claims, ContextScope, Role};

/// `nxk_` + base64url (no padding) of [`API_KEY_BYTES`] random bytes.
pub const API_KEY_PREFIX: &str = "nxk_";
pub const API_KEY_BYTES: usize = 32;

/// SHA-256 of an API key: all that is stored, and all that edges receive.
pub type KeyDigest = [u8; 32];

/// The digest of a well-formed API key; `None` for anything that is not
/// one (so garbage never reaches a lookup).
pub fn api_key_digest(key: &str) -> Option<KeyDigest> {
    let body = key.strip_prefix(API_KEY_PREFIX)?;
    if body.len() != 43 {
        return None;
    }
    let bytes = URL_SAFE_NO_PAD.decode(body).ok()?;
    (bytes.len() == API_KEY_BYTES).then(|| Sha256::digest(key.as_bytes()).into())
}

/// A token id that is refused until `until` (its latest possible `exp`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevokedToken {
    pub jti: String,
    pub until: i64,
}

/// Every token of `sub` issued before `before` is refused, until `until`
/// (when the last of them would have expired).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevokedSubject {
    pub sub: String,
    pub before: Cutoff,
    pub until: i64,
}

/// The first whole second whose tokens a subject revocation lets through:
/// the one rule, [`Cutoff::refuses`], on every plane. On the wire it is
/// the bare Unix second (`transparent`: the bytes of an `i64`).
///
/// A revocation at instant `T` refuses what was issued before `T`. A token
/// stamped `iat = n` was issued somewhere in `[n, n + 1)`; when `T` falls
/// inside that second the token may predate it, so it is refused: the
/// cutoff is `T` rounded *up* to the second, and `n < ceil(T)` is exactly
/// `n < T`. Nothing is lost by shipping seconds — no `iat` can tell two
/// instants of one second apart — and a token minted in the revocation's
/// own second is refused everywhere until the next second begins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Cutoff(i64);

impl Cutoff {
    /// The cutoff of a revocation at `instant`.
    pub fn at(instant: DateTime<Utc>) -> Self {
        Self(seconds_up(instant))
    }

    /// A cutoff already in whole seconds (a stored or shipped one).
    pub const fn from_secs(secs: i64) -> Self {
        Self(secs)
    }

    pub const fn as_secs(self) -> i64 {
        self.0
    }

    /// Whether a token issued at `iat` (Unix seconds) is refused.
    pub const fn refuses(self, iat: i64) -> bool {
        iat < self.0
    }
}

/// `t` in Unix seconds, rounded up: the first whole second not before it.
/// What a time that must not end early (a cutoff, a revocation's `until`)
/// becomes on the wire.
pub fn seconds_up(t: DateTime<Utc>) -> i64 {
    t.timestamp().saturating_add(i64::from(t.timestamp_subsec_nanos() > 0))
}

/// An API key as edges know it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyGrant {
    pub digest: KeyDigest,
    /// `api_key:<id>:<name>`, what logs and audit rows call it.
    pub name: String,
    pub role: Role,
    pub contexts: ContextScope,
    pub expires_at: Option<i64>,
}

impl KeyGrant {
    /// Whether the key is still good at `now`.
    pub fn live_at(&self, now: i64) -> bool {
        self.expires_at.is_none_or(|e| now < e)
    }
}

/// One committed change of the credential set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CredentialChange {
    RevokeToken(RevokedToken),
    RevokeSubject(RevokedSubject),
    GrantKey(KeyGrant),
    RevokeKey(KeyDigest),
}

/// The whole set at one version.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Credentials {
    pub revoked_tokens: Vec<RevokedToken>,
    pub revoked_subjects: Vec<RevokedSubject>,
    pub api_keys: Vec<KeyGrant>,
}

/// Why a verified token is refused anyway.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Revoked {
    #[error("token has been revoked")]
    Token,
    #[error("tokens of this subject issued before a revocation are refused")]
    Subject,
}

impl Credentials {
    /// Entries, for decode limits.
    pub fn len(&self) -> usize {
        self.revoked_tokens.len() + self.revoked_subjects.len() + self.api_keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Applies one change: a later revocation of the same id or subject
    /// replaces the earlier (the subject's `before` only moves forward).
    pub fn apply(&mut self, change: &CredentialChange) {
        match change {
            CredentialChange::RevokeToken(t) => {
                self.revoked_tokens.retain(|o| o.jti != t.jti);
                self.revoked_tokens.push(t.clone());
            }
            CredentialChange::RevokeSubject(s) => {
                let mut next = s.clone();
                if let Some(old) = self.revoked_subjects.iter().find(|o| o.sub == s.sub) {
                    next.before = next.before.max(old.before);
                    next.until = next.until.max(old.until);
                }
                self.revoked_subjects.retain(|o| o.sub != s.sub);
                self.revoked_subjects.push(next);
            }
            CredentialChange::GrantKey(k) => {
                self.api_keys.retain(|o| o.digest != k.digest);
                self.api_keys.push(k.clone());
            }
            CredentialChange::RevokeKey(d) => self.api_keys.retain(|o| &o.digest != d),
        }
    }

    /// Drops what can no longer refuse or grant anything at `now`.
    pub fn prune(&mut self, now: i64) {
        self.revoked_tokens.retain(|t| t.until > now);
        self.revoked_subjects.retain(|s| s.until > now);
        self.api_keys.retain(|k| k.live_at(now));
    }

    /// Whether verified `claims` are refused by a revocation (a linear
    /// scan: the edge indexes the set instead, see its `credentials`).
    pub fn refuses(&self, claims: &Claims) -> Option<Revoked> {
        if let Some(jti) = &claims.jti
            && self.revoked_tokens.iter().any(|t| &t.jti == jti)
        {
            return Some(Revoked::Token);
        }
        self.revoked_subjects
            .iter()
            .any(|s| s.sub == claims.sub && s.before.refuses(claims.iat))
            .then_some(Revoked::Subject)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant(d: u8, expires_at: Option<i64>) -> KeyGrant {
        KeyGrant {
            digest: [d; 32],
            name: format!("api_key:{d}:k"),
            role: Role::Resolver,
            contexts: ContextScope::All,
            expires_at,
        }
    }

    #[test]
    fn changes_apply_and_expired_entries_go() {
        let mut c = Credentials::default();
        c.apply(&CredentialChange::RevokeToken(RevokedToken { jti: "a".into(), until: 100 }));
        c.apply(&CredentialChange::RevokeToken(RevokedToken { jti: "a".into(), until: 200 }));
        let sub = |before, until| RevokedSubject {
            sub: "s".into(),
            before: Cutoff::from_secs(before),
            until,
        };
        c.apply(&CredentialChange::RevokeSubject(sub(50, 150)));
        c.apply(&CredentialChange::RevokeSubject(sub(40, 300)));
        c.apply(&CredentialChange::GrantKey(grant(1, None)));
        c.apply(&CredentialChange::GrantKey(grant(2, Some(120))));
        c.apply(&CredentialChange::GrantKey(grant(3, None)));
        c.apply(&CredentialChange::RevokeKey([3; 32]));
        assert_eq!(c.revoked_tokens, [RevokedToken { jti: "a".into(), until: 200 }]);
        assert_eq!(c.revoked_subjects, [sub(50, 300)]);
        assert_eq!(c.api_keys, [grant(1, None), grant(2, Some(120))]);
        c.prune(150);
        assert_eq!(c.len(), 3);
        assert_eq!(c.api_keys, [grant(1, None)]);
        c.prune(1000);
        assert_eq!(c.len(), 1);
    }

    #[test]
    fn revocations_refuse_by_id_or_by_subject_before() {
        let mut c = Credentials::default();
        c.apply(&CredentialChange::RevokeToken(RevokedToken { jti: "j".into(), until: 9 }));
        c.apply(&CredentialChange::RevokeSubject(RevokedSubject {
            sub: "s".into(),
            before: Cutoff::from_secs(100),
            until: 9,
        }));
        let claims = |sub: &str, iat, jti: Option<&str>| Claims {
            sub: sub.into(),
            role: Role::Admin,
            contexts: ContextScope::All,
            aud: crate::AUDIENCE.into(),
            iat,
            exp: iat + 10,
            nbf: None,
            jti: jti.map(Into::into),
            team: None,
        };
        assert_eq!(c.refuses(&claims("x", 0, Some("j"))), Some(Revoked::Token));
        assert_eq!(c.refuses(&claims("s", 99, None)), Some(Revoked::Subject));
        assert_eq!(c.refuses(&claims("s", 100, None)), None);
        assert_eq!(c.refuses(&claims("x", 0, Some("k"))), None);
    }

    #[test]
    fn a_revocation_refuses_what_its_own_second_issued() {
        let at = |s: i64, us: u32| DateTime::from_timestamp(s, us * 1_000).unwrap();
        // Inside second 100: tokens of second 100 may predate it.
        let mid = Cutoff::at(at(100, 250_000));
        assert_eq!(mid.as_secs(), 101);
        assert!(mid.refuses(99) && mid.refuses(100) && !mid.refuses(101));
        // On the second exactly: what second 100 issued came after it.
        let edge = Cutoff::at(at(100, 0));
        assert_eq!(edge.as_secs(), 100);
        assert!(edge.refuses(99) && !edge.refuses(100));
        // One microsecond in is already inside the second.
        assert!(Cutoff::at(at(100, 1)).refuses(100));
        assert_eq!(seconds_up(at(-2, 500_000)), -1, "rounded up before 1970 too");
        assert_eq!(seconds_up(DateTime::<Utc>::MAX_UTC), DateTime::<Utc>::MAX_UTC.timestamp() + 1);
    }

    #[test]
    fn a_cutoff_is_an_i64_on_the_wire() {
        let subject = |before| RevokedSubject { sub: "s".into(), before, until: 7 };
        let config = bincode::config::standard();
        let ours = bincode::serde::encode_to_vec(subject(Cutoff::from_secs(-5)), config).unwrap();
        #[derive(Serialize)]
        struct Bare<'a> {
            sub: &'a str,
            before: i64,
            until: i64,
        }
        let bare = bincode::serde::encode_to_vec(Bare { sub: "s", before: -5, until: 7 }, config);
        assert_eq!(ours, bare.unwrap());
        assert_eq!(serde_json::to_value(Cutoff::from_secs(3)).unwrap(), serde_json::json!(3));
    }

    #[test]
    fn only_well_formed_keys_have_a_digest() {
        let key = format!("{API_KEY_PREFIX}{}", URL_SAFE_NO_PAD.encode([7u8; 32]));
        let d = api_key_digest(&key).unwrap();
        assert_eq!(d.to_vec(), Sha256::digest(key.as_bytes()).to_vec());
        assert_eq!(api_key_digest("nxk_short"), None);
        assert_eq!(api_key_digest(&key[1..]), None);
        assert_eq!(api_key_digest(&format!("nxk_{}", "!".repeat(43))), None);
    }
}
