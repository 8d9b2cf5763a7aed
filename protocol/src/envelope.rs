//! The envelope around every snapshot and delta, and the bounded codec.
//!
//! ```text
//! offset size  field
//!      0    4  magic "NXUS"
//!      4    2  format version, little endian (FORMAT_VERSION)
//!      6    1  kind (1 snapshot, 2 delta, 3 statement of the head)
//!      7    1  flags (bit 0: signed)
//!      8    8  epoch (LE)
//!     16    8  version (LE; a delta's to_version)
//!     24    4  payload length (LE)
//!     28   32  BLAKE3 of the payload: the content hash
//!     60   64  Ed25519 signature over bytes 0..60, or zeros when unsigned
//!    124    n  payload: bincode 2 (standard config) of Snapshot or Delta
//! ```
//!
//! Formats: 1 records only; 2 adds the configured contexts; 3 (written
//! now) adds the credentials (revocations and API-key grants). Each adds
//! its field last, and older formats still decode (to an empty value).
//!
//! The signature covers epoch, version and content hash, and the hash
//! covers the payload, so an edge checks length, hash and signature before
//! it decodes a single byte of bincode. Decoding itself runs under a byte
//! limit proportional to the input, so no input can make it allocate without
//! bound, and it returns a typed error rather than panicking.

use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::head::Statement;
use crate::snapshot::{Delta, KnownContexts, Snapshot};

pub const MAGIC: [u8; 4] = *b"NXUS";
/// 3: snapshots and deltas carry the credentials (their last field; 2
/// added the configured contexts). What this build writes.
pub const FORMAT_VERSION: u16 = 3;
/// The oldest format this build still reads: each format is the next one
/// without its last field, so an upgraded edge can still start from a
/// last-known-good copy written before the upgrade, and read a control
/// plane not yet upgraded (edges first, then the control plane).
pub const OLDEST_FORMAT: u16 = 1;
pub const HEADER_LEN: usize = 124;
const SIGNED_LEN: usize = 60;
const FLAG_SIGNED: u8 = 1;

/// What an envelope holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Snapshot = 1,
    Delta = 2,
    /// The leader's timestamped [`Statement`] of the head.
    Statement = 3,
}

/// Size limits applied before and during decoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_payload: usize,
    pub max_records: usize,
    /// Entries of the configured-contexts list.
    pub max_contexts: usize,
    /// Credential entries (snapshot) or changes (delta).
    pub max_credentials: usize,
}

impl Limits {
    /// Room for a few million aliases.
    pub const SNAPSHOT: Limits = Limits {
        max_payload: 1 << 30,
        max_records: 5_000_000,
        max_contexts: 100_000,
        max_credentials: 1_000_000,
    };
    /// A statement is three numbers.
    pub const STATEMENT: Limits =
        Limits { max_payload: 64, max_records: 0, max_contexts: 0, max_credentials: 0 };
    /// Deltas travel over pub/sub and must stay small.
    pub const DELTA: Limits = Limits {
        max_payload: 16 << 20,
        max_records: 100_000,
        max_contexts: 100_000,
        max_credentials: 100_000,
    };
}

/// The checked header of an envelope.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub kind: Kind,
    pub epoch: u64,
    pub version: u64,
    pub content_hash: [u8; 32],
    pub signed: bool,
}

/// Why bytes were refused. Every failure is one of these; none panics.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("input is {0} bytes, shorter than the {HEADER_LEN}-byte header")]
    TooShort(usize),
    #[error("bad magic: not a NEXUS envelope")]
    BadMagic,
    #[error("envelope format {0} is not supported (this build reads {FORMAT_VERSION})")]
    UnsupportedFormat(u16),
    #[error("unknown envelope kind {0}")]
    UnknownKind(u8),
    #[error("expected a {expected:?} envelope, found a {found:?}")]
    WrongKind { expected: Kind, found: Kind },
    #[error("payload of {len} bytes exceeds the limit of {max}")]
    TooLarge { len: usize, max: usize },
    #[error("header says {declared} payload bytes, {actual} follow")]
    LengthMismatch { declared: usize, actual: usize },
    #[error("content hash does not match the payload")]
    HashMismatch,
    #[error("envelope is not signed")]
    Unsigned,
    #[error("signature does not verify")]
    BadSignature,
    #[error("payload does not decode")]
    Body(#[source] bincode::error::DecodeError),
    #[error("payload has {0} trailing bytes")]
    TrailingBytes(usize),
    #[error("header names ({epoch}, {version}) but the body holds another state")]
    HeaderMismatch { epoch: u64, version: u64 },
    #[error("{count} records exceed the limit of {max}")]
    TooManyRecords { count: usize, max: usize },
    #[error("{count} configured contexts exceed the limit of {max}")]
    TooManyContexts { count: usize, max: usize },
    #[error("{count} credential entries exceed the limit of {max}")]
    TooManyCredentials { count: usize, max: usize },
}

