//! HTTP routing and answers. Everything here is synchronous: a request is
//! answered from memory without awaiting anything, so the hyper service
//! returns a ready future.
//!
//! Resolve answers write bytes rendered when the state was loaded; error
//! bodies are static. Only the service endpoints (health, status, metrics)
//! serialise JSON, and they are not on the hot path.

use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::header::{CONTENT_TYPE, WWW_AUTHENTICATE};
use http::{HeaderName, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::Full;

use crate::auth::{AuthError, Authenticator};
use crate::connections::ConnectionCap;
use crate::metrics::Metrics;
use crate::resolve::{Outcome, RESOLVE_PREFIX, resolve};
use crate::state::State;

/// Longest request target accepted (path and query); longer gets 414.
/// The longest valid resolve path is well under 400 bytes.
pub const MAX_URI_LEN: usize = 2048;
pub use crate::state::DEGRADED_AFTER_MS;

const JSON: HeaderValue = HeaderValue::from_static("application/json");
const VERSION: HeaderName = HeaderName::from_static("x-nexus-version");
/// Milliseconds since the served state was last confirmed current.
const STATE_AGE: HeaderName = HeaderName::from_static("x-nexus-state-age-ms");

// Resolve error bodies are fixed, so they are written without serialising.
const NOT_FOUND: &str = r#"{"error":"not_found","message":"no such alias"}"#;
const BAD_NAME: &str = concat!(
    r#"{"error":"bad_request","message":"context and alias must be a-z 0-9 - _ . "#,
    r#"starting with a letter or digit"}"#
);
const UNKNOWN_CONTEXT: &str = r#"{"error":"bad_request","message":"unknown context"}"#;
const FORBIDDEN: &str = r#"{"error":"forbidden","message":"token does not allow this context"}"#;

/// What the HTTP (and later QUIC) servers share: the state and the policy.
#[derive(Debug)]
pub struct App {
    pub state: Arc<State>,
    /// `None` when authentication is switched off (`EDGE_AUTH=off`).
    pub auth: Option<Authenticator>,
    pub metrics: Arc<Metrics>,
    pub connections: ConnectionCap,
    /// `PROMETHEUS_ENABLED`: whether `/metrics` is served (404 when not).
    pub prometheus: bool,
}

/// Unix time in milliseconds.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

impl App {
    /// Answers one request.
    pub fn handle<B>(&self, req: &Request<B>) -> Response<Full<Bytes>> {
        let uri_len = req.uri().path_and_query().map_or(0, |p| p.as_str().len());
        if uri_len > MAX_URI_LEN {
            return error(StatusCode::URI_TOO_LONG, "uri_too_long", "request target is too long");
        }
        let path = req.uri().path();
        let route = if let Some(target) = path.strip_prefix(RESOLVE_PREFIX) {
            Route::Resolve(target)
        } else {
            match path {
                "/api/aliases/health" => Route::Health,
                "/api/aliases/metrics" => Route::AliasMetrics,
                "/api/aliases/status" => Route::Status,
                "/metrics" if self.prometheus => Route::Prometheus,
                _ => return error(StatusCode::NOT_FOUND, "not_found", "no such route"),
            }
        };
        if req.method() != Method::GET {
            return error(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", "use GET");
        }
        match route {
            Route::Resolve(target) => self.resolve(req, target),
            Route::Health => self.health(),
            Route::AliasMetrics => self.alias_metrics(),
            Route::Status => self.status(),
            Route::Prometheus => self.prometheus(),
        }
    }

    fn resolve<B>(&self, req: &Request<B>, target: &str) -> Response<Full<Bytes>> {
        let started = Instant::now();
        let credentials = req.headers().get(http::header::AUTHORIZATION).map(|v| v.as_bytes());
        let now = now_ms();
        let outcome = resolve(&self.state, self.auth.as_ref(), target, credentials, now);
        let response = match &outcome {
            Outcome::Found { body, version } => {
                let mut r = Response::new(Full::new(body.clone()));
                let h = r.headers_mut();
                h.insert(CONTENT_TYPE, JSON);
                h.insert(VERSION, version.clone());
                // itoa into a stack buffer and one small copy: the age moves
                // every millisecond, so it cannot be rendered ahead of time.
                let age = u64::try_from(now - self.state.confirmed_at_ms()).unwrap_or(0);
                h.insert(STATE_AGE, HeaderValue::from(age));
                r
            }
            Outcome::NotFound => fixed(StatusCode::NOT_FOUND, NOT_FOUND),
            Outcome::BadName => fixed(StatusCode::BAD_REQUEST, BAD_NAME),
            Outcome::UnknownContext => fixed(StatusCode::BAD_REQUEST, UNKNOWN_CONTEXT),
            Outcome::Unauthorized(e) => unauthorized(e),
            Outcome::Forbidden => fixed(StatusCode::FORBIDDEN, FORBIDDEN),
            Outcome::Starting => {
                error(StatusCode::SERVICE_UNAVAILABLE, "starting", "no registry state loaded yet")
            }
        };
        self.metrics.record(&outcome, started.elapsed());
        response
    }

    fn health(&self) -> Response<Full<Bytes>> {
        if self.state.is_loaded() {
            json(StatusCode::OK, serde_json::json!({"status": "ok"}))
        } else {
            json(StatusCode::SERVICE_UNAVAILABLE, serde_json::json!({"status": "starting"}))
        }
    }

    fn alias_metrics(&self) -> Response<Full<Bytes>> {
        let (total, active, contexts) = self.counts();
        json(
            StatusCode::OK,
            serde_json::json!({"metrics": {
                "total_aliases": total,
                "active_aliases": active,
                "contexts": contexts,
                "response_time_ms": self.metrics.resolve_duration.mean_ms(),
                "registry_version": self.state.version(),
                "open_connections": self.connections.open(),
            }}),
        )
    }

    fn status(&self) -> Response<Full<Bytes>> {
        let (total, active, contexts) = self.counts();
        let age_s = self.age_seconds();
        let health = match age_s {
            None => "starting",
            Some(_) if self.state.is_degraded(now_ms()) => "degraded",
            Some(_) => "healthy",
        };
        json(
            StatusCode::OK,
            serde_json::json!({"status": {
                "service": "NEXUS SSOT Edge",
                "version": env!("CARGO_PKG_VERSION"),
                "health": health,
                "registry_version": self.state.version(),
                "epoch": self.state.epoch(),
                "state_age_seconds": age_s,
                "source": self.state.source().as_str(),
                "total_aliases": total,
                "active_aliases": active,
                "contexts": contexts,
                "auth": if self.auth.is_some() { "required" } else { "off" },
            }}),
        )
    }

    fn prometheus(&self) -> Response<Full<Bytes>> {
        let m = &self.metrics;
        let (total, _, contexts) = self.counts();
        m.aliases.set(i64::try_from(total).unwrap_or(i64::MAX));
        m.contexts.set(i64::try_from(contexts).unwrap_or(i64::MAX));
        m.state_version.set(i64::try_from(self.state.version()).unwrap_or(i64::MAX));
        m.state_epoch.set(i64::try_from(self.state.epoch()).unwrap_or(i64::MAX));
        m.state_age_seconds.set(self.age_seconds().unwrap_or(0.0));
        let healthy = self.state.is_loaded() && !self.state.is_degraded(now_ms());
        m.sync_state.set(i64::from(healthy));
        let mut r = Response::new(Full::new(Bytes::from(m.encode())));
        r.headers_mut().insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
        );
        r
    }

    /// (total, active, contexts) of the current table.
    fn counts(&self) -> (usize, usize, usize) {
        self.state
            .table()
            .as_ref()
            .map_or((0, 0, 0), |t| (t.len(), t.active_len(), t.context_count()))
    }

    /// Seconds since the state was last confirmed current; `None` before
    /// the first load.
    fn age_seconds(&self) -> Option<f64> {
        self.state.age_ms(now_ms()).map(|ms| ms as f64 / 1000.0)
    }
}

enum Route<'a> {
    Resolve(&'a str),
    Health,
    AliasMetrics,
    Status,
    Prometheus,
}

/// `{"error": code, "message": message}` with `status`.
pub fn error(status: StatusCode, code: &str, message: &str) -> Response<Full<Bytes>> {
    json(status, serde_json::json!({"error": code, "message": message}))
}

fn fixed(status: StatusCode, body: &'static str) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *r.status_mut() = status;
    r.headers_mut().insert(CONTENT_TYPE, JSON);
    r
}

fn unauthorized(e: &AuthError) -> Response<Full<Bytes>> {
    let mut r = error(StatusCode::UNAUTHORIZED, "unauthorized", &e.to_string());
    r.headers_mut().insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    r
}

fn json(status: StatusCode, value: serde_json::Value) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(value.to_string())));
    *r.status_mut() = status;
    r.headers_mut().insert(CONTENT_TYPE, JSON);
    r
}
