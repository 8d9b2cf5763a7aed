//! The in-memory alias table: what the request path reads.
//!
//! Entries are wire-neutral: the canonical already escaped for JSON (and,
//! only when escaping changed it, the canonical as is), the version as a
//! number and as decimal digits, all rendered once when a state is applied.
//! Each front end writes its answer from those bytes: HTTP as
//! `prefix + canonical + suffix` with the digits as the version header, QUIC
//! as a frame header beside the same canonical. Nothing is parsed, rendered
//! or allocated per request.
//!
//! Memory: the bytes of many records live in one shared arena chunk
//! ([`CHUNK`]), and the map's key is a slice of it, so an alias costs one
//! map node (key slice + a 24-byte [`Entry`], 64 bytes allocated) and its
//! bytes, not a handful of small heap strings. Deltas bring their own (small) chunks.
//!
//! The map is keyed by `"{context}/{alias}"`, the exact substring that ends
//! a resolve path, so a lookup borrows a slice of the request path. It
//! hashes with a seeded foldhash (fast, and not predictable from outside).
//! papaya stays private behind [`Table`] and [`TableRef`].

use std::borrow::Borrow;
use std::collections::HashSet as StdHashSet;
use std::hash::{Hash, Hasher};
use std::ops::Deref;
use std::sync::atomic::{AtomicUsize, Ordering};

use arc_swap::{ArcSwap, Guard};
use bytes::Bytes;
use foldhash::fast::RandomState;
use nexus_protocol::{AliasKey, AliasRecord, KnownContexts};
use papaya::{HashMap, HashSet, LocalGuard};

/// Target size of one arena chunk. Requests clone a chunk's reference count
/// (one atomic each), so a chunk should be shared by few hot aliases; 8 KiB
/// holds ~100 typical records, and its header is noise next to them.
pub const CHUNK: usize = 8 * 1024;

/// One alias's metadata. Its bytes live in the arena, behind the key.
#[derive(Debug, Clone, Copy)]
pub struct Entry {
    /// Registry version of the record.
    pub version: u64,
    /// Unix ms after which the alias no longer resolves; `i64::MAX` if never.
    expires_at_ms: i64,
    /// Bytes of the JSON-escaped canonical, right after the key.
    json_len: u16,
    /// Whether the canonical as is follows the escaped one: only when the
    /// two differ (a `"` or `\` in it), which is rare.
    raw: bool,
    pub is_active: bool,
}

impl Entry {
    /// Whether the entry resolves at `now_ms` (Unix ms).
    pub fn is_live_at(&self, now_ms: i64) -> bool {
        self.is_active && now_ms < self.expires_at_ms
    }
}

/// A map key: the record's arena region, which starts with the key's
/// length (u16, big-endian) and `"{context}/{alias}"`, then holds the
/// entry's other bytes. The length lives in the arena, not here, so a map
/// node is 56 bytes (one 64-byte allocation), not 72.
#[derive(Debug, Clone)]
struct Key(Bytes);

/// Bytes of the key's length prefix.
const KEY_LEN: usize = 2;

impl Key {
    fn len(&self) -> usize {
        usize::from(u16::from_be_bytes([self.0[0], self.0[1]]))
    }

    fn bytes(&self) -> &[u8] {
        &self.0[KEY_LEN..KEY_LEN + self.len()]
    }
}

/// Decimal digits of `v`.
fn digits(v: u64) -> usize {
    v.checked_ilog10().map_or(1, |l| l as usize + 1)
}

// Hash and equality are those of the key bytes, so that `Borrow<[u8]>`
// finds a key from a slice of the request path.
impl Hash for Key {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.bytes().hash(state);
    }
}

impl PartialEq for Key {
    fn eq(&self, other: &Self) -> bool {
        self.bytes() == other.bytes()
    }
}

impl Eq for Key {}

impl Borrow<[u8]> for Key {
    fn borrow(&self) -> &[u8] {
        self.bytes()
    }
}

/// A found alias: its metadata and its bytes, borrowed from a pinned table.
#[derive(Debug, Clone, Copy)]
pub struct Hit<'t> {
    key: &'t Key,
    entry: &'t Entry,
}

