//! Alias endpoints: parse, authorise, check governance, call the store,
//! answer. No SQL, no status codes beyond the success ones.

use std::collections::HashSet;

use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode, header::CONTENT_TYPE};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use nexus_protocol::{AliasEntry, AliasFile, AliasKey, Canonical, Context};
use serde::{Deserialize, Deserializer};
use serde_json::json;
use utoipa::{IntoParams, ToSchema};

use super::schema::{
    AliasEntrySchema, AliasFileSchema, AliasPageSchema, AliasSchema, ImportPolicySchema,
    ImportReportSchema,
};
use crate::domain::alias::{AliasPatch, NewAlias, OwnedAlias, parse_description, parse_owner};
use crate::domain::import::ImportPolicy;
use crate::domain::rbac::{Action, Scope};
use crate::registry;
use crate::store::aliases::{AliasFilter, Created, Updated};
use crate::web::Shared;
use crate::web::caller::Caller;
use crate::web::error::{ApiError, ErrorBody};
use crate::web::extract::{AliasPath, Json, Query};

const DEFAULT_LIMIT: i64 = 100;
const MAX_LIMIT: i64 = 1000;

#[derive(Debug, serde::Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "context": "frontend", "alias": "user-profile",
    "canonical": "https://api.nexus.com/v1/users/profile",
    "description": "Profile of the signed-in user"
}))]
pub(crate) struct CreateBody {
    pub(crate) context: String,
    pub(crate) alias: String,
    pub(crate) canonical: String,
    pub(crate) description: Option<String>,
    pub(crate) expires_at: Option<DateTime<Utc>>,
}

/// `Some(None)` for an explicit `null`, `None` when the field is absent.
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

/// Absent fields are left as they are; `null` clears `description` or
/// `expires_at`.
// Serialised (by `nexusctl`) the same way round: `None` is left out,
// `Some(None)` is sent as `null`. (A `//` comment: the doc comment is the
// OpenAPI schema's description.)
#[derive(Debug, serde::Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"canonical": "https://api.nexus.com/v2/users/profile"}))]
pub(crate) struct UpdateBody {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) canonical: Option<String>,
    #[serde(default, deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub(crate) description: Option<Option<String>>,
    #[serde(default, deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<DateTime<Utc>>)]
    pub(crate) expires_at: Option<Option<DateTime<Utc>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) is_active: Option<bool>,
}

