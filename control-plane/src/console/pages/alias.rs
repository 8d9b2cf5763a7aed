//! One alias: its record, its history, "resolve as of" a version or a
//! time, and (for a writer) the edit form and deactivate / reactivate.

use axum::body::to_bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use chrono::SecondsFormat;
use maud::{Markup, html};
use nexus_protocol::{AliasKey, Canonical};
use serde::Deserialize;

use super::aliases::{AliasForm, FieldErrors, alias_form, alias_href, contexts_known};
use super::sign_in::Empty;
use crate::console::errors::Problem;
use crate::console::extract::Posted;
use crate::console::signed::Signed;
use crate::console::state::ConsoleState;
use crate::console::view::{self, Nav, csrf_field, opt_time, respond, see_other};
use crate::domain::alias::{AliasPatch, OwnedAlias, parse_description};
use crate::domain::rbac::{Action, Scope};
use crate::registry;
use crate::store::aliases::Updated;
use crate::web::error::ApiError;
use crate::web::extract::parse_key;
use crate::web::history::{AsOf, HistoryItem, resolve_as_of};

/// Versions shown on the page (the API pages further).
const HISTORY_SHOWN: i64 = 50;
/// Longest `as_of` read back from the API's answer.
const MAX_ANSWER: usize = 16 << 10;

#[derive(Debug, Default, Deserialize)]
pub struct PageQuery {
    as_of: Option<String>,
    done: Option<String>,
}

/// What "resolve as of" answered.
enum AsOfAnswer {
    Resolved { canonical: String, version: String },
    Refused(String),
}

async fn as_of(st: &ConsoleState, key: &AliasKey, raw: &str) -> Result<AsOfAnswer, Problem> {
    let parsed = match AsOf::parse(raw.trim()) {
        Ok(a) => a,
        Err(ApiError::BadRequest(m)) => return Ok(AsOfAnswer::Refused(m)),
        Err(e) => return Err(e.into()),
    };
    // The API's own resolve-as-of: same window, expiry and answer.
    match resolve_as_of(&st.app, key, parsed).await {
        Ok(res) => {
            let version = res
                .headers()
                .get("x-nexus-version")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned();
            let body = to_bytes(res.into_body(), MAX_ANSWER).await.map_err(ApiError::internal)?;
            let v: serde_json::Value = serde_json::from_slice(&body).map_err(ApiError::internal)?;
            let canonical = v["canonical_name"].as_str().unwrap_or_default().to_owned();
            Ok(AsOfAnswer::Resolved { canonical, version })
        }
        Err(ApiError::BadRequest(m) | ApiError::Gone(m) | ApiError::NotFound(m)) => {
            Ok(AsOfAnswer::Refused(m))
        }
        Err(e) => Err(e.into()),
    }
}

fn record(owned: &OwnedAlias) -> Markup {
    let a = &owned.row;
    html! {
        dl.record #record {
            dt { "Context" } dd { (a.context.as_str()) }
            dt { "Alias" } dd { (a.alias.as_str()) }
            dt { "Canonical" } dd #record-canonical { code { (a.canonical.as_str()) } }
            dt { "Description" } dd { (a.description.as_deref().unwrap_or("—")) }
            dt { "State" } dd #state { @if a.is_active { span.ok { "active" } } @else { span.muted { "inactive" } } }
            dt { "Expires" } dd { (opt_time(a.expires_at)) }
            dt { "Version" } dd { (a.version) }
            dt { "Created" } dd { (view::time(a.created_at)) " by " (a.created_by.as_deref().unwrap_or("—")) }
            dt { "Updated" } dd { (view::time(a.updated_at)) }
            dt { "Owner" } dd #owner { (owned.owner) }
        }
    }
}

fn history(items: &[HistoryItem]) -> Markup {
    html! {
        @if items.is_empty() {
            p.muted { "No change of this alias is left in the history kept." }
        } @else {
            div.table-wrap { table #history {
                thead { tr {
                    th.num scope="col" { "Version" } th scope="col" { "When" }
                    th scope="col" { "Who" } th scope="col" { "Action" }
                    th scope="col" { "Canonical" } th scope="col" { "State" }
                } }
                tbody { @for h in items { tr {
                    td.num { (h.version) }
                    td { (view::time(h.when)) }
                    td { (h.who.as_deref().unwrap_or("—")) }
                    td { code { (h.action.as_deref().unwrap_or("—")) } }
                    td { code { (h.canonical.as_deref().unwrap_or("—")) } }
                    td { @if h.removed { "removed" } @else if h.active { "active" } @else { "inactive" } }
                } } }
            } }
        }
    }
}

