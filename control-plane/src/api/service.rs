//! The service endpoints the edges also answer, here read from the database,
//! and the Prometheus exposition.

use std::time::Instant;

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header::CONTENT_TYPE};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use serde_json::json;

use super::aliases::parse_key;
use super::error::{ApiError, INTERNAL, STORE_UNAVAILABLE};
use super::extract::{Caller, Path};
use super::state::Shared;
use crate::domain::rbac::{Action, Scope};
use crate::report::Chain;

/// Checked in the order of the resolve contract (design.md), the same on
/// the edge: credentials (the `Caller` extractor, 401) → name syntax (400)
/// → the credential's scope (403, so a scoped caller learns nothing about
/// contexts outside it, configured or not) → context configured (400
/// `unknown_context`) → alias (404).
pub async fn resolve(
    State(st): State<Shared>,
    caller: Caller,
    Path((context, alias)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let key = parse_key(&context, &alias)?;
    caller.may(Action::Resolve, Scope::Context(key.context.as_str()))?;
    if !st.governance().knows(&key.context) {
        return Err(ApiError::UnknownContext(format!("unknown context {}", key.context)));
    }
    let (canonical, version) = st.store.resolve(&key).await?;
    let Some(canonical) = canonical else {
        return Err(ApiError::NotFound(format!("no alias {}/{}", key.context, key.alias)));
    };
    let mut res = axum::Json(json!({"canonical_name": canonical})).into_response();
    res.headers_mut().insert("x-nexus-version", HeaderValue::from(version));
    Ok(res)
}

/// Public: a failure is logged with its cause and answered with the kind
/// only.
pub async fn health(State(st): State<Shared>) -> Response {
    match st.store.ping().await {
        Ok(()) => axum::Json(json!({"status": "ok"})).into_response(),
        Err(e) => {
            tracing::warn!(error = %Chain(&e), "health: store ping failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                axum::Json(json!({
                    "status": "unavailable",
                    "error": "store_unavailable",
                    "message": STORE_UNAVAILABLE,
                })),
            )
                .into_response()
        }
    }
}

pub async fn metrics_json(State(st): State<Shared>) -> Result<Response, ApiError> {
    let t = Instant::now();
    let s = st.store.stats().await?;
    let ms = t.elapsed().as_secs_f64() * 1e3;
    Ok(axum::Json(json!({"metrics": {
        "total_aliases": s.active_aliases + s.inactive_aliases,
        "active_aliases": s.active_aliases,
        "inactive_aliases": s.inactive_aliases,
        "open_conflicts": s.open_conflicts,
        "audit_rows": s.audit_rows,
        "registry_version": s.version,
        "response_time_ms": ms,
    }}))
    .into_response())
}

pub async fn status(State(st): State<Shared>) -> Response {
    let stats = st.store.stats().await;
    let base = json!({
        "service": "nexus-control-plane",
        "version": env!("CARGO_PKG_VERSION"),
        "uptime_seconds": st.started.elapsed().as_secs(),
    });
    let mut body = base;
    // Publisher state (leader, published version, last error): sync state.
    body["propagation"] = json!(st.propagation.state());
    match stats {
        Ok(s) => {
            body["health"] = json!("healthy");
            body["registry_epoch"] = json!(s.epoch);
            body["registry_version"] = json!(s.version);
            body["registry_age_seconds"] = json!((Utc::now() - s.updated_at).num_seconds().max(0));
            (StatusCode::OK, axum::Json(json!({"status": body}))).into_response()
        }
        Err(e) => {
            tracing::warn!(error = %Chain(&e), "status: reading the registry failed");
            body["health"] = json!("degraded");
            body["message"] = json!(if e.is_unavailable() { STORE_UNAVAILABLE } else { INTERNAL });
            (StatusCode::SERVICE_UNAVAILABLE, axum::Json(json!({"status": body}))).into_response()
        }
    }
}

pub async fn prometheus(State(st): State<Shared>) -> Response {
    if !st.prometheus_enabled.load(std::sync::atomic::Ordering::Relaxed) {
        return ApiError::NotFound("no such route (PROMETHEUS_ENABLED=false)".into())
            .into_response();
    }
    // A scrape still answers with the database down: `nexus_cp_db_up 0`.
    let stats = st
        .store
        .stats()
        .await
        .map_err(|e| tracing::debug!(error = %Chain(&e), "metrics: reading the registry failed"))
        .ok();
    st.metrics.observe(stats.as_ref());
    let mut res = st.metrics.encode().into_response();
    res.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
    );
    res
}
