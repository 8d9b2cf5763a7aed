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

    /// Feeds the next stored row: its id, what its hash covers, and the two
    /// hashes stored with it. The row itself is the store's (one type for
    /// the listing and the check); the chain needs only these, so it stays
    /// free of how rows are read. Returns false once a bad row was found.
    pub(crate) fn feed(
        &mut self,
        id: i32,
        content: &Content<'_>,
        prev_hash: Option<&[u8]>,
        row_hash: Option<&[u8]>,
    ) -> bool {
        if self.first_bad.is_some() {
            return false;
        }
        self.checked += 1;
        let recomputed = content.hash(&self.expected_prev);
        let linked = prev_hash == Some(self.expected_prev.as_slice());
        let intact = row_hash == Some(recomputed.as_slice());
        if !(linked && intact) {
            self.first_bad = Some(id);
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

    /// A stored row as the tests tamper with it: id, content, stored hashes.
    type Row = (i32, Content<'static>, Vec<u8>, Vec<u8>);

    fn content(user: &'static str, id: i32) -> Content<'static> {
        Content {
            action: "alias.create",
            user,
            target: Some("frontend/a"),
            details: None,
            before: None,
            after: None,
            request_id: Some("r"),
            created_at_ms: 1_000 + i64::from(id),
        }
    }

    fn chain(n: i32) -> (Vec<Row>, Vec<u8>) {
        let mut prev = GENESIS.to_vec();
        let mut rows = Vec::new();
        for id in 1..=n {
            let content = content("alice", id);
            let hash = content.hash(&prev).to_vec();
            rows.push((id, content, prev, hash.clone()));
            prev = hash;
        }
        (rows, prev)
    }

    fn verify(rows: &[Row], head: &[u8]) -> Report {
        let mut v = Verifier::new(&GENESIS);
        for (id, content, prev, hash) in rows {
            v.feed(*id, content, Some(prev), Some(hash));
        }
        v.finish(rows.last().map(|r| r.0), head)
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
        edited[2].1.user = "mallory";
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
