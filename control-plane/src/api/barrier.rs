//! The publish barrier: any write may add `?wait=applied` to be answered
//! only once the edges serve it — read-your-writes for deploy pipelines.
//!
//! - `wait=applied`: wait for the live edges (heard within
//!   [`STALE_AFTER_MS`](crate::web::fleet::STALE_AFTER_MS) by this control
//!   plane's clock, whatever the edge's own clock says) to report the
//!   registry's `(epoch, version)` or later, as read right after the write
//!   committed (a concurrent write can only make the wait longer, never
//!   end it early);
//! - `region=R`: only the live edges of region `R`;
//! - `quorum=F` (0 < F ≤ 1, default 1): enough when `ceil(F × live)` have;
//! - `timeout=D` (`500ms`, `5s`; default 10 s, at most 60 s).
//!
//! One middleware for every write route: it takes these parameters out of
//! the query before the handler sees it (handlers refuse unknown
//! parameters), runs the write, and waits only when the write succeeded.
//! The answer is the write's own, with header `x-nexus-barrier: applied` or
//! `timeout` and a `barrier` object merged into its JSON body (a body-less
//! answer, such as a deactivation's 204, becomes 200 with only that
//! object): `{"reached", "version", "epoch", "live", "required", "applied": [ids],
//! "stragglers": [{id, region, version}], "waited_ms"}`. When too few
//! edges applied it in time, or no live edge is there to confirm it, the
//! status is **202 Accepted**: the write is committed, just not yet
//! served. Edges report right after applying a change, so the wait is one
//! propagation plus one report write. Invalid parameters are 400 before
//! anything is written.

use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, Uri, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::web::Shared;
use crate::web::error::ApiError;
use crate::web::fleet::{EdgeView, Fleet};

const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
const MAX_TIMEOUT: Duration = Duration::from_secs(60);
/// How often the fleet hash is read while waiting.
const POLL: Duration = Duration::from_millis(10);
/// Largest write answer merged with the barrier's result.
const MAX_ANSWER: usize = 16 << 20;
/// The query parameters that belong to the barrier, not the handler.
const PARAMS: [&str; 4] = ["wait", "region", "quorum", "timeout"];

/// What a write asked to wait for.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Barrier {
    pub region: Option<String>,
    pub quorum: f64,
    pub timeout: Duration,
}

/// Splits `query` into the barrier (`None` without `wait`) and what the
/// handler gets.
pub(crate) fn parse(query: &str) -> Result<(Option<Barrier>, String), ApiError> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query)
        .map_err(|e| ApiError::BadRequest(format!("query string: {e}")))?;
    let (ours, rest): (Vec<_>, Vec<_>) =
        pairs.into_iter().partition(|(k, _)| PARAMS.contains(&k.as_str()));
    let rest = serde_urlencoded::to_string(&rest).unwrap_or_default();
    let get = |name: &str| ours.iter().rev().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    match get("wait") {
        None if ours.is_empty() => return Ok((None, rest)),
        None => {
            return Err(ApiError::BadRequest(
                "region, quorum and timeout go with wait=applied".into(),
            ));
        }
        Some("applied") => {}
        Some(other) => {
            return Err(ApiError::BadRequest(format!(
                "wait={other:?}: the only barrier is wait=applied"
            )));
        }
    }
    let quorum = match get("quorum") {
        None => 1.0,
        Some(q) => q
            .parse::<f64>()
            .ok()
            .filter(|q| *q > 0.0 && *q <= 1.0)
            .ok_or_else(|| ApiError::BadRequest(format!("quorum={q:?}: want 0 < F <= 1")))?,
    };
    let timeout = match get("timeout") {
        None => DEFAULT_TIMEOUT,
        Some(t) => duration(t).filter(|d| !d.is_zero() && *d <= MAX_TIMEOUT).ok_or_else(|| {
            ApiError::BadRequest(format!("timeout={t:?}: want e.g. 500ms or 5s, at most 60s"))
        })?,
    };
    let region = match get("region") {
        Some("") => return Err(ApiError::BadRequest("region=: name a region".into())),
        r => r.map(str::to_owned),
    };
    Ok((Some(Barrier { region, quorum, timeout }), rest))
}

/// `Nms` or `Ns` (whole numbers).
fn duration(text: &str) -> Option<Duration> {
    if let Some(ms) = text.strip_suffix("ms") {
        return ms.parse().ok().map(Duration::from_millis);
    }
    text.strip_suffix('s')?.parse().ok().map(Duration::from_secs)
}

/// The middleware (see the module notes).
pub(crate) async fn wait(State(st): State<Shared>, mut req: Request, next: Next) -> Response {
    if matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS) {
        return next.run(req).await;
    }
    let Some(query) = req.uri().query() else { return next.run(req).await };
    let (barrier, rest) = match parse(query) {
        Ok((Some(b), rest)) => (b, rest),
        Ok((None, _)) => return next.run(req).await,
        Err(e) => return e.into_response(),
    };
    let path = req.uri().path();
    let target = if rest.is_empty() { path.to_owned() } else { format!("{path}?{rest}") };
    match target.parse::<Uri>() {
        Ok(uri) => *req.uri_mut() = uri,
        Err(e) => return ApiError::BadRequest(format!("query string: {e}")).into_response(),
    }
    let res = next.run(req).await;
    if !res.status().is_success() {
        return res;
    }
    let outcome = match await_edges(&st, &barrier).await {
        Ok(o) => o,
        Err(e) => return e.into_response(),
    };
    merge(res, outcome).await
}

