//! The conflict queue: both sides of each conflict, and keep-existing /
//! use-incoming through the store call `POST /api/admin/conflicts/{id}/
//! resolve` makes.

use axum::extract::{Path, Query, State};
use axum::response::Response;
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::Value;

use super::aliases::alias_href;
use crate::console::errors::Problem;
use crate::console::extract::Posted;
use crate::console::signed::Signed;
use crate::console::state::ConsoleState;
use crate::console::view::{self, Nav, csrf_field, opt_time, respond, see_other};
use crate::domain::conflict::Resolution;
use crate::domain::rbac::{Action, Scope};
use crate::store::conflicts::Resolved;
use crate::web::error::ApiError;

/// Conflicts listed per page (newest first).
const SHOWN: i64 = 200;

#[derive(Debug, Default, Deserialize)]
pub struct ListQuery {
    /// `open` (default), `resolved` or `all`.
    #[serde(default)]
    status: String,
    done: Option<String>,
}

/// One side of a conflict: its fields, as the API stores them.
fn side(label: &str, v: Option<&Value>) -> Markup {
    let field = |k: &str| v.and_then(|v| v.get(k)).and_then(Value::as_str).map(str::to_owned);
    html! {
        div.card {
            h3 { (label) }
            @match v {
                None => p.muted { "—" },
                Some(v) => dl.record {
                    dt { "Canonical" } dd { code { (field("canonical").unwrap_or_else(|| "—".into())) } }
                    dt { "Description" } dd { (field("description").unwrap_or_else(|| "—".into())) }
                    @if let Some(ctx) = field("context") { dt { "Context" } dd { (ctx) } }
                    @if let Some(alias) = field("alias") { dt { "Alias" } dd { (alias) } }
                    @if let Some(exp) = field("expires_at") { dt { "Expires" } dd { (exp) } }
                    @if v.get("canonical").is_none() {
                        dt { "Record" } dd { pre { (serde_json::to_string_pretty(v).unwrap_or_default()) } }
                    }
                },
            }
        }
    }
}

pub async fn list(
    State(st): State<ConsoleState>,
    s: Signed,
    Query(q): Query<ListQuery>,
) -> Result<Response, Problem> {
    let visible = s.caller.may_list(Action::ReadAliases)?;
    let open = match q.status.as_str() {
        "" | "open" => Some(true),
        "resolved" => Some(false),
        "all" => None,
        other => {
            return Err(
                ApiError::BadRequest(format!("status {other:?}: open, resolved or all")).into()
            );
        }
    };
    let items = st.app.store.conflicts(open, visible.as_deref(), SHOWN).await?;
    let status = if q.status.is_empty() { "open" } else { q.status.as_str() };
    let body = html! {
        (view::notice(q.done.as_deref()))
        form.filters method="get" action="/console/conflicts" {
            label { "Status"
                select name="status" {
                    @for (v, l) in [("open", "Open"), ("resolved", "Resolved"), ("all", "All")] {
                        option value=(v) selected[status == v] { (l) }
                    }
                }
            }
            button type="submit" { "Show" }
        }
        @if items.is_empty() { p.muted { "No conflicts." } }
        @for c in &items {
            section.conflict id=(format!("conflict-{}", c.id)) aria-labelledby=(format!("conflict-{}-title", c.id)) {
                h2 id=(format!("conflict-{}-title", c.id)) {
                    "Conflict " (c.id) ": " (c.conflict_type) " on "
                    a href=(alias_href(&c.context, &c.alias)) { (c.context) "/" (c.alias) }
                }
                p.muted { "Recorded " (view::time(c.created_at))
                    @if let Some(r) = &c.resolution {
                        " · resolved: " strong { (r) } " " (opt_time(c.resolved_at))
                        " by " (c.resolved_by.as_deref().unwrap_or("—"))
                    }
                }
                div.sides {
                    (side("Existing", c.existing.as_ref()))
                    (side("Incoming", c.incoming.as_ref()))
                }
                @if c.resolution.is_none() && s.can(Action::ResolveConflict, Scope::Context(&c.context)) {
                    div.actions {
                        @for (value, label) in [("keep_existing", "Keep existing"), ("use_incoming", "Use incoming")] {
                            form method="post" action=(format!("/console/conflicts/{}/resolve", c.id)) {
                                (csrf_field(&s))
                                input type="hidden" name="resolution" value=(value);
                                button type="submit" aria-label=(format!("{label} (conflict {})", c.id)) { (label) }
                            }
                        }
                    }
                }
            }
        }
    };
    Ok(respond(view::page("Conflicts", Nav::Conflicts, &s, body)))
}

#[derive(Debug, Deserialize)]
pub struct ResolveForm {
    resolution: Resolution,
}

pub async fn resolve(
    State(st): State<ConsoleState>,
    Path(id): Path<i32>,
    Posted { signed: s, form }: Posted<ResolveForm>,
) -> Result<Response, Problem> {
    let Some(c) = st.app.store.conflict(id).await? else {
        return Err(ApiError::NotFound(format!("no conflict {id}")).into());
    };
    s.caller.may(Action::ResolveConflict, Scope::Context(&c.context))?;
    let resolved = st
        .app
        .store
        .resolve_conflict(
            id,
            form.resolution,
            &s.caller.actor(),
            &s.caller.writer(),
            &st.app.governance(),
        )
        .await?;
    match resolved {
        Resolved::Done(_) => Ok(see_other("/console/conflicts?done=resolved")),
        Resolved::NotFound => Err(ApiError::NotFound(format!("no conflict {id}")).into()),
        Resolved::Already => Err(ApiError::AlreadyResolved(id).into()),
        Resolved::NotOwner { alias, owner } => Err(ApiError::NotOwner { alias, owner }.into()),
    }
}
