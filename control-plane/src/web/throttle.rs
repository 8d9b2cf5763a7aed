//! The admin API's rate limit, as middleware: each request under `/api/`
//! is authenticated once and charged to its principal's bucket, or to its
//! client address's when it carries no valid credential (the buckets are
//! [`super::rate_limit`]'s). Over the limit: 429 `rate_limited` with
//! `Retry-After`, counted in `nexus_cp_rate_limited_total{key}`.
//!
//! What a credential costs before it is known decides when it is charged.
//! An API key (`nxk_…`) is known only after a PostgreSQL lookup, so its
//! address is charged *before* the lookup (and its principal after, as any
//! caller's): a flood of garbage keys costs no transaction beyond the
//! address's limit. A token costs a signature check, in memory; only a
//! token this plane signed reaches PostgreSQL (its revocation check), so a
//! token is charged after, to its principal, or to its address when
//! refused, and a valid token from an address that floods garbage still
//! gets through.
//!
//! Health, status, metrics, the OpenAPI document and the JWKS are exempt
//! (monitors and verifiers poll them, and they hold no registry data); so is
//! everything outside `/api/` (the console has its own sessions), except
//! that signing in to the console is charged to the address, before the
//! credential is looked up, by its handler ([`charge_address`]).

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::caller::{Authenticated, principal_of};
use super::error::ApiError;
use super::rate_limit::Refused;
use super::state::Shared;
use crate::auth::api_key;
use crate::metrics::LimitLabels;

/// Routes no limit applies to (matched paths).
const EXEMPT: &[&str] = &[
    "/api/aliases/health",
    "/api/aliases/status",
    "/api/aliases/metrics",
    "/api/admin/openapi.json",
    "/metrics",
    "/.well-known/jwks.json",
];

/// The middleware: authenticates once (the handler's
/// [`super::caller::Caller`] reuses it), then charges the principal's
/// bucket, or the address's when the request has no valid credential.
pub(crate) async fn limit(State(st): State<Shared>, mut req: Request, next: Next) -> Response {
    let limited = req.uri().path().starts_with("/api/")
        && !req.extensions().get::<MatchedPath>().is_some_and(|p| EXEMPT.contains(&p.as_str()));
    let limiter = st.rate_limiter();
    if !limited || limiter.config().rate.is_none() {
        return next.run(req).await;
    }
    let (mut parts, body) = req.into_parts();
    let addr = client_address(&parts);
    let prepaid = is_api_key(&parts);
    if prepaid && let Err(r) = limiter.check_address(addr) {
        return refused(&st, r).into_response();
    }
    let outcome = principal_of(&parts, &st).await;
    let charged = match &outcome {
        Ok(p) => limiter.check_principal(&p.name),
        Err(_) if prepaid => Ok(()),
        Err(_) => limiter.check_address(addr),
    };
    if let Err(r) = charged {
        return refused(&st, r).into_response();
    }
    // Kept for the handler, so the credential is checked once; a store
    // failure is not kept (the handler tries again, and answers 503).
    match outcome {
        Ok(p) => {
            parts.extensions.insert(Authenticated(Ok(p)));
        }
        Err(ApiError::Unauthorized(why)) => {
            parts.extensions.insert(Authenticated(Err(why)));
        }
        Err(_) => {}
    }
    req = Request::from_parts(parts, body);
    next.run(req).await
}

/// The peer's address, when the server was given it (`ConnectInfo`).
fn client_address(parts: &Parts) -> Option<IpAddr> {
    parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip())
}

/// Whether the credential is an API key: who holds it is known only after
/// a store lookup.
fn is_api_key(parts: &Parts) -> bool {
    parts.headers.get(AUTHORIZATION).and_then(|v| v.to_str().ok()).is_some_and(|h| {
        h.strip_prefix("Bearer ")
            .or_else(|| h.strip_prefix("bearer "))
            .is_some_and(|c| c.trim_start().starts_with(api_key::PREFIX))
    })
}

/// Charges one request to `addr`'s bucket, for a route outside `/api/`
/// that the middleware does not see (the console's sign-in).
pub(crate) fn charge_address(st: &Shared, addr: Option<IpAddr>) -> Result<(), ApiError> {
    st.rate_limiter().check_address(addr).map_err(|r| refused(st, r))
}

/// The 429 of a refused bucket, counted by which one refused.
fn refused(st: &Shared, refused: Refused) -> ApiError {
    let (key, wait) = match refused {
        Refused::Principal(w) => ("principal", w),
        Refused::Address(w) => ("address", w),
    };
    st.metrics.rate_limited.get_or_create(&LimitLabels { key }).inc();
    ApiError::RateLimited(wait)
}