/// Wraps `payload` in an envelope, signed when a key is given.
pub fn seal(
    kind: Kind,
    epoch: u64,
    version: u64,
    payload: &[u8],
    key: Option<&SigningKey>,
) -> Vec<u8> {
    let len = u32::try_from(payload.len()).expect("payload length fits the 4-byte field");
    let mut out = Vec::with_capacity(HEADER_LEN + payload.len());
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    out.push(kind as u8);
    out.push(if key.is_some() { FLAG_SIGNED } else { 0 });
    out.extend_from_slice(&epoch.to_le_bytes());
    out.extend_from_slice(&version.to_le_bytes());
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(blake3::hash(payload).as_bytes());
    let signature = key.map_or([0; 64], |k| k.sign(&out[..SIGNED_LEN]).to_bytes());
    out.extend_from_slice(&signature);
    out.extend_from_slice(payload);
    out
}

/// Checks an envelope's header, length, hash and (when `key` is given)
/// signature, and returns the header and the payload. With a key, unsigned
/// envelopes are refused; without one, signatures are not checked.
pub fn open<'a>(
    bytes: &'a [u8],
    max_payload: usize,
    key: Option<&VerifyingKey>,
) -> Result<(Header, &'a [u8]), DecodeError> {
    open_any(bytes, max_payload, key).map(|(header, _, payload)| (header, payload))
}

/// [`open`], also saying which format the payload is in.
fn open_any<'a>(
    bytes: &'a [u8],
    max_payload: usize,
    key: Option<&VerifyingKey>,
) -> Result<(Header, u16, &'a [u8]), DecodeError> {
    if bytes.len() < HEADER_LEN {
        return Err(DecodeError::TooShort(bytes.len()));
    }
    let (head, payload) = bytes.split_at(HEADER_LEN);
    if head[0..4] != MAGIC {
        return Err(DecodeError::BadMagic);
    }
    let format = u16::from_le_bytes([head[4], head[5]]);
    if !(OLDEST_FORMAT..=FORMAT_VERSION).contains(&format) {
        return Err(DecodeError::UnsupportedFormat(format));
    }
    let kind = match head[6] {
        1 => Kind::Snapshot,
        2 => Kind::Delta,
        3 => Kind::Statement,
        other => return Err(DecodeError::UnknownKind(other)),
    };
    let signed = head[7] & FLAG_SIGNED != 0;
    let epoch = u64::from_le_bytes(array(&head[8..16]));
    let version = u64::from_le_bytes(array(&head[16..24]));
    let declared = u32::from_le_bytes(array(&head[24..28])) as usize;
    if declared > max_payload {
        return Err(DecodeError::TooLarge { len: declared, max: max_payload });
    }
    if declared != payload.len() {
        return Err(DecodeError::LengthMismatch { declared, actual: payload.len() });
    }
    if let Some(key) = key {
        if !signed {
            return Err(DecodeError::Unsigned);
        }
        let signature = Signature::from_bytes(&array(&head[SIGNED_LEN..HEADER_LEN]));
        key.verify(&head[..SIGNED_LEN], &signature).map_err(|_| DecodeError::BadSignature)?;
    }
    let content_hash: [u8; 32] = array(&head[28..SIGNED_LEN]);
    if blake3::hash(payload).as_bytes() != &content_hash {
        return Err(DecodeError::HashMismatch);
    }
    Ok((Header { kind, epoch, version, content_hash, signed }, format, payload))
}

