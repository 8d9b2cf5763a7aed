//! Every error a client sees, and the one place that maps each to its
//! status and JSON body `{"error":"<code>","message":"..."}`.

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::auth::AuthError;
use crate::domain::conflict::ConflictType;
use crate::domain::governance::Violation;
use crate::store::StoreError;
use crate::store::import::ImportReport;

#[derive(Debug)]
pub enum ApiError {
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
    Unavailable(String),
    Internal(String),
}

impl ApiError {
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
            ApiError::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "store_unavailable"),
            ApiError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
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
            ApiError::Unavailable(m) => {
                tracing::warn!(error = %m, "store unavailable");
                json!({"error": code, "message": "the database is unavailable; retry later"})
            }
            ApiError::Internal(m) => {
                tracing::error!(error = %m, "internal error");
                json!({"error": code, "message": "internal error"})
            }
        };
        (status, axum::Json(body)).into_response()
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(m) => ApiError::Unavailable(m),
            other => ApiError::Internal(other.to_string()),
        }
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::Store(s) => s.into(),
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
