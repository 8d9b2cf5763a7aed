//! HTTP routing and answers. Everything here is synchronous: a request is
//! answered from memory without awaiting anything, so the hyper service
//! returns a ready future.
//!
//! Resolve answers write bytes rendered when the state was loaded (a
//! static head, the table's canonical bytes, a static tail); refusals are
//! the compile-time bodies of [`Refusal`]. Only the service endpoints (health, status, metrics)
//! serialise JSON, and they are not on the hot path.

use std::cell::RefCell;
use std::net::IpAddr;

use bytes::Bytes;
use bytes::buf::{Buf, Chain};
use http::header::{CONTENT_TYPE, RETRY_AFTER, WWW_AUTHENTICATE};
use http::{HeaderName, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::Full;

use crate::app::App;
use crate::clock::now_ms;
use crate::metrics::sample_timer;
use crate::resolve::{Outcome, RESOLVE_PREFIX, Refusal, resolve, retry_after_secs};
use crate::table::Hit;

/// Longest request target accepted (path and query); longer gets 414.
/// The longest valid resolve path is well under 400 bytes.
pub const MAX_URI_LEN: usize = 2048;
pub use crate::state::DEGRADED_AFTER_MS;

const JSON: HeaderValue = HeaderValue::from_static("application/json");
const VERSION: HeaderName = HeaderName::from_static("x-nexus-version");
/// Milliseconds since the served state was last confirmed current.
const STATE_AGE: HeaderName = HeaderName::from_static("x-nexus-state-age-ms");
/// On every answer of a `stale` edge: the age, in seconds, of the leader's
/// newest signed statement of the head (see [`crate::freshness`]).
const STALE: HeaderName = HeaderName::from_static("x-nexus-stale");

/// What a found alias's body is made of: `HEAD`, the canonical as the
/// table holds it (escaped for JSON), `TAIL`.
const HEAD: &[u8] = br#"{"canonical_name":""#;
const TAIL: &[u8] = br#""}"#;

/// The bytes of a response body: a static head, shared bytes, a static
/// tail. Found aliases use all three (hyper copies the chunks into its
/// write buffer, or hands them to writev, without flattening them first);
/// every other body is just the middle.
pub type Wire = Chain<Chain<&'static [u8], Bytes>, &'static [u8]>;
/// The body of every response of the edge.
pub type Body = Full<Wire>;

fn body(bytes: Bytes) -> Body {
    Full::new(b"".chain(bytes).chain(b"".as_slice()))
}

impl App {
    /// Answers one request from `peer` (refused credentials are charged
    /// to its host; `None`: not known).
    pub fn handle<B>(&self, req: &Request<B>, peer: Option<IpAddr>) -> Response<Body> {
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
            Route::Resolve(target) => self.resolve(req, target, peer),
            Route::Health => self.health(),
            Route::AliasMetrics => self.alias_metrics(),
            Route::Status => self.status(),
            Route::Prometheus => self.prometheus(),
        }
    }

    /// The one wall-clock read of the request is here: expiry, the token's
    /// lifetime and the state-age header all use `now`.
    fn resolve<B>(&self, req: &Request<B>, target: &str, peer: Option<IpAddr>) -> Response<Body> {
        let timer = sample_timer();
        let credentials = req.headers().get(http::header::AUTHORIZATION).map(|v| v.as_bytes());
        let now = now_ms();
        let guard = self.state.table();
        let pinned = guard.as_ref().map(|t| t.pin());
        let outcome = resolve(pinned.as_ref(), self.auth.as_ref(), target, credentials, peer, now);
        let mut response = match &outcome {
            Outcome::Found(hit) => found(hit, now - self.state.confirmed_at_ms()),
            Outcome::Unauthorized(e) => {
                let mut r =
                    error(StatusCode::UNAUTHORIZED, Refusal::Unauthorized.code(), &e.to_string());
                r.headers_mut().insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
                r
            }
            Outcome::Limited(wait) => {
                let mut r = refused(Refusal::RateLimited);
                r.headers_mut().insert(RETRY_AFTER, retry_after(*wait));
                r
            }
            Outcome::Refused(r) => refused(*r),
        };
        // Three relaxed loads on the path; a header only while stale, and a
        // 503 for a hit in a context the operator wants refused then.
        if self.state.freshness().is_stale(now) {
            let context = target.split_once('/').map_or(target, |(c, _)| c);
            if matches!(outcome, Outcome::Found(_)) && self.state.freshness().refuses(context, now)
            {
                response = refused(Refusal::Stale);
                let age_s = self.state.freshness().age_ms(now).map_or(-1, |ms| ms / 1000);
                response.headers_mut().insert(STALE, HeaderValue::from(age_s));
                self.metrics.record(&Outcome::Refused(Refusal::Stale), None);
                return response;
            }
            let age_s = self.state.freshness().age_ms(now).map_or(-1, |ms| ms / 1000);
            response.headers_mut().insert(STALE, HeaderValue::from(age_s));
        }
        self.metrics.record(&outcome, timer.map(|t| t.elapsed()));
        response
    }

    fn health(&self) -> Response<Body> {
        let now = now_ms();
        if self.state.is_loaded() && self.state.freshness().is_stale(now) {
            // Still serving (200), but saying so: Redis may be frozen.
            let age_s = self.state.freshness().age_ms(now).map(|ms| ms / 1000);
            json(
                StatusCode::OK,
                serde_json::json!({"status": "stale", "statement_age_seconds": age_s}),
            )
        } else if self.state.is_loaded() {
            json(StatusCode::OK, serde_json::json!({"status": "ok"}))
        } else {
            json(StatusCode::SERVICE_UNAVAILABLE, serde_json::json!({"status": "starting"}))
        }
    }

    fn alias_metrics(&self) -> Response<Body> {
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

    fn status(&self) -> Response<Body> {
        let (total, active, contexts) = self.counts();
        let age_s = self.age_seconds();
        let now = now_ms();
        let freshness = self.state.freshness();
        let health = match age_s {
            None => "starting",
            Some(_) if freshness.is_stale(now) => "stale",
            Some(_) if self.state.is_degraded(now) => "degraded",
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
                "statement_age_seconds": freshness.age_ms(now).map(|ms| ms as f64 / 1000.0),
                "source": self.state.source().as_str(),
                "total_aliases": total,
                "active_aliases": active,
                "contexts": contexts,
                "auth": self.auth.as_ref().map_or_else(
                    || serde_json::json!({"mode": "off"}),
                    crate::auth::Authenticator::describe,
                ),
            }}),
        )
    }

    fn prometheus(&self) -> Response<Body> {
        let m = &self.metrics;
        let (total, _, contexts) = self.counts();
        m.aliases.set(i64::try_from(total).unwrap_or(i64::MAX));
        m.contexts.set(i64::try_from(contexts).unwrap_or(i64::MAX));
        m.state_version.set(i64::try_from(self.state.version()).unwrap_or(i64::MAX));
        m.state_epoch.set(i64::try_from(self.state.epoch()).unwrap_or(i64::MAX));
        m.state_age_seconds.set(self.age_seconds().unwrap_or(0.0));
        let now = now_ms();
        let healthy = self.state.is_loaded() && !self.state.is_degraded(now);
        m.sync_state.set(i64::from(healthy));
        let freshness = self.state.freshness();
        m.statement_age_seconds.set(freshness.age_ms(now).map_or(0.0, |ms| ms as f64 / 1000.0));
        m.stale.set(i64::from(freshness.is_stale(now)));
        let mut r = Response::new(body(Bytes::from(m.encode())));
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
pub fn error(status: StatusCode, code: &str, message: &str) -> Response<Body> {
    json(status, serde_json::json!({"error": code, "message": message}))
}

/// 200 with the alias: the body from the table's bytes, the version header
/// from its digits, the state age from a per-thread cache.
fn found(hit: &Hit<'_>, age_ms: i64) -> Response<Body> {
    let mut r = Response::new(Full::new(HEAD.chain(hit.canonical_json_bytes()).chain(TAIL)));
    let h = r.headers_mut();
    h.insert(CONTENT_TYPE, JSON);
    // The table wrote plain decimal digits; the check cannot fail.
    if let Ok(v) = HeaderValue::from_maybe_shared(hit.version_digits()) {
        h.insert(VERSION, v);
    }
    h.insert(STATE_AGE, age_header(u64::try_from(age_ms).unwrap_or(0)));
    r
}

thread_local! {
    /// The last state-age header rendered on this thread. The age moves
    /// every millisecond, so it cannot be rendered when the state is
    /// applied; requests within the same millisecond share one rendering
    /// (cloning a header value is a reference-count increment), so a busy
    /// worker allocates it at most once per millisecond, not per request.
    static AGE: RefCell<(u64, HeaderValue)> =
        const { RefCell::new((0, HeaderValue::from_static("0"))) };
}

fn age_header(age_ms: u64) -> HeaderValue {
    AGE.with(|cached| {
        let mut cached = cached.borrow_mut();
        if cached.0 != age_ms {
            *cached = (age_ms, HeaderValue::from(age_ms));
        }
        cached.1.clone()
    })
}

/// A refusal: its status and its compile-time body, from the one table.
fn retry_after(wait: std::time::Duration) -> HeaderValue {
    HeaderValue::from(retry_after_secs(wait))
}

fn refused(refusal: Refusal) -> Response<Body> {
    let mut r = Response::new(body(Bytes::from_static(refusal.body().as_bytes())));
    *r.status_mut() =
        StatusCode::from_u16(refusal.status().code()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    r.headers_mut().insert(CONTENT_TYPE, JSON);
    r
}

fn json(status: StatusCode, value: serde_json::Value) -> Response<Body> {
    let mut r = Response::new(body(Bytes::from(value.to_string())));
    *r.status_mut() = status;
    r.headers_mut().insert(CONTENT_TYPE, JSON);
    r
}
