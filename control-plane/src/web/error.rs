//! Every error a client sees, and the one place that maps each to its
//! status and JSON body `{"error":"<code>","message":"..."}`.
//!
//! Two buckets. A client fault (4xx) carries a message written for the
//! client: what was wrong with the request. An unexpected failure (500,
//! 503) carries its typed cause, which is logged here with its whole source
//! chain and never put into a body: the body names only the kind of
//! failure, so no database text, file path or host name reaches a client.

use std::time::Duration;

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::http::{HeaderValue, StatusCode, header::RETRY_AFTER};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use crate::auth::AuthError;
use crate::domain::conflict::ConflictType;
use crate::domain::governance::Violation;
use crate::publisher::bus::BusError;
use crate::registry::WriteError;
use crate::report::Chain;
use crate::store::import::ImportReport;
use crate::store::{BoxError, StoreError};

/// What a 503 from the store says.
pub const STORE_UNAVAILABLE: &str = "the registry database is unavailable; retry later";
/// What a 503 from Redis (the fleet view) says.
const FLEET_UNAVAILABLE: &str = "the fleet view (Redis) is unavailable; retry later";
/// What a 500 says; the cause is in the log, under the request id.
pub const INTERNAL: &str = "internal error; it was logged under this request's x-request-id";

#[derive(Debug)]
pub(crate) enum ApiError {
    // Client faults: the message is for the client.
    BadRequest(String),
    UnknownContext(String),
    Unauthorized(String),
    Forbidden(String),
    NotFound(String),
    /// Outside the history kept (`as_of` older than the oldest change).
    Gone(String),
    MethodNotAllowed,
    Conflict {
        conflict_id: i32,
        kind: ConflictType,
        existing: Value,
    },
    AlreadyResolved(i32),
    /// An apply planned on `expected` met the registry at `found`.
    Moved {
        expected: i64,
        found: i64,
    },
    ImportConflicts(ImportReport),
    Governance(Violation),
    TooLarge(String),
    /// The alias (named) is owned by another, and the caller may not
    /// change it.
    NotOwner {
        alias: String,
        owner: String,
    },
    /// An apply or import would change aliases others own: each
    /// `{context, alias, owner, ...}`; nothing was written.
    NotOwnerMany(Vec<Value>),
    /// The credential (or, unauthenticated, the client address) spent its
    /// budget; it may try again after this long.
    RateLimited(Duration),
    // Unexpected failures: the cause is logged, never sent.
    /// The store failed: 503 when retrying may work
    /// ([`StoreError::is_unavailable`]), else 500.
    Store(StoreError),
    /// Redis, read for the fleet view, failed: 503.
    Fleet(BusError),
    /// Anything else that should not happen: 500.
    Internal(BoxError),
}

impl ApiError {
    /// A 500 with `cause` logged.
    pub(crate) fn internal(cause: impl Into<BoxError>) -> Self {
        ApiError::Internal(cause.into())
    }

    fn parts(&self) -> (StatusCode, &'static str) {
        match self {
            ApiError::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request"),
            ApiError::UnknownContext(_) => (StatusCode::BAD_REQUEST, "unknown_context"),
            ApiError::Unauthorized(_) => (StatusCode::UNAUTHORIZED, "unauthorized"),
            ApiError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            ApiError::Gone(_) => (StatusCode::GONE, "gone"),
            ApiError::MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
            ApiError::Conflict { .. } | ApiError::ImportConflicts(_) => {
                (StatusCode::CONFLICT, "conflict")
            }
            ApiError::AlreadyResolved(_) => (StatusCode::CONFLICT, "already_resolved"),
            ApiError::Moved { .. } => (StatusCode::CONFLICT, "registry_moved"),
            ApiError::Governance(_) => (StatusCode::UNPROCESSABLE_ENTITY, "governance_violation"),
            ApiError::TooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
            ApiError::NotOwner { .. } | ApiError::NotOwnerMany(_) => {
                (StatusCode::FORBIDDEN, "not_owner")
            }
            ApiError::RateLimited(_) => (StatusCode::TOO_MANY_REQUESTS, "rate_limited"),
            ApiError::Store(e) if e.is_unavailable() => {
                (StatusCode::SERVICE_UNAVAILABLE, "store_unavailable")
            }
            ApiError::Fleet(_) => (StatusCode::SERVICE_UNAVAILABLE, "store_unavailable"),
            ApiError::Store(_) | ApiError::Internal(_) => {
                (StatusCode::INTERNAL_SERVER_ERROR, "internal")
            }
        }
    }
}

