//! The audit hash chain: each row's hash covers the previous row's hash and
//! the row's content, so editing, deleting or swapping a row breaks every
//! hash after it. `row_hash = SHA-256(prev_hash || content)`, where content
//! is the canonical serialisation below.
//!
//! The content is a JSON array in fixed field order. JSON values inside
//! (before/after) come back from JSONB with keys reordered; serde_json's map
//! sorts keys on output, so the serialisation is the same before and after
//! the round trip.

use serde_json::Value;
use sha2::{Digest, Sha256};

/// Hash before the first row (and after a purge with nothing before it).
#[cfg(test)]
const GENESIS: [u8; 32] = [0; 32];

/// What an audit row says; everything here is covered by its hash.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Content<'a> {
    pub action: &'a str,
    pub user: &'a str,
    pub target: Option<&'a str>,
    pub details: Option<&'a str>,
    pub before: Option<&'a Value>,
    pub after: Option<&'a Value>,
    pub request_id: Option<&'a str>,
    /// Milliseconds; the stored timestamp is truncated to them.
    pub created_at_ms: i64,
}

impl Content<'_> {
    pub(crate) fn canonical(&self) -> Vec<u8> {
        let v = serde_json::json!([
            self.action,
            self.user,
            self.target,
            self.details,
            self.before,
            self.after,
            self.request_id,
            self.created_at_ms,
        ]);
        // Serialising a Value cannot fail.
        serde_json::to_vec(&v).unwrap_or_default()
    }

    pub(crate) fn hash(&self, prev: &[u8]) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(prev);
        h.update(self.canonical());
        h.finalize().into()
    }
}

/// One stored row, as verification reads it.
#[derive(Debug, Clone)]
pub(crate) struct StoredRow {
    pub id: i32,
    pub action: String,
    pub user: String,
    pub target: Option<String>,
    pub details: Option<String>,
    pub before: Option<Value>,
    pub after: Option<Value>,
    pub request_id: Option<String>,
    pub created_at_ms: i64,
    pub(crate) prev_hash: Option<Vec<u8>>,
    pub(crate) row_hash: Option<Vec<u8>>,
}

impl StoredRow {
    fn content(&self) -> Content<'_> {
        Content {
            action: &self.action,
            user: &self.user,
            target: self.target.as_deref(),
            details: self.details.as_deref(),
            before: self.before.as_ref(),
            after: self.after.as_ref(),
            request_id: self.request_id.as_deref(),
            created_at_ms: self.created_at_ms,
        }
    }
}

/// Walks rows in id order, carrying the expected previous hash.
#[derive(Debug, Clone)]
pub(crate) struct Verifier {
    expected_prev: Vec<u8>,
    checked: u64,
    first_bad: Option<i32>,
}

impl Verifier {
    /// Starts at the chain's anchor (genesis, or the last purged row's hash).
    pub(crate) fn new(anchor: &[u8]) -> Self {
        Self { expected_prev: anchor.to_vec(), checked: 0, first_bad: None }
    }

    /// Feeds the next row; returns false once a bad row was found.
    pub(crate) fn feed(&mut self, row: &StoredRow) -> bool {
        if self.first_bad.is_some() {
            return false;
        }
        self.checked += 1;
        let recomputed = row.content().hash(&self.expected_prev);
        let linked = row.prev_hash.as_deref() == Some(self.expected_prev.as_slice());
        let intact = row.row_hash.as_deref() == Some(recomputed.as_slice());
        if !(linked && intact) {
            self.first_bad = Some(row.id);
            return false;
        }
        self.expected_prev = recomputed.to_vec();
        true
    }

    /// Ends the walk: the last row must be the head the registry recorded,
    /// which catches a deleted tail. `head_id` is reported when it is not.
    pub(crate) fn finish(mut self, head_id: Option<i32>, head_hash: &[u8]) -> Report {
        if self.first_bad.is_none() && self.expected_prev != head_hash {
            self.first_bad = Some(head_id.unwrap_or(0));
        }
        Report { ok: self.first_bad.is_none(), checked: self.checked, first_bad_id: self.first_bad }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Report {
    pub ok: bool,
    pub checked: u64,
    pub first_bad_id: Option<i32>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(n: i32) -> (Vec<StoredRow>, Vec<u8>) {
        let mut prev = GENESIS.to_vec();
        let mut rows = Vec::new();
        for id in 1..=n {
            let after = serde_json::json!({"b": 1, "a": id});
            let mut row = StoredRow {
                id,
                action: "alias.create".into(),
                user: "alice".into(),
                target: Some(format!("frontend/a{id}")),
                details: None,
                before: None,
                after: Some(after),
                request_id: Some("r".into()),
                created_at_ms: 1_000 + i64::from(id),
                prev_hash: Some(prev.clone()),
                row_hash: None,
            };
            let h = row.content().hash(&prev);
            row.row_hash = Some(h.to_vec());
            prev = h.to_vec();
            rows.push(row);
        }
        (rows, prev)
    }

    fn verify(rows: &[StoredRow], head: &[u8]) -> Report {
        let mut v = Verifier::new(&GENESIS);
        for r in rows {
            v.feed(r);
        }
        v.finish(rows.last().map(|r| r.id), head)
    }

    #[test]
    fn intact_chain_verifies() {
        let (rows, head) = chain(5);
        assert_eq!(verify(&rows, &head), Report { ok: true, checked: 5, first_bad_id: None });
    }

    #[test]
    fn edit_delete_and_swap_are_found() {
        let (rows, head) = chain(5);
        let mut edited = rows.clone();
        edited[2].user = "mallory".into();
        assert_eq!(verify(&edited, &head).first_bad_id, Some(3));

        let mut deleted = rows.clone();
        deleted.remove(1);
        assert_eq!(verify(&deleted, &head).first_bad_id, Some(3));

        let mut swapped = rows.clone();
        swapped.swap(1, 2);
        assert_eq!(verify(&swapped, &head).first_bad_id, Some(3));

        let mut tail = rows.clone();
        tail.pop();
        assert!(!verify(&tail, &head).ok);
    }

    #[test]
    fn key_order_of_json_does_not_matter() {
        let a: Value = serde_json::from_str(r#"{"b":1,"a":2}"#).unwrap();
        let b: Value = serde_json::from_str(r#"{"a":2,"b":1}"#).unwrap();
        let c = |v| Content {
            action: "x",
            user: "u",
            target: None,
            details: None,
            before: Some(v),
            after: None,
            request_id: None,
            created_at_ms: 0,
        };
        assert_eq!(c(&a).canonical(), c(&b).canonical());
    }
}