/// The alias's new owner: a principal name (token subject, or
/// `api_key:<id>:<name>`), at most 255 bytes, no control characters.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"owner": "bob"}))]
pub(crate) struct TransferBody {
    owner: String,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct ListQuery {
    /// Only this context.
    #[param(example = "frontend")]
    context: Option<String>,
    /// Only active (true) or inactive (false) aliases.
    active: Option<bool>,
    /// Substring of the alias, canonical or description.
    q: Option<String>,
    /// Page size, 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<i64>,
    /// The `next_cursor` of the previous page.
    cursor: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ImportBody {
    #[schema(value_type = Vec<AliasEntrySchema>)]
    aliases: Vec<AliasEntry>,
    #[serde(default)]
    #[schema(value_type = Option<ImportPolicySchema>)]
    on_conflict: ImportPolicy,
    #[serde(default)]
    dry_run: bool,
}

/// For the YAML body; a JSON body carries these fields itself.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct ImportQuery {
    #[serde(default)]
    #[param(value_type = Option<ImportPolicySchema>)]
    on_conflict: ImportPolicy,
    /// Plan only; write nothing.
    #[serde(default)]
    #[param(value_type = Option<bool>)]
    dry_run: bool,
}

fn bad(e: impl std::fmt::Display) -> ApiError {
    ApiError::BadRequest(e.to_string())
}

pub(crate) fn parse_limit(limit: Option<i64>) -> Result<i64, ApiError> {
    match limit {
        None => Ok(DEFAULT_LIMIT),
        Some(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
        Some(n) => Err(bad(format!("limit {n} is outside 1..={MAX_LIMIT}"))),
    }
}

pub(crate) fn parse_cursor(cursor: Option<&str>) -> Result<Option<i32>, ApiError> {
    cursor
        .map(|c| c.parse::<i32>().map_err(|_| bad("cursor is not one this API returned")))
        .transpose()
}

/// Creates an alias. Creating the same alias again answers 200 with it.
#[utoipa::path(
    post,
    path = "/api/admin/aliases",
    operation_id = "create_alias",
    tag = "aliases",
    request_body = CreateBody,
    responses(
        (status = 201, description = "Created", body = AliasSchema),
        (status = 200, description = "The same alias already exists", body = AliasSchema),
        (status = 409, description = "Taken in that context; the conflict is recorded                                       (`conflict`, with `conflict_id` and `existing`)",
         body = ErrorBody, example = json!({
            "error": "conflict", "message": "duplicate conflict; recorded as conflict 4",
            "conflict_id": 4, "conflict_type": "duplicate", "existing": {}})),
        (status = 413, description = "Body too large (`payload_too_large`)", body = ErrorBody),
        (status = 422, description = "A governance rule refuses it (`governance_violation`, \
                                      with `rule`)", body = ErrorBody),
    )
)]
pub(crate) async fn create(
    State(st): State<Shared>,
    caller: Caller,
    Json(b): Json<CreateBody>,
) -> Result<Response, ApiError> {
    let new = NewAlias::parse(&b.context, &b.alias, &b.canonical, b.description, b.expires_at)
        .map_err(bad)?;
    caller.may(Action::WriteAliases, Scope::Context(new.key.context.as_str()))?;
    match registry::create(&st.store, &st.governance(), &new, &caller.actor()).await? {
        Created::New { alias, .. } => Ok((StatusCode::CREATED, axum::Json(alias)).into_response()),
        Created::Existing(alias) => Ok((StatusCode::OK, axum::Json(alias)).into_response()),
        Created::Conflict { id, kind, existing } => {
            Err(ApiError::Conflict { conflict_id: id, kind, existing })
        }
    }
}

/// Lists aliases in the caller's contexts, by id.
#[utoipa::path(
    get,
    path = "/api/admin/aliases",
    operation_id = "list_aliases",
    tag = "aliases",
    params(ListQuery),
    responses((status = 200, description = "A page of aliases", body = AliasPageSchema))
)]
pub(crate) async fn list(
    State(st): State<Shared>,
    caller: Caller,
    Query(q): Query<ListQuery>,
) -> Result<Response, ApiError> {
    let visible = match &q.context {
        Some(c) => {
            let c = Context::parse(c).map_err(|e| bad(format!("context: {e}")))?;
            caller.may(Action::ReadAliases, Scope::Context(c.as_str()))?;
            None
        }
        None => caller.may_list(Action::ReadAliases)?,
    };
    let filter = AliasFilter {
        context: q.context.as_deref().map(str::to_ascii_lowercase),
        visible,
        active: q.active,
        q: q.q.filter(|s| !s.is_empty()),
        after_id: parse_cursor(q.cursor.as_deref())?,
        limit: parse_limit(q.limit)?,
    };
    let items = st.store.list_aliases(&filter).await?;
    let next = (items.len() as i64 == filter.limit).then(|| items.last().map(|a| a.id.to_string()));
    Ok(axum::Json(json!({"items": items, "next_cursor": next.flatten()})).into_response())
}

