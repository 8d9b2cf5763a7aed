//! The fleet: every edge by region, its version, how far behind, lag,
//! state age, when this control plane last heard it and how far the
//! edge's clock is off; the table reloads itself every 2 s.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::response::Response;
use chrono::Utc;
use maud::{Markup, html};

use crate::console::errors::Problem;
use crate::console::signed::Signed;
use crate::console::state::ConsoleState;
use crate::console::view::{self, Nav, age, respond, time_ms};
use crate::domain::rbac::{Action, Scope};
use crate::web::Shared;
use crate::web::error::ApiError;
use crate::web::fleet::{self as edges, EdgeView};

/// How often the page reloads its table.
const REFRESH_MS: u32 = 2000;

/// The fleet as the API's `GET /api/admin/edges` judges it.
#[derive(Debug, Clone)]
pub struct Fleet {
    pub epoch: u64,
    pub version: u64,
    /// `None`: this control plane has no bus (REDIS_URL unset).
    pub edges: Option<Vec<EdgeView>>,
    pub unreadable: Vec<String>,
}

/// Reads the edges' reports and judges them as the API does
/// ([`edges::Fleet::read`]), sorted by region, then id.
pub async fn read(app: &Shared) -> Result<Fleet, Problem> {
    let head = app.store.registry_head().await?;
    let Some(bus) = app.propagation.bus() else {
        return Ok(Fleet {
            epoch: head.epoch,
            version: head.version,
            edges: None,
            unreadable: vec![],
        });
    };
    let fleet = edges::Fleet::read(bus, &app.sightings, head.epoch, head.version)
        .await
        .map_err(ApiError::Fleet)?;
    let mut items = fleet.items;
    items.sort_by(|a, b| (&a.report.region, &a.report.id).cmp(&(&b.report.region, &b.report.id)));
    Ok(Fleet {
        epoch: head.epoch,
        version: head.version,
        edges: Some(items),
        unreadable: fleet.unreadable,
    })
}

/// Per region: edges, how many are current, behind, stale.
pub fn by_region(edges: &[EdgeView]) -> BTreeMap<&str, (usize, usize, usize, usize)> {
    let mut m: BTreeMap<&str, (usize, usize, usize, usize)> = BTreeMap::new();
    for e in edges {
        let r = m.entry(e.report.region.as_str()).or_default();
        r.0 += 1;
        if e.stale {
            r.3 += 1;
        } else if e.versions_behind == Some(0) {
            r.1 += 1;
        } else {
            r.2 += 1;
        }
    }
    m
}

pub fn state_of(e: &EdgeView) -> Markup {
    if e.stale {
        html! { span.bad { "stale" } }
    } else if !e.epoch_matches {
        html! { span.warn { "other epoch" } }
    } else if e.versions_behind == Some(0) {
        html! { span.ok { "current" } }
    } else {
        html! { span.warn { "behind" } }
    }
}

/// The edge's clock against this control plane's: `+1.2 s`, `-15.0 s`.
fn skew(ms: i64) -> String {
    format!("{:+.1} s", ms as f64 / 1e3)
}

fn table(f: &Fleet) -> Markup {
    let now = Utc::now().timestamp_millis();
    html! {
        p #fleet-summary aria-live="polite" {
            "Registry version " strong.registry-version { (f.version) } " (epoch " (f.epoch) "). "
            @if let Some(edges) = &f.edges {
                (edges.len()) " edges; "
                (edges.iter().filter(|e| e.versions_behind == Some(0) && !e.stale).count())
                " current."
            }
        }
        @match &f.edges {
            None => p.warn { "REDIS_URL is not set: this control plane does not see the fleet." },
            Some(edges) if edges.is_empty() => p.muted { "No edge has reported yet." },
            Some(edges) => div.table-wrap {
                table #fleet-table {
                    caption.muted { "Every edge, by region" }
                    thead { tr {
                        th scope="col" { "Region" } th scope="col" { "Edge" }
                        th scope="col" { "State" } th.num scope="col" { "Version" }
                        th.num scope="col" { "Behind" } th.num scope="col" { "Lag p99" }
                        th scope="col" { "State age" } th scope="col" { "Last seen" }
                        th.num scope="col" { "Clock skew" } th scope="col" { "Source" }
                    } }
                    tbody {
                        @for e in edges {
                            tr data-edge=(e.report.id) {
                                td { (e.report.region) }
                                td { code { (e.report.id) } }
                                td { (state_of(e)) }
                                td.num.edge-version { (e.report.version) }
                                td.num { @match e.versions_behind { Some(n) => (n), None => "—" } }
                                td.num { @match e.report.lag_ms_p99 {
                                    Some(ms) => (format!("{ms:.0} ms")), None => "—" } }
                                // Stamped by the edge's clock: brought to ours.
                                td { (age((now - (e.report.applied_at_ms - e.clock_skew_ms)) / 1000)) }
                                td { (time_ms(e.last_seen_ms)) " (" (age(e.seen_seconds_ago as i64)) " ago)" }
                                td.num.clock-skew { (skew(e.clock_skew_ms)) }
                                td { (e.report.source)
                                    @if let Some(r) = &e.report.last_rejection {
                                        br; span.warn { "rejected: " (r.reason) }
                                    }
                                }
                            }
                        }
                    }
                }
            },
        }
        @if !f.unreadable.is_empty() {
            p.warn { "Unreadable reports: " (f.unreadable.join(", ")) }
        }
    }
}

pub async fn page(State(st): State<ConsoleState>, s: Signed) -> Result<Response, Problem> {
    s.caller.may(Action::ReadAliases, Scope::Global)?;
    let fleet = read(&st.app).await?;
    let body = html! {
        p.muted { "Refreshes every " (REFRESH_MS / 1000) " s. "
            span #refresh-status aria-live="polite" {} }
        div #fleet data-refresh=(REFRESH_MS) { (table(&fleet)) }
    };
    Ok(respond(view::page("Fleet", Nav::Fleet, &s, body)))
}