fn array<const N: usize>(s: &[u8]) -> [u8; N] {
    let mut a = [0; N];
    a.copy_from_slice(s);
    a
}

fn encode_body<T: Serialize>(value: &T) -> Vec<u8> {
    bincode::serde::encode_to_vec(value, bincode::config::standard())
        .expect("encoding plain data into a Vec cannot fail")
}

/// Decodes with a byte limit of at most 16× the next power-of-four tier of
/// the input, so a forged length prefix can never claim more than that.
fn decode_body<T: DeserializeOwned>(payload: &[u8]) -> Result<T, DecodeError> {
    fn run<T: DeserializeOwned, const LIMIT: usize>(p: &[u8]) -> Result<T, DecodeError> {
        let config = bincode::config::standard().with_limit::<LIMIT>();
        let (value, read) =
            bincode::serde::decode_from_slice(p, config).map_err(DecodeError::Body)?;
        match p.len() - read {
            0 => Ok(value),
            extra => Err(DecodeError::TrailingBytes(extra)),
        }
    }
    match payload.len() {
        0..=4_096 => run::<T, { 64 << 10 }>(payload),
        4_097..=262_144 => run::<T, { 4 << 20 }>(payload),
        262_145..=16_777_216 => run::<T, { 256 << 20 }>(payload),
        _ => run::<T, { 16 << 30 }>(payload),
    }
}

/// Encodes and seals a snapshot.
pub fn encode_snapshot(snapshot: &Snapshot, key: Option<&SigningKey>) -> Vec<u8> {
    seal(Kind::Snapshot, snapshot.epoch, snapshot.version, &encode_body(snapshot), key)
}

/// Encodes and seals a delta (named by its `to_version`).
pub fn encode_delta(delta: &Delta, key: Option<&SigningKey>) -> Vec<u8> {
    seal(Kind::Delta, delta.epoch, delta.to_version, &encode_body(delta), key)
}

/// Runs `check` (an open or a decode) with each of `keys` until one
/// verifies: what a verifier holding several keys (a rotation) does. A
/// failure other than the signature's is the envelope's, whichever key, and
/// ends the search; `BadSignature` only when no key signed it.
pub fn with_any_key<T>(
    keys: &[VerifyingKey],
    check: impl Fn(&VerifyingKey) -> Result<T, DecodeError>,
) -> Result<T, DecodeError> {
    for key in keys {
        match check(key) {
            Err(DecodeError::BadSignature) => {}
            done => return done,
        }
    }
    Err(DecodeError::BadSignature)
}

/// Encodes and seals the leader's statement of the head.
pub fn encode_statement(statement: &Statement, key: Option<&SigningKey>) -> Vec<u8> {
    seal(Kind::Statement, statement.epoch, statement.version, &encode_body(statement), key)
}

fn expect_kind(header: &Header, expected: Kind) -> Result<(), DecodeError> {
    if header.kind == expected {
        Ok(())
    } else {
        Err(DecodeError::WrongKind { expected, found: header.kind })
    }
}

fn check_records(count: usize, limits: &Limits) -> Result<(), DecodeError> {
    if count > limits.max_records {
        return Err(DecodeError::TooManyRecords { count, max: limits.max_records });
    }
    Ok(())
}

fn check_contexts(contexts: Option<&KnownContexts>, limits: &Limits) -> Result<(), DecodeError> {
    let count = contexts.map_or(0, KnownContexts::len);
    if count > limits.max_contexts {
        return Err(DecodeError::TooManyContexts { count, max: limits.max_contexts });
    }
    Ok(())
}

fn check_credentials(count: usize, limits: &Limits) -> Result<(), DecodeError> {
    if count > limits.max_credentials {
        return Err(DecodeError::TooManyCredentials { count, max: limits.max_credentials });
    }
    Ok(())
}

