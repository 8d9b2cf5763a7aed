//! The layout every page shares, and small pieces of markup: times (ISO
//! UTC in `<time datetime>`, turned into the viewer's zone by the JS),
//! notices, field errors, the hidden anti-forgery field.

use axum::http::HeaderValue;
use axum::http::header::{CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, LOCATION};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, SecondsFormat, TimeZone, Utc};
use maud::{DOCTYPE, Markup, html};

use super::assets;
use super::signed::Signed;
use crate::domain::rbac::{Action, Scope};

pub static HTML: HeaderValue = HeaderValue::from_static("text/html; charset=utf-8");

/// Every console response: no caching of admin data, no framing, scripts
/// and styles from the console's own files only.
pub async fn security_headers(mut res: Response) -> Response {
    let h = res.headers_mut();
    let is_asset = h.get(CONTENT_TYPE).is_some_and(|v| {
        v.as_bytes().starts_with(b"text/css") || v.as_bytes().starts_with(b"text/javascript")
    });
    if !is_asset {
        h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    h.insert(
        CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
             connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    res
}

/// The pages of the navigation bar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nav {
    Overview,
    Aliases,
    Conflicts,
    Audit,
    Fleet,
    Import,
    Keys,
    Governance,
}

fn nav_items(s: &Signed) -> Vec<(Nav, &'static str, &'static str)> {
    let mut items = vec![
        (Nav::Overview, "/console", "Overview"),
        (Nav::Aliases, "/console/aliases", "Aliases"),
        (Nav::Conflicts, "/console/conflicts", "Conflicts"),
    ];
    if s.can(Action::ReadAudit, Scope::Global) {
        items.push((Nav::Audit, "/console/audit", "Audit"));
    }
    items.push((Nav::Fleet, "/console/fleet", "Fleet"));
    if s.can_somewhere(Action::WriteAliases) {
        items.push((Nav::Import, "/console/import", "Import"));
    }
    if s.can(Action::ManageApiKeys, Scope::Global) {
        items.push((Nav::Keys, "/console/keys", "API keys"));
    }
    if s.can(Action::ReadGovernance, Scope::Global) {
        items.push((Nav::Governance, "/console/governance", "Governance"));
    }
    items
}

fn head(title: &str) -> Markup {
    html! {
        head {
            meta charset="utf-8";
            meta name="viewport" content="width=device-width, initial-scale=1";
            title { (title) " · NEXUS console" }
            link rel="stylesheet" href=(assets::CSS_PATH);
            script src=(assets::JS_PATH) defer {}
        }
    }
}

/// A whole page for a signed-in admin.
pub fn page(title: &str, nav: Nav, s: &Signed, body: Markup) -> Markup {
    let p = &s.caller.principal;
    html! {
        (DOCTYPE)
        html lang="en" {
            (head(title))
            body {
                a.skip href="#main" { "Skip to content" }
                header.top {
                    a.brand href="/console" { "NEXUS console" }
                    nav aria-label="Main" {
                        ul {
                            @for (item, href, label) in nav_items(s) {
                                li {
                                    @if item == nav {
                                        a href=(href) aria-current="page" { (label) }
                                    } @else {
                                        a href=(href) { (label) }
                                    }
                                }
                            }
                        }
                    }
                    div.who {
                        span { (p.name) " · " (p.role.as_str()) }
                        form method="post" action="/console/sign-out" {
                            (csrf_field(s))
                            button type="submit" { "Sign out" }
                        }
                    }
                }
                main id="main" tabindex="-1" {
                    h1 { (title) }
                    (body)
                }
            }
        }
    }
}

/// A page without a session (sign-in, errors).
pub fn bare(title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            (head(title))
            body {
                header.top { a.brand href="/console" { "NEXUS console" } }
                main id="main" tabindex="-1" { h1 { (title) } (body) }
            }
        }
    }
}

pub fn error_page(
    status: StatusCode,
    code: &str,
    message: &str,
    rule: Option<&serde_json::Value>,
) -> Markup {
    let title = format!("{} {}", status.as_u16(), status.canonical_reason().unwrap_or("Error"));
    bare(
        &title,
        html! {
            p.error role="alert" {
                (message)
                @if let Some(rule) = rule.and_then(|r| r.as_str()) {
                    " (governance rule " code { (rule) } ")"
                }
            }
            p.muted { "Code: " code { (code) } }
            p { a href="/console" { "Back to the overview" } }
        },
    )
}

