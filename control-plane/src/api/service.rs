//! The service endpoints the edges also answer, here read from the database,
//! and the Prometheus exposition.

use std::time::Instant;

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header::CONTENT_TYPE};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use serde::Deserialize;
use serde_json::json;
use utoipa::IntoParams;

use super::schema::{HealthSchema, MetricsSchema, ResolvedSchema, StatusSchema};
use crate::domain::rbac::Action;
use crate::report::Chain;
use crate::web::Shared;
use crate::web::caller::Caller;
use crate::web::error::{ApiError, ErrorBody, INTERNAL, STORE_UNAVAILABLE};
use crate::web::extract::{AliasPath, Query};
use crate::web::fleet::{self as edges, Fleet};
use crate::web::history::{self, AsOf};

/// `?as_of=`; any other parameter is ignored, as it always was.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct ResolveQuery {
    /// A registry version (digits) or an RFC 3339 time: the answer as the
    /// registry stood then (control plane only; 400 above the head or in
    /// the future, 410 before the history kept).
    #[param(example = "2026-01-05T14:03:00Z")]
    as_of: Option<String>,
}

/// Checked in the order of the resolve contract (design.md), the same on
/// the edge: credentials (the `Caller` extractor, 401) → name syntax (400)
/// → the credential's scope (403, so a scoped caller learns nothing about
/// contexts outside it, configured or not) → context configured (400
/// `unknown_context`) → alias (404). With `as_of`, the same order, then
/// the past state ([`history::resolve_as_of`]); the context check is
/// against the rules in force now.
#[utoipa::path(
    get,
    path = "/api/aliases/resolve/{context}/{alias}",
    tag = "service",
    params(("context" = String, Path, example = "frontend"),
           ("alias" = String, Path, example = "user-profile"),
           ResolveQuery),
    responses(
        (status = 200, description = "Resolved", body = ResolvedSchema,
         headers(("x-nexus-version" = i64, description = "Registry version of the answer"))),
        (status = 400, description = "Bad name or as_of, as_of in the future or above the \
                                      head (`bad_request`), or unknown context \
                                      (`unknown_context`)", body = ErrorBody),
        (status = 404, description = "No such alias, then or now (`not_found`)", body = ErrorBody),
        (status = 410, description = "as_of is older than the history kept (`gone`)",
         body = ErrorBody),
    )
)]
pub(crate) async fn resolve(
    State(st): State<Shared>,
    caller: Caller,
    AliasPath(key): AliasPath,
    Query(q): Query<ResolveQuery>,
) -> Result<Response, ApiError> {
    caller.may_on(Action::Resolve, &key)?;
    if !st.governance().knows(&key.context) {
        return Err(ApiError::UnknownContext(format!("unknown context {}", key.context)));
    }
    if let Some(as_of) = q.as_of {
        return history::resolve_as_of(&st, &key, AsOf::parse(&as_of)?).await;
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
#[utoipa::path(
    get,
    path = "/api/aliases/health",
    tag = "service",
    security(()),
    responses(
        (status = 200, description = "The store answers", body = HealthSchema),
        (status = 503, description = "The store does not answer", body = HealthSchema,
         example = json!({"status": "unavailable", "error": "store_unavailable",
                          "message": "the registry database is unavailable; retry later"})),
    )
)]
pub(crate) async fn health(State(st): State<Shared>) -> Response {
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

/// Public counts.
#[utoipa::path(
    get,
    path = "/api/aliases/metrics",
    tag = "service",
    security(()),
    responses(
        (status = 200, description = "Counts", body = MetricsSchema),
        (status = 503, description = "The store is unavailable (`store_unavailable`)",
         body = ErrorBody),
    )
)]
pub(crate) async fn metrics_json(State(st): State<Shared>) -> Result<Response, ApiError> {
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

/// Public: the service, the registry head and its age, the publisher.
#[utoipa::path(
    get,
    path = "/api/aliases/status",
    tag = "service",
    security(()),
    responses(
        (status = 200, description = "Healthy", body = StatusSchema),
        (status = 503, description = "Degraded: the registry could not be read", body = StatusSchema),
    )
)]
pub(crate) async fn status(State(st): State<Shared>) -> Response {
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

/// Prometheus exposition (OpenMetrics text); 404 when
/// `PROMETHEUS_ENABLED=false`.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "service",
    security(()),
    responses(
        (status = 200, description = "OpenMetrics text",
         content_type = "application/openmetrics-text; version=1.0.0; charset=utf-8", body = String),
        (status = 404, description = "Disabled (`not_found`)", body = ErrorBody),
    )
)]
pub(crate) async fn prometheus(State(st): State<Shared>) -> Response {
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
    // The fleet gauges, from the edges' reports against the head just read;
    // without the head or the bus, none (rather than figures judged
    // against nothing). A bus known to be down is not asked: the scrape
    // would wait for the command timeout.
    let fleet = match (&stats, st.propagation.bus()) {
        (Some(s), Some(bus)) if bus.transport().is_connected() => {
            let (epoch, version) =
                (u64::try_from(s.epoch).unwrap_or(0), u64::try_from(s.version).unwrap_or(0));
            Fleet::read(bus, &st.sightings, epoch, version)
                .await
                .map_err(
                    |e| tracing::debug!(error = %Chain(&e), "metrics: reading the fleet failed"),
                )
                .ok()
        }
        _ => None,
    };
    let body = st.metrics.encode_with_fleet(|gauges| {
        if let Some(fleet) = &fleet {
            edges::export(gauges, fleet);
        }
    });
    let mut res = body.into_response();
    res.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
    );
    res
}
