//! The audit trail: filter by actor, action and time, page by cursor, and
//! "verify the chain" with its result and the first bad row.

use axum::extract::{Query, State};
use axum::response::Response;
use chrono::{DateTime, Utc};
use maud::{Markup, html};
use serde::Deserialize;

use crate::console::errors::Problem;
use crate::console::signed::Signed;
use crate::console::state::ConsoleState;
use crate::console::view::{self, Nav, respond};
use crate::domain::rbac::{Action, Scope};
use crate::store::audit::{AuditFilter, AuditRow};
use crate::web::error::ApiError;

/// Rows per page.
const PAGE: i64 = 50;
/// Longest filter text.
const MAX_FILTER: usize = 255;

#[derive(Debug, Default, Deserialize)]
pub struct AuditQuery {
    #[serde(default)]
    actor: String,
    #[serde(default)]
    action: String,
    /// RFC 3339 (from the JS), else the local field read as UTC.
    #[serde(default)]
    since: String,
    #[serde(default)]
    since_local: String,
    #[serde(default)]
    until: String,
    #[serde(default)]
    until_local: String,
    cursor: Option<String>,
    verify: Option<String>,
}

fn instant(what: &str, rfc: &str, local: &str) -> Result<Option<DateTime<Utc>>, ApiError> {
    view::form_instant(what, rfc, local).map_err(ApiError::BadRequest)
}

fn text(what: &str, v: &str) -> Result<Option<String>, ApiError> {
    let v = v.trim();
    if v.len() > MAX_FILTER {
        return Err(ApiError::BadRequest(format!("{what} is over {MAX_FILTER} bytes")));
    }
    Ok((!v.is_empty()).then(|| v.to_owned()))
}

fn rows(items: &[AuditRow], bad: Option<i32>) -> Markup {
    html! {
        div.table-wrap { table #audit {
            thead { tr {
                th.num scope="col" { "Id" } th scope="col" { "When" } th scope="col" { "Who" }
                th scope="col" { "Action" } th scope="col" { "Target" } th scope="col" { "Details" }
            } }
            tbody { @for r in items {
                tr id=(format!("audit-{}", r.id)) class=[(Some(r.id) == bad).then_some("bad-row")] {
                    td.num { (r.id) }
                    td { (view::time(r.created_at)) }
                    td { (r.user) }
                    td { code { (r.action) } }
                    td { (r.target.as_deref().unwrap_or("—")) }
                    td { (r.details.as_deref().unwrap_or("")) }
                }
            } }
        } }
    }
}

pub async fn page(
    State(st): State<ConsoleState>,
    s: Signed,
    Query(q): Query<AuditQuery>,
) -> Result<Response, Problem> {
    s.caller.may(Action::ReadAudit, Scope::Global)?;
    let after_id = q
        .cursor
        .as_deref()
        .filter(|c| !c.is_empty())
        .map(|c| {
            c.parse::<i32>()
                .map_err(|_| ApiError::BadRequest("cursor is not one this page gave".into()))
        })
        .transpose()?;
    let since = instant("since", &q.since, &q.since_local)?;
    let until = instant("until", &q.until, &q.until_local)?;
    let filter = AuditFilter {
        actor: text("actor", &q.actor)?,
        action: text("action", &q.action)?,
        since,
        until,
        after_id,
        limit: PAGE,
    };
    let items = st.app.store.audit(&filter).await?;
    let next = (items.len() as i64 == PAGE).then(|| items.last().map(|r| r.id)).flatten();
    let verified = match q.verify.is_some() {
        true => Some(st.app.store.verify_audit().await?),
        false => None,
    };
    let bad_row = match verified.as_ref().and_then(|v| v.first_bad_id) {
        Some(id) => {
            let f = AuditFilter { after_id: Some(id - 1), limit: 1, ..AuditFilter::default() };
            st.app.store.audit(&f).await?.into_iter().find(|r| r.id == id)
        }
        None => None,
    };
    let link = |cursor: i32| {
        let mut qs = url::form_urlencoded::Serializer::new(String::new());
        qs.append_pair("actor", q.actor.trim()).append_pair("action", q.action.trim());
        if let Some(t) = since {
            qs.append_pair("since", &t.to_rfc3339());
        }
        if let Some(t) = until {
            qs.append_pair("until", &t.to_rfc3339());
        }
        qs.append_pair("cursor", &cursor.to_string());
        format!("/console/audit?{}", qs.finish())
    };
    let body = html! {
        form.filters method="get" action="/console/audit" {
            input type="hidden" name="verify" value="1";
            button type="submit" #verify { "Verify the chain" }
        }
        @if let Some(v) = &verified {
            div #verify-result role="status" {
                @if v.ok {
                    p.notice { span.ok { "The chain is intact" } ": " (v.checked) " rows checked." }
                } @else {
                    p.error {
                        span.bad { "The chain is broken" } ": " (v.checked) " rows checked; the first bad row is "
                        @match v.first_bad_id {
                            Some(id) => strong #first-bad { (id) },
                            None => "the head (the newest rows are missing)",
                        }
                        "."
                    }
                    @if let Some(r) = &bad_row { (rows(std::slice::from_ref(r), Some(r.id))) }
                }
            }
        }
        h2 { "Rows" }
        form.filters method="get" action="/console/audit" {
            label { "Actor" input type="text" name="actor" value=(q.actor.trim()) maxlength=(MAX_FILTER); }
            label { "Action" input type="text" name="action" value=(q.action.trim()) placeholder="alias.update" maxlength=(MAX_FILTER); }
            label { "Since (your local time)"
                input type="datetime-local" name="since_local" data-utc="since"
                    data-utc-value=[since.map(|t| t.to_rfc3339())]
                    value=[since.map(|t| t.format("%Y-%m-%dT%H:%M").to_string())]; }
            input type="hidden" name="since" value="";
            label { "Until (your local time)"
                input type="datetime-local" name="until_local" data-utc="until"
                    data-utc-value=[until.map(|t| t.to_rfc3339())]
                    value=[until.map(|t| t.format("%Y-%m-%dT%H:%M").to_string())]; }
            input type="hidden" name="until" value="";
            button type="submit" { "Filter" }
        }
        @if items.is_empty() { p.muted { "No audit rows match." } } @else { (rows(&items, verified.as_ref().and_then(|v| v.first_bad_id))) }
        nav.pager aria-label="Pages" {
            @if let Some(n) = next { a href=(link(n)) rel="next" { "Next page" } }
        }
    };
    Ok(respond(view::page("Audit", Nav::Audit, &s, body)))
}