/// The hidden anti-forgery field of every form.
pub fn csrf_field(s: &Signed) -> Markup {
    html! { input type="hidden" name="csrf" value=(s.csrf); }
}

/// An instant: UTC in the markup, the viewer's zone once the JS ran.
pub fn time(t: DateTime<Utc>) -> Markup {
    html! {
        time datetime=(t.to_rfc3339_opts(SecondsFormat::Secs, true)) {
            (t.format("%Y-%m-%d %H:%M:%S UTC"))
        }
    }
}

pub fn time_ms(ms: i64) -> Markup {
    match Utc.timestamp_millis_opt(ms).single() {
        Some(t) => time(t),
        None => html! { "—" },
    }
}

pub fn opt_time(t: Option<DateTime<Utc>>) -> Markup {
    match t {
        Some(t) => time(t),
        None => html! { span.muted { "—" } },
    }
}

/// A time from a form: the RFC 3339 value the JS put in the hidden field,
/// else the `datetime-local` value as typed, read as UTC (no JS ran).
pub fn form_instant(what: &str, rfc: &str, local: &str) -> Result<Option<DateTime<Utc>>, String> {
    match (rfc.trim(), local.trim()) {
        ("", "") => Ok(None),
        ("", l) => chrono::NaiveDateTime::parse_from_str(l, "%Y-%m-%dT%H:%M")
            .or_else(|_| chrono::NaiveDateTime::parse_from_str(l, "%Y-%m-%dT%H:%M:%S"))
            .map(|t| Some(t.and_utc()))
            .map_err(|e| format!("{what}: {e} (use 2027-01-31T12:00)")),
        (r, _) => DateTime::parse_from_rfc3339(r)
            .map(|t| Some(t.to_utc()))
            .map_err(|e| format!("{what}: {e}")),
    }
}

/// A duration as people read it: 4 s, 3 min, 2 h, 5 d.
pub fn age(seconds: i64) -> String {
    let s = seconds.max(0);
    match s {
        0..60 => format!("{s} s"),
        60..3600 => format!("{} min", s / 60),
        3600..86400 => format!("{} h", s / 3600),
        _ => format!("{} d", s / 86400),
    }
}

/// A notice after a redirect (`?done=`): fixed texts only.
pub fn notice(done: Option<&str>) -> Markup {
    let text = match done {
        Some("created") => "Alias created.",
        Some("exists") => "The same alias already existed; nothing changed.",
        Some("updated") => "Alias updated.",
        Some("deactivated") => "Alias deactivated; edges stop resolving it.",
        Some("reactivated") => "Alias reactivated.",
        Some("resolved") => "Conflict resolved.",
        Some("revoked") => "API key revoked.",
        _ => return html! {},
    };
    html! { p.notice role="status" { (text) } }
}

/// The error shown under a form field, tied to it by `aria-describedby`.
pub fn field_error(id: &str, error: Option<&String>) -> Markup {
    html! {
        @if let Some(e) = error {
            p.field-error id=(format!("{id}-error")) role="alert" { (e) }
        }
    }
}

/// `aria-describedby` of a field with an error.
pub fn described(id: &str, error: Option<&String>) -> Option<String> {
    error.map(|_| format!("{id}-error"))
}

/// An HTML response.
pub fn respond(markup: Markup) -> Response {
    ([(CONTENT_TYPE, HTML.clone())], markup.into_string()).into_response()
}

/// 303 to `to`: where a form that was taken sends the browser.
pub fn see_other(to: &str) -> Response {
    let mut res = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(to) {
        res.headers_mut().insert(LOCATION, v);
    }
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_and_times() {
        assert_eq!(age(5), "5 s");
        assert_eq!(age(125), "2 min");
        assert_eq!(age(7300), "2 h");
        assert_eq!(age(3 * 86400), "3 d");
        let t = Utc.timestamp_opt(1_700_000_000, 0).unwrap();
        assert_eq!(
            time(t).into_string(),
            "<time datetime=\"2023-11-14T22:13:20Z\">2023-11-14 22:13:20 UTC</time>"
        );
    }
}
