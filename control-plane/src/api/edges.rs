//! `GET /api/admin/edges`: the fleet as the edges report it in `P:edges`,
//! each with how far it is behind the registry, so a silently stuck edge
//! shows up.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use super::error::ApiError;
use super::extract::Caller;
use super::state::Shared;
use crate::domain::rbac::{Action, Scope};

/// Most edges listed; a fleet larger than this needs paging first.
pub const MAX_EDGES: usize = 10_000;
/// Largest report read; edges write a few hundred bytes.
const MAX_REPORT_LEN: usize = 8 << 10;
/// An edge whose heartbeat (every 2 s by default) is older than this is
/// stale: down, partitioned, or stuck.
pub const STALE_AFTER_MS: i64 = 10_000;

/// What an edge writes every heartbeat (the propagation contract).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, ToSchema)]
pub struct EdgeReport {
    pub id: String,
    pub region: String,
    pub epoch: u64,
    pub version: u64,
    pub content_hash: String,
    pub applied_at_ms: i64,
    pub heartbeat_ms: i64,
    pub last_rejection: Option<Rejection>,
    pub source: String,
    #[serde(default)]
    pub lag_ms_p99: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, ToSchema)]
pub struct Rejection {
    pub at_ms: i64,
    pub reason: String,
}

/// One edge as the admin sees it.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct EdgeView {
    #[serde(flatten)]
    pub report: EdgeReport,
    pub last_seen_ms: i64,
    pub seen_seconds_ago: f64,
    /// Versions behind the registry; `None` when the edge is on another
    /// epoch (it will take a snapshot, or it is pointed at another
    /// registry).
    pub versions_behind: Option<u64>,
    pub epoch_matches: bool,
    pub stale: bool,
}

/// Judges one report against the registry head at `now_ms`. Pure.
pub fn view(report: EdgeReport, epoch: u64, version: u64, now_ms: i64) -> EdgeView {
    let epoch_matches = report.epoch == epoch;
    let age_ms = now_ms.saturating_sub(report.heartbeat_ms).max(0);
    EdgeView {
        last_seen_ms: report.heartbeat_ms,
        seen_seconds_ago: age_ms as f64 / 1e3,
        versions_behind: epoch_matches.then(|| version.saturating_sub(report.version)),
        epoch_matches,
        stale: age_ms > STALE_AFTER_MS,
        report,
    }
}

/// The fleet: every edge's applied version, how far behind, last seen.
#[utoipa::path(
    get,
    path = "/api/admin/edges",
    operation_id = "list_edges",
    tag = "admin",
    responses(
        (status = 200, description = "The fleet", body = super::schema::FleetSchema),
        (status = 503, description = "The registry database or Redis is unavailable \
                                      (`store_unavailable`)", body = super::error::ErrorBody),
    )
)]
pub async fn list(State(st): State<Shared>, caller: Caller) -> Result<Response, ApiError> {
    caller.may(Action::ReadAliases, Scope::Global)?;
    let head = st.store.registry_head().await?;
    let Some(bus) = st.propagation.bus() else {
        return Ok(axum::Json(json!({
            "items": [],
            "registry": {"epoch": head.epoch, "version": head.version},
            "propagation": "disabled",
            "message": "REDIS_URL is not set: this control plane does not see the fleet",
        }))
        .into_response());
    };
    let raw = bus.edge_reports(MAX_EDGES).await.map_err(ApiError::Fleet)?;
    let now = Utc::now().timestamp_millis();
    let mut items = Vec::with_capacity(raw.len());
    let mut unreadable = Vec::new();
    for (id, text) in raw {
        let parsed = (text.len() <= MAX_REPORT_LEN)
            .then(|| serde_json::from_str::<EdgeReport>(&text).ok())
            .flatten();
        match parsed {
            Some(report) => items.push(view(report, head.epoch, head.version, now)),
            None => unreadable.push(id),
        }
    }
    let stale = items.iter().filter(|e| e.stale).count();
    let behind = items.iter().filter(|e| e.versions_behind != Some(0)).count();
    Ok(axum::Json(json!({
        "items": items,
        "registry": {"epoch": head.epoch, "version": head.version},
        "summary": {"edges": items.len(), "stale": stale, "behind": behind},
        "unreadable": unreadable,
    }))
    .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(epoch: u64, version: u64, heartbeat_ms: i64) -> EdgeReport {
        serde_json::from_value(json!({
            "id": "edge-1", "region": "eu-west", "epoch": epoch, "version": version,
            "content_hash": "ab", "applied_at_ms": 1, "heartbeat_ms": heartbeat_ms,
            "last_rejection": null, "source": "redis"
        }))
        .unwrap()
    }

    #[test]
    fn behind_and_stale_follow_the_registry_and_the_clock() {
        let v = view(report(7, 90, 50_000), 7, 100, 55_000);
        assert_eq!(v.versions_behind, Some(10));
        assert!(!v.stale && v.epoch_matches);
        let old = view(report(7, 100, 1_000), 7, 100, 1_000 + STALE_AFTER_MS + 1);
        assert!(old.stale);
        assert_eq!(old.versions_behind, Some(0));
        let other = view(report(8, 500, 1_000), 7, 100, 1_000);
        assert_eq!(other.versions_behind, None);
        assert!(!other.epoch_matches);
    }

    #[test]
    fn the_view_keeps_every_reported_field() {
        let v = serde_json::to_value(view(report(7, 1, 0), 7, 1, 0)).unwrap();
        for field in ["id", "region", "version", "content_hash", "source", "last_seen_ms", "stale"]
        {
            assert!(v.get(field).is_some(), "{field} in {v}");
        }
    }
}
