//! Turning outbox rows into signed deltas: pure, no I/O.
//!
//! Consecutive rows are packed into deltas of at most
//! [`Limits::max_message`] encoded bytes, so each fits a pub/sub message. A
//! batch whose deltas add up to more than [`Limits::max_burst`] is not sent
//! as deltas at all: the caller publishes a snapshot and a head notice
//! instead, which is what a big import should cost.

use nexus_protocol::envelope::{HEADER_LEN, encode_delta};
use nexus_protocol::signing::SigningKey;
use nexus_protocol::{AliasRecord, ContextScope, CredentialChange, Delta, KnownContexts};

use crate::store::changes::{ChangeOp, ChangeRow};

/// Size bounds on what goes through pub/sub.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest message on the channel (the contract's 64 KiB).
    pub(crate) max_message: usize,
    /// Most delta bytes one batch may publish before a snapshot is cheaper
    /// for everyone (and kinder to subscribers' output buffers).
    pub(crate) max_burst: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self { max_message: 64 << 10, max_burst: 256 << 10 }
    }
}

/// One signed delta envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedDelta {
    pub from_version: u64,
    pub to_version: u64,
    pub bytes: Vec<u8>,
}

/// What to do with a batch of rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Plan {
    /// Publish these, in order.
    Deltas(Vec<SealedDelta>),
    /// Too much for pub/sub: publish a snapshot and a head notice.
    TooBig { delta_bytes: usize },
    /// The rows do not continue `(epoch, version)`: another epoch, or a
    /// hole in the outbox. Only a snapshot can say what the state is.
    Discontinuous { expected: u64, found: u64, epoch: u64 },
}

/// An upper bound of a row's bincode size: strings plus generous room for
/// the varint integers and option tags, so a group never overshoots.
fn estimate(op: &ChangeOp) -> usize {
    match op {
        ChangeOp::Upsert(r) => {
            64 + r.context.as_str().len()
                + r.alias.as_str().len()
                + r.canonical.as_str().len()
                + r.description.as_ref().map_or(0, String::len)
        }
        ChangeOp::Remove(k) => 16 + k.context.as_str().len() + k.alias.as_str().len(),
        ChangeOp::Contexts(known) => match known {
            KnownContexts::Any => 16,
            KnownContexts::Only(v) => 16 + v.iter().map(|c| 8 + c.as_str().len()).sum::<usize>(),
        },
        ChangeOp::Credentials(c) => match c {
            CredentialChange::RevokeToken(t) => 32 + t.jti.len(),
            CredentialChange::RevokeSubject(s) => 40 + s.sub.len(),
            CredentialChange::GrantKey(k) => {
                96 + k.name.len()
                    + match &k.contexts {
                        ContextScope::All => 8,
                        ContextScope::Only(v) => v.iter().map(|c| 8 + c.as_str().len()).sum(),
                    }
            }
            CredentialChange::RevokeKey(_) => 48,
        },
    }
}

/// Room in a message for records, after the envelope and the delta's own
/// fields.
fn budget(limits: &Limits) -> usize {
    limits.max_message.saturating_sub(HEADER_LEN + 64)
}

/// Packs `rows`, which must continue `(epoch, after)`, into signed deltas.
pub(crate) fn plan(
    epoch: u64,
    after: u64,
    rows: &[ChangeRow],
    key: &SigningKey,
    limits: &Limits,
) -> Plan {
    for (expected, r) in (after + 1..).zip(rows) {
        if r.epoch != epoch || r.version != expected {
            return Plan::Discontinuous { expected, found: r.version, epoch: r.epoch };
        }
    }
    let room = budget(limits);
    let mut groups: Vec<&[ChangeRow]> = Vec::new();
    let (mut start, mut size) = (0, 0);
    for (i, r) in rows.iter().enumerate() {
        let s = estimate(&r.op);
        if i > start && size + s > room {
            groups.push(&rows[start..i]);
            (start, size) = (i, 0);
        }
        size += s;
        // Bail out before signing anything when the estimate alone says
        // the batch cannot go out as deltas.
        if groups.len() * room + size > limits.max_burst.saturating_mul(2) {
            return Plan::TooBig { delta_bytes: groups.len() * room + size };
        }
    }
    if start < rows.len() {
        groups.push(&rows[start..]);
    }
    let mut out = Vec::with_capacity(groups.len());
    let mut total = 0;
    for sealed in groups.into_iter().filter_map(|g| seal(epoch, g, key)) {
        total += sealed.bytes.len();
        out.push(sealed);
    }
    if total > limits.max_burst { Plan::TooBig { delta_bytes: total } } else { Plan::Deltas(out) }
}

fn seal(epoch: u64, rows: &[ChangeRow], key: &SigningKey) -> Option<SealedDelta> {
    let (first, last) = (rows.first()?, rows.last()?);
    let mut upserts: Vec<AliasRecord> = Vec::new();
    let mut removals = Vec::new();
    // A replacement set: the last one in the group is the one in force at
    // `to_version`. Context changes do not touch records, so applying it
    // after the group's records is the same state.
    let mut contexts = None;
    // Credential changes are applied in order, after the group's records
    // (they touch no record, so the state is the same).
    let mut credentials = Vec::new();
    for r in rows {
        match &r.op {
            ChangeOp::Upsert(rec) => upserts.push(rec.clone()),
            ChangeOp::Remove(k) => removals.push(k.clone()),
            ChangeOp::Contexts(known) => contexts = Some(known.clone()),
            ChangeOp::Credentials(c) => credentials.push(c.clone()),
        }
    }
    let delta = Delta {
        epoch,
        from_version: first.version - 1,
        to_version: last.version,
        committed_at_ms: last.committed_at_ms,
        upserts,
        removals,
        contexts,
        credentials,
    };
    Some(SealedDelta {
        from_version: delta.from_version,
        to_version: delta.to_version,
        bytes: encode_delta(&delta, Some(key)),
    })
}

