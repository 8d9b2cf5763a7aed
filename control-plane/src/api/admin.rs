//! Conflicts, audit, governance, API keys and the edge fleet.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use nexus_protocol::{ContextScope, Role};
use serde::Deserialize;
use serde_json::json;

use super::aliases::{parse_cursor, parse_limit};
use super::error::ApiError;
use super::extract::{Caller, Json, Path, Query};
use super::state::Shared;
use crate::auth::api_key;
use crate::domain::conflict::Resolution;
use crate::domain::governance::{Governance, GovernanceDoc};
use crate::domain::rbac::{Action, Scope};
use crate::store::audit::AuditFilter;
use crate::store::conflicts::Resolved;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConflictStatus {
    Open,
    Resolved,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConflictQuery {
    status: Option<ConflictStatus>,
    limit: Option<i64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResolveBody {
    resolution: Resolution,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    actor: Option<String>,
    action: Option<String>,
    since: Option<DateTime<Utc>>,
    until: Option<DateTime<Utc>>,
    limit: Option<i64>,
    cursor: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyBody {
    name: String,
    role: Role,
    contexts: ContextScope,
}

pub async fn conflicts(
    State(st): State<Shared>,
    caller: Caller,
    Query(q): Query<ConflictQuery>,
) -> Result<Response, ApiError> {
    let visible = caller.may_list(Action::ReadAliases)?;
    let open = q.status.map(|s| matches!(s, ConflictStatus::Open));
    let items = st.store.conflicts(open, visible.as_deref(), parse_limit(q.limit)?).await?;
    Ok(axum::Json(json!({"items": items})).into_response())
}

pub async fn resolve_conflict(
    State(st): State<Shared>,
    caller: Caller,
    Path(id): Path<i32>,
    Json(b): Json<ResolveBody>,
) -> Result<Response, ApiError> {
    let found = st.store.conflict(id).await?;
    let Some(c) = found else {
        return Err(ApiError::NotFound(format!("no conflict {id}")));
    };
    caller.may(Action::ResolveConflict, Scope::Context(&c.context))?;
    match st.store.resolve_conflict(id, b.resolution, &caller.actor()).await? {
        Resolved::Done(c) => Ok(axum::Json(c).into_response()),
        Resolved::NotFound => Err(ApiError::NotFound(format!("no conflict {id}"))),
        Resolved::AlreadyResolved(_) => Err(ApiError::AlreadyResolved(id)),
    }
}

pub async fn audit(
    State(st): State<Shared>,
    caller: Caller,
    Query(q): Query<AuditQuery>,
) -> Result<Response, ApiError> {
    caller.may(Action::ReadAudit, Scope::Global)?;
    let filter = AuditFilter {
        actor: q.actor,
        action: q.action,
        since: q.since,
        until: q.until,
        after_id: parse_cursor(q.cursor.as_deref())?,
        limit: parse_limit(q.limit)?,
    };
    let items = st.store.audit(&filter).await?;
    let next = (items.len() as i64 == filter.limit).then(|| items.last().map(|r| r.id.to_string()));
    Ok(axum::Json(json!({"items": items, "next_cursor": next.flatten()})).into_response())
}

pub async fn verify_audit(State(st): State<Shared>, caller: Caller) -> Result<Response, ApiError> {
    caller.may(Action::ReadAudit, Scope::Global)?;
    Ok(axum::Json(st.store.verify_audit().await?).into_response())
}

pub async fn governance(State(st): State<Shared>, caller: Caller) -> Result<Response, ApiError> {
    caller.may(Action::ReadGovernance, Scope::Global)?;
    Ok(axum::Json(st.governance().document().clone()).into_response())
}

pub async fn put_governance(
    State(st): State<Shared>,
    caller: Caller,
    Json(doc): Json<GovernanceDoc>,
) -> Result<Response, ApiError> {
    caller.may(Action::WriteGovernance, Scope::Global)?;
    let compiled =
        Governance::compile(doc.clone()).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    st.store.put_governance("api", &doc, &caller.actor()).await?;
    st.set_governance(compiled);
    Ok(axum::Json(doc).into_response())
}

pub async fn create_key(
    State(st): State<Shared>,
    caller: Caller,
    Json(b): Json<KeyBody>,
) -> Result<Response, ApiError> {
    caller.may(Action::ManageApiKeys, Scope::Global)?;
    let name = b.name.trim();
    // The name becomes part of the actor recorded in created_by (255 bytes).
    if name.is_empty() || name.len() > 200 || name.chars().any(char::is_control) {
        return Err(ApiError::BadRequest("name must be 1 to 200 printable bytes".into()));
    }
    let (key, digest) = api_key::generate();
    let created =
        st.store.create_api_key(name, b.role, &b.contexts, &digest, &caller.actor()).await?;
    let body = json!({
        "id": created.id,
        "key": key,
        "name": created.name,
        "role": created.role,
        "contexts": created.contexts,
    });
    Ok((StatusCode::CREATED, axum::Json(body)).into_response())
}

pub async fn revoke_key(
    State(st): State<Shared>,
    caller: Caller,
    Path(id): Path<i32>,
) -> Result<Response, ApiError> {
    caller.may(Action::ManageApiKeys, Scope::Global)?;
    if st.store.revoke_api_key(id, &caller.actor()).await? {
        Ok(StatusCode::NO_CONTENT.into_response())
    } else {
        Err(ApiError::NotFound(format!("no active API key {id}")))
    }
}
