//! The HTTP API (axum): routes, the request-id and metrics middleware, and
//! the handlers, which only parse, authorise, call the store and answer.
//! Errors become statuses in one place, [`error`], which keeps internal
//! causes in the log and out of response bodies.

pub mod admin;
pub mod aliases;
pub mod apply;
pub mod barrier;
pub mod edges;
pub mod error;
pub mod export;
pub mod extract;
pub mod history;
pub mod openapi;
pub mod ratelimit;
pub mod schema;
pub mod service;
pub mod state;
pub mod tokens;

use std::time::Instant;

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::HeaderValue;
use axum::middleware::{self, Next};
use axum::response::Response;
use rand::RngCore;
use tracing::Instrument;
use utoipa::OpenApi as _;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::metrics::{RequestLabels, RouteLabels};
use extract::RequestId;
pub use state::{AppState, Shared};

/// Largest request body, except imports.
pub const BODY_LIMIT: usize = 1 << 20;
/// Largest import body.
pub const IMPORT_LIMIT: usize = 64 << 20;
const REQUEST_ID: &str = "x-request-id";
const MAX_REQUEST_ID_LEN: usize = 128;

/// The one route table: every route is a handler annotated with
/// `#[utoipa::path]` (its path and method come from there), so the router
/// and the OpenAPI document ([`openapi::document`]) cannot disagree.
/// `tests/api/openapi.rs` checks that nothing is routed around it.
pub fn routes() -> OpenApiRouter<Shared> {
    let (schemas, paths, import) = routes!(aliases::import);
    let import = (schemas, paths, import.layer(DefaultBodyLimit::max(IMPORT_LIMIT)));
    let (schemas, paths, apply) = routes!(apply::apply);
    let apply = (schemas, paths, apply.layer(DefaultBodyLimit::max(IMPORT_LIMIT)));
    OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .routes(routes!(aliases::create, aliases::list))
        .routes(import)
        .routes(apply)
        .routes(routes!(aliases::get, aliases::update, aliases::deactivate))
        .routes(routes!(aliases::transfer))
        .routes(routes!(history::history))
        .routes(routes!(export::export))
        .routes(routes!(admin::conflicts))
        .routes(routes!(admin::resolve_conflict))
        .routes(routes!(admin::audit))
        .routes(routes!(admin::verify_audit))
        .routes(routes!(admin::governance, admin::put_governance))
        .routes(routes!(admin::create_key, admin::list_keys))
        .routes(routes!(admin::revoke_key))
        .routes(routes!(edges::list))
        .routes(routes!(openapi::openapi_json))
        .routes(routes!(service::resolve))
        .routes(routes!(service::health))
        .routes(routes!(service::metrics_json))
        .routes(routes!(service::status))
        .routes(routes!(service::prometheus))
        .routes(routes!(tokens::jwks))
        .routes(routes!(tokens::revoke))
}

pub fn router(state: Shared) -> Router {
    let (router, _) = routes().split_for_parts();
    router
        .merge(crate::console::router(state.clone()))
        .fallback(|| async { error::ApiError::NotFound("no such route".into()) })
        .method_not_allowed_fallback(|| async { error::ApiError::MethodNotAllowed })
        // Innermost: the barrier waits only for a write that was let in.
        .layer(middleware::from_fn_with_state(state.clone(), barrier::wait))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        // Inside `observe`: a 429 is counted, timed and has a request id.
        .layer(middleware::from_fn_with_state(state.clone(), ratelimit::limit))
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