#[cfg(test)]
mod tests {
    use nexus_protocol::envelope::decode_delta;
    use nexus_protocol::signing::dev_signing_key;
    use nexus_protocol::{AliasName, Canonical, Context};

    use super::*;

    fn row(version: u64, canonical_len: usize) -> ChangeRow {
        ChangeRow {
            version,
            epoch: 7,
            committed_at_ms: 1_000 + version as i64,
            op: ChangeOp::Upsert(AliasRecord {
                id: version as i64,
                context: Context::parse("frontend").unwrap(),
                alias: AliasName::parse(&format!("a-{version}")).unwrap(),
                canonical: Canonical::parse(&format!("https://x/{}", "p".repeat(canonical_len)))
                    .unwrap(),
                description: None,
                expires_at_ms: None,
                is_active: true,
                version,
                updated_at_ms: 0,
            }),
        }
    }

    fn deltas(plan: Plan) -> Vec<SealedDelta> {
        match plan {
            Plan::Deltas(d) => d,
            other => panic!("expected deltas, got {other:?}"),
        }
    }

    #[test]
    fn small_batch_is_one_signed_delta_continuing_the_version() {
        let rows: Vec<_> = (11..=13).map(|v| row(v, 10)).collect();
        let out = deltas(plan(7, 10, &rows, &dev_signing_key(), &Limits::default()));
        assert_eq!(out.len(), 1);
        let key = dev_signing_key().verifying_key();
        let (_, d) = decode_delta(&out[0].bytes, &nexus_protocol::Limits::DELTA, Some(&key))
            .expect("verifies");
        assert_eq!((d.epoch, d.from_version, d.to_version), (7, 10, 13));
        assert_eq!(d.committed_at_ms, 1_013);
        let versions: Vec<u64> = d.upserts.iter().map(|r| r.version).collect();
        assert_eq!(versions, [11, 12, 13]);
    }

    #[test]
    fn splits_into_contiguous_messages_under_the_limit() {
        // ~1 KiB rows, 150 of them: three or more 64 KiB messages.
        let rows: Vec<_> = (1..=150).map(|v| row(v, 1_000)).collect();
        let limits = Limits::default();
        let out = deltas(plan(7, 0, &rows, &dev_signing_key(), &limits));
        assert!(out.len() >= 3, "{}", out.len());
        let mut next = 0;
        for d in &out {
            assert!(d.bytes.len() <= limits.max_message, "{}", d.bytes.len());
            assert_eq!(d.from_version, next);
            next = d.to_version;
        }
        assert_eq!(next, 150);
    }

    #[test]
    fn a_big_batch_asks_for_a_snapshot() {
        let rows: Vec<_> = (1..=2_000).map(|v| row(v, 500)).collect();
        assert!(matches!(
            plan(7, 0, &rows, &dev_signing_key(), &Limits::default()),
            Plan::TooBig { .. }
        ));
    }

    #[test]
    fn a_contexts_change_travels_in_its_delta() {
        let known = KnownContexts::only([Context::parse("backend").unwrap()]);
        let rows = vec![
            row(11, 1),
            ChangeRow {
                version: 12,
                epoch: 7,
                committed_at_ms: 0,
                op: ChangeOp::Contexts(KnownContexts::Any),
            },
            ChangeRow {
                version: 13,
                epoch: 7,
                committed_at_ms: 0,
                op: ChangeOp::Contexts(known.clone()),
            },
        ];
        let out = deltas(plan(7, 10, &rows, &dev_signing_key(), &Limits::default()));
        let key = dev_signing_key().verifying_key();
        let (_, d) = decode_delta(&out[0].bytes, &nexus_protocol::Limits::DELTA, Some(&key))
            .expect("verifies");
        assert_eq!((d.from_version, d.to_version, d.upserts.len()), (10, 13, 1));
        assert_eq!(d.contexts, Some(known));
        let plain = deltas(plan(7, 10, &rows[..1], &dev_signing_key(), &Limits::default()));
        let (_, d) = decode_delta(&plain[0].bytes, &nexus_protocol::Limits::DELTA, Some(&key))
            .expect("verifies");
        assert_eq!(d.contexts, None);
    }

    #[test]
    fn a_credential_change_travels_in_its_delta() {
        use nexus_protocol::credentials::RevokedToken;
        let revoke = CredentialChange::RevokeToken(RevokedToken { jti: "j".into(), until: 9 });
        let rows = vec![
            row(11, 1),
            ChangeRow {
                version: 12,
                epoch: 7,
                committed_at_ms: 0,
                op: ChangeOp::Credentials(revoke.clone()),
            },
        ];
        let out = deltas(plan(7, 10, &rows, &dev_signing_key(), &Limits::default()));
        let key = dev_signing_key().verifying_key();
        let (_, d) = decode_delta(&out[0].bytes, &nexus_protocol::Limits::DELTA, Some(&key))
            .expect("verifies");
        assert_eq!((d.from_version, d.to_version, d.upserts.len()), (10, 12, 1));
        assert_eq!(d.credentials, [revoke]);
    }

    #[test]
    fn holes_and_other_epochs_are_discontinuous() {
        let rows = vec![row(11, 1), row(13, 1)];
        assert_eq!(
            plan(7, 10, &rows, &dev_signing_key(), &Limits::default()),
            Plan::Discontinuous { expected: 12, found: 13, epoch: 7 }
        );
        assert!(matches!(
            plan(8, 10, &rows[..1], &dev_signing_key(), &Limits::default()),
            Plan::Discontinuous { epoch: 7, .. }
        ));
    }
}