/// What an envelope carries: its kind, the name it must agree with the
/// header on, and the limits on what it holds. One decoding path for both.
trait Payload: DeserializeOwned {
    const KIND: Kind;
    /// The same value as format 1 wrote it.
    type V1: DeserializeOwned + Into<Self>;
    /// The same value as format 2 wrote it.
    type V2: DeserializeOwned + Into<Self>;
    /// `(epoch, version)` as the payload names itself.
    fn name(&self) -> (u64, u64);
    fn check(&self, limits: &Limits) -> Result<(), DecodeError>;
}

impl Payload for Snapshot {
    const KIND: Kind = Kind::Snapshot;
    type V1 = v1::Snapshot;
    type V2 = v2::Snapshot;
    fn name(&self) -> (u64, u64) {
        (self.epoch, self.version)
    }
    fn check(&self, limits: &Limits) -> Result<(), DecodeError> {
        check_records(self.records.len(), limits)?;
        check_contexts(Some(&self.contexts), limits)?;
        check_credentials(self.credentials.len(), limits)
    }
}

impl Payload for Delta {
    const KIND: Kind = Kind::Delta;
    type V1 = v1::Delta;
    type V2 = v2::Delta;
    fn name(&self) -> (u64, u64) {
        (self.epoch, self.to_version)
    }
    fn check(&self, limits: &Limits) -> Result<(), DecodeError> {
        check_records(self.upserts.len() + self.removals.len(), limits)?;
        check_contexts(self.contexts.as_ref(), limits)?;
        check_credentials(self.credentials.len(), limits)
    }
}

impl Payload for Statement {
    const KIND: Kind = Kind::Statement;
    // Statements came with format 3; any format reads the same three fields.
    type V1 = Statement;
    type V2 = Statement;
    fn name(&self) -> (u64, u64) {
        (self.epoch, self.version)
    }
    fn check(&self, _: &Limits) -> Result<(), DecodeError> {
        Ok(())
    }
}

fn decode<T: Payload>(
    bytes: &[u8],
    limits: &Limits,
    key: Option<&VerifyingKey>,
) -> Result<(Header, T), DecodeError> {
    let (header, format, payload) = open_any(bytes, limits.max_payload, key)?;
    expect_kind(&header, T::KIND)?;
    let value: T = match format {
        1 => decode_body::<T::V1>(payload)?.into(),
        2 => decode_body::<T::V2>(payload)?.into(),
        _ => decode_body(payload)?,
    };
    if value.name() != (header.epoch, header.version) {
        return Err(DecodeError::HeaderMismatch { epoch: header.epoch, version: header.version });
    }
    value.check(limits)?;
    Ok((header, value))
}

/// Opens, verifies and decodes a snapshot envelope.
pub fn decode_snapshot(
    bytes: &[u8],
    limits: &Limits,
    key: Option<&VerifyingKey>,
) -> Result<(Header, Snapshot), DecodeError> {
    decode(bytes, limits, key)
}

/// Opens, verifies and decodes a statement envelope.
pub fn decode_statement(
    bytes: &[u8],
    key: Option<&VerifyingKey>,
) -> Result<(Header, Statement), DecodeError> {
    decode(bytes, &Limits::STATEMENT, key)
}

/// Opens, verifies and decodes a delta envelope.
pub fn decode_delta(
    bytes: &[u8],
    limits: &Limits,
    key: Option<&VerifyingKey>,
) -> Result<(Header, Delta), DecodeError> {
    decode(bytes, limits, key)
}

/// Format 1: the same records, no configured contexts.
mod v1 {
    use serde::Deserialize;

    use crate::credentials::Credentials;
    use crate::record::{AliasKey, AliasRecord};
    use crate::snapshot::KnownContexts;

    #[derive(Debug, Deserialize)]
    pub struct Snapshot {
        epoch: u64,
        version: u64,
        created_at_ms: i64,
        intended_shrink: bool,
        records: Vec<AliasRecord>,
    }

    /// A format-1 edge knew a context when it held an alias in it, so a
    /// format-1 snapshot configures exactly those.
    impl From<Snapshot> for crate::snapshot::Snapshot {
        fn from(s: Snapshot) -> Self {
            let contexts = KnownContexts::of_records(&s.records);
            Self {
                epoch: s.epoch,
                version: s.version,
                created_at_ms: s.created_at_ms,
                intended_shrink: s.intended_shrink,
                records: s.records,
                contexts,
                credentials: Credentials::default(),
            }
        }
    }

