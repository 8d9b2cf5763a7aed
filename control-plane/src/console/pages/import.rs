//! Import: upload (or paste) a declarative file, review the per-alias plan
//! the apply machinery computes (`registry::apply` with `dry_run`), then
//! apply exactly that plan (`expected_version` is the plan's version, so a
//! registry that moved in between is refused, as `POST /api/admin/apply`
//! refuses it).

use std::collections::HashSet;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use maud::{Markup, html};
use nexus_protocol::{AliasFile, Context};
use serde::Deserialize;
use serde_json::Value;

use crate::console::errors::Problem;
use crate::console::extract::Posted;
use crate::console::signed::Signed;
use crate::console::state::ConsoleState;
use crate::console::view::{self, Nav, csrf_field, respond};
use crate::domain::apply::Action as PlanAction;
use crate::domain::rbac::{Action, Scope};
use crate::registry::{self, ApplyOptions, WriteError};
use crate::store::apply::{Applied, ApplyReport};
use crate::web::error::ApiError;

/// Plan lines shown (the counts cover all).
const LINES_SHOWN: usize = 1000;

#[derive(Debug, Default, Deserialize)]
pub struct ImportForm {
    #[serde(default)]
    file: String,
    #[serde(default)]
    prune: Option<String>,
    /// `plan` or `apply`.
    #[serde(default)]
    step: String,
    expected_version: Option<i64>,
}

fn upload_form(s: &Signed, f: &ImportForm, error: Option<Markup>) -> Markup {
    html! {
        form.stack method="post" action="/console/import" {
            (csrf_field(s))
            input type="hidden" name="step" value="plan";
            @if let Some(e) = error { div.error #import-error role="alert" { (e) } }
            label for="upload" { "Declarative file (YAML or JSON)" span.muted { " — chosen here, or pasted below" } }
            input #upload type="file" accept=".yaml,.yml,.json,application/yaml,application/json" data-into="file";
            label for="file" { "File contents" }
            textarea #file name="file" required spellcheck="false" { (f.file) }
            label { input type="checkbox" name="prune" value="1" checked[f.prune.is_some()];
                " Prune: deactivate active aliases the file lacks, in the contexts it names" }
            div { button type="submit" { "Show the plan" } }
        }
    }
}

pub async fn form(s: Signed) -> Result<Response, Problem> {
    if !s.can_somewhere(Action::WriteAliases) {
        return Err(ApiError::Forbidden(format!(
            "role {} may not WriteAliases",
            s.caller.principal.role.as_str()
        ))
        .into());
    }
    Ok(respond(view::page(
        "Import",
        Nav::Import,
        &s,
        upload_form(&s, &ImportForm::default(), None),
    )))
}

fn canonical(v: Option<&Value>) -> String {
    v.and_then(|v| v.get("canonical")).and_then(Value::as_str).unwrap_or("—").to_owned()
}

fn plan(s: &Signed, f: &ImportForm, r: &ApplyReport) -> Markup {
    let changed: Vec<_> = r.items.iter().filter(|i| i.action != PlanAction::Unchanged).collect();
    html! {
        p #plan-summary role="status" {
            "Against registry version " strong { (r.from_version) } ": "
            (r.counts.create) " to create, " (r.counts.update) " to update, "
            (r.counts.deactivate) " to deactivate, " (r.counts.unchanged) " unchanged."
        }
        @if !changed.is_empty() {
            div.table-wrap { table #plan {
                thead { tr {
                    th scope="col" { "Context" } th scope="col" { "Alias" } th scope="col" { "Action" }
                    th scope="col" { "Before" } th scope="col" { "After" }
                } }
                tbody { @for i in changed.iter().take(LINES_SHOWN) { tr {
                    td { (i.context) } td { (i.alias) }
                    td { code { (format!("{:?}", i.action).to_lowercase()) } }
                    td { code { (canonical(i.before.as_ref())) } }
                    td { code { (canonical(i.after.as_ref())) } }
                } } }
            } }
            @if changed.len() > LINES_SHOWN { p.muted { "First " (LINES_SHOWN) " of " (changed.len()) " changes shown." } }
            form.stack method="post" action="/console/import" {
                (csrf_field(s))
                input type="hidden" name="step" value="apply";
                input type="hidden" name="expected_version" value=(r.from_version);
                @if f.prune.is_some() { input type="hidden" name="prune" value="1"; }
                input type="hidden" name="file" value=(f.file);
                div { button type="submit" #apply { "Apply this plan" } }
            }
        } @else {
            p.muted { "Nothing to change." }
        }
    }
}

