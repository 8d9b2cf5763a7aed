//! Snapshots and deltas: the two things the control plane publishes.
//!
//! Every registry state is named by `(epoch, version)`. The version grows by
//! one with each committed change and never repeats; the epoch changes when
//! history may have forked (a restored database), and an edge that sees a new
//! epoch throws its state away and takes a fresh snapshot.

use serde::{Deserialize, Serialize};

use crate::credentials::{CredentialChange, Credentials};
use crate::names::Context;
use crate::record::{AliasKey, AliasRecord};

/// Which contexts exist: what `unknown_context` (400) is decided on, on
/// every plane. A context exists because it is configured, not because an
/// alias happens to be in it, so a configured context without aliases is a
/// 404 and a dropped context a 400 everywhere.
///
/// Not a bare list: governance without `strict_contexts` knows every
/// context, which no finite list can say.
///
/// Decoding goes through [`KnownContexts::only`], so a list from the wire is
/// sorted and deduplicated like one built here, whatever order it came in
/// ([`KnownContexts::knows`] relies on it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", from = "Wire")]
pub enum KnownContexts {
    /// Every well-formed context exists.
    Any,
    /// Only these, sorted, without duplicates.
    Only(Vec<Context>),
}

/// [`KnownContexts`] as encoded: the same variants, in the same order.
#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum Wire {
    Any,
    Only(Vec<Context>),
}

impl From<Wire> for KnownContexts {
    fn from(w: Wire) -> Self {
        match w {
            Wire::Any => Self::Any,
            Wire::Only(v) => Self::only(v),
        }
    }
}

impl KnownContexts {
    /// The set of `contexts`, sorted and deduplicated so the same set always
    /// encodes to the same bytes.
    pub fn only(contexts: impl IntoIterator<Item = Context>) -> Self {
        let mut v: Vec<Context> = contexts.into_iter().collect();
        v.sort_unstable();
        v.dedup();
        Self::Only(v)
    }

    /// The contexts that hold one of `records`: the rule where no
    /// governance configures any (an edge serving an aliases file).
    pub fn of_records(records: &[AliasRecord]) -> Self {
        Self::only(records.iter().map(|r| r.context.clone()))
    }

    /// Whether `context` exists (a binary search; edges build a hashed set
    /// from this once per state).
    pub fn knows(&self, context: &Context) -> bool {
        match self {
            Self::Any => true,
            Self::Only(v) => v.binary_search(context).is_ok(),
        }
    }

    /// Entries in the list (0 for [`KnownContexts::Any`]), for decode limits.
    pub fn len(&self) -> usize {
        match self {
            Self::Any => 0,
            Self::Only(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The whole registry at one version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    pub epoch: u64,
    pub version: u64,
    /// When the control plane built it (Unix ms).
    pub created_at_ms: i64,
    /// Set by the control plane when a large shrink is deliberate (a bulk
    /// deactivation, say); edges refuse an unexplained one.
    pub intended_shrink: bool,
    pub records: Vec<AliasRecord>,
    /// The contexts configured at this version.
    pub contexts: KnownContexts,
    /// Revocations and API-key grants in force at this version (format 3).
    pub credentials: Credentials,
}

/// The changes that take a registry from `from_version` to `to_version`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delta {
    pub epoch: u64,
    pub from_version: u64,
    pub to_version: u64,
    /// Commit time of the last change in the delta (Unix ms), so edges can
    /// measure commit→applied lag.
    pub committed_at_ms: i64,
    /// Records created or changed (a deactivation is an upsert with
    /// `is_active: false`).
    pub upserts: Vec<AliasRecord>,
    /// Records gone from the registry altogether.
    pub removals: Vec<AliasKey>,
    /// The contexts configured at `to_version`, when they changed within
    /// the delta (a replacement, not a patch); `None`: unchanged.
    pub contexts: Option<KnownContexts>,
    /// Credential changes committed within the delta, in version order
    /// (format 3).
    pub credentials: Vec<CredentialChange>,
}

/// Where a delta stands relative to an edge at `(epoch, version)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeltaFit {
    /// `from_version` is the edge's version: apply it.
    Next,
    /// Already applied (or older): ignore it.
    Stale,
    /// Something is missing in between: catch up from the ring or snapshot.
    Gap,
    /// Another epoch: take a fresh snapshot.
    OtherEpoch,
}

impl Delta {
    /// How this delta fits an edge that holds `(epoch, version)`.
    pub fn fit(&self, epoch: u64, version: u64) -> DeltaFit {
        if self.epoch != epoch {
            DeltaFit::OtherEpoch
        } else if self.to_version <= version {
            DeltaFit::Stale
        } else if self.from_version == version {
            DeltaFit::Next
        } else {
            DeltaFit::Gap
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_list_from_the_wire_is_sorted_and_deduplicated() {
        let c = |n: &str| Context::parse(n).unwrap();
        // Encoded as another build (or a forger) might: unsorted, repeated.
        let raw = KnownContexts::Only(vec![c("system"), c("backend"), c("system")]);
        let config = bincode::config::standard();
        let bytes = bincode::serde::encode_to_vec(&raw, config).unwrap();
        let (back, _): (KnownContexts, _) =
            bincode::serde::decode_from_slice(&bytes, config).unwrap();
        assert_eq!(back, KnownContexts::only([c("backend"), c("system")]));
        assert!(back.knows(&c("system")) && back.knows(&c("backend")));
        assert!(!back.knows(&c("frontend")));
    }

    fn delta(epoch: u64, from: u64, to: u64) -> Delta {
        Delta {
            epoch,
            from_version: from,
            to_version: to,
            committed_at_ms: 0,
            upserts: vec![],
            removals: vec![],
            contexts: None,
            credentials: vec![],
        }
    }

    #[test]
    fn fit_orders_versions() {
        assert_eq!(delta(1, 5, 6).fit(1, 5), DeltaFit::Next);
        assert_eq!(delta(1, 4, 5).fit(1, 5), DeltaFit::Stale);
        assert_eq!(delta(1, 3, 4).fit(1, 5), DeltaFit::Stale);
        assert_eq!(delta(1, 6, 7).fit(1, 5), DeltaFit::Gap);
        assert_eq!(delta(2, 5, 6).fit(1, 5), DeltaFit::OtherEpoch);
    }

    #[test]
    fn known_contexts_are_a_sorted_set() {
        let c = |s: &str| Context::parse(s).unwrap();
        let only = KnownContexts::only([c("system"), c("backend"), c("system")]);
        assert_eq!(only, KnownContexts::Only(vec![c("backend"), c("system")]));
        assert!(only.knows(&c("backend")) && !only.knows(&c("frontend")));
        assert!(KnownContexts::Any.knows(&c("frontend")));
        assert!(KnownContexts::only([]).is_empty());
    }
}