impl<'t> Hit<'t> {
    fn region(&self) -> &'t Bytes {
        &self.key.0
    }

    fn span(&self, at: usize, len: usize) -> &'t [u8] {
        &self.region()[at..at + len]
    }

    fn json_at(&self) -> usize {
        KEY_LEN + self.key.len()
    }

    fn digits_at(&self) -> usize {
        self.region().len() - digits(self.entry.version)
    }

    /// The canonical, escaped for a JSON string (without the quotes).
    pub fn canonical_json(&self) -> &'t [u8] {
        self.span(self.json_at(), usize::from(self.entry.json_len))
    }

    /// The canonical, escaped for JSON, as shared bytes: a reference-count
    /// increment on the arena chunk, no copy.
    pub fn canonical_json_bytes(&self) -> Bytes {
        let at = self.json_at();
        self.region().slice(at..at + usize::from(self.entry.json_len))
    }

    /// The canonical as is (what QUIC answers carry).
    pub fn canonical(&self) -> &'t [u8] {
        if !self.entry.raw {
            return self.canonical_json();
        }
        let at = self.json_at() + usize::from(self.entry.json_len);
        self.span(at, self.digits_at() - at)
    }

    /// The version in decimal, as shared bytes (a header value without
    /// formatting or allocating).
    pub fn version_digits(&self) -> Bytes {
        self.region().slice(self.digits_at()..)
    }
}

impl Deref for Hit<'_> {
    type Target = Entry;
    fn deref(&self) -> &Entry {
        self.entry
    }
}

/// The key a record is stored under: `"{context}/{alias}"`.
pub fn key_of(context: &str, alias: &str) -> Box<str> {
    let mut k = String::with_capacity(context.len() + 1 + alias.len());
    k.push_str(context);
    k.push('/');
    k.push_str(alias);
    k.into_boxed_str()
}

/// Which contexts exist, decided once per state so `unknown_context` costs
/// one hashed lookup at most.
#[derive(Debug)]
enum Known {
    /// No state said: a context is known when an alias was loaded in it.
    Seen,
    /// Every context (governance without `strict_contexts`).
    Any,
    /// The configured ones.
    Only(StdHashSet<Box<str>, RandomState>),
}

impl From<&KnownContexts> for Known {
    fn from(k: &KnownContexts) -> Self {
        match k {
            KnownContexts::Any => Known::Any,
            KnownContexts::Only(v) => Known::Only(v.iter().map(|c| c.as_str().into()).collect()),
        }
    }
}

/// The alias table. Build it off the request path with [`Table::from_records`],
/// then publish it (see `state`); deltas may change it in place afterwards.
#[derive(Debug)]
pub struct Table {
    entries: HashMap<Key, Entry, RandomState>,
    /// Contexts an alias was loaded in (for counts, and [`Known::Seen`]).
    contexts: HashSet<Box<str>, RandomState>,
    /// Replaced whole when a state configures another set.
    known: ArcSwap<Known>,
    active: AtomicUsize,
}

impl Default for Table {
    fn default() -> Self {
        Self::with_capacity(0)
    }
}

impl Table {
    fn with_capacity(n: usize) -> Self {
        Self {
            entries: HashMap::with_capacity_and_hasher(n, RandomState::default()),
            contexts: HashSet::with_hasher(RandomState::default()),
            known: ArcSwap::from_pointee(Known::Seen),
            active: AtomicUsize::new(0),
        }
    }

    /// Builds a table from records. Later records replace earlier ones with
    /// the same key.
    pub fn from_records<'a>(records: impl IntoIterator<Item = &'a AliasRecord>) -> Self {
        let records = records.into_iter();
        let table = Self::with_capacity(records.size_hint().0);
        let mut arena = Arena::new(CHUNK);
        for r in records {
            arena.push(r, &table);
        }
        arena.flush(&table);
        table
    }

    /// Inserts or replaces one record.
    pub fn upsert(&self, record: &AliasRecord) {
        self.upsert_all(std::slice::from_ref(record));
    }

    /// Inserts or replaces records, in order, their bytes in chunks sized
    /// to them (a delta of one record gets a chunk of one record).
    pub fn upsert_all(&self, records: &[AliasRecord]) {
        let need: usize = records.iter().map(region_bound).sum();
        let mut arena = Arena::new(need.min(CHUNK));
        for r in records {
            arena.push(r, self);
        }
        arena.flush(self);
    }

    /// Makes `known` the contexts that exist, whatever aliases are loaded
    /// (the control plane's rule: a context is known when configured).
    pub fn set_contexts(&self, known: &KnownContexts) {
        self.known.store(std::sync::Arc::new(Known::from(known)));
    }

    fn add_context(&self, context: &str) {
        let contexts = self.contexts.pin();
        if !contexts.contains(context) {
            contexts.insert(context.into());
        }
    }

    fn insert(&self, key: Key, entry: Entry) {
        let now_active = entry.is_active;
        let was_active = self.entries.pin().insert(key, entry).map(|old| old.is_active);
        match (was_active, now_active) {
            (Some(true), false) => {
                self.active.fetch_sub(1, Ordering::Relaxed);
            }
            (None | Some(false), true) => {
                self.active.fetch_add(1, Ordering::Relaxed);
            }
            _ => {}
        }
    }

    /// Removes one alias. Its context stays known: a context does not stop
    /// existing because its last alias went away (only a new set of
    /// configured contexts says that).
    pub fn remove(&self, key: &AliasKey) {
        let k = key_of(key.context.as_str(), key.alias.as_str());
        if let Some(old) = self.entries.pin().remove(k.as_bytes())
            && old.is_active
        {
            self.active.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// Pins the table for reading; hold the result only for one request.
    pub fn pin(&self) -> TableRef<'_> {
        TableRef { entries: self.entries.pin(), contexts: &self.contexts, known: self.known.load() }
    }

    /// Entries in the table, active or not.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Entries marked active (expiry is not counted here: it moves with time).
    pub fn active_len(&self) -> usize {
        self.active.load(Ordering::Relaxed)
    }

    /// Distinct contexts seen.
    pub fn context_count(&self) -> usize {
        self.contexts.len()
    }
}