    #[derive(Debug, Deserialize)]
    pub struct Delta {
        epoch: u64,
        from_version: u64,
        to_version: u64,
        committed_at_ms: i64,
        upserts: Vec<AliasRecord>,
        removals: Vec<AliasKey>,
    }

    impl From<Delta> for crate::snapshot::Delta {
        fn from(d: Delta) -> Self {
            Self {
                epoch: d.epoch,
                from_version: d.from_version,
                to_version: d.to_version,
                committed_at_ms: d.committed_at_ms,
                upserts: d.upserts,
                removals: d.removals,
                contexts: None,
                credentials: Vec::new(),
            }
        }
    }
}

/// Format 2: records and configured contexts, no credentials.
mod v2 {
    use serde::Deserialize;

    use crate::record::{AliasKey, AliasRecord};
    use crate::snapshot::KnownContexts;

    #[derive(Debug, Deserialize)]
    pub struct Snapshot {
        epoch: u64,
        version: u64,
        created_at_ms: i64,
        intended_shrink: bool,
        records: Vec<AliasRecord>,
        contexts: KnownContexts,
    }

    impl From<Snapshot> for crate::snapshot::Snapshot {
        fn from(s: Snapshot) -> Self {
            Self {
                epoch: s.epoch,
                version: s.version,
                created_at_ms: s.created_at_ms,
                intended_shrink: s.intended_shrink,
                records: s.records,
                contexts: s.contexts,
                credentials: Default::default(),
            }
        }
    }

    #[derive(Debug, Deserialize)]
    pub struct Delta {
        epoch: u64,
        from_version: u64,
        to_version: u64,
        committed_at_ms: i64,
        upserts: Vec<AliasRecord>,
        removals: Vec<AliasKey>,
        contexts: Option<KnownContexts>,
    }

