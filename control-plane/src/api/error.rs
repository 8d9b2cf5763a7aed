//! Every error a client sees, and the one place that maps each to its
//! status and JSON body `{"error":"<code>","message":"..."}`.
//!
//! Two buckets. A client fault (4xx) carries a message written for the
//! client: what was wrong with the request. An unexpected failure (500,
//! 503) carries its typed cause, which is logged here with its whole source
//! chain and never put into a body: the body names only the kind of
//! failure, so no database text, file path or host name reaches a client.

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::auth::AuthError;
use crate::domain::conflict::ConflictType;
use crate::domain::governance::Violation;
use crate::publisher::bus::BusError;
use crate::report::Chain;
use crate::store::import::ImportReport;
use crate::store::{BoxError, StoreError};

/// What a 503 from the store says.
pub const STORE_UNAVAILABLE: &str = "the registry database is unavailable; retry later";
/// What a 503 from Redis (the fleet view) says.
pub const FLEET_UNAVAILABLE: &str = "the fleet view (Redis) is unavailable; retry later";
/// What a 500 says; the cause is in the log, under the request id.
pub const INTERNAL: &str = "internal error; it was logged under this request's x-request-id";

#[derive(Debug)]
pub enum ApiError {
    // Client faults: the message is for the client.
    BadRequest(String),
    UnknownContext(String),
    Unauthorized(String),
    Forbidden(String),
    NotFound(String),
    MethodNotAllowed,
    Conflict {
        conflict_id: i32,
        kind: ConflictType,
        existing: Value,
    },
    /// Reactivating an alias whose key is taken by another active one.
    Taken(Value),
    AlreadyResolved(i32),
    ImportConflicts(ImportReport),
    Governance(Violation),
    TooLarge(String),
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
    pub fn internal(cause: impl Into<BoxError>) -> Self {
        ApiError::Internal(cause.into())
    }

    fn parts(&self) -> (StatusCode, &'static str) {
        match self {
            ApiError::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request"),
            ApiError::UnknownContext(_) => (StatusCode::BAD_REQUEST, "unknown_context"),
            ApiError::Unauthorized(_) => (StatusCode::UNAUTHORIZED, "unauthorized"),
            ApiError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            ApiError::MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
            ApiError::Conflict { .. } | ApiError::Taken(_) | ApiError::ImportConflicts(_) => {
                (StatusCode::CONFLICT, "conflict")
            }
            ApiError::AlreadyResolved(_) => (StatusCode::CONFLICT, "already_resolved"),
            ApiError::Governance(_) => (StatusCode::UNPROCESSABLE_ENTITY, "governance_violation"),
            ApiError::TooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
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

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.parts();
        let body = match self {
            ApiError::BadRequest(m)
            | ApiError::UnknownContext(m)
            | ApiError::Unauthorized(m)
            | ApiError::Forbidden(m)
            | ApiError::NotFound(m)
            | ApiError::TooLarge(m) => json!({"error": code, "message": m}),
            ApiError::Conflict { conflict_id, kind, existing } => json!({
                "error": code,
                "message": format!("{} conflict; recorded as conflict {conflict_id}", kind.as_str()),
                "conflict_id": conflict_id,
                "conflict_type": kind,
                "existing": existing,
            }),
            ApiError::Taken(existing) => json!({
                "error": code,
                "message": "another active alias holds this context and name",
                "existing": existing,
            }),
            ApiError::MethodNotAllowed => {
                json!({"error": code, "message": "this route does not take that method"})
            }
            ApiError::AlreadyResolved(id) => {
                json!({"error": code, "message": format!("conflict {id} is already resolved")})
            }
            ApiError::ImportConflicts(report) => json!({
                "error": code,
                "message": format!(
                    "{} entries conflict with active aliases; nothing was written",
                    report.conflicts.len()
                ),
                "conflicts": report.conflicts,
            }),
            ApiError::Governance(v) => {
                json!({"error": code, "rule": v.rule, "message": v.message})
            }
            ApiError::Store(e) if e.is_unavailable() => {
                tracing::warn!(error = %Chain(&e), "store unavailable");
                json!({"error": code, "message": STORE_UNAVAILABLE})
            }
            ApiError::Fleet(e) => {
                tracing::warn!(error = %Chain(&e), "reading the fleet from redis failed");
                json!({"error": code, "message": FLEET_UNAVAILABLE})
            }
            ApiError::Store(e) => {
                tracing::error!(error = %Chain(&e), "store error");
                json!({"error": code, "message": INTERNAL})
            }
            ApiError::Internal(e) => {
                tracing::error!(error = %Chain(&*e), "internal error");
                json!({"error": code, "message": INTERNAL})
            }
        };
        (status, axum::Json(body)).into_response()
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        ApiError::Store(e)
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