fn form_values(owned: &OwnedAlias) -> AliasForm {
    let a = &owned.row;
    AliasForm {
        context: a.context.as_str().to_owned(),
        alias: a.alias.as_str().to_owned(),
        canonical: a.canonical.as_str().to_owned(),
        description: a.description.clone().unwrap_or_default(),
        expires_at: a
            .expires_at
            .map(|t| t.to_rfc3339_opts(SecondsFormat::Secs, true))
            .unwrap_or_default(),
        expires_at_local: String::new(),
    }
}

#[allow(clippy::too_many_arguments)]
async fn render(
    st: &ConsoleState,
    s: &Signed,
    key: &AliasKey,
    q: &PageQuery,
    edit: Option<(&AliasForm, &FieldErrors)>,
) -> Result<Response, Problem> {
    s.caller.may_on(Action::ReadAliases, key)?;
    let Some(alias) = st.app.store.alias(key).await? else {
        return Err(ApiError::NotFound(format!("no alias {}/{}", key.context, key.alias)).into());
    };
    let versions = st.app.store.alias_history(key, None, HISTORY_SHOWN).await?;
    let items: Vec<HistoryItem> = versions.into_iter().map(HistoryItem::from).collect();
    let can_resolve = s.can(Action::Resolve, Scope::Context(key.context.as_str()));
    let answer = match (&q.as_of, can_resolve) {
        (Some(raw), true) if !raw.trim().is_empty() => Some(as_of(st, key, raw).await?),
        _ => None,
    };
    let href = alias_href(key.context.as_str(), key.alias.as_str());
    // The role and context allow writes, and ownership lets this writer
    // change this alias (the server checks both again on the POST).
    let writer = s.can(Action::WriteAliases, Scope::Context(key.context.as_str()))
        && alias.changeable_by(&s.caller.writer(), &st.app.governance());
    let values = form_values(&alias);
    let (values, errors) = match edit {
        Some((v, e)) => (v.clone(), e.clone()),
        None => (values, FieldErrors::default()),
    };
    let body = html! {
        (view::notice(q.done.as_deref()))
        (record(&alias))
        @if writer {
            h2 { "Edit" }
            (alias_form(s, &href, &values, &errors, true, &contexts_known(st)))
            div.actions {
                @if alias.is_active {
                    form method="post" action=(format!("{href}/deactivate")) {
                        (csrf_field(s))
                        button.danger type="submit" { "Deactivate" }
                    }
                } @else {
                    form method="post" action=(format!("{href}/reactivate")) {
                        (csrf_field(s))
                        button.secondary type="submit" { "Reactivate" }
                    }
                }
            }
        }
        @if can_resolve {
            h2 { "Resolve as of" }
            form.filters method="get" action=(href) {
                label { "Registry version, or a time (RFC 3339, e.g. 2026-01-05T14:03:00Z)"
                    input type="text" name="as_of" value=(q.as_of.as_deref().unwrap_or_default())
                        required; }
                button type="submit" { "Resolve" }
            }
            @match &answer {
                Some(AsOfAnswer::Resolved { canonical, version }) => p #as-of-answer role="status" {
                    "At version " strong { (version) } " it resolved to " code { (canonical) } "."
                },
                Some(AsOfAnswer::Refused(m)) => p.error #as-of-answer role="status" { (m) },
                None => {},
            }
        }
        h2 { "History" }
        (history(&items))
    };
    let title = format!("{}/{}", key.context, key.alias);
    let mut res = respond(view::page(&title, Nav::Aliases, s, body));
    if errors.any() {
        *res.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
    }
    Ok(res)
}

pub async fn page(
    State(st): State<ConsoleState>,
    s: Signed,
    Path((context, alias)): Path<(String, String)>,
    Query(q): Query<PageQuery>,
) -> Result<Response, Problem> {
    let key = parse_key(&context, &alias)?;
    render(&st, &s, &key, &q, None).await
}