/// What the wait found.
struct Outcome {
    reached: bool,
    body: Value,
}

/// Polls the fleet until enough live edges hold the registry head, or the
/// timeout passes.
async fn await_edges(st: &Shared, barrier: &Barrier) -> Result<Outcome, ApiError> {
    let started = Instant::now();
    let head = st.store.registry_head().await?;
    let Some(bus) = st.propagation.bus() else {
        let body = json!({"reached": false, "epoch": head.epoch, "version": head.version, "live": 0,
            "required": 0, "applied": [], "stragglers": [], "waited_ms": 0,
            "message": "REDIS_URL is not set: no edge can confirm the write"});
        return Ok(Outcome { reached: false, body });
    };
    loop {
        let fleet = Fleet::read(bus, &st.sightings, head.epoch, head.version)
            .await
            .map_err(ApiError::Fleet)?;
        let live: Vec<&EdgeView> = fleet
            .items
            .iter()
            .filter(|e| !e.stale)
            .filter(|e| barrier.region.as_ref().is_none_or(|r| *r == e.report.region))
            .collect();
        let (applied, stragglers): (Vec<&EdgeView>, Vec<&EdgeView>) =
            live.iter().partition(|e| e.epoch_matches && e.report.version >= head.version);
        // At least one; `ceil` of a product that is exact (0.9 × 10) must
        // not round up past it.
        let required = match live.len() {
            0 => 0,
            n => ((barrier.quorum * n as f64) - 1e-9).ceil().max(1.0) as usize,
        };
        let reached = !live.is_empty() && applied.len() >= required;
        // No live edge: nothing can confirm the write, so waiting is no use.
        if reached || live.is_empty() || started.elapsed() >= barrier.timeout {
            let body = json!({
                "reached": reached,
                "epoch": head.epoch,
                "version": head.version,
                "region": barrier.region,
                "quorum": barrier.quorum,
                "live": live.len(),
                "required": required,
                "applied": applied.iter().map(|e| &e.report.id).collect::<Vec<_>>(),
                "stragglers": stragglers.iter().map(|e| json!({"id": e.report.id,
                    "region": e.report.region, "epoch": e.report.epoch,
                    "version": e.report.version})).collect::<Vec<_>>(),
                "waited_ms": started.elapsed().as_millis() as u64,
            });
            return Ok(Outcome { reached, body });
        }
        tokio::time::sleep(POLL).await;
    }
}

/// The write's answer with the barrier's result in it.
async fn merge(res: Response, outcome: Outcome) -> Response {
    let (mut parts, body) = res.into_parts();
    let bytes = axum::body::to_bytes(body, MAX_ANSWER).await.unwrap_or_default();
    let mut value = if bytes.is_empty() {
        json!({})
    } else {
        serde_json::from_slice::<Value>(&bytes).unwrap_or_else(|_| json!({}))
    };
    match value.as_object_mut() {
        Some(map) => {
            map.insert("barrier".into(), outcome.body);
        }
        None => value = json!({"result": value, "barrier": outcome.body}),
    }
    if !outcome.reached {
        parts.status = StatusCode::ACCEPTED;
    } else if parts.status == StatusCode::NO_CONTENT {
        parts.status = StatusCode::OK;
    }
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    let state = if outcome.reached { "applied" } else { "timeout" };
    parts.headers.insert("x-nexus-barrier", HeaderValue::from_static(state));
    Response::from_parts(parts, Body::from(value.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_parse_and_leave_the_rest_to_the_handler() {
        let (b, rest) = parse("dry_run=true&wait=applied&quorum=0.5&timeout=500ms").unwrap();
        let b = b.unwrap();
        assert_eq!((b.quorum, b.timeout, b.region), (0.5, Duration::from_millis(500), None));
        assert_eq!(rest, "dry_run=true");
        let (b, rest) = parse("wait=applied&region=eu&timeout=3s").unwrap();
        let b = b.unwrap();
        assert_eq!(
            (b.region.as_deref(), b.timeout, rest.as_str()),
            (Some("eu"), Duration::from_secs(3), "")
        );
        assert_eq!(parse("dry_run=true").unwrap(), (None, "dry_run=true".into()));
        for bad in [
            "wait=served",
            "quorum=0.5",
            "wait=applied&quorum=0",
            "wait=applied&quorum=1.5",
            "wait=applied&quorum=x",
            "wait=applied&timeout=0s",
            "wait=applied&timeout=61s",
            "wait=applied&timeout=5",
            "wait=applied&region=",
        ] {
            assert!(matches!(parse(bad), Err(ApiError::BadRequest(_))), "{bad}");
        }
    }
}
