//! API keys: create (the key is shown once), list, revoke — the store calls
//! `POST/GET/DELETE /api/admin/api-keys` make. Admin only.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use maud::{Markup, html};
use nexus_protocol::{ContextScope, Role};
use serde::Deserialize;

use super::sign_in::Empty;
use crate::auth::api_key;
use crate::console::errors::Problem;
use crate::console::extract::Posted;
use crate::console::signed::Signed;
use crate::console::state::ConsoleState;
use crate::console::view::{self, Nav, csrf_field, opt_time, respond, see_other};
use crate::domain::rbac::{Action, Scope};
use crate::web::error::ApiError;

#[derive(Debug, Default, Deserialize)]
pub struct ListQuery {
    done: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct KeyForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    role: String,
    /// Comma-separated context names, or `*`.
    #[serde(default)]
    contexts: String,
    /// RFC 3339 from the JS, else the local-time field read as UTC.
    #[serde(default)]
    expires_at: String,
    #[serde(default)]
    expires_at_local: String,
}

async fn render(
    st: &ConsoleState,
    s: &Signed,
    done: Option<&str>,
    created: Option<Markup>,
    error: Option<(&str, String)>,
) -> Result<Response, Problem> {
    let keys = st.app.store.list_api_keys().await?;
    let err = |field: &str| error.as_ref().filter(|(f, _)| *f == field).map(|(_, m)| m.clone());
    let body = html! {
        (view::notice(done))
        @if let Some(c) = created { (c) }
        h2 { "New key" }
        form.stack method="post" action="/console/keys" {
            (csrf_field(s))
            label for="name" { "Name" }
            input #name name="name" type="text" required maxlength="200"
                aria-invalid=[err("name").map(|_| "true")] aria-describedby=[err("name").map(|_| "name-error")];
            (view::field_error("name", err("name").as_ref()))
            label for="role" { "Role" }
            select #role name="role" {
                @for r in ["viewer", "editor", "admin", "resolver"] { option value=(r) { (r) } }
            }
            label for="contexts" { "Contexts" span.muted { " (comma-separated, or * for all)" } }
            input #contexts name="contexts" type="text" required value="*"
                aria-invalid=[err("contexts").map(|_| "true")] aria-describedby=[err("contexts").map(|_| "contexts-error")];
            (view::field_error("contexts", err("contexts").as_ref()))
            label for="expires_at_local" { "Expires at" span.muted { " (optional; your local time)" } }
            input #expires_at_local name="expires_at_local" type="datetime-local" data-utc="expires_at"
                aria-invalid=[err("expires_at").map(|_| "true")]
                aria-describedby=[err("expires_at").map(|_| "expires_at-error")];
            input type="hidden" name="expires_at" value="";
            (view::field_error("expires_at", err("expires_at").as_ref()))
            div { button type="submit" { "Create key" } }
        }
        h2 { "Keys" }
        div.table-wrap { table #keys {
            thead { tr {
                th.num scope="col" { "Id" } th scope="col" { "Name" } th scope="col" { "Role" }
                th scope="col" { "Contexts" } th scope="col" { "Created" } th scope="col" { "Expires" }
                th scope="col" { "Revoked" }
                th scope="col" { span.muted { "Action" } }
            } }
            tbody { @for k in &keys { tr {
                td.num { (k.id) } td { (k.name) } td { (k.role) } td { (k.contexts.join(", ")) }
                td { (view::time(k.created_at)) " by " (k.created_by) }
                td { (opt_time(k.expires_at)) }
                td { (opt_time(k.revoked_at)) }
                td { @if k.revoked_at.is_none() {
                    form method="post" action=(format!("/console/keys/{}/revoke", k.id)) {
                        (csrf_field(s))
                        button.danger type="submit" aria-label=(format!("Revoke key {} ({})", k.id, k.name)) { "Revoke" }
                    }
                } }
            } } }
        } }
    };
    let mut res = respond(view::page("API keys", Nav::Keys, s, body));
    if error.is_some() {
        *res.status_mut() = StatusCode::BAD_REQUEST;
    }
    Ok(res)
}

pub async fn list(
    State(st): State<ConsoleState>,
    s: Signed,
    Query(q): Query<ListQuery>,
) -> Result<Response, Problem> {
    s.caller.may(Action::ManageApiKeys, Scope::Global)?;
    render(&st, &s, q.done.as_deref(), None, None).await
}

pub async fn create(
    State(st): State<ConsoleState>,
    Posted { signed: s, form }: Posted<KeyForm>,
) -> Result<Response, Problem> {
    s.caller.may(Action::ManageApiKeys, Scope::Global)?;
    // The API's rule for a key's name (it becomes part of the actor name).
    let name = form.name.trim();
    if name.is_empty() || name.len() > 200 || name.chars().any(char::is_control) {
        return render(
            &st,
            &s,
            None,
            None,
            Some(("name", "name must be 1 to 200 printable bytes".into())),
        )
        .await;
    }
    let role: Role = form.role.parse().map_err(ApiError::BadRequest)?;
    let list: Vec<String> = form
        .contexts
        .split(',')
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .map(str::to_owned)
        .collect();
    if list.is_empty() {
        return render(
            &st,
            &s,
            None,
            None,
            Some(("contexts", "name at least one context, or *".into())),
        )
        .await;
    }
    let contexts = match ContextScope::try_from(list) {
        Ok(c) => c,
        Err(e) => {
            return render(&st, &s, None, None, Some(("contexts", format!("contexts: {e}")))).await;
        }
    };
    let expires_at =
        match view::form_instant("expires at", &form.expires_at, &form.expires_at_local) {
            Ok(t) => t,
            Err(e) => return render(&st, &s, None, None, Some(("expires_at", e))).await,
        };
    let (key, digest) = api_key::generate();
    let created = st
        .app
        .store
        .create_expiring_api_key(name, role, &contexts, &digest, expires_at, &s.caller.actor())
        .await?;
    let shown = html! {
        div.card #created-key role="status" {
            p { "Key " strong { (created.id) } " (" (created.name) ", " (created.role.as_str()) ") created. "
                strong { "Copy it now: it is shown only once." } }
            p.key-once { code #new-key { (key) } }
        }
    };
    render(&st, &s, None, Some(shown), None).await
}

pub async fn revoke(
    State(st): State<ConsoleState>,
    Path(id): Path<i32>,
    Posted { signed: s, .. }: Posted<Empty>,
) -> Result<Response, Problem> {
    s.caller.may(Action::ManageApiKeys, Scope::Global)?;
    if st.app.store.revoke_api_key(id, &s.caller.actor()).await? {
        Ok(see_other("/console/keys?done=revoked"))
    } else {
        Err(ApiError::NotFound(format!("no active API key {id}")).into())
    }
}
