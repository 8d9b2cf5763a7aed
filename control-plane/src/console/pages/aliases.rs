//! The aliases page: search by name or canonical, filter by context and
//! state, one page at a time by cursor (the API's list query: indexed,
//! `LIMIT`ed, never the whole registry); and the create form.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use chrono::{DateTime, Utc};
use maud::{Markup, html};
use serde::Deserialize;

use crate::console::errors::Problem;
use crate::console::extract::Posted;
use crate::console::signed::Signed;
use crate::console::state::ConsoleState;
use crate::console::view::{self, Nav, csrf_field, described, field_error, respond, see_other};
use crate::domain::alias::{FieldError, NewAlias};
use crate::domain::rbac::{Action, Scope};
use crate::registry::{self, WriteError};
use crate::store::aliases::{AliasFilter, Created};
use crate::web::error::ApiError;
use nexus_protocol::Context;

/// Rows per page.
pub const PAGE: i64 = 50;
/// Longest search text taken.
const MAX_QUERY: usize = 200;

#[derive(Debug, Default, Deserialize)]
pub struct ListQuery {
    #[serde(default)]
    q: String,
    #[serde(default)]
    context: String,
    /// `active` (default), `inactive` or `all`.
    #[serde(default)]
    state: String,
    cursor: Option<String>,
    done: Option<String>,
}

pub fn contexts_known(st: &ConsoleState) -> Vec<String> {
    st.app.governance().document().contexts.keys().map(|c| c.as_str().to_owned()).collect()
}

pub async fn list(
    State(st): State<ConsoleState>,
    s: Signed,
    Query(q): Query<ListQuery>,
) -> Result<Response, Problem> {
    let context = match q.context.trim() {
        "" => None,
        c => Some(Context::parse(c).map_err(|e| ApiError::BadRequest(format!("context: {e}")))?),
    };
    let visible = match &context {
        Some(c) => {
            s.caller.may(Action::ReadAliases, Scope::Context(c.as_str()))?;
            None
        }
        None => s.caller.may_list(Action::ReadAliases)?,
    };
    let active = match q.state.as_str() {
        "" | "active" => Some(true),
        "inactive" => Some(false),
        "all" => None,
        other => {
            return Err(
                ApiError::BadRequest(format!("state {other:?}: active, inactive or all")).into()
            );
        }
    };
    let text = q.q.trim();
    if text.len() > MAX_QUERY {
        return Err(ApiError::BadRequest(format!("search text is over {MAX_QUERY} bytes")).into());
    }
    let after_id = q
        .cursor
        .as_deref()
        .filter(|c| !c.is_empty())
        .map(|c| {
            c.parse::<i32>()
                .map_err(|_| ApiError::BadRequest("cursor is not one this page gave".into()))
        })
        .transpose()?;
    // The filter may gain fields (helpers are adding ownership): keep the
    // rest at their defaults rather than fail to build.
    #[allow(clippy::needless_update)]
    let filter = AliasFilter {
        context: context.as_ref().map(|c| c.as_str().to_owned()),
        visible,
        active,
        q: (!text.is_empty()).then(|| text.to_owned()),
        after_id,
        limit: PAGE,
        ..AliasFilter::default()
    };
    let items = st.app.store.search_aliases(&filter).await?;
    let next = (items.len() as i64 == PAGE).then(|| items.last().map(|a| a.id)).flatten();
    let state = if q.state.is_empty() { "active" } else { q.state.as_str() };
    let link = |cursor: Option<i32>| {
        let mut qs = url::form_urlencoded::Serializer::new(String::new());
        qs.append_pair("q", text)
            .append_pair("context", q.context.trim())
            .append_pair("state", state);
        if let Some(c) = cursor {
            qs.append_pair("cursor", &c.to_string());
        }
        format!("/console/aliases?{}", qs.finish())
    };
    let known = contexts_known(&st);
    let body = html! {
        (view::notice(q.done.as_deref()))
        form.filters method="get" action="/console/aliases" role="search" {
            label { "Name or canonical"
                input type="search" name="q" value=(text) maxlength=(MAX_QUERY); }
            label { "Context"
                input type="text" name="context" value=(q.context.trim()) list="contexts"
                    placeholder="any"; }
            datalist #contexts { @for c in &known { option value=(c) {} } }
            label { "State"
                select name="state" {
                    @for (v, l) in [("active", "Active"), ("inactive", "Inactive"), ("all", "All")] {
                        option value=(v) selected[state == v] { (l) }
                    }
                }
            }
            button type="submit" { "Search" }
        }
        @if s.can_somewhere(Action::WriteAliases) {
            p { a href="/console/aliases/new" { "New alias" } }
        }
        @if items.is_empty() {
            p.muted { "No aliases match." }
        } @else {
            div.table-wrap { table #aliases {
                thead { tr {
                    th scope="col" { "Context" } th scope="col" { "Alias" }
                    th scope="col" { "Canonical" } th scope="col" { "State" }
                    th.num scope="col" { "Version" } th scope="col" { "Owner" }
                    th scope="col" { "Updated" }
                } }
                tbody { @for owned in &items { @let a = &owned.row; tr {
                    td { (a.context.as_str()) }
                    td { a href=(alias_href(a.context.as_str(), a.alias.as_str())) { (a.alias.as_str()) } }
                    td { code { (a.canonical.as_str()) } }
                    td { @if a.is_active { span.ok { "active" } } @else { span.muted { "inactive" } } }
                    td.num { (a.version) }
                    td { (owned.owner) }
                    td { (view::time(a.updated_at)) }
                } } }
            } }
        }
        nav.pager aria-label="Pages" {
            @if after_id.is_some() { a href=(link(None)) { "First page" } }
            @if let Some(n) = next { a href=(link(Some(n))) rel="next" { "Next page" } }
        }
    };
    Ok(respond(view::page("Aliases", Nav::Aliases, &s, body)))
}