/// Read access to a pinned [`Table`].
#[derive(Debug)]
pub struct TableRef<'t> {
    entries: papaya::HashMapRef<'t, Key, Entry, RandomState, LocalGuard<'t>>,
    contexts: &'t HashSet<Box<str>, RandomState>,
    known: Guard<std::sync::Arc<Known>>,
}

impl TableRef<'_> {
    /// The alias stored under `key` (`"{context}/{alias}"`), if any.
    pub fn lookup(&self, key: &str) -> Option<Hit<'_>> {
        self.entries.get_key_value(key.as_bytes()).map(|(key, entry)| Hit { key, entry })
    }

    /// Whether `context` exists: configured, when the state says which
    /// contexts are; else when any alias was ever loaded in it.
    pub fn has_context(&self, context: &str) -> bool {
        match &**self.known {
            Known::Seen => self.contexts.pin().contains(context),
            Known::Any => true,
            Known::Only(set) => set.contains(context),
        }
    }
}

/// Most bytes one record's region can take: key and its length, canonical escaped (at most
/// twice as long: control characters are refused by `Canonical`), the raw
/// canonical, and up to 20 digits.
fn region_bound(r: &AliasRecord) -> usize {
    KEY_LEN
        + r.context.as_str().len()
        + 1
        + r.alias.as_str().len()
        + 3 * r.canonical.as_str().len()
        + 20
}

/// Writes records' regions into a chunk and, when it is full, inserts them
/// into the table with keys sliced from it.
struct Arena {
    buf: Vec<u8>,
    cap: usize,
    /// Start of each pending region in `buf`, and its entry.
    pending: Vec<(usize, Entry)>,
    /// serde_json's escaped output, reused between records.
    scratch: Vec<u8>,
}

impl Arena {
    fn new(cap: usize) -> Self {
        Self {
            buf: Vec::with_capacity(cap),
            cap,
            pending: Vec::new(),
            scratch: Vec::with_capacity(256),
        }
    }

    fn push(&mut self, r: &AliasRecord, table: &Table) {
        if !self.buf.is_empty() && self.buf.len() + region_bound(r) > self.buf.capacity() {
            self.flush(table);
        }
        let start = self.buf.len();
        let (context, alias, canonical) =
            (r.context.as_str(), r.alias.as_str(), r.canonical.as_str());
        // At most 50 + 1 + 255 bytes: the names' limits.
        let key_len = (context.len() + 1 + alias.len()) as u16;
        self.buf.extend_from_slice(&key_len.to_be_bytes());
        self.buf.extend_from_slice(context.as_bytes());
        self.buf.push(b'/');
        self.buf.extend_from_slice(alias.as_bytes());
        // serde_json does the escaping (it is the JSON the HTTP body always
        // had); a &str always serialises.
        self.scratch.clear();
        let _ = serde_json::to_writer(&mut self.scratch, canonical);
        let json = self.scratch.get(1..self.scratch.len().saturating_sub(1)).unwrap_or_default();
        self.buf.extend_from_slice(json);
        let raw = json != canonical.as_bytes();
        if raw {
            self.buf.extend_from_slice(canonical.as_bytes());
        }
        let _ = std::io::Write::write_fmt(&mut self.buf, format_args!("{}", r.version));
        let entry = Entry {
            version: r.version,
            expires_at_ms: r.expires_at_ms.unwrap_or(i64::MAX),
            // At most twice MAX_CANONICAL_LEN (2048): it fits.
            json_len: json.len() as u16,
            raw,
            is_active: r.is_active,
        };
        self.pending.push((start, entry));
        table.add_context(context);
    }