pub async fn submit(
    State(st): State<ConsoleState>,
    Posted { signed: s, form: f }: Posted<ImportForm>,
) -> Result<Response, Problem> {
    let text = f.file.clone();
    // Parsing megabytes is CPU work: keep it off the async workers.
    let parsed = tokio::task::spawn_blocking(move || AliasFile::parse(&text))
        .await
        .map_err(ApiError::internal)?;
    let refuse = |status: StatusCode, e: Markup| {
        let mut res = respond(view::page("Import", Nav::Import, &s, upload_form(&s, &f, Some(e))));
        *res.status_mut() = status;
        Ok(res)
    };
    let file = match parsed {
        Ok(file) => file,
        Err(e) => {
            return refuse(
                StatusCode::BAD_REQUEST,
                html! { "The file is not valid: " (e.to_string()) },
            );
        }
    };
    let contexts: HashSet<Context> = file.aliases.iter().map(|e| e.context.clone()).collect();
    if contexts.is_empty() {
        return refuse(StatusCode::BAD_REQUEST, html! { "The file names no alias." });
    }
    for c in &contexts {
        s.caller.may(Action::WriteAliases, Scope::Context(c.as_str()))?;
    }
    let apply = f.step == "apply";
    let options = ApplyOptions {
        prune: f.prune.is_some(),
        expected_version: if apply { f.expected_version } else { None },
        dry_run: !apply,
    };
    let rules = st.app.governance();
    let report = match registry::apply(
        &st.app.store,
        &rules,
        &file.aliases,
        &contexts,
        options,
        &s.caller.actor(),
        &s.caller.writer(),
    )
    .await
    {
        Ok(Applied::Done(r)) => r,
        Ok(Applied::Moved { expected, found }) => {
            return Err(ApiError::Moved { expected, found }.into());
        }
        Ok(Applied::NotOwner(items)) => {
            return refuse(
                StatusCode::FORBIDDEN,
                html! {
                    (items.len()) " entries would change aliases others own; nothing was written: "
                    @for (n, i) in items.iter().take(20).enumerate() {
                        @if n > 0 { ", " } code { (i.context) "/" (i.alias) }
                    }
                },
            );
        }
        Err(WriteError::EntryGovernance { index, key, violation }) => {
            return refuse(
                StatusCode::UNPROCESSABLE_ENTITY,
                html! {
                    "Entry " (index) " (" (key.context) "/" (key.alias) "): " (violation.message)
                    " (governance rule " code { (violation.rule) } "). Nothing was written."
                },
            );
        }
        Err(e) => return Err(e.into()),
    };
    let body = if apply {
        html! {
            p.notice #applied role="status" {
                "Applied: registry version " (report.from_version) " → " strong { (report.to_version) } "; "
                (report.counts.create) " created, " (report.counts.update) " updated, "
                (report.counts.deactivate) " deactivated, " (report.counts.unchanged) " unchanged."
            }
            p { a href="/console/aliases" { "See the aliases" } " · " a href="/console/fleet" { "Watch the fleet" } }
        }
    } else {
        html! {
            h2 { "Plan" }
            (plan(&s, &f, &report))
            h2 { "Another file" }
            (upload_form(&s, &f, None))
        }
    };
    Ok(respond(view::page("Import", Nav::Import, &s, body)))
}
