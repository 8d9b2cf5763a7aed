//! What every edge checks besides a token's signature: revoked token ids,
//! revoked subjects and API-key grants (by digest only: the key itself
//! never leaves the control plane's answer to its creator).
//!
//! They travel the way aliases do, in the one signed stream: a snapshot
//! carries the whole [`Credentials`] set, a delta the [`CredentialChange`]s
//! committed in its versions. An entry is kept until what it refuses would
//! have expired anyway (`until`), then dropped by [`Credentials::prune`].
//! Times are Unix seconds, as in JWT claims.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
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
    pub before: i64,
    pub until: i64,
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
            .any(|s| s.sub == claims.sub && claims.iat < s.before)
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
        let sub = |before, until| RevokedSubject { sub: "s".into(), before, until };
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
            before: 100,
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
    fn only_well_formed_keys_have_a_digest() {
        let key = format!("{API_KEY_PREFIX}{}", URL_SAFE_NO_PAD.encode([7u8; 32]));
        let d = api_key_digest(&key).unwrap();
        assert_eq!(d.to_vec(), Sha256::digest(key.as_bytes()).to_vec());
        assert_eq!(api_key_digest("nxk_short"), None);
        assert_eq!(api_key_digest(&key[1..]), None);
        assert_eq!(api_key_digest(&format!("nxk_{}", "!".repeat(43))), None);
    }
}