pub fn alias_href(context: &str, alias: &str) -> String {
    format!(
        "/console/aliases/{}/{}",
        url::form_urlencoded::byte_serialize(context.as_bytes()).collect::<String>(),
        url::form_urlencoded::byte_serialize(alias.as_bytes()).collect::<String>()
    )
}

/// The fields of the create and edit forms, as typed.
#[derive(Debug, Default, Clone, Deserialize)]
pub struct AliasForm {
    #[serde(default)]
    pub context: String,
    #[serde(default)]
    pub alias: String,
    #[serde(default)]
    pub canonical: String,
    #[serde(default)]
    pub description: String,
    /// RFC 3339, filled in from the local-time field by the JS.
    #[serde(default)]
    pub expires_at: String,
    /// The local-time field as typed; taken as UTC when the JS did not run.
    #[serde(default)]
    pub expires_at_local: String,
}

impl AliasForm {
    pub fn description(&self) -> Option<String> {
        let d = self.description.trim();
        (!d.is_empty()).then(|| d.to_owned())
    }

    pub fn expires_at(&self) -> Result<Option<DateTime<Utc>>, String> {
        view::form_instant("expires at", &self.expires_at, &self.expires_at_local)
    }
}

/// Errors shown next to the fields they concern.
#[derive(Debug, Default, Clone)]
pub struct FieldErrors {
    pub context: Option<String>,
    pub alias: Option<String>,
    pub canonical: Option<String>,
    pub description: Option<String>,
    pub expires_at: Option<String>,
    /// What concerns no single field (a conflict, a refusal).
    pub form: Option<Markup>,
}

impl FieldErrors {
    pub fn any(&self) -> bool {
        self.context.is_some()
            || self.alias.is_some()
            || self.canonical.is_some()
            || self.description.is_some()
            || self.expires_at.is_some()
            || self.form.is_some()
    }

    /// A governance violation, next to the field its rule is about, naming
    /// the rule.
    pub fn governance(rule: &str, message: &str) -> Self {
        let text = format!("{message} (governance rule {rule})");
        let mut e = FieldErrors::default();
        match field_of_rule(rule) {
            "context" => e.context = Some(text),
            "alias" => e.alias = Some(text),
            "description" => e.description = Some(text),
            "expires_at" => e.expires_at = Some(text),
            _ => e.canonical = Some(text),
        }
        e
    }

    pub fn field(err: &FieldError) -> Self {
        let text = err.to_string();
        let mut e = FieldErrors::default();
        match err {
            FieldError::Context(_) => e.context = Some(text),
            FieldError::Alias(_) => e.alias = Some(text),
            FieldError::Canonical(_) => e.canonical = Some(text),
            FieldError::DescriptionTooLong(_) | FieldError::DescriptionNul => {
                e.description = Some(text)
            }
        }
        e
    }
}

/// The field a governance rule judges (`deploy/config/alias_governance.yaml`
/// names the rules). Presentation only: which input the message sits by.
pub fn field_of_rule(rule: &str) -> &'static str {
    match rule {
        "known_context" => "context",
        "alias_pattern" | "max_alias_length" | "reserved_names" => "alias",
        "require_description" => "description",
        "max_ttl_days" | "expires_at_future" => "expires_at",
        _ => "canonical",
    }
}

