//! The edge report written to `P:edges` every heartbeat, so the control
//! plane can show the fleet and spot a stuck edge.

use serde::Serialize;

use super::apply::Applier;

/// The JSON value of this edge's field in `P:edges` (contract fields).
#[derive(Debug, Clone, Serialize)]
pub struct EdgeReport<'a> {
    pub id: &'a str,
    pub region: &'a str,
    pub epoch: u64,
    pub version: u64,
    pub content_hash: String,
    pub applied_at_ms: i64,
    pub heartbeat_ms: i64,
    pub last_rejection: Option<RejectionReport<'a>>,
    pub source: &'static str,
}

#[derive(Debug, Clone, Serialize)]
pub struct RejectionReport<'a> {
    pub at_ms: i64,
    pub reason: &'a str,
}

impl<'a> EdgeReport<'a> {
    /// The report of `applier`'s state at `now_ms`.
    pub fn of(id: &'a str, region: &'a str, applier: &'a Applier, now_ms: i64) -> Self {
        let state = applier.state();
        Self {
            id,
            region,
            epoch: state.epoch(),
            version: state.version(),
            content_hash: hex::encode(applier.content_hash()),
            applied_at_ms: applier.applied_at_ms(),
            heartbeat_ms: now_ms,
            last_rejection: applier
                .last_rejection()
                .map(|r| RejectionReport { at_ms: r.at_ms, reason: &r.reason }),
            source: state.source().as_str(),
        }
    }

    pub fn to_json(&self) -> String {
        // Plain strings and numbers: serialising cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }
}
