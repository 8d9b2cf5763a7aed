//! How a console request becomes a [`Signed`] admin (its session cookie,
//! its credential authenticated again) and a POST a [`Posted`] form (origin
//! and anti-forgery token checked first). A browser without a session is
//! sent to the sign-in page; a refusal is a [`Problem`], rendered as a page.

use std::time::Instant;

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header::COOKIE;
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde::de::DeserializeOwned;

use super::errors::Problem;
use super::signed::Signed;
use super::state::ConsoleState;
use super::view::see_other;
use super::{csrf, session};
use crate::auth::{AuthError, authenticate};
use crate::web::caller::Caller;
use crate::web::error::ApiError;
use crate::web::observe::RequestId;

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
pub(crate) struct Posted<T> {
    pub(crate) signed: Signed,
    pub(crate) form: T,
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
