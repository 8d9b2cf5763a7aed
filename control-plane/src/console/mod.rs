//! The admin web console under `/console`: server-rendered pages (maud,
//! compiled into the binary), a small CSS and JS file of its own, sessions
//! in a cookie, and the API's RBAC and write paths.
//!
//! - [`session`]: the server-side session map and its cookie.
//! - [`csrf`]: the origin checks every POST passes (the form token is
//!   checked by [`Posted`]).
//! - [`view`]: the layout and the pieces every page shares.
//! - [`pages`]: one module per page.
//! - [`assets`]: the CSS and the JS.
//!
//! Nothing here writes by itself: a page parses its form, authorises with
//! [`Caller::may`] (the API's own decision, `domain::rbac`), and calls the
//! same `registry` or `store` function the API handler calls. A refusal is
//! the API's own `ApiError`, shown as an HTML page with the API's status
//! and message ([`errors`]).

pub mod assets;
pub mod csrf;
mod errors;
pub mod pages;
pub mod session;
pub mod view;

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, FromRequest, FromRequestParts, Request};
use axum::http::header::{COOKIE, LOCATION};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::api::Shared;
use crate::api::error::ApiError;
use crate::api::extract::{Caller, RequestId};
use crate::auth::{AuthError, authenticate};
use crate::domain::rbac::{Action, Decision, Scope, decide};
pub use errors::Problem;
use session::{Credential, Sessions};

/// Largest form, except the import page's.
pub const FORM_LIMIT: usize = 64 << 10;
/// Largest declarative file the import page takes; larger ones go through
/// `nexusctl apply`.
pub const IMPORT_FORM_LIMIT: usize = 8 << 20;

/// The console's state: the API's, plus the sessions.
#[derive(Debug)]
pub struct Console {
    pub app: Shared,
    pub sessions: Sessions,
}

pub type ConsoleState = Arc<Console>;

/// The console's routes, with their own state, for `api::router` to merge.
pub fn router<S: Clone + Send + Sync + 'static>(app: Shared) -> Router<S> {
    let st = Arc::new(Console { app, sessions: Sessions::new(session::Limits::default()) });
    routes()
        .layer(DefaultBodyLimit::max(FORM_LIMIT))
        .layer(middleware::from_fn(errors::render))
        .layer(middleware::map_response(view::security_headers))
        .with_state(st)
}

fn routes() -> Router<ConsoleState> {
    use pages::*;
    Router::new()
        .route("/console", get(overview::page))
        .route("/console/", get(overview::page))
        .route("/console/assets/{file}", get(assets::serve))
        .route("/console/sign-in", get(sign_in::form).post(sign_in::submit))
        .route("/console/sign-out", post(sign_in::sign_out))
        .route("/console/aliases", get(aliases::list).post(aliases::create))
        .route("/console/aliases/new", get(aliases::new_form))
        .route("/console/aliases/{context}/{alias}", get(alias::page).post(alias::update))
        .route("/console/aliases/{context}/{alias}/deactivate", post(alias::deactivate))
        .route("/console/aliases/{context}/{alias}/reactivate", post(alias::reactivate))
        .route("/console/conflicts", get(conflicts::list))
        .route("/console/conflicts/{id}/resolve", post(conflicts::resolve))
        .route("/console/audit", get(audit::page))
        .route("/console/fleet", get(fleet::page))
        .route(
            "/console/import",
            get(import::form).post(import::submit).layer(DefaultBodyLimit::max(IMPORT_FORM_LIMIT)),
        )
        .route("/console/keys", get(keys::list).post(keys::create))
        .route("/console/keys/{id}/revoke", post(keys::revoke))
        .route("/console/governance", get(governance::page))
}

/// A signed-in admin: the session's credential, authenticated again for
/// this request, as the API's [`Caller`].
#[derive(Debug, Clone)]
pub struct Signed {
    pub caller: Caller,
    /// The session's synchronizer token, for the forms this page renders.
    pub csrf: String,
    pub session_id: String,
}

