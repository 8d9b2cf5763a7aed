//! The edge's last-known-good copy on disk (`persist::Disk::load`) and its
//! restore (`sync::apply::Applier::restore`), over files the fuzzer writes.
//!
//! Input: byte 0 holds flags (bit 0: sign the snapshot, bit 1: sign the
//! deltas, with the dev key, so the fuzzer gets past the signature into the
//! decoder and the guard); bytes 1..3 the snapshot's length (LE); then the
//! snapshot; then the log. Signed, the snapshot is a payload sealed with a
//! header read from its leading varints (as an honest control plane writes
//! it), and the log is `u16 LE length | delta payload` records, each sealed
//! the same way and written with the log's own 4-byte prefix; unsigned, the
//! log is written as is.
//!
//! Properties: loading never fails on content; it returns the snapshot file
//! as is and whole log records only, in order (their framing is a prefix of
//! the file, and what follows is a torn or absurd record); a restore
//! accepts exactly when the snapshot verifies and decodes (or is refused by
//! the shrink guard), and then serves its epoch at a version no older, from
//! the disk source.
#![no_main]

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use libfuzzer_sys::fuzz_target;
use nexus_edge::clock::Clock;
use nexus_edge::metrics::Metrics;
use nexus_edge::persist::Disk;
use nexus_edge::state::{SourceKind, State};
use nexus_edge::sync::apply::Applier;
use nexus_edge::sync::update::Refusal;
use nexus_protocol::envelope::{Kind, Limits, decode_snapshot, seal};
use nexus_protocol::signing::{SigningKey, VerifyingKey, dev_signing_key, dev_verify_key};

/// Same bound as `persist::MAX_RECORD`: a longer record ends the log.
const MAX_RECORD: usize = 64 << 20;

/// What every input shares. Deriving a key is a scalar multiplication and a
/// metrics registry a dozen allocations; per input they cost more than the
/// load under test. None of them holds state a property reads.
struct Fixed {
    signer: SigningKey,
    key: VerifyingKey,
    metrics: Arc<Metrics>,
    disk: Disk,
}

fn fixed() -> &'static Fixed {
    static FIXED: OnceLock<Fixed> = OnceLock::new();
    FIXED.get_or_init(|| Fixed {
        signer: dev_signing_key(),
        key: dev_verify_key(),
        metrics: Arc::new(Metrics::new()),
        disk: Disk::open(dir()).unwrap(),
    })
}

fn dir() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        // tmpfs when there is one: the target writes two files per input.
        let base = ["/dev/shm", "/tmp"].iter().find(|d| std::path::Path::new(d).is_dir()).unwrap();
        let dir = PathBuf::from(base).join(format!("nexus-fuzz-disk-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    })
}

fuzz_target!(|input: &[u8]| {
    let Some((&flags, rest)) = input.split_first() else { return };
    let Some((len, rest)) = rest.split_first_chunk::<2>() else { return };
    let len = usize::from(u16::from_le_bytes(*len)).min(rest.len());
    let (snapshot, log) = rest.split_at(len);
    let Fixed { signer, key, metrics, disk } = fixed();
    let snapshot = if flags & 1 != 0 {
        let mut v = varints(snapshot);
        let (epoch, version) = (v.next().unwrap_or(0), v.next().unwrap_or(0));
        seal(Kind::Snapshot, epoch, version, snapshot, Some(signer))
    } else {
        snapshot.to_vec()
    };
    let log = if flags & 2 != 0 {
        let mut out = Vec::new();
        let mut p = log;
        while let Some((n, tail)) = p.split_first_chunk::<2>() {
            let n = usize::from(u16::from_le_bytes(*n)).min(tail.len());
            let (payload, tail) = tail.split_at(n);
            let mut v = varints(payload);
            let (epoch, to) = (v.next().unwrap_or(0), v.nth(1).unwrap_or(0));
            let envelope = seal(Kind::Delta, epoch, to, payload, Some(signer));
            out.extend_from_slice(&(envelope.len() as u32).to_le_bytes());
            out.extend_from_slice(&envelope);
            p = tail;
        }
        out
    } else {
        log.to_vec()
    };
    let dir = dir();
    std::fs::write(dir.join("snapshot.nxus"), &snapshot).unwrap();
    std::fs::write(dir.join("deltas.log"), &log).unwrap();

    let saved = disk.load().expect("loading reads files, whatever they hold").expect("a snapshot");
    assert_eq!(saved.snapshot, snapshot);
    let mut framed = Vec::new();
    for d in &saved.deltas {
        framed.extend_from_slice(&(d.len() as u32).to_le_bytes());
        framed.extend_from_slice(d);
    }
    assert!(log.starts_with(&framed), "deltas are the log's whole records, in order");
    let tail = &log[framed.len()..];
    if let Some((n, body)) = tail.split_first_chunk::<4>() {
        let n = u32::from_le_bytes(*n) as usize;
        assert!(n > MAX_RECORD || n > body.len(), "a whole record was dropped");
    }

    let decoded = decode_snapshot(&snapshot, &Limits::SNAPSHOT, Some(key));
    let state = Arc::new(State::new(SourceKind::Redis));
    let mut applier =
        Applier::new(state.clone(), metrics.clone(), Clock::manual(1_800_000_000_000))
            .with_key(*key);
    match (applier.restore(saved), decoded) {
        (Ok(version), Ok((header, _))) => {
            assert!(state.is_loaded());
            assert_eq!(state.source(), SourceKind::Disk);
            assert_eq!((state.epoch(), state.version()), (header.epoch, version));
            assert!(version >= header.version);
        }
        (Ok(_), Err(e)) => panic!("restored a snapshot that does not verify: {e:?}"),
        (Err(Refusal::Envelope(_)), Err(_)) => assert!(!state.is_loaded()),
        (Err(Refusal::Shrink(_)), Ok(_)) => assert!(!state.is_loaded()),
        (Err(e), d) => panic!("restore refused {e:?}; the snapshot decodes: {}", d.is_ok()),
    }
});

/// bincode 2's varint (standard config).
fn varints(mut p: &[u8]) -> impl Iterator<Item = u64> + '_ {
    std::iter::from_fn(move || {
        let (&tag, rest) = p.split_first()?;
        let (value, n) = match tag {
            0..=250 => (u64::from(tag), 0),
            251 => (u64::from(u16::from_le_bytes(rest.get(..2)?.try_into().ok()?)), 2),
            252 => (u64::from(u32::from_le_bytes(rest.get(..4)?.try_into().ok()?)), 4),
            253 => (u64::from_le_bytes(rest.get(..8)?.try_into().ok()?), 8),
            _ => return None,
        };
        p = &rest[n..];
        Some(value)
    })
}