    impl From<Delta> for crate::snapshot::Delta {
        fn from(d: Delta) -> Self {
            Self {
                epoch: d.epoch,
                from_version: d.from_version,
                to_version: d.to_version,
                committed_at_ms: d.committed_at_ms,
                upserts: d.upserts,
                removals: d.removals,
                contexts: d.contexts,
                credentials: Vec::new(),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::names::{AliasName, Context};
    use crate::record::{AliasRecord, Canonical};
    use proptest::prelude::*;

    fn record(i: u64) -> AliasRecord {
        AliasRecord {
            id: i as i64,
            context: Context::parse("frontend").unwrap(),
            alias: AliasName::parse(&format!("alias-{i}")).unwrap(),
            canonical: Canonical::parse(&format!("https://api.nexus.com/v1/{i}")).unwrap(),
            description: Some("d".into()),
            expires_at_ms: None,
            is_active: true,
            version: i,
            updated_at_ms: 0,
        }
    }

    /// Bytes as a format-1 build wrote them: the body without the contexts,
    /// the header saying format 1 (unsigned, so the header can be patched).
    fn format_1<T: Serialize>(kind: Kind, version: u64, body: &T) -> Vec<u8> {
        let mut bytes = seal(kind, 7, version, &encode_body(body), None);
        bytes[4..6].copy_from_slice(&1u16.to_le_bytes());
        bytes
    }

    #[test]
    fn format_1_still_decodes_and_configures_the_contexts_it_holds() {
        #[derive(Serialize)]
        struct SnapshotV1 {
            epoch: u64,
            version: u64,
            created_at_ms: i64,
            intended_shrink: bool,
            records: Vec<AliasRecord>,
        }
        let old = SnapshotV1 {
            epoch: 7,
            version: 3,
            created_at_ms: 1,
            intended_shrink: false,
            records: (0..3).map(record).collect(),
        };
        let bytes = format_1(Kind::Snapshot, 3, &old);
        let (_, s) = decode_snapshot(&bytes, &Limits::SNAPSHOT, None).unwrap();
        assert_eq!(s.records, old.records);
        assert_eq!(s.contexts, KnownContexts::only([Context::parse("frontend").unwrap()]));

        #[derive(Serialize)]
        struct DeltaV1 {
            epoch: u64,
            from_version: u64,
            to_version: u64,
            committed_at_ms: i64,
            upserts: Vec<AliasRecord>,
            removals: Vec<crate::AliasKey>,
        }
        let old = DeltaV1 {
            epoch: 7,
            from_version: 3,
            to_version: 4,
            committed_at_ms: 5,
            upserts: vec![record(4)],
            removals: vec![],
        };
        let (_, d) = decode_delta(&format_1(Kind::Delta, 4, &old), &Limits::DELTA, None).unwrap();
        assert_eq!((d.from_version, d.to_version, d.contexts), (3, 4, None));
        assert_eq!(d.upserts, old.upserts);

        let mut future = encode_snapshot(&snapshot(1), None);
        future[4..6].copy_from_slice(&(FORMAT_VERSION + 1).to_le_bytes());
        assert!(matches!(
            decode_snapshot(&future, &Limits::SNAPSHOT, None),
            Err(DecodeError::UnsupportedFormat(f)) if f == FORMAT_VERSION + 1
        ));
    }

    /// Epoch 7, version 1 to 2, nothing in it: tests set what they need.
    fn empty_delta() -> Delta {
        Delta {
            epoch: 7,
            from_version: 1,
            to_version: 2,
            committed_at_ms: 0,
            upserts: vec![],
            removals: vec![],
            contexts: None,
            credentials: vec![],
        }
    }

    fn snapshot(n: u64) -> Snapshot {
        Snapshot {
            epoch: 7,
            version: n,
            created_at_ms: 1,
            intended_shrink: false,
            records: (0..n).map(record).collect(),
            contexts: KnownContexts::only([Context::parse("frontend").unwrap()]),
            credentials: Default::default(),
        }
    }

    fn key() -> SigningKey {
        SigningKey::from_bytes(&[9; 32])
    }

    #[test]
    fn snapshot_round_trips_signed() {
        let s = snapshot(50);
        let bytes = encode_snapshot(&s, Some(&key()));
        let (h, back) =
            decode_snapshot(&bytes, &Limits::SNAPSHOT, Some(&key().verifying_key())).unwrap();
        assert_eq!(back, s);
        assert!(h.signed);
        assert_eq!((h.epoch, h.version), (7, 50));
    }

    #[test]
    fn unsigned_refused_when_a_key_is_expected() {
        let bytes = encode_snapshot(&snapshot(1), None);
        let err = decode_snapshot(&bytes, &Limits::SNAPSHOT, Some(&key().verifying_key()));
        assert!(matches!(err, Err(DecodeError::Unsigned)));
    }

    #[test]
    fn wrong_key_and_tampering_are_refused() {
        let bytes = encode_snapshot(&snapshot(3), Some(&key()));
        let other = SigningKey::from_bytes(&[1; 32]).verifying_key();
        assert!(matches!(
            decode_snapshot(&bytes, &Limits::SNAPSHOT, Some(&other)),
            Err(DecodeError::BadSignature)
        ));
        let mut flipped = bytes.clone();
        *flipped.last_mut().unwrap() ^= 1;
        assert!(matches!(
            decode_snapshot(&flipped, &Limits::SNAPSHOT, Some(&key().verifying_key())),
            Err(DecodeError::HashMismatch)
        ));
        let mut version = bytes.clone();
        version[16] ^= 1;
        assert!(matches!(
            decode_snapshot(&version, &Limits::SNAPSHOT, Some(&key().verifying_key())),
            Err(DecodeError::BadSignature)
        ));
    }

    #[test]
    fn limits_apply_before_decoding() {
        let bytes = encode_snapshot(&snapshot(10), None);
        let tight = Limits { max_payload: 10, ..Limits::SNAPSHOT };
        assert!(matches!(decode_snapshot(&bytes, &tight, None), Err(DecodeError::TooLarge { .. })));
        let few = Limits { max_payload: 1 << 20, max_records: 5, ..Limits::SNAPSHOT };
        assert!(matches!(
            decode_snapshot(&bytes, &few, None),
            Err(DecodeError::TooManyRecords { count: 10, max: 5 })
        ));
        let delta = Delta { epoch: 1, ..empty_delta() };
        let d = encode_delta(&delta, None);
        assert!(matches!(
            decode_snapshot(&d, &Limits::SNAPSHOT, None),
            Err(DecodeError::WrongKind { .. })
        ));
        assert_eq!(decode_delta(&d, &Limits::DELTA, None).unwrap().1, delta);
    }

    fn contexts(n: usize) -> KnownContexts {
        KnownContexts::only((0..n).map(|i| Context::parse(&format!("ctx-{i}")).unwrap()))
    }

    #[test]
    fn configured_contexts_round_trip_and_are_hashed() {
        for known in [KnownContexts::Any, contexts(0), contexts(3)] {
            let s = Snapshot { contexts: known.clone(), ..snapshot(2) };
            let bytes = encode_snapshot(&s, Some(&key()));
            let (_, back) =
                decode_snapshot(&bytes, &Limits::SNAPSHOT, Some(&key().verifying_key())).unwrap();
            assert_eq!(back.contexts, known);
            for change in [None, Some(known.clone())] {
                let d = Delta { contexts: change.clone(), ..empty_delta() };
                let bytes = encode_delta(&d, Some(&key()));
                let (_, back) =
                    decode_delta(&bytes, &Limits::DELTA, Some(&key().verifying_key())).unwrap();
                assert_eq!(back.contexts, change);
            }
        }
        // Another set is another content hash: the signature covers it.
        let a = encode_snapshot(&Snapshot { contexts: contexts(1), ..snapshot(2) }, None);
        let b = encode_snapshot(&Snapshot { contexts: contexts(2), ..snapshot(2) }, None);
        assert_ne!(a[28..60], b[28..60]);
    }

    #[test]
    fn configured_contexts_are_bounded() {
        let few = Limits { max_contexts: 2, ..Limits::SNAPSHOT };
        let s = Snapshot { contexts: contexts(3), ..snapshot(1) };
        assert!(matches!(
            decode_snapshot(&encode_snapshot(&s, None), &few, None),
            Err(DecodeError::TooManyContexts { count: 3, max: 2 })
        ));
        let any = Snapshot { contexts: KnownContexts::Any, ..snapshot(1) };
        assert!(decode_snapshot(&encode_snapshot(&any, None), &few, None).is_ok());
        let d = Delta { contexts: Some(contexts(3)), ..empty_delta() };
        assert!(matches!(
            decode_delta(
                &encode_delta(&d, None),
                &Limits { max_contexts: 2, ..Limits::DELTA },
                None
            ),
            Err(DecodeError::TooManyContexts { count: 3, max: 2 })
        ));
    }

    #[test]
    fn credentials_round_trip_and_format_2_still_decodes() {
        use crate::credentials::{CredentialChange, Credentials, KeyGrant, RevokedToken};
        use crate::token::{ContextScope, Role};
        let grant = KeyGrant {
            digest: [5; 32],
            name: "api_key:1:ci".into(),
            role: Role::Resolver,
            contexts: ContextScope::All,
            expires_at: Some(9),
        };
        let creds = Credentials {
            revoked_tokens: vec![RevokedToken { jti: "j".into(), until: 1 }],
            revoked_subjects: vec![],
            api_keys: vec![grant.clone()],
        };
        let s = Snapshot { credentials: creds.clone(), ..snapshot(2) };
        let bytes = encode_snapshot(&s, Some(&key()));
        let (_, back) =
            decode_snapshot(&bytes, &Limits::SNAPSHOT, Some(&key().verifying_key())).unwrap();
        assert_eq!(back.credentials, creds);
        let few = Limits { max_credentials: 1, ..Limits::SNAPSHOT };
        assert!(matches!(
            decode_snapshot(&bytes, &few, None),
            Err(DecodeError::TooManyCredentials { count: 2, max: 1 })
        ));
        let d = Delta {
            credentials: vec![
                CredentialChange::GrantKey(grant),
                CredentialChange::RevokeKey([5; 32]),
            ],
            ..empty_delta()
        };
        let (_, back) = decode_delta(&encode_delta(&d, None), &Limits::DELTA, None).unwrap();
        assert_eq!(back, d);

        // Format 2 is format 3 without the credentials.
        #[derive(Serialize)]
        struct SnapshotV2 {
            epoch: u64,
            version: u64,
            created_at_ms: i64,
            intended_shrink: bool,
            records: Vec<AliasRecord>,
            contexts: KnownContexts,
        }
        let old = SnapshotV2 {
            epoch: 7,
            version: 3,
            created_at_ms: 1,
            intended_shrink: false,
            records: (0..3).map(record).collect(),
            contexts: KnownContexts::Any,
        };
        let mut bytes = seal(Kind::Snapshot, 7, 3, &encode_body(&old), None);
        bytes[4..6].copy_from_slice(&2u16.to_le_bytes());
        let (_, s) = decode_snapshot(&bytes, &Limits::SNAPSHOT, None).unwrap();
        assert_eq!((s.records, s.credentials), (old.records, Credentials::default()));
    }

    #[test]
    fn forged_length_prefix_is_refused_without_allocating_it() {
        // A body claiming a Vec of u64::MAX/2 records (or contexts) in a
        // few bytes. The body ends `[records: 0][Only][contexts: 0]`.
        let s = Snapshot { contexts: KnownContexts::Only(vec![]), ..snapshot(0) };
        for cut in [3, 1] {
            let mut body = encode_body(&s);
            body.truncate(body.len() - cut);
            body.extend_from_slice(&[0xfd, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f]);
            let bytes = seal(Kind::Snapshot, 7, 0, &body, None);
            assert!(matches!(
                decode_snapshot(&bytes, &Limits::SNAPSHOT, None),
                Err(DecodeError::Body(_))
            ));
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2_000))]

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            let _ = decode_snapshot(&bytes, &Limits::SNAPSHOT, None);
            let _ = decode_delta(&bytes, &Limits::DELTA, None);
        }

