//! Extractors whose rejections are our JSON errors, and the alias key of a
//! `.../{context}/{alias}` path, parsed, so a handler starts with checked
//! values.

use axum::extract::{FromRequest, FromRequestParts};
use axum::http::request::Parts;
use nexus_protocol::{AliasKey, AliasName, Context};

use super::error::ApiError;

/// `axum::Json`, refusing with a JSON 400/413.
#[derive(Debug, FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub(crate) struct Json<T>(pub(crate) T);

/// `axum::extract::Query`, refusing with a JSON 400.
#[derive(Debug, FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub(crate) struct Query<T>(pub(crate) T);

/// `axum::extract::Path`, refusing with a JSON 400.
#[derive(Debug, FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub(crate) struct Path<T>(pub(crate) T);

/// The alias a route's `{context}/{alias}` names, parsed by [`parse_key`]:
/// a path that does not decode, or a name that does not parse, is the same
/// JSON 400 a handler calling it would give. Taken after the `Caller` (401
/// first) and before the query and the body, so a request wrong in both
/// its key and its body hears about the key; the RBAC check stays in the
/// handler, after the body ([`super::caller::Caller::may_on`]).
#[derive(Debug)]
pub(crate) struct AliasPath(pub(crate) AliasKey);

impl<S: Send + Sync> FromRequestParts<S> for AliasPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let Path((context, alias)) =
            Path::<(String, String)>::from_request_parts(parts, state).await?;
        parse_key(&context, &alias).map(AliasPath)
    }
}

/// A context and an alias name as a key; 400 saying which is wrong.
pub(crate) fn parse_key(context: &str, alias: &str) -> Result<AliasKey, ApiError> {
    let bad = |what: &str, e: &dyn std::fmt::Display| ApiError::BadRequest(format!("{what}: {e}"));
    Ok(AliasKey {
        context: Context::parse(context).map_err(|e| bad("context", &e))?,
        alias: AliasName::parse(alias).map_err(|e| bad("alias", &e))?,
    })
}
