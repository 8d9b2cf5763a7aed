//! Conflicts, audit, governance, API keys and the edge fleet.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use nexus_protocol::{ContextScope, Role};
use serde::Deserialize;
use serde_json::json;
use utoipa::{IntoParams, ToSchema};

use super::aliases::{parse_cursor, parse_limit};
use super::schema::{
    AuditPageSchema, AuditVerifySchema, ConflictListSchema, ConflictSchema, CreatedKeySchema,
    ResolutionSchema, RoleSchema,
};
use crate::auth::api_key;
use crate::domain::conflict::Resolution;
use crate::domain::governance::{Governance, GovernanceDoc};
use crate::domain::rbac::{Action, Scope};
use crate::store::audit::AuditFilter;
use crate::store::conflicts::Resolved;
use crate::web::Shared;
use crate::web::caller::Caller;
use crate::web::error::{ApiError, ErrorBody};
use crate::web::extract::{Json, Path, Query};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum ConflictStatus {
    Open,
    Resolved,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct ConflictQuery {
    status: Option<ConflictStatus>,
    /// 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<i64>,
}

#[derive(Debug, serde::Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"resolution": "use_incoming"}))]
pub(crate) struct ResolveBody {
    #[schema(value_type = ResolutionSchema)]
    pub(crate) resolution: Resolution,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct AuditQuery {
    /// Only rows by this user.
    actor: Option<String>,
    /// Only this action, e.g. `alias.update`.
    action: Option<String>,
    /// RFC 3339; inclusive.
    since: Option<DateTime<Utc>>,
    /// RFC 3339; exclusive.
    until: Option<DateTime<Utc>>,
    /// 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<i64>,
    /// The `next_cursor` of the previous page.
    cursor: Option<String>,
}

#[derive(Debug, serde::Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "ci", "role": "resolver", "contexts": ["frontend"],
    "expires_at": "2027-01-01T00:00:00Z"}))]
pub(crate) struct KeyBody {
    /// 1 to 200 printable bytes.
    pub(crate) name: String,
    #[schema(value_type = RoleSchema)]
    pub(crate) role: Role,
    /// Context names, or `["*"]` for all.
    #[schema(value_type = Vec<String>)]
    pub(crate) contexts: ContextScope,
    /// RFC 3339, in the future: refused everywhere (every edge included)
    /// from then on. Absent: until revoked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) expires_at: Option<DateTime<Utc>>,
}

/// Recorded conflicts in the caller's contexts, newest first.
#[utoipa::path(
    get,
    path = "/api/admin/conflicts",
    operation_id = "list_conflicts",
    tag = "admin",
    params(ConflictQuery),
    responses((status = 200, description = "Conflicts", body = ConflictListSchema))
)]
pub(crate) async fn conflicts(
    State(st): State<Shared>,
    caller: Caller,
    Query(q): Query<ConflictQuery>,
) -> Result<Response, ApiError> {
    let visible = caller.may_list(Action::ReadAliases)?;
    let open = q.status.map(|s| matches!(s, ConflictStatus::Open));
    let items = st.store.conflicts(open, visible.as_deref(), parse_limit(q.limit)?).await?;
    Ok(axum::Json(json!({"items": items})).into_response())
}

/// Settles an open conflict, writing the incoming alias if chosen.
#[utoipa::path(
    post,
    path = "/api/admin/conflicts/{id}/resolve",
    tag = "admin",
    params(("id" = i32, Path, example = 4)),
    request_body = ResolveBody,
    responses(
        (status = 200, description = "The conflict, resolved and applied", body = ConflictSchema),
        (status = 404, description = "No such conflict (`not_found`)", body = ErrorBody),
        (status = 409, description = "Already resolved (`already_resolved`)", body = ErrorBody),
    )
)]
pub(crate) async fn resolve_conflict(
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
    let resolved = st
        .store
        .resolve_conflict(id, b.resolution, &caller.actor(), &caller.writer(), &st.governance())
        .await?;
    match resolved {
        Resolved::Done(c) => Ok(axum::Json(c).into_response()),
        Resolved::NotFound => Err(ApiError::NotFound(format!("no conflict {id}"))),
        Resolved::Already => Err(ApiError::AlreadyResolved(id)),
        Resolved::NotOwner { alias, owner } => Err(ApiError::NotOwner { alias, owner }),
    }
}

