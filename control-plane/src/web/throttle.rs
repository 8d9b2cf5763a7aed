//! The admin API's rate limit, as middleware: each request under `/api/`
//! is authenticated once and charged to its principal's bucket, or to its
//! client address's when it carries no valid credential (the buckets are
//! [`super::rate_limit`]'s). Over the limit: 429 `rate_limited` with
//! `Retry-After`, counted in `nexus_cp_rate_limited_total{key}`.
//!
//! Health, status, metrics, the OpenAPI document and the JWKS are exempt
//! (monitors and verifiers poll them, and they hold no registry data); so is
//! everything outside `/api/` (the console has its own sessions).

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::caller::{Authenticated, principal_of};
use super::error::ApiError;
use super::rate_limit::Refused;
use super::state::Shared;
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
    let outcome = principal_of(&parts, &st).await;
    let charged = match &outcome {
        Ok(p) => limiter.check_principal(&p.name),
        Err(_) => {
            let addr = parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip());
            limiter.check_address(addr)
        }
    };
    if let Err(refused) = charged {
        let (key, wait) = match refused {
            Refused::Principal(w) => ("principal", w),
            Refused::Address(w) => ("address", w),
        };
        st.metrics.rate_limited.get_or_create(&LimitLabels { key }).inc();
        return ApiError::RateLimited(wait).into_response();
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
