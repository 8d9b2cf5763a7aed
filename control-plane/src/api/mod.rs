//! The admin and service API (axum): the route table, the document made
//! from it, and the handlers, which only parse, authorise, call the store
//! and answer. What they share with the console (state, extractors, the
//! caller, the one error table) is `web`'s; `server::router` puts the two
//! together under the shared middleware.
//!
//! - [`aliases`], [`history`], [`export`], [`apply`]: the aliases.
//! - [`admin`]: conflicts, audit, governance, API keys; [`edges`]: the fleet.
//! - [`tokens`]: the JWKS and revocation.
//! - [`service`]: resolve, health, status, metrics.
//! - [`barrier`]: `?wait=applied` on every write.
//! - [`openapi`], [`schema`]: the document's shared parts and the schemas
//!   of bodies whose types live outside `api/`.

// `nexusctl` sends and reads these modules' bodies, so the two cannot drift.
pub(crate) mod admin;
pub(crate) mod aliases;
mod apply;
pub(crate) mod barrier;
mod edges;
mod export;
mod history;
mod openapi;
pub(crate) mod schema;
mod service;
mod tokens;

use std::sync::OnceLock;

use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderValue, header::CONTENT_TYPE};
use axum::response::{IntoResponse, Response};
use utoipa::OpenApi as _;
use utoipa::openapi::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::web::Shared;

/// Largest request body, except imports.
pub const BODY_LIMIT: usize = 1 << 20;
/// Largest import body.
const IMPORT_LIMIT: usize = 64 << 20;

/// The one route table: every route is a handler annotated with
/// `#[utoipa::path]` (its path and method come from there), so the router
/// and the OpenAPI document ([`document`]) cannot disagree.
/// `tests/api/openapi.rs` checks that nothing is routed around it.
pub(crate) fn routes() -> OpenApiRouter<Shared> {
    let (schemas, paths, import) = routes!(aliases::import);
    let import = (schemas, paths, import.layer(DefaultBodyLimit::max(IMPORT_LIMIT)));
    let (schemas, paths, apply) = routes!(apply::apply);
    let apply = (schemas, paths, apply.layer(DefaultBodyLimit::max(IMPORT_LIMIT)));
    OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .routes(routes!(aliases::create, aliases::list))
        .routes(import)
        .routes(apply)
        .routes(routes!(aliases::get, aliases::update, aliases::deactivate))
        .routes(routes!(aliases::transfer))
        .routes(routes!(history::history))
        .routes(routes!(export::export))
        .routes(routes!(admin::conflicts))
        .routes(routes!(admin::resolve_conflict))
        .routes(routes!(admin::audit))
        .routes(routes!(admin::verify_audit))
        .routes(routes!(admin::governance, admin::put_governance))
        .routes(routes!(admin::create_key, admin::list_keys))
        .routes(routes!(admin::revoke_key))
        .routes(routes!(edges::list))
        .routes(routes!(openapi_json))
        .routes(routes!(service::resolve))
        .routes(routes!(service::health))
        .routes(routes!(service::metrics_json))
        .routes(routes!(service::status))
        .routes(routes!(service::prometheus))
        .routes(routes!(tokens::jwks))
        .routes(routes!(tokens::revoke))
}

/// The document, built once from the route table. Here, beside the table,
/// because the table also serves it ([`openapi_json`]).
fn document() -> &'static OpenApi {
    static DOC: OnceLock<OpenApi> = OnceLock::new();
    DOC.get_or_init(|| {
        let (_, mut doc) = routes().split_for_parts();
        openapi::add_shared(&mut doc);
        doc
    })
}

// Public: the document describes the API, holds no registry data, and
// tools (code generators, schemathesis) fetch it before they hold a
// credential. Every route it describes keeps its own authentication. (Not
// a doc comment: that would become the operation's description.)
/// Serves the document.
#[utoipa::path(
    get,
    path = "/api/admin/openapi.json",
    tag = "admin",
    security(()),
    responses((status = 200, description = "This document (OpenAPI 3.1)", content_type = "application/json", body = Object)),
)]
async fn openapi_json() -> Response {
    static JSON: OnceLock<Vec<u8>> = OnceLock::new();
    let body = JSON.get_or_init(|| serde_json::to_vec(document()).unwrap_or_default());
    let mut res = body.clone().into_response();
    res.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    res
}