/// The audit trail, oldest first.
#[utoipa::path(
    get,
    path = "/api/admin/audit",
    operation_id = "list_audit",
    tag = "admin",
    params(AuditQuery),
    responses((status = 200, description = "A page of audit rows", body = AuditPageSchema))
)]
pub(crate) async fn audit(
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

/// Walks the audit hash chain.
#[utoipa::path(
    get,
    path = "/api/admin/audit/verify",
    tag = "admin",
    responses((status = 200, description = "The chain check", body = AuditVerifySchema))
)]
pub(crate) async fn verify_audit(
    State(st): State<Shared>,
    caller: Caller,
) -> Result<Response, ApiError> {
    caller.may(Action::ReadAudit, Scope::Global)?;
    Ok(axum::Json(st.store.verify_audit().await?).into_response())
}

/// The governance rules in force (alias_governance.yaml's shape).
#[utoipa::path(
    get,
    path = "/api/admin/governance",
    tag = "admin",
    responses((status = 200, description = "The rules", body = Object))
)]
pub(crate) async fn governance(
    State(st): State<Shared>,
    caller: Caller,
) -> Result<Response, ApiError> {
    caller.may(Action::ReadGovernance, Scope::Global)?;
    Ok(axum::Json(st.governance().document().clone()).into_response())
}

/// Replaces the governance rules (admin only).
#[utoipa::path(
    put,
    path = "/api/admin/governance",
    tag = "admin",
    request_body(content = Object, description = "The rules, as GET returns them"),
    responses(
        (status = 200, description = "The rules now in force", body = Object),
        (status = 413, description = "Body too large (`payload_too_large`)", body = ErrorBody),
    )
)]
pub(crate) async fn put_governance(
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

/// Creates an API key; the key is shown once.
#[utoipa::path(
    post,
    path = "/api/admin/api-keys",
    tag = "admin",
    request_body = KeyBody,
    responses(
        (status = 201, description = "The key", body = CreatedKeySchema),
        (status = 413, description = "Body too large (`payload_too_large`)", body = ErrorBody),
    )
)]
pub(crate) async fn create_key(
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
    // Whole seconds: edges compare against their clock in seconds (as
    // token `exp`), so both planes refuse the key from the same instant.
    let expires_at = b.expires_at.and_then(|t| DateTime::from_timestamp(t.timestamp(), 0));
    if expires_at.is_some_and(|t| t <= Utc::now()) {
        return Err(ApiError::BadRequest("expires_at must be in the future".into()));
    }
    let (key, digest) = api_key::generate();
    let actor = caller.actor();
    let created = st
        .store
        .create_expiring_api_key(name, b.role, &b.contexts, &digest, expires_at, &actor)
        .await?;
    let body = json!({
        "id": created.id,
        "key": key,
        "name": created.name,
        "role": created.role,
        "contexts": created.contexts,
        "expires_at": created.expires_at,
    });
    Ok((StatusCode::CREATED, axum::Json(body)).into_response())
}

/// Every API key: name, role, contexts, created, revoked — never the key.
#[utoipa::path(
    get,
    path = "/api/admin/api-keys",
    tag = "admin",
    responses((status = 200, description = "`{\"items\": [{id, name, role, contexts, created_at, \
        created_by, revoked_at, expires_at}]}`, newest first", body = Object))
)]
pub(crate) async fn list_keys(
    State(st): State<Shared>,
    caller: Caller,
) -> Result<Response, ApiError> {
    caller.may(Action::ManageApiKeys, Scope::Global)?;
    let items = st.store.list_api_keys().await?;
    Ok(axum::Json(json!({ "items": items })).into_response())
}

/// Revokes an API key at once.
#[utoipa::path(
    delete,
    path = "/api/admin/api-keys/{id}",
    tag = "admin",
    params(("id" = i32, Path, example = 3)),
    responses(
        (status = 204, description = "Revoked"),
        (status = 404, description = "No active key with that id (`not_found`)", body = ErrorBody),
    )
)]
pub(crate) async fn revoke_key(
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
