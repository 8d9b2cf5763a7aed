//! The governance rules in force, read from the document as the API's
//! `GET /api/admin/governance` gives it (rendered from its JSON form, so a
//! rule added to the document shows without a change here).

use axum::extract::State;
use axum::response::Response;
use maud::{Markup, html};
use serde_json::Value;

use crate::console::errors::Problem;
use crate::console::signed::Signed;
use crate::console::state::ConsoleState;
use crate::console::view::{self, Nav, respond};
use crate::domain::rbac::{Action, Scope};
use crate::web::error::ApiError;

fn value(v: &Value) -> Markup {
    match v {
        Value::Array(items) if items.is_empty() => html! { span.muted { "none" } },
        Value::Array(items) => html! {
            @for (i, item) in items.iter().enumerate() {
                @if i > 0 { ", " }
                code { (item.as_str().map(str::to_owned).unwrap_or_else(|| item.to_string())) }
            }
        },
        Value::String(s) => html! { code { (s) } },
        Value::Null => html! { span.muted { "no limit" } },
        other => html! { code { (other.to_string()) } },
    }
}

fn rules(v: &Value) -> Markup {
    html! {
        @if let Some(map) = v.as_object() {
            div.table-wrap { table {
                thead { tr { th scope="col" { "Rule" } th scope="col" { "Value" } } }
                tbody { @for (k, v) in map { @if !v.is_null() || k == "max_ttl_days" { tr {
                    th scope="row" { code { (k) } } td { (value(v)) }
                } } } }
            } }
        }
    }
}

pub async fn page(State(st): State<ConsoleState>, s: Signed) -> Result<Response, Problem> {
    s.caller.may(Action::ReadGovernance, Scope::Global)?;
    let doc = serde_json::to_value(st.app.governance().document()).map_err(ApiError::internal)?;
    let strict = doc["strict_contexts"].as_bool().unwrap_or(false);
    let body = html! {
        p {
            @if strict {
                "Strict contexts: only the contexts listed below exist (rule " code { "known_context" } ")."
            } @else {
                "Any context may be used; those listed below override the defaults."
            }
        }
        p.muted { "A refused write names the rule it broke. Admins change the rules with "
            code { "PUT /api/admin/governance" } "; every control plane picks the change up within 5 s." }
        h2 { "Defaults" }
        (rules(&doc["defaults"]))
        h2 { "Per context" }
        @if let Some(contexts) = doc["contexts"].as_object() {
            @for (name, overrides) in contexts {
                h3 { (name) }
                @if overrides.as_object().is_some_and(|o| o.values().all(Value::is_null)) {
                    p.muted { "The defaults." }
                } @else {
                    (rules(&Value::Object(overrides.as_object().cloned().unwrap_or_default()
                        .into_iter().filter(|(_, v)| !v.is_null()).collect())))
                }
            }
        }
    };
    Ok(respond(view::page("Governance", Nav::Governance, &s, body)))
}
