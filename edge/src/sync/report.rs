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
    /// Commit→applied lag of the recent updates (see [`super::lag`]), ms;
    /// `None` when none was applied recently.
    pub lag_ms_p50: Option<u64>,
    pub lag_ms_p99: Option<u64>,
    pub lag_ms_max: Option<u64>,
    /// Samples the lag figures come from.
    pub lag_samples: usize,
    /// Now minus the last time the source confirmed the state (`degraded`
    /// once this passes the edge's bound); `None` with no state.
    pub state_age_ms: Option<i64>,
    /// Age of the leader's newest verified statement of the head; `None`
    /// before the first (see [`crate::freshness`]).
    pub statement_age_ms: Option<i64>,
    /// Whether that age (or, before the first, the time since sync
    /// started) is past `EDGE_MAX_STALENESS`.
    pub stale: bool,
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
        let lag = applier.lag(now_ms);
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
            lag_ms_p50: lag.map(|l| l.p50_ms),
            lag_ms_p99: lag.map(|l| l.p99_ms),
            lag_ms_max: lag.map(|l| l.max_ms),
            lag_samples: lag.map_or(0, |l| l.samples),
            state_age_ms: state.age_ms(now_ms),
            statement_age_ms: state.freshness().age_ms(now_ms),
            stale: state.freshness().is_stale(now_ms),
        }
    }

    pub fn to_json(&self) -> String {
        // Plain strings and numbers: serialising cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::clock::Clock;
    use crate::metrics::Metrics;
    use crate::state::{SourceKind, State};
    use crate::sync::update::Update;

    #[test]
    fn the_report_carries_the_lag_and_the_state_age() {
        // Started at 950 ms (the delta below, committed at 975, counts).
        let clock = Clock::manual(950);
        let state = Arc::new(State::new(SourceKind::Redis));
        let mut a = Applier::new(state, Arc::new(Metrics::new()), clock.clone());
        clock.set(1_000);
        let json = |a: &Applier| {
            let r = EdgeReport::of("e1", "eu", a, clock.now_ms()).to_json();
            serde_json::from_str::<serde_json::Value>(&r).unwrap()
        };
        let empty = json(&a);
        assert!(empty["lag_ms_p99"].is_null() && empty["state_age_ms"].is_null(), "{empty}");
        let s = nexus_protocol::Snapshot {
            epoch: 1,
            version: 1,
            created_at_ms: 900,
            intended_shrink: false,
            records: vec![],
            contexts: nexus_protocol::KnownContexts::Any,
            credentials: Default::default(),
        };
        a.apply(Update::Snapshot(s));
        let d = nexus_protocol::Delta {
            epoch: 1,
            from_version: 1,
            to_version: 2,
            committed_at_ms: 975,
            upserts: vec![],
            removals: vec![],
            contexts: None,
            credentials: Default::default(),
        };
        a.apply(Update::Delta(d));
        clock.advance(300);
        let r = json(&a);
        assert_eq!((r["region"].as_str(), r["version"].as_u64()), (Some("eu"), Some(2)));
        assert_eq!((r["lag_ms_p50"].as_u64(), r["lag_ms_p99"].as_u64()), (Some(25), Some(25)));
        assert_eq!((r["lag_samples"].as_u64(), r["state_age_ms"].as_i64()), (Some(1), Some(300)));
    }
}
