//! The overview: registry version and age, aliases per context, open
//! conflicts, fleet health by region.

use axum::extract::State;
use axum::response::Response;
use chrono::Utc;
use maud::html;

use super::fleet;
use crate::console::errors::Problem;
use crate::console::signed::Signed;
use crate::console::state::ConsoleState;
use crate::console::view::{self, Nav, age, respond};
use crate::domain::rbac::{Action, Scope};

pub async fn page(State(st): State<ConsoleState>, s: Signed) -> Result<Response, Problem> {
    let visible = s.caller.may_list(Action::ReadAliases)?;
    let stats = st.app.store.registry().await?;
    let counts = st.app.store.alias_counts(visible.as_deref()).await?;
    let open = st.app.store.open_conflicts(visible.as_deref()).await?;
    let fleet = match s.can(Action::ReadAliases, Scope::Global) {
        true => Some(fleet::read(&st.app).await?),
        false => None,
    };
    let registry_age = (Utc::now() - stats.updated_at).num_seconds();
    let body = html! {
        div.cards {
            div.card {
                div.muted { "Registry version" }
                div.big #registry-version { (stats.version) }
                div { "changed " (age(registry_age)) " ago, " (view::time(stats.updated_at)) }
                div.muted { "epoch " (stats.epoch) }
            }
            div.card {
                div.muted { "Active aliases" }
                div.big { (counts.iter().map(|c| c.active).sum::<i64>()) }
                div { (counts.iter().map(|c| c.inactive).sum::<i64>()) " inactive" }
            }
            div.card {
                div.muted { "Open conflicts" }
                div.big #open-conflicts {
                    (open)
                }
                div { a href="/console/conflicts" { "Review the queue" } }
            }
        }
        h2 { "Aliases per context" }
        @if counts.is_empty() {
            p.muted { "No aliases yet." }
        } @else {
            div.table-wrap { table {
                thead { tr {
                    th scope="col" { "Context" } th.num scope="col" { "Active" }
                    th.num scope="col" { "Inactive" }
                } }
                tbody { @for c in &counts { tr {
                    td { a href=(format!("/console/aliases?context={}", c.context)) { (c.context) } }
                    td.num { (c.active) } td.num { (c.inactive) }
                } } }
            } }
        }
        @if let Some(f) = &fleet {
            h2 { "Fleet health by region" }
            @match &f.edges {
                None => p.warn { "Propagation is off (REDIS_URL unset): no fleet to show." },
                Some(edges) if edges.is_empty() => p.muted { "No edge has reported yet." },
                Some(edges) => div.table-wrap { table {
                    thead { tr {
                        th scope="col" { "Region" } th.num scope="col" { "Edges" }
                        th.num scope="col" { "Current" } th.num scope="col" { "Behind" }
                        th.num scope="col" { "Stale" }
                    } }
                    tbody { @for (region, (n, current, behind, stale)) in fleet::by_region(edges) { tr {
                        td { (region) } td.num { (n) }
                        td.num { span.ok { (current) } }
                        td.num { @if behind > 0 { span.warn { (behind) } } @else { "0" } }
                        td.num { @if stale > 0 { span.bad { (stale) } } @else { "0" } }
                    } } }
                } },
            }
            p { a href="/console/fleet" { "Every edge" } }
        }
    };
    Ok(respond(view::page("Overview", Nav::Overview, &s, body)))
}
