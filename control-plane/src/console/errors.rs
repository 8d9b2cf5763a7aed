//! A refused or failed console request is the API's own [`ApiError`]:
//! turned into its response (status, message, and the logging of an
//! unexpected cause, all in `web/error.rs`), marked, and then rendered as an
//! HTML page by [`render`]. So the console answers with the API's status
//! and text, and no cause reaches a page that the API would not show.

use axum::body::{Body, to_bytes};
use axum::extract::Request;
use axum::http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::csrf::Refused;
use super::view;
use crate::registry::WriteError;
use crate::store::StoreError;
use crate::web::error::ApiError;

/// Why a console request did not succeed.
#[derive(Debug)]
pub enum Problem {
    Api(ApiError),
    /// A cross-site or token-less POST: 403.
    Refused(Refused),
}

impl From<ApiError> for Problem {
    fn from(e: ApiError) -> Self {
        Problem::Api(e)
    }
}

impl From<StoreError> for Problem {
    fn from(e: StoreError) -> Self {
        Problem::Api(e.into())
    }
}

impl From<WriteError> for Problem {
    fn from(e: WriteError) -> Self {
        Problem::Api(e.into())
    }
}

/// Marks a response as an error for [`render`].
#[derive(Debug, Clone, Copy)]
struct Failure;

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let api = match self {
            Problem::Api(e) => e,
            Problem::Refused(r) => ApiError::Forbidden(r.to_string()),
        };
        let mut res = api.into_response();
        res.extensions_mut().insert(Failure);
        res
    }
}

/// Largest API error body read back (they are a few hundred bytes).
const MAX_ERROR_BODY: usize = 64 << 10;

/// Renders marked error responses as HTML pages, same status.
pub async fn render(req: Request, next: Next) -> Response {
    let res = next.run(req).await;
    if res.extensions().get::<Failure>().is_none() {
        return res;
    }
    let (mut parts, body) = res.into_parts();
    let body = to_bytes(body, MAX_ERROR_BODY).await.unwrap_or_default();
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    let text = |k: &str| json.get(k).and_then(|v| v.as_str()).unwrap_or_default().to_owned();
    let status = parts.status;
    let page = view::error_page(status, &text("error"), &text("message"), json.get("rule"));
    parts.headers.remove(CONTENT_LENGTH);
    parts.headers.insert(CONTENT_TYPE, view::HTML.clone());
    Response::from_parts(parts, Body::from(page.into_string()))
}