    /// Freezes the chunk and inserts its records, in the order they came.
    fn flush(&mut self, table: &Table) {
        if self.pending.is_empty() {
            return;
        }
        let mut buf = std::mem::replace(&mut self.buf, Vec::with_capacity(self.cap));
        buf.shrink_to_fit();
        let chunk = Bytes::from(buf);
        for (i, &(start, entry)) in self.pending.iter().enumerate() {
            let end = self.pending.get(i + 1).map_or(chunk.len(), |next| next.0);
            table.insert(Key(chunk.slice(start..end)), entry);
        }
        self.pending.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nexus_protocol::{AliasName, Canonical, Context};

    fn record(ctx: &str, alias: &str, canonical: &str, active: bool) -> AliasRecord {
        AliasRecord {
            id: 1,
            context: Context::parse(ctx).unwrap(),
            alias: AliasName::parse(alias).unwrap(),
            canonical: Canonical::parse(canonical).unwrap(),
            description: None,
            expires_at_ms: None,
            is_active: active,
            version: 7,
            updated_at_ms: 0,
        }
    }

    /// The HTTP body the service writes for a hit.
    fn body(hit: &Hit<'_>) -> Vec<u8> {
        [br#"{"canonical_name":""#.as_slice(), hit.canonical_json(), br#""}"#].concat()
    }

    #[test]
    fn lookup_by_path_slice_and_rendered_body() {
        let recs = [
            record("frontend", "user-profile", "https://a/\"q\"", true),
            record("backend", "billing", "https://b", false),
        ];
        let t = Table::from_records(&recs);
        assert_eq!((t.len(), t.active_len(), t.context_count()), (2, 1, 2));
        let path = "/api/aliases/resolve/frontend/user-profile";
        let r = t.pin();
        let e = r.lookup(&path["/api/aliases/resolve/".len()..]).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&body(&e)).unwrap();
        assert_eq!(v["canonical_name"], "https://a/\"q\"");
        assert_eq!(e.canonical(), b"https://a/\"q\"");
        assert_eq!(e.version, 7);
        assert_eq!(e.version_digits(), "7");
        assert!(r.lookup("backend/billing").is_some_and(|e| !e.is_live_at(0)));
        assert!(r.lookup("frontend/nope").is_none());
        assert!(r.has_context("backend") && !r.has_context("system"));
    }

    #[test]
    fn bodies_match_serde_json_and_span_many_chunks() {
        let n = 3 * CHUNK / 40;
        let recs: Vec<_> = (0..n)
            .map(|i| {
                let mut r = record("c", &format!("a{i}"), &format!("https://x/{i}\\{}", "é"), true);
                r.version = i as u64 * 1_000_003;
                r.expires_at_ms = (i % 2 == 0).then_some(10);
                r
            })
            .collect();
        let t = Table::from_records(&recs);
        let pinned = t.pin();
        for r in &recs {
            let hit = pinned.lookup(&format!("c/{}", r.alias)).unwrap();
            let want = serde_json::json!({"canonical_name": r.canonical.as_str()}).to_string();
            assert_eq!(body(&hit), want.as_bytes());
            assert_eq!(hit.canonical(), r.canonical.as_str().as_bytes());
            assert_eq!(hit.version_digits(), r.version.to_string());
            assert_eq!(hit.is_live_at(10), r.expires_at_ms.is_none());
        }
    }

    #[test]
    fn a_map_node_stays_within_one_64_byte_allocation() {
        // Allocators add an 8-byte header and round to 16: 56 is the most.
        assert!(size_of::<Key>() + size_of::<Entry>() <= 56);
        assert_eq!((digits(0), digits(9), digits(10), digits(u64::MAX)), (1, 1, 2, 20));
    }

    #[test]
    fn upsert_and_remove_keep_counts() {
        let t = Table::from_records(&[record("a", "x", "https://x", true)]);
        t.upsert(&record("a", "x", "https://x", false));
        assert_eq!(t.active_len(), 0);
        t.upsert(&record("a", "y", "https://y", true));
        assert_eq!(t.active_len(), 1);
        t.remove(&record("a", "y", "https://y", true).key());
        assert_eq!((t.len(), t.active_len()), (1, 0));
        t.upsert_all(&[record("b", "z", "https://z", true), record("b", "z", "https://w", true)]);
        assert_eq!(t.pin().lookup("b/z").unwrap().canonical(), b"https://w");
        assert_eq!((t.len(), t.active_len(), t.context_count()), (2, 1, 2));
    }

    #[test]
    fn configured_contexts_decide_over_loaded_ones() {
        let t = Table::from_records(&[record("a", "x", "https://x", true)]);
        let c = |s: &str| Context::parse(s).unwrap();
        t.set_contexts(&KnownContexts::only([c("b")]));
        assert!(!t.pin().has_context("a") && t.pin().has_context("b"));
        t.set_contexts(&KnownContexts::Any);
        assert!(t.pin().has_context("nowhere"));
    }
}