/// The body of every error response. `error` is the stable code a client
/// branches on; `message` says what was wrong and what to do. The other
/// fields come with some codes only.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(example = json!({"error": "not_found", "message": "no alias frontend/user-profile"}))]
pub(crate) struct ErrorBody {
    /// `bad_request`, `unknown_context`, `unauthorized`, `forbidden`,
    /// `not_owner`, `not_found`, `method_not_allowed`, `conflict`,
    /// `already_resolved`, `registry_moved`, `gone`, `payload_too_large`,
    /// `governance_violation`, `rate_limited`, `store_unavailable` or
    /// `internal`.
    #[schema(example = "not_found")]
    error: &'static str,
    message: String,
    /// `governance_violation`: the rule that was broken.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "reserved_names")]
    rule: Option<&'static str>,
    /// `conflict` on a create: the conflict recorded.
    #[serde(skip_serializing_if = "Option::is_none")]
    conflict_id: Option<i32>,
    /// `conflict` on a create: `duplicate`, `normalization` or `shadowing`.
    #[serde(skip_serializing_if = "Option::is_none")]
    conflict_type: Option<&'static str>,
    /// `conflict`: the active alias in the way.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    existing: Option<Value>,
    /// `conflict` on an import: every entry that conflicts.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Vec<Object>>)]
    conflicts: Option<Vec<Value>>,
    /// `not_owner` on one alias: who owns it.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "alice")]
    owner: Option<String>,
    /// `not_owner` on an apply or import: every alias refused, with its
    /// owner.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Vec<Object>>)]
    refused: Option<Vec<Value>>,
    /// `rate_limited`: seconds until a request may succeed (also the
    /// `Retry-After` header).
    #[serde(skip_serializing_if = "Option::is_none")]
    retry_after: Option<u64>,
}

impl ErrorBody {
    fn new(error: &'static str, message: impl Into<String>) -> Self {
        ErrorBody {
            error,
            message: message.into(),
            rule: None,
            conflict_id: None,
            conflict_type: None,
            existing: None,
            conflicts: None,
            owner: None,
            refused: None,
            retry_after: None,
        }
    }
}

/// Whole seconds for `Retry-After`: rounded up, at least 1 (0 would invite
/// an immediate retry that is refused again).
fn retry_after_secs(wait: Duration) -> u64 {
    (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1)
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.parts();
        let mut retry = None;
        let body = match self {
            ApiError::BadRequest(m)
            | ApiError::UnknownContext(m)
            | ApiError::Unauthorized(m)
            | ApiError::Forbidden(m)
            | ApiError::NotFound(m)
            | ApiError::Gone(m)
            | ApiError::TooLarge(m) => ErrorBody::new(code, m),
            ApiError::Conflict { conflict_id, kind, existing } => ErrorBody {
                conflict_id: Some(conflict_id),
                conflict_type: Some(kind.as_str()),
                existing: Some(existing),
                ..ErrorBody::new(
                    code,
                    format!("{} conflict; recorded as conflict {conflict_id}", kind.as_str()),
                )
            },
            ApiError::MethodNotAllowed => {
                ErrorBody::new(code, "this route does not take that method")
            }
            ApiError::AlreadyResolved(id) => {
                ErrorBody::new(code, format!("conflict {id} is already resolved"))
            }
            ApiError::Moved { expected, found } => ErrorBody::new(
                code,
                format!(
                    "the registry moved from version {expected} to {found} since the plan; \
                     review the new plan (dry run) and apply that"
                ),
            ),
            ApiError::ImportConflicts(report) => ErrorBody {
                message: format!(
                    "{} entries conflict with active aliases; nothing was written",
                    report.conflicts.len()
                ),
                conflicts: Some(report.conflicts),
                ..ErrorBody::new(code, "")
            },
            ApiError::Governance(v) => {
                ErrorBody { rule: Some(v.rule), ..ErrorBody::new(code, v.message) }
            }
            ApiError::NotOwner { alias, owner } => ErrorBody {
                message: format!(
                    "{alias} is owned by {owner}; only its owner or an admin may change it \
                     (an admin can transfer it)"
                ),
                owner: Some(owner),
                ..ErrorBody::new(code, "")
            },
            ApiError::NotOwnerMany(items) => ErrorBody {
                message: format!(
                    "{} aliases are owned by others and may not be changed by this credential; \
                     nothing was written",
                    items.len()
                ),
                refused: Some(items),
                ..ErrorBody::new(code, "")
            },
            ApiError::RateLimited(wait) => {
                let secs = retry_after_secs(wait);
                retry = Some(secs);
                ErrorBody {
                    retry_after: Some(secs),
                    ..ErrorBody::new(
                        code,
                        format!("too many requests for this credential; retry in {secs} s"),
                    )
                }
            }
            ApiError::Store(e) if e.is_unavailable() => {
                tracing::warn!(error = %Chain(&e), "store unavailable");
                ErrorBody::new(code, STORE_UNAVAILABLE)
            }
            ApiError::Fleet(e) => {
                tracing::warn!(error = %Chain(&e), "reading the fleet from redis failed");
                ErrorBody::new(code, FLEET_UNAVAILABLE)
            }
            ApiError::Store(e) => {
                tracing::error!(error = %Chain(&e), "store error");
                ErrorBody::new(code, INTERNAL)
            }
            ApiError::Internal(e) => {
                tracing::error!(error = %Chain(&*e), "internal error");
                ErrorBody::new(code, INTERNAL)
            }
        };
        let mut res = (status, axum::Json(body)).into_response();
        if let Some(secs) = retry {
            res.headers_mut().insert(RETRY_AFTER, HeaderValue::from(secs));
        }
        res
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        ApiError::Store(e)
    }
}

