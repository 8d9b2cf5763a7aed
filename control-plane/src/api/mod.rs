//! The HTTP API (axum): routes, the request-id and metrics middleware, and
//! the handlers, which only parse, authorise, call the store and answer.
//! Errors become statuses in one place, [`error`], which keeps internal
//! causes in the log and out of response bodies.

pub mod admin;
pub mod aliases;
pub mod edges;
pub mod error;
pub mod extract;
pub mod service;
pub mod state;

use std::time::Instant;

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::HeaderValue;
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post};
use rand::RngCore;
use tracing::Instrument;

use crate::metrics::{RequestLabels, RouteLabels};
use extract::RequestId;
pub use state::{AppState, Shared};

/// Largest request body, except imports.
pub const BODY_LIMIT: usize = 1 << 20;
/// Largest import body.
pub const IMPORT_LIMIT: usize = 64 << 20;
const REQUEST_ID: &str = "x-request-id";
const MAX_REQUEST_ID_LEN: usize = 128;

pub fn router(state: Shared) -> Router {
    let import = post(aliases::import).layer(DefaultBodyLimit::max(IMPORT_LIMIT));
    Router::new()
        .route("/api/admin/aliases", post(aliases::create).get(aliases::list))
        .route("/api/admin/aliases/import", import)
        .route(
            "/api/admin/aliases/{context}/{alias}",
            get(aliases::get).put(aliases::update).delete(aliases::deactivate),
        )
        .route("/api/admin/conflicts", get(admin::conflicts))
        .route("/api/admin/conflicts/{id}/resolve", post(admin::resolve_conflict))
        .route("/api/admin/audit", get(admin::audit))
        .route("/api/admin/audit/verify", get(admin::verify_audit))
        .route("/api/admin/governance", get(admin::governance).put(admin::put_governance))
        .route("/api/admin/api-keys", post(admin::create_key))
        .route("/api/admin/api-keys/{id}", axum::routing::delete(admin::revoke_key))
        .route("/api/admin/edges", get(edges::list))
        .route("/api/aliases/resolve/{context}/{alias}", get(service::resolve))
        .route("/api/aliases/health", get(service::health))
        .route("/api/aliases/metrics", get(service::metrics_json))
        .route("/api/aliases/status", get(service::status))
        .route("/metrics", get(service::prometheus))
        .fallback(|| async { error::ApiError::NotFound("no such route".into()) })
        .method_not_allowed_fallback(|| async { error::ApiError::MethodNotAllowed })
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(middleware::from_fn_with_state(state.clone(), observe))
        .with_state(state)
}

/// Gives every request an id (the caller's `x-request-id` when sane, else a
/// fresh one), echoes it, and counts and times the request by route.
async fn observe(State(st): State<Shared>, mut req: Request, next: Next) -> Response {
    let started = Instant::now();
    let id = req
        .headers()
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= MAX_REQUEST_ID_LEN)
        .filter(|v| v.bytes().all(|b| b.is_ascii_graphic()))
        .map(str::to_owned)
        .unwrap_or_else(|| {
            let mut b = [0u8; 16];
            rand::rng().fill_bytes(&mut b);
            hex::encode(b)
        });
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = req.method().as_str().to_owned();
    req.extensions_mut().insert(RequestId(id.clone()));
    // Whatever the handler logs (an error's cause chain, above all) carries
    // the id the client was given, so a 500 can be found in the log.
    let span = tracing::info_span!("request", request_id = %id);
    let mut res = next.run(req).instrument(span).await;
    if let Ok(v) = HeaderValue::from_str(&id) {
        res.headers_mut().insert(REQUEST_ID, v);
    }
    let status = res.status().as_u16();
    let elapsed = started.elapsed();
    // Never the headers: they carry credentials.
    tracing::info!(
        request_id = %id,
        %method,
        route = %route,
        status,
        ms = elapsed.as_secs_f64() * 1e3,
        "request"
    );
    st.metrics
        .requests
        .get_or_create(&RequestLabels { route: route.clone(), method, status })
        .inc();
    st.metrics.duration.get_or_create(&RouteLabels { route }).observe(elapsed.as_secs_f64());
    res
}
