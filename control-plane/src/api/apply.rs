//! `POST /api/admin/apply`: the declarative file as the desired state of
//! the contexts it names (plus `?context=`), with a per-alias plan; a dry
//! run is the diff `nexusctl diff` shows.

use std::collections::HashSet;

use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::response::{IntoResponse, Response};
use nexus_protocol::{AliasFile, Context};
use serde::Deserialize;
use utoipa::IntoParams;

use super::schema::{AliasFileSchema, ApplyReportSchema};
use crate::domain::rbac::{Action, Scope};
use crate::registry::{self, ApplyOptions};
use crate::store::apply::Applied;
use crate::web::Shared;
use crate::web::caller::Caller;
use crate::web::error::{ApiError, ErrorBody};
use crate::web::extract::Query;

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct ApplyQuery {
    /// Deactivate active aliases the file lacks, in the contexts it names.
    #[serde(default)]
    #[param(value_type = Option<bool>)]
    prune: bool,
    /// Plan only; write nothing.
    #[serde(default)]
    #[param(value_type = Option<bool>)]
    dry_run: bool,
    /// Refuse (409 `registry_moved`) unless the registry is at this
    /// version: the `from_version` of the dry run that was reviewed.
    expected_version: Option<i64>,
    /// More contexts to treat as named (comma-separated): with `prune`,
    /// a context the file has no entry for is emptied.
    context: Option<String>,
}

/// Applies a desired state (YAML or JSON, the file `export` gives).
#[utoipa::path(
    post,
    path = "/api/admin/apply",
    operation_id = "apply_aliases",
    tag = "aliases",
    params(ApplyQuery),
    request_body(content(
        (AliasFileSchema = "application/yaml"),
        (AliasFileSchema = "application/json"),
    )),
    responses(
        (status = 200, description = "The plan, carried out unless dry_run", body = ApplyReportSchema),
        (status = 403, description = "The plan changes aliases others own (`not_owner`, with \
                                      `refused`: the plan's refused items); nothing was written",
         body = ErrorBody),
        (status = 409, description = "The registry moved past `expected_version` \
                                      (`registry_moved`); nothing was written", body = ErrorBody),
        (status = 413, description = "Body too large (`payload_too_large`, 64 MiB)", body = ErrorBody),
        (status = 422, description = "An entry breaks a governance rule; nothing was written",
         body = ErrorBody),
    )
)]
pub(crate) async fn apply(
    State(st): State<Shared>,
    caller: Caller,
    Query(q): Query<ApplyQuery>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let body = body?;
    // Parsing megabytes is CPU work: keep it off the async workers.
    let file = tokio::task::spawn_blocking(move || -> Result<AliasFile, ApiError> {
        let text = std::str::from_utf8(&body).map_err(|e| ApiError::BadRequest(e.to_string()))?;
        AliasFile::parse(text).map_err(|e| ApiError::BadRequest(e.to_string()))
    })
    .await
    .map_err(ApiError::internal)??;
    let mut contexts: HashSet<Context> = file.aliases.iter().map(|e| e.context.clone()).collect();
    for c in q.context.iter().flat_map(|c| c.split(',')).map(str::trim).filter(|c| !c.is_empty()) {
        contexts
            .insert(Context::parse(c).map_err(|e| ApiError::BadRequest(format!("context: {e}")))?);
    }
    if contexts.is_empty() {
        return Err(ApiError::BadRequest(
            "the file names no context (give ?context= to prune an empty one)".into(),
        ));
    }
    for c in &contexts {
        caller.may(Action::WriteAliases, Scope::Context(c.as_str()))?;
    }
    let options =
        ApplyOptions { prune: q.prune, expected_version: q.expected_version, dry_run: q.dry_run };
    let governance = st.governance();
    match registry::apply(
        &st.store,
        &governance,
        &file.aliases,
        &contexts,
        options,
        &caller.actor(),
        &caller.writer(),
    )
    .await?
    {
        Applied::Done(report) => Ok(axum::Json(report).into_response()),
        Applied::Moved { expected, found } => Err(ApiError::Moved { expected, found }),
        Applied::NotOwner(items) => Err(ApiError::NotOwnerMany(
            items.iter().map(|i| serde_json::to_value(i).unwrap_or_default()).collect(),
        )),
    }
}
