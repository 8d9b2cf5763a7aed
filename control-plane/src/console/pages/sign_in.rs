//! Signing in with an API key or a token, and signing out. Sign-in
//! attempts are charged to the client address's bucket of the API's rate
//! limit (`API_RATE_LIMIT`), before the credential is checked.

use std::net::SocketAddr;

use axum::Extension;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::header::SET_COOKIE;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};
use serde::Deserialize;

use crate::auth::{AuthError, authenticate};
use crate::console::csrf::{over_tls, same_origin};
use crate::console::errors::Problem;
use crate::console::extract::Posted;
use crate::console::session;
use crate::console::state::{ConsoleState, open_session};
use crate::console::view::{bare, respond, see_other};
use crate::domain::rbac::{Action, role_allows};
use crate::web::error::ApiError;
use crate::web::throttle::charge_address;

/// Longest credential taken (tokens are a few hundred bytes).
const MAX_CREDENTIAL: usize = 8 << 10;

#[derive(Debug, Deserialize)]
pub struct Ended {
    ended: Option<String>,
}

fn sign_in_form(error: Option<&str>, ended: Option<&str>) -> Markup {
    let ended = match ended {
        Some("expired") => Some("Your session expired; sign in again."),
        Some("credential") => {
            Some("The credential of your session is no longer accepted (revoked or expired).")
        }
        Some("signed-out") => Some("You are signed out."),
        _ => None,
    };
    bare(
        "Sign in",
        html! {
            @if let Some(e) = ended { p.notice role="status" { (e) } }
            form.stack method="post" action="/console/sign-in" {
                label for="credential" {
                    "API key or token"
                    span.muted { " (nxk_… or a JWT; it stays on the server, never in the cookie)" }
                }
                input #credential type="password" name="credential" required
                    autocomplete="off" autofocus
                    aria-invalid=[error.map(|_| "true")]
                    aria-describedby=[error.map(|_| "credential-error")];
                @if let Some(e) = error {
                    p.field-error #credential-error role="alert" { (e) }
                }
                div { button type="submit" { "Sign in" } }
            }
        },
    )
}

pub async fn form(Query(q): Query<Ended>) -> Response {
    respond(sign_in_form(None, q.ended.as_deref()))
}

#[derive(Debug, Deserialize)]
pub struct SignInForm {
    #[serde(default)]
    credential: String,
}

pub async fn submit(
    State(st): State<ConsoleState>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    uri: Uri,
    body: axum::body::Bytes,
) -> Result<Response, Problem> {
    // No session yet, so no synchronizer token: the origin check is what
    // keeps another site from signing a browser in (login CSRF).
    same_origin(&headers, uri.authority().map(|a| a.as_str())).map_err(Problem::Refused)?;
    // Every attempt is charged to the address before the credential is
    // looked up (an API key costs a PostgreSQL query): guessing keys here
    // is as slow as on the API. Over it: the API's 429, as a page.
    charge_address(&st.app, peer.map(|Extension(ConnectInfo(a))| a.ip()))?;
    let f: SignInForm =
        serde_urlencoded::from_bytes(&body).unwrap_or(SignInForm { credential: String::new() });
    let credential = f.credential.trim();
    let refuse = |msg: &str| {
        let mut res = respond(sign_in_form(Some(msg), None));
        *res.status_mut() = StatusCode::UNAUTHORIZED;
        Ok(res)
    };
    if credential.is_empty() || credential.len() > MAX_CREDENTIAL {
        return refuse("Paste an API key (nxk_…) or a token.");
    }
    let header = format!("Bearer {credential}");
    let principal = match authenticate(Some(&header), &st.app.verifier, &st.app.store).await {
        Ok(p) => p,
        Err(AuthError::Store(e)) => return Err(e.into()),
        Err(e) => return refuse(&e.to_string()),
    };
    if !role_allows(principal.role, Action::ReadAliases) {
        return refuse("A resolver credential only resolves; the console needs viewer or more.");
    }
    let secure = over_tls(&headers, uri.scheme_str() == Some("https"));
    let cookie = open_session(&st, credential.to_owned(), &principal.name, secure);
    tracing::info!(principal = %principal.name, role = principal.role.as_str(), "console sign-in");
    let mut res = see_other("/console");
    res.headers_mut()
        .insert(SET_COOKIE, cookie.parse().map_err(|e| Problem::Api(ApiError::internal(e)))?);
    Ok(res)
}

#[derive(Debug, Deserialize)]
pub struct Empty {}

pub async fn sign_out(
    State(st): State<ConsoleState>,
    headers: HeaderMap,
    posted: Posted<Empty>,
) -> Response {
    st.sessions.end(&posted.signed.session_id);
    let secure = over_tls(&headers, false);
    let mut res = see_other("/console/sign-in?ended=signed-out");
    if let Ok(v) = session::clear_cookie(secure).parse() {
        res.headers_mut().insert(SET_COOKIE, v);
    }
    res.into_response()
}