        #[test]
        fn arbitrary_payloads_in_valid_envelopes_never_panic(
            body in proptest::collection::vec(any::<u8>(), 0..600),
            kind in prop_oneof![Just(Kind::Snapshot), Just(Kind::Delta)],
        ) {
            let bytes = seal(kind, 7, 0, &body, None);
            let _ = decode_snapshot(&bytes, &Limits::SNAPSHOT, None);
            let _ = decode_delta(&bytes, &Limits::DELTA, None);
        }

        #[test]
        fn mutated_valid_snapshots_never_panic(
            flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        ) {
            let mut body = encode_body(&snapshot(4));
            for (i, b) in flips {
                let at = i.index(body.len());
                body[at] = b;
            }
            let bytes = seal(Kind::Snapshot, 7, 4, &body, None);
            let _ = decode_snapshot(&bytes, &Limits::SNAPSHOT, None);
        }
    }

    #[test]
    fn a_statement_is_signed_and_read_only_as_one() {
        let key = crate::signing::dev_signing_key();
        let s = Statement { epoch: 7, version: 9, issued_at_ms: 1_765_000_000_123 };
        let bytes = encode_statement(&s, Some(&key));
        let (h, back) = decode_statement(&bytes, Some(&key.verifying_key())).unwrap();
        assert_eq!((h.kind, back), (Kind::Statement, s));
        // Another key's statement, or a snapshot passed off as one, is refused.
        let other = SigningKey::from_bytes(&[3; 32]);
        let forged = encode_statement(&s, Some(&other));
        let e = decode_statement(&forged, Some(&key.verifying_key())).unwrap_err();
        assert!(matches!(e, DecodeError::BadSignature), "{e}");
        let e = decode_snapshot(&bytes, &Limits::SNAPSHOT, Some(&key.verifying_key()));
        assert!(matches!(e, Err(DecodeError::WrongKind { .. })));
        // Endless data: a statement claiming a big payload is cut at the header.
        let big = seal(Kind::Statement, 7, 9, &[0; 1000], Some(&key));
        let e = decode_statement(&big, Some(&key.verifying_key())).unwrap_err();
        assert!(matches!(e, DecodeError::TooLarge { .. }), "{e}");
    }
}
