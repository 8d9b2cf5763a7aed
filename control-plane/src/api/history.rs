//! `GET /api/admin/aliases/{context}/{alias}/history`: an alias's versions,
//! newest first, as far back as the history kept goes (`web::history`
//! holds the item and the window; the resolve's `?as_of=` reads it too).

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::aliases::parse_limit;
use crate::domain::rbac::Action;
use crate::web::Shared;
use crate::web::caller::Caller;
use crate::web::error::{ApiError, ErrorBody};
use crate::web::extract::{AliasPath, Query};
use crate::web::history::HistoryItem;

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct HistoryQuery {
    /// Page size, 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000, example = 50)]
    limit: Option<i64>,
    /// Only versions older than this one: the `next_before_version` of the
    /// previous page.
    #[param(minimum = 1)]
    before_version: Option<i64>,
}

/// A page of history, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct HistoryPage {
    items: Vec<HistoryItem>,
    /// Pass as `before_version` for the next page; `null` on the last one.
    next_before_version: Option<i64>,
}

/// Every version of one alias, from the outbox and the audit trail.
#[utoipa::path(
    get,
    path = "/api/admin/aliases/{context}/{alias}/history",
    operation_id = "alias_history",
    tag = "aliases",
    params(
        ("context" = String, Path, example = "frontend"),
        ("alias" = String, Path, example = "user-profile"),
        HistoryQuery,
    ),
    responses(
        (status = 200, description = "Versions, newest first", body = HistoryPage),
        (status = 404, description = "The alias never existed (in the history kept)", body = ErrorBody),
    )
)]
pub(crate) async fn history(
    State(st): State<Shared>,
    caller: Caller,
    AliasPath(key): AliasPath,
    Query(q): Query<HistoryQuery>,
) -> Result<Response, ApiError> {
    caller.may_on(Action::ReadAliases, &key)?;
    let limit = parse_limit(q.limit)?;
    let rows = st.store.alias_history(&key, q.before_version, limit).await?;
    if rows.is_empty() && q.before_version.is_none() {
        return Err(ApiError::NotFound(format!(
            "no alias {}/{} in the history",
            key.context, key.alias
        )));
    }
    let next = (rows.len() as i64 == limit).then(|| rows.last().map(|r| r.version)).flatten();
    let items = rows.into_iter().map(HistoryItem::from).collect();
    Ok(axum::Json(HistoryPage { items, next_before_version: next }).into_response())
}