/// The alias at a key: the active one, else the newest inactive one.
#[utoipa::path(
    get,
    path = "/api/admin/aliases/{context}/{alias}",
    operation_id = "get_alias",
    tag = "aliases",
    params(("context" = String, Path, example = "frontend"),
           ("alias" = String, Path, example = "user-profile")),
    responses(
        (status = 200, description = "The alias", body = AliasSchema),
        (status = 404, description = "No such alias (`not_found`)", body = ErrorBody),
    )
)]
pub(crate) async fn get(
    State(st): State<Shared>,
    caller: Caller,
    AliasPath(key): AliasPath,
) -> Result<Response, ApiError> {
    caller.may_on(Action::ReadAliases, &key)?;
    match st.store.alias(&key).await? {
        Some(a) => Ok(axum::Json(a).into_response()),
        None => Err(ApiError::NotFound(format!("no alias {}/{}", key.context, key.alias))),
    }
}

/// Changes an alias (and may reactivate it).
#[utoipa::path(
    put,
    path = "/api/admin/aliases/{context}/{alias}",
    operation_id = "update_alias",
    tag = "aliases",
    params(("context" = String, Path, example = "frontend"),
           ("alias" = String, Path, example = "user-profile")),
    request_body = UpdateBody,
    responses(
        (status = 200, description = "The alias as changed", body = AliasSchema),
        (status = 403, description = "Another owns it and the context does not share \
                                      (`not_owner`, with `owner`); or role/context", body = ErrorBody),
        (status = 404, description = "No such alias (`not_found`)", body = ErrorBody),
        (status = 409, description = "Reactivating it would take a key another active alias \
                                      holds (`conflict`, with `existing`)", body = ErrorBody),
        (status = 413, description = "Body too large (`payload_too_large`)", body = ErrorBody),
        (status = 422, description = "A governance rule refuses it (`governance_violation`)",
         body = ErrorBody),
    )
)]
pub(crate) async fn update(
    State(st): State<Shared>,
    caller: Caller,
    AliasPath(key): AliasPath,
    Json(b): Json<UpdateBody>,
) -> Result<Response, ApiError> {
    caller.may_on(Action::WriteAliases, &key)?;
    let patch = AliasPatch {
        canonical: b.canonical.as_deref().map(Canonical::parse).transpose().map_err(bad)?,
        description: b
            .description
            .map(|d| d.map(parse_description).transpose())
            .transpose()
            .map_err(bad)?,
        expires_at: b.expires_at,
        is_active: b.is_active,
    };
    let done = registry::update(
        &st.store,
        &st.governance(),
        &key,
        &patch,
        &caller.actor(),
        &caller.writer(),
    )
    .await?;
    updated(done, &key).map(|a| axum::Json(a).into_response())
}

fn updated(u: Updated, key: &AliasKey) -> Result<OwnedAlias, ApiError> {
    match u {
        Updated::Done(a) => Ok(a),
        Updated::NotFound => {
            Err(ApiError::NotFound(format!("no alias {}/{}", key.context, key.alias)))
        }
        Updated::Violation(v) => Err(ApiError::Governance(v)),
        Updated::NotOwner(owner) => {
            Err(ApiError::NotOwner { alias: format!("{}/{}", key.context, key.alias), owner })
        }
    }
}