/// The create form (`edit: None`) or the edit form of an alias.
pub fn alias_form(
    s: &Signed,
    action: &str,
    values: &AliasForm,
    errors: &FieldErrors,
    edit: bool,
    known: &[String],
) -> Markup {
    let input =
        |id: &str, label: &str, value: &str, err: Option<&String>, hint: &str, required: bool| {
            html! {
                label for=(id) { (label) @if !hint.is_empty() { span.muted { " " (hint) } } }
                input id=(id) name=(id) type="text" value=(value) required[required]
                    aria-invalid=[err.map(|_| "true")] aria-describedby=[described(id, err)];
                (field_error(id, err))
            }
        };
    // The JS shows `utc` in the viewer's zone; without it the field holds
    // UTC, as the server then reads it.
    let utc = DateTime::parse_from_rfc3339(values.expires_at.trim()).ok().map(|t| t.to_utc());
    let local = match utc {
        Some(t) => t.format("%Y-%m-%dT%H:%M").to_string(),
        None => values.expires_at_local.clone(),
    };
    html! {
        form.stack method="post" action=(action) novalidate {
            (csrf_field(s))
            @if let Some(f) = &errors.form { div.error role="alert" { (f) } }
            @if edit {
                input type="hidden" name="context" value=(values.context);
                input type="hidden" name="alias" value=(values.alias);
            } @else {
                label for="context" { "Context" }
                input #context name="context" type="text" value=(values.context) list="form-contexts"
                    required aria-invalid=[errors.context.as_ref().map(|_| "true")]
                    aria-describedby=[described("context", errors.context.as_ref())];
                datalist #form-contexts { @for c in known { option value=(c) {} } }
                (field_error("context", errors.context.as_ref()))
                (input("alias", "Alias", &values.alias, errors.alias.as_ref(), "(lower case, e.g. user-profile)", true))
            }
            (input("canonical", "Canonical endpoint", &values.canonical, errors.canonical.as_ref(), "(https://…)", true))
            (input("description", "Description", &values.description, errors.description.as_ref(), "(optional)", false))
            label for="expires_at_local" { "Expires at" span.muted { " (optional; your local time, or UTC without JavaScript)" } }
            input #expires_at_local name="expires_at_local" type="datetime-local" data-utc="expires_at"
                value=(local) data-utc-value=[utc.map(|t| t.to_rfc3339())]
                aria-invalid=[errors.expires_at.as_ref().map(|_| "true")]
                aria-describedby=[described("expires_at", errors.expires_at.as_ref())];
            input type="hidden" name="expires_at" value="";
            (field_error("expires_at", errors.expires_at.as_ref()))
            div { button type="submit" { @if edit { "Save changes" } @else { "Create alias" } } }
        }
    }
}

fn create_page(
    s: &Signed,
    st: &ConsoleState,
    values: &AliasForm,
    errors: &FieldErrors,
) -> Response {
    let known = contexts_known(st);
    let body = alias_form(s, "/console/aliases", values, errors, false, &known);
    let mut res = respond(view::page("New alias", Nav::Aliases, s, body));
    if errors.any() {
        *res.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
    }
    res
}

pub async fn new_form(State(st): State<ConsoleState>, s: Signed) -> Result<Response, Problem> {
    if !s.can_somewhere(Action::WriteAliases) {
        return Err(ApiError::Forbidden(format!(
            "role {} may not WriteAliases",
            s.caller.principal.role.as_str()
        ))
        .into());
    }
    Ok(create_page(&s, &st, &AliasForm::default(), &FieldErrors::default()))
}

/// Creates through `registry::create`, as `POST /api/admin/aliases` does.
pub async fn create(
    State(st): State<ConsoleState>,
    Posted { signed: s, form }: Posted<AliasForm>,
) -> Result<Response, Problem> {
    let expires_at = match form.expires_at() {
        Ok(t) => t,
        Err(e) => {
            let errors = FieldErrors { expires_at: Some(e), ..FieldErrors::default() };
            return Ok(create_page(&s, &st, &form, &errors));
        }
    };
    let new = match NewAlias::parse(
        form.context.trim(),
        form.alias.trim(),
        form.canonical.trim(),
        form.description(),
        expires_at,
    ) {
        Ok(n) => n,
        Err(e) => return Ok(create_page(&s, &st, &form, &FieldErrors::field(&e))),
    };
    s.caller.may(Action::WriteAliases, Scope::Context(new.key.context.as_str()))?;
    let href = alias_href(new.key.context.as_str(), new.key.alias.as_str());
    match registry::create(&st.app.store, &st.app.governance(), &new, &s.caller.actor()).await {
        Ok(Created::New { .. }) => Ok(see_other(&format!("{href}?done=created"))),
        Ok(Created::Existing(_)) => Ok(see_other(&format!("{href}?done=exists"))),
        Ok(Created::Conflict { id, kind, .. }) => {
            let errors = FieldErrors {
                form: Some(html! {
                    (kind.as_str()) " conflict: " (new.key.context.as_str()) "/" (new.key.alias.as_str())
                    " is taken. Recorded as "
                    a href="/console/conflicts" { "conflict " (id) } "; settle it in the queue."
                }),
                ..FieldErrors::default()
            };
            let mut res = create_page(&s, &st, &form, &errors);
            *res.status_mut() = StatusCode::CONFLICT;
            Ok(res)
        }
        Err(WriteError::Governance(v)) => {
            Ok(create_page(&s, &st, &form, &FieldErrors::governance(v.rule, &v.message)))
        }
        Err(e) => Err(e.into()),
    }
}
