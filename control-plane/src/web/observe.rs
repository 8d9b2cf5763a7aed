//! What every request passes first: an id (the caller's `x-request-id`
//! when sane, else a fresh one) on its span, its answer and its log line,
//! and its count and time by route in the metrics.

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use rand::RngCore;
use tracing::Instrument;

use super::state::Shared;
use crate::metrics::{RequestLabels, RouteLabels};

const REQUEST_ID: &str = "x-request-id";
const MAX_REQUEST_ID_LEN: usize = 128;

/// The request id [`observe`] gave the request, for the audit rows its
/// handler writes.
#[derive(Debug, Clone)]
pub(crate) struct RequestId(pub(crate) String);

/// Gives every request an id (the caller's `x-request-id` when sane, else a
/// fresh one), echoes it, and counts and times the request by route.
pub(crate) async fn observe(State(st): State<Shared>, mut req: Request, next: Next) -> Response {
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