impl From<WriteError> for ApiError {
    fn from(e: WriteError) -> Self {
        match e {
            WriteError::Governance(v) => ApiError::Governance(v),
            WriteError::EntryGovernance { index, violation, .. } => {
                ApiError::Governance(Violation {
                    rule: violation.rule,
                    message: format!("entry {index}: {}", violation.message),
                })
            }
            WriteError::Refused(report) => ApiError::ImportConflicts(report),
            WriteError::NotOwner(items) => ApiError::NotOwnerMany(items),
            WriteError::Store(e) => e.into(),
        }
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::Store(s) => ApiError::Store(s),
            other => ApiError::Unauthorized(other.to_string()),
        }
    }
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> Self {
        if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::TooLarge(r.body_text())
        } else {
            ApiError::BadRequest(r.body_text())
        }
    }
}

impl From<QueryRejection> for ApiError {
    fn from(r: QueryRejection) -> Self {
        ApiError::BadRequest(r.body_text())
    }
}

impl From<PathRejection> for ApiError {
    fn from(r: PathRejection) -> Self {
        ApiError::BadRequest(r.body_text())
    }
}

impl From<axum::extract::rejection::BytesRejection> for ApiError {
    fn from(r: axum::extract::rejection::BytesRejection) -> Self {
        if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::TooLarge(r.body_text())
        } else {
            ApiError::BadRequest(r.body_text())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn body(e: ApiError) -> (StatusCode, String) {
        let res = e.into_response();
        let status = res.status();
        let bytes = axum::body::to_bytes(res.into_body(), 1 << 16).await.unwrap();
        (status, String::from_utf8(bytes.to_vec()).unwrap())
    }

    #[test]
    fn retry_after_rounds_up_to_whole_seconds() {
        assert_eq!(retry_after_secs(Duration::ZERO), 1);
        assert_eq!(retry_after_secs(Duration::from_millis(10)), 1);
        assert_eq!(retry_after_secs(Duration::from_secs(1)), 1);
        assert_eq!(retry_after_secs(Duration::from_millis(1001)), 2);
    }

    #[tokio::test]
    async fn rate_limited_has_the_header_and_the_body() {
        let res = ApiError::RateLimited(Duration::from_millis(1500)).into_response();
        assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(res.headers()[RETRY_AFTER], "2");
        let bytes = axum::body::to_bytes(res.into_body(), 1 << 16).await.unwrap();
        let v: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(
            (v["error"].as_str(), v["retry_after"].as_u64()),
            (Some("rate_limited"), Some(2))
        );
    }

    #[tokio::test]
    async fn unexpected_failures_keep_their_cause_out_of_the_body() {
        let leaky = "connection refused to db.internal:5432 /var/run/secret";
        let down = StoreError::Unavailable(leaky.into());
        assert_eq!(std::error::Error::source(&down).unwrap().to_string(), leaky);
        let (status, text) = body(down.into()).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(!text.contains("db.internal") && text.contains("store_unavailable"), "{text}");

        let corrupt = StoreError::corrupt("alias 7: record", leaky);
        let (status, text) = body(corrupt.into()).await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert!(!text.contains("alias 7") && !text.contains("secret"), "{text}");

        let (status, text) = body(ApiError::internal(leaky)).await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert!(!text.contains("secret"), "{text}");
    }
}