/// Changes an alias through `registry::update`, as
/// `PUT /api/admin/aliases/{context}/{alias}` does.
pub async fn update(
    State(st): State<ConsoleState>,
    Path((context, alias)): Path<(String, String)>,
    Posted { signed: s, form }: Posted<AliasForm>,
) -> Result<Response, Problem> {
    let key = parse_key(&context, &alias)?;
    s.caller.may_on(Action::WriteAliases, &key)?;
    let q = PageQuery::default();
    let refuse = |errors: FieldErrors| (form.clone(), errors);
    let canonical = match Canonical::parse(form.canonical.trim()) {
        Ok(c) => c,
        Err(e) => {
            let (f, e) = refuse(FieldErrors {
                canonical: Some(format!("canonical: {e}")),
                ..Default::default()
            });
            return render(&st, &s, &key, &q, Some((&f, &e))).await;
        }
    };
    let description = match form.description().map(parse_description).transpose() {
        Ok(d) => d,
        Err(e) => {
            let (f, e) =
                refuse(FieldErrors { description: Some(e.to_string()), ..Default::default() });
            return render(&st, &s, &key, &q, Some((&f, &e))).await;
        }
    };
    let expires_at = match form.expires_at() {
        Ok(t) => t,
        Err(e) => {
            let (f, e) = refuse(FieldErrors { expires_at: Some(e), ..Default::default() });
            return render(&st, &s, &key, &q, Some((&f, &e))).await;
        }
    };
    let patch = AliasPatch {
        canonical: Some(canonical),
        description: Some(description),
        expires_at: Some(expires_at),
        is_active: None,
    };
    let rules = st.app.governance();
    match registry::update(
        &st.app.store,
        &rules,
        &key,
        &patch,
        &s.caller.actor(),
        &s.caller.writer(),
    )
    .await?
    {
        Updated::Done(_) => Ok(see_other(&format!(
            "{}?done=updated",
            alias_href(key.context.as_str(), key.alias.as_str())
        ))),
        Updated::NotFound => {
            Err(ApiError::NotFound(format!("no alias {}/{}", key.context, key.alias)).into())
        }
        Updated::Violation(v) => {
            let (f, e) = refuse(FieldErrors::governance(v.rule, &v.message));
            render(&st, &s, &key, &q, Some((&f, &e))).await
        }
        Updated::NotOwner(owner) => Err(not_owner(&key, owner)),
    }
}

/// Deactivates through `registry::deactivate`, as `DELETE /api/admin/aliases/...` does.
pub async fn deactivate(
    State(st): State<ConsoleState>,
    Path((context, alias)): Path<(String, String)>,
    Posted { signed: s, .. }: Posted<Empty>,
) -> Result<Response, Problem> {
    let key = parse_key(&context, &alias)?;
    s.caller.may_on(Action::WriteAliases, &key)?;
    let rules = st.app.governance();
    let writer = s.caller.writer();
    let done_ =
        registry::deactivate(&st.app.store, &rules, &key, &s.caller.actor(), &writer).await?;
    done(done_, &key, "deactivated")
}

/// Reactivates through `registry::update` (`is_active: true`), as a `PUT`
/// with `{"is_active": true}` does.
pub async fn reactivate(
    State(st): State<ConsoleState>,
    Path((context, alias)): Path<(String, String)>,
    Posted { signed: s, .. }: Posted<Empty>,
) -> Result<Response, Problem> {
    let key = parse_key(&context, &alias)?;
    s.caller.may_on(Action::WriteAliases, &key)?;
    let patch = AliasPatch { is_active: Some(true), ..AliasPatch::default() };
    let rules = st.app.governance();
    done(
        registry::update(
            &st.app.store,
            &rules,
            &key,
            &patch,
            &s.caller.actor(),
            &s.caller.writer(),
        )
        .await?,
        &key,
        "reactivated",
    )
}

fn done(u: Updated, key: &AliasKey, what: &str) -> Result<Response, Problem> {
    match u {
        Updated::Done(_) => Ok(see_other(&format!(
            "{}?done={what}",
            alias_href(key.context.as_str(), key.alias.as_str())
        ))),
        Updated::NotFound => {
            Err(ApiError::NotFound(format!("no active alias {}/{}", key.context, key.alias)).into())
        }
        Updated::Violation(v) => Err(ApiError::Governance(v).into()),
        Updated::NotOwner(owner) => Err(not_owner(key, owner)),
    }
}

fn not_owner(key: &AliasKey, owner: String) -> Problem {
    ApiError::NotOwner { alias: format!("{}/{}", key.context, key.alias), owner }.into()
}