impl Signed {
    /// Whether a control for `action` in `scope` is shown (the server
    /// checks again with [`Caller::may`] when the form comes back).
    pub fn can(&self, action: Action, scope: Scope<'_>) -> bool {
        let p = &self.caller.principal;
        decide(p.role, &p.contexts, action, scope) == Decision::Allow
    }

    /// Whether the role may do `action` somewhere.
    pub fn can_somewhere(&self, action: Action) -> bool {
        crate::domain::rbac::role_allows(self.caller.principal.role, action)
    }
}

fn see_other(to: &str) -> Response {
    let mut res = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(to) {
        res.headers_mut().insert(LOCATION, v);
    }
    res
}

/// Where a page that needs a session sends a browser without one.
fn to_sign_in(why: Option<&str>) -> Response {
    match why {
        Some(w) => see_other(&format!("/console/sign-in?ended={w}")),
        None => see_other("/console/sign-in"),
    }
}

fn session_id(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(session::from_cookie_header)
        .map(str::to_owned)
}

impl FromRequestParts<ConsoleState> for Signed {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, st: &ConsoleState) -> Result<Self, Response> {
        // A POST from another site is refused before its cookie is looked
        // at (SameSite=Strict keeps the cookie off it anyway).
        if parts.method == Method::POST {
            csrf::same_origin(&parts.headers, parts.uri.authority().map(|a| a.as_str()))
                .map_err(|r| Problem::Refused(r).into_response())?;
        }
        let Some(id) = session_id(&parts.headers) else {
            return Err(to_sign_in(None));
        };
        let Some(found) = st.sessions.find(&id, Instant::now()) else {
            return Err(to_sign_in(Some("expired")));
        };
        let header = found.credential.header();
        let principal = match authenticate(Some(&header), &st.app.verifier, &st.app.store).await {
            Ok(p) => p,
            // The database is down: the session stays, the page says so.
            Err(AuthError::Store(e)) => {
                return Err(Problem::Api(ApiError::Store(e)).into_response());
            }
            // Revoked, expired, or no longer valid: the session ends.
            Err(_) => {
                st.sessions.end(&id);
                return Err(to_sign_in(Some("credential")));
            }
        };
        let request_id = parts.extensions.get::<RequestId>().map(|r| r.0.clone());
        Ok(Signed { caller: Caller { principal, request_id }, csrf: found.csrf, session_id: id })
    }
}

/// The anti-forgery field every console form carries.
#[derive(Debug, Deserialize)]
struct Token {
    #[serde(default)]
    csrf: String,
}

/// A POSTed form from a signed-in admin: origin checked (by [`Signed`]),
/// the form's token compared with the session's, then the form parsed.
#[derive(Debug)]
pub struct Posted<T> {
    pub signed: Signed,
    pub form: T,
}

impl<T: DeserializeOwned> FromRequest<ConsoleState> for Posted<T> {
    type Rejection = Response;

    async fn from_request(req: Request, st: &ConsoleState) -> Result<Self, Response> {
        let (mut parts, body) = req.into_parts();
        let signed = Signed::from_request_parts(&mut parts, st).await?;
        let req = Request::from_parts(parts, body);
        let bytes = Bytes::from_request(req, st).await.map_err(|e| {
            Problem::Api(ApiError::TooLarge(format!("the form is too large: {e}"))).into_response()
        })?;
        let token: Token =
            serde_urlencoded::from_bytes(&bytes).unwrap_or(Token { csrf: String::new() });
        if !session::csrf_matches(&signed.csrf, &token.csrf) {
            return Err(Problem::Refused(csrf::Refused::Token).into_response());
        }
        let form = serde_urlencoded::from_bytes(&bytes).map_err(|e| {
            Problem::Api(ApiError::BadRequest(format!("the form is not valid: {e}")))
                .into_response()
        })?;
        Ok(Posted { signed, form })
    }
}

/// Opens a session for a credential that authenticated; returns the
/// cookie.
pub(crate) fn open_session(st: &Console, credential: String, owner: &str, secure: bool) -> String {
    let opened = st.sessions.open(Credential::new(credential), owner, Instant::now());
    session::set_cookie(&opened.id, opened.max_age, secure)
}