/// Deactivates the active alias at a key; edges stop resolving it.
#[utoipa::path(
    delete,
    path = "/api/admin/aliases/{context}/{alias}",
    operation_id = "deactivate_alias",
    tag = "aliases",
    params(("context" = String, Path, example = "frontend"),
           ("alias" = String, Path, example = "user-profile")),
    responses(
        (status = 204, description = "Deactivated"),
        (status = 403, description = "Another owns it and the context does not share \
                                      (`not_owner`, with `owner`); or role/context", body = ErrorBody),
        (status = 404, description = "No active alias there (`not_found`)", body = ErrorBody),
    )
)]
pub(crate) async fn deactivate(
    State(st): State<Shared>,
    caller: Caller,
    AliasPath(key): AliasPath,
) -> Result<Response, ApiError> {
    caller.may_on(Action::WriteAliases, &key)?;
    let done =
        registry::deactivate(&st.store, &st.governance(), &key, &caller.actor(), &caller.writer())
            .await?;
    updated(done, &key)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Gives an alias (the active one at the key, else the newest inactive one)
/// another owner. Admin only; audited as `alias.transfer` and a new version
/// in the alias's history (edges see the same content again).
#[utoipa::path(
    post,
    path = "/api/admin/aliases/{context}/{alias}/owner",
    operation_id = "transfer_alias",
    tag = "aliases",
    params(("context" = String, Path, example = "frontend"),
           ("alias" = String, Path, example = "user-profile")),
    request_body = TransferBody,
    responses(
        (status = 200, description = "The alias with its new owner (unchanged, and nothing \
                                      written, when it already had that owner)", body = AliasSchema),
        (status = 404, description = "No such alias (`not_found`)", body = ErrorBody),
    )
)]
pub(crate) async fn transfer(
    State(st): State<Shared>,
    caller: Caller,
    AliasPath(key): AliasPath,
    Json(b): Json<TransferBody>,
) -> Result<Response, ApiError> {
    caller.may_on(Action::TransferOwnership, &key)?;
    let owner = parse_owner(&b.owner).map_err(bad)?;
    let done = registry::transfer(&st.store, &key, &owner, &caller.actor()).await?;
    updated(done, &key).map(|a| axum::Json(a).into_response())
}

/// JSON body `{"aliases":[...],"on_conflict":...,"dry_run":...}`, or the
/// declarative YAML file (`Content-Type: application/yaml`) with
/// `?on_conflict=&dry_run=`.
#[utoipa::path(
    post,
    path = "/api/admin/aliases/import",
    operation_id = "import_aliases",
    tag = "aliases",
    params(ImportQuery),
    request_body(content(
        (ImportBody = "application/json"),
        (AliasFileSchema = "application/yaml"),
    )),
    responses(
        (status = 200, description = "What was (or, with dry_run, would be) done",
         body = ImportReportSchema),
        (status = 409, description = "Under `reject`, entries conflict; nothing was written \
                                      (`conflict`, with `conflicts`)", body = ErrorBody),
        (status = 413, description = "Body too large (`payload_too_large`, 64 MiB)",
         body = ErrorBody),
        (status = 403, description = "Under `replace`, entries over aliases others own \
                                      (`not_owner`, with `refused`); nothing was written",
         body = ErrorBody),
        (status = 422, description = "An entry breaks a governance rule; nothing was written",
         body = ErrorBody),
    )
)]
pub(crate) async fn import(
    State(st): State<Shared>,
    caller: Caller,
    headers: HeaderMap,
    Query(q): Query<ImportQuery>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let body = body?;
    let yaml = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.contains("yaml"));
    // Parsing megabytes is CPU work: keep it off the async workers.
    let parsed = tokio::task::spawn_blocking(move || -> Result<ImportBody, ApiError> {
        if yaml {
            let text = std::str::from_utf8(&body).map_err(bad)?;
            let file = AliasFile::parse(text).map_err(bad)?;
            Ok(ImportBody { aliases: file.aliases, on_conflict: q.on_conflict, dry_run: q.dry_run })
        } else {
            let b: ImportBody = serde_json::from_slice(&body).map_err(bad)?;
            let mut seen = HashSet::with_capacity(b.aliases.len());
            for (i, e) in b.aliases.iter().enumerate() {
                if !seen.insert((e.context.as_str(), e.alias.as_str())) {
                    return Err(bad(format!("entry {i}: {}/{} appears twice", e.context, e.alias)));
                }
            }
            Ok(b)
        }
    })
    .await
    .map_err(ApiError::internal)??;
    let contexts: HashSet<&str> = parsed.aliases.iter().map(|e| e.context.as_str()).collect();
    for c in contexts {
        caller.may(Action::WriteAliases, Scope::Context(c))?;
    }
    let report = registry::import_by(
        &st.store,
        &st.governance(),
        &parsed.aliases,
        parsed.on_conflict,
        parsed.dry_run,
        &caller.actor(),
        &caller.writer(),
    )
    .await?;
    Ok(axum::Json(report).into_response())
}
