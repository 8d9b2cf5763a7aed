//! The credential set this edge holds — revoked token ids, revoked
//! subjects, API-key grants by digest — as the signed stream delivers it:
//! replaced by each snapshot, patched by each delta (both through
//! [`crate::state::State`], the one writer), indexed off the request path
//! and swapped in whole.
//!
//! Every change bumps a generation. The [`crate::auth::Authenticator`]
//! stamps what it caches with the generation it checked against and trusts
//! an entry only while the generation is unchanged: a revocation applied
//! here is refused from the next request on, cache or not.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use arc_swap::{ArcSwap, Guard};
use foldhash::fast::RandomState;
use nexus_protocol::credentials::{Cutoff, Revoked, RevokedSubject};
use nexus_protocol::{Claims, CredentialChange, Credentials, KeyDigest, KeyGrant};

/// The set, indexed for lookups.
#[derive(Debug, Default)]
pub struct CredentialIndex {
    /// Revoked `jti` → until when.
    tokens: HashMap<Box<str>, i64, RandomState>,
    /// Revoked subject → the cutoff its tokens are held to (the rule is
    /// the protocol's, so this edge and the control plane agree).
    subjects: HashMap<Box<str>, Cutoff, RandomState>,
    keys: HashMap<KeyDigest, KeyGrant, RandomState>,
    /// What the index was built from, for the next change.
    set: Credentials,
}

impl CredentialIndex {
    fn of(set: Credentials) -> Self {
        let tokens = set.revoked_tokens.iter().map(|t| (t.jti.as_str().into(), t.until)).collect();
        let subjects = set
            .revoked_subjects
            .iter()
            .map(|RevokedSubject { sub, before, .. }| (sub.as_str().into(), *before))
            .collect();
        let keys = set.api_keys.iter().map(|k| (k.digest, k.clone())).collect();
        Self { tokens, subjects, keys, set }
    }

    /// Whether verified `claims` are revoked.
    pub fn refuses(&self, claims: &Claims) -> Option<Revoked> {
        if claims.jti.as_deref().is_some_and(|j| self.tokens.contains_key(j)) {
            return Some(Revoked::Token);
        }
        self.subjects
            .get(claims.sub.as_str())
            .is_some_and(|before| before.refuses(claims.iat))
            .then_some(Revoked::Subject)
    }

    /// The grant of the key with this digest, if it is live at `now_s`.
    pub fn key(&self, digest: &KeyDigest, now_s: i64) -> Option<&KeyGrant> {
        self.keys.get(digest).filter(|k| k.live_at(now_s))
    }

    /// (revoked tokens, revoked subjects, API keys).
    pub fn counts(&self) -> (usize, usize, usize) {
        (self.tokens.len(), self.subjects.len(), self.keys.len())
    }
}

/// The current index and its generation.
#[derive(Debug)]
pub struct CredentialStore {
    current: ArcSwap<CredentialIndex>,
    generation: AtomicU64,
}

impl Default for CredentialStore {
    fn default() -> Self {
        Self::new()
    }
}

impl CredentialStore {
    pub fn new() -> Self {
        Self { current: ArcSwap::from_pointee(CredentialIndex::default()), generation: 0.into() }
    }

    /// The index now. Read the [`generation`](Self::generation) first:
    /// what is checked against this index is then stamped no newer than it.
    pub fn load(&self) -> Guard<Arc<CredentialIndex>> {
        self.current.load()
    }

    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Replaces the set (a snapshot), without what expired by `now_s`.
    pub fn install(&self, set: &Credentials, now_s: i64) {
        let mut set = set.clone();
        set.prune(now_s);
        if set == self.current.load().set {
            // The same set: nothing cached needs checking again.
            return;
        }
        self.swap(set);
    }

    /// Applies a delta's changes, in order.
    pub fn apply(&self, changes: &[CredentialChange], now_s: i64) {
        if changes.is_empty() {
            return;
        }
        let mut set = self.current.load().set.clone();
        for c in changes {
            set.apply(c);
        }
        set.prune(now_s);
        self.swap(set);
    }

    fn swap(&self, set: Credentials) {
        let index = CredentialIndex::of(set);
        let (tokens, subjects, keys) = index.counts();
        self.current.store(Arc::new(index));
        // After the store: a reader that sees the new generation loads the
        // new index (or a newer one).
        self.generation.fetch_add(1, Ordering::AcqRel);
        tracing::info!(
            revoked_tokens = tokens,
            revoked_subjects = subjects,
            api_keys = keys,
            "credentials changed"
        );
    }
}

#[cfg(test)]
mod tests {
    use nexus_protocol::credentials::RevokedToken;
    use nexus_protocol::{ContextScope, Role};

    use super::*;

    fn claims(sub: &str, iat: i64, jti: &str) -> Claims {
        Claims {
            sub: sub.into(),
            role: Role::Resolver,
            contexts: ContextScope::All,
            aud: nexus_protocol::AUDIENCE.into(),
            iat,
            exp: iat + 60,
            nbf: None,
            jti: Some(jti.into()),
            team: None,
        }
    }

    #[test]
    fn changes_bump_the_generation_and_expired_entries_go() {
        let store = CredentialStore::new();
        let g0 = store.generation();
        store.install(&Credentials::default(), 0);
        assert_eq!(store.generation(), g0, "the same set is no change");
        store.apply(
            &[
                CredentialChange::RevokeToken(RevokedToken { jti: "j".into(), until: 100 }),
                CredentialChange::RevokeSubject(RevokedSubject {
                    sub: "s".into(),
                    before: Cutoff::from_secs(50),
                    until: 200,
                }),
            ],
            10,
        );
        assert!(store.generation() > g0);
        let index = store.load();
        assert_eq!(index.refuses(&claims("x", 10, "j")), Some(Revoked::Token));
        assert_eq!(index.refuses(&claims("s", 49, "k")), Some(Revoked::Subject));
        assert_eq!(index.refuses(&claims("s", 50, "k")), None);
        let grant = KeyGrant {
            digest: [1; 32],
            name: "api_key:1:k".into(),
            role: Role::Resolver,
            contexts: ContextScope::All,
            expires_at: Some(300),
        };
        store.apply(&[CredentialChange::GrantKey(grant)], 150);
        let index = store.load();
        assert_eq!(index.counts(), (0, 1, 1), "the revoked jti outlived its token");
        assert!(index.key(&[1; 32], 299).is_some() && index.key(&[1; 32], 300).is_none());
    }
}
