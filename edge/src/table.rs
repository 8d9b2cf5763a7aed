//! The in-memory alias table: what the request path reads.
//!
//! Everything a response needs is rendered once, when the table is built or
//! a delta is applied: the JSON body, the `x-nexus-version` header value.
//! The map is keyed by `"{context}/{alias}"`, the exact substring that ends
//! a resolve path, so a lookup borrows a slice of the request path and does
//! not allocate. papaya stays private behind [`Table`] and [`TableRef`].

use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use http::HeaderValue;
use nexus_protocol::{AliasKey, AliasRecord};
use papaya::{HashMap, HashSet, LocalGuard};

/// One alias, ready to be written to the wire.
#[derive(Debug, Clone)]
pub struct Entry {
    /// `{"canonical_name":"..."}`, rendered once.
    pub body: Bytes,
    /// Registry version of the record, as a header value.
    pub version: HeaderValue,
    /// Unix ms after which the alias no longer resolves.
    pub expires_at_ms: Option<i64>,
    pub is_active: bool,
}

impl Entry {
    /// Renders the response of one record.
    pub fn from_record(record: &AliasRecord) -> Self {
        /// The body's shape. A borrowed struct renders ~4× faster than a
        /// `json!` value, which counts when a million entries are built.
        #[derive(serde::Serialize)]
        struct Body<'a> {
            canonical_name: &'a str,
        }
        // serde_json escapes the canonical correctly; this runs at load time,
        // never per request. Serialising a struct of one &str cannot fail.
        let body = serde_json::to_vec(&Body { canonical_name: record.canonical.as_str() })
            .unwrap_or_default();
        Self {
            body: Bytes::from(body),
            version: HeaderValue::from(record.version),
            expires_at_ms: record.expires_at_ms,
            is_active: record.is_active,
        }
    }

    /// Whether the entry resolves at `now_ms` (Unix ms).
    pub fn is_live_at(&self, now_ms: i64) -> bool {
        self.is_active && self.expires_at_ms.is_none_or(|exp| now_ms < exp)
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

/// The alias table. Build it off the request path with [`Table::from_records`],
/// then publish it (see `state`); deltas may change it in place afterwards.
#[derive(Debug, Default)]
pub struct Table {
    entries: HashMap<Box<str>, Entry>,
    contexts: HashSet<Box<str>>,
    active: AtomicUsize,
}

impl Table {
    /// Builds a table from records. Later records replace earlier ones with
    /// the same key.
    pub fn from_records<'a>(records: impl IntoIterator<Item = &'a AliasRecord>) -> Self {
        let records = records.into_iter();
        let table = Self {
            entries: HashMap::with_capacity(records.size_hint().0),
            contexts: HashSet::new(),
            active: AtomicUsize::new(0),
        };
        for r in records {
            table.upsert(r);
        }
        table
    }

    /// Inserts or replaces one record.
    pub fn upsert(&self, record: &AliasRecord) {
        let entries = self.entries.pin();
        let contexts = self.contexts.pin();
        if !contexts.contains(record.context.as_str()) {
            contexts.insert(record.context.as_str().into());
        }
        let entry = Entry::from_record(record);
        let now_active = entry.is_active;
        let key = key_of(record.context.as_str(), record.alias.as_str());
        let was_active = entries.insert(key, entry).map(|old| old.is_active);
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
    /// existing because its last alias went away.
    pub fn remove(&self, key: &AliasKey) {
        let k = key_of(key.context.as_str(), key.alias.as_str());
        if let Some(old) = self.entries.pin().remove(&*k)
            && old.is_active
        {
            self.active.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// Pins the table for reading; hold the result only for one request.
    pub fn pin(&self) -> TableRef<'_> {
        TableRef { entries: self.entries.pin(), contexts: &self.contexts }
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
    entries: papaya::HashMapRef<'t, Box<str>, Entry, std::hash::RandomState, LocalGuard<'t>>,
    contexts: &'t HashSet<Box<str>>,
}

impl TableRef<'_> {
    /// The entry stored under `key` (`"{context}/{alias}"`), if any.
    pub fn lookup(&self, key: &str) -> Option<&Entry> {
        self.entries.get(key)
    }

    /// Whether any alias was ever loaded in `context`.
    pub fn has_context(&self, context: &str) -> bool {
        self.contexts.pin().contains(context)
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
        let v: serde_json::Value = serde_json::from_slice(&e.body).unwrap();
        assert_eq!(v["canonical_name"], "https://a/\"q\"");
        assert_eq!(e.version, "7");
        assert!(r.lookup("backend/billing").is_some_and(|e| !e.is_live_at(0)));
        assert!(r.lookup("frontend/nope").is_none());
        assert!(r.has_context("backend") && !r.has_context("system"));
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
    }
}
