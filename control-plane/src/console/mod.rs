//! The admin web console under `/console`: server-rendered pages (maud,
//! compiled into the binary), a small CSS and JS file of its own, sessions
//! in a cookie, and the API's RBAC and write paths.
//!
//! - [`state`]: the console's state (the API's, plus the sessions).
//! - [`session`]: the server-side session map and its cookie.
//! - [`signed`]: a signed-in admin; [`extract`]: how a request becomes one,
//!   and a POST a checked form.
//! - [`csrf`]: the origin checks every POST passes (the form token is
//!   checked by [`extract::Posted`]).
//! - [`view`]: the layout and the pieces every page shares.
//! - [`pages`]: one module per page.
//! - [`assets`]: the CSS and the JS.
//!
//! Nothing here writes by itself: a page parses its form, authorises with
//! `Caller::may` (the API's own decision, `domain::rbac`, through the
//! shared `web::caller`), and calls the same `registry` or `store` function
//! the API handler calls. A refusal is the API's own `ApiError`, shown as
//! an HTML page with the API's status and message ([`errors`]).

mod assets;
mod csrf;
mod errors;
mod extract;
mod pages;
mod session;
mod signed;
mod state;
mod view;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::middleware;
use axum::routing::{get, post};

use crate::web::Shared;
use session::Sessions;
use state::{Console, ConsoleState};

/// Largest form, except the import page's.
const FORM_LIMIT: usize = 64 << 10;
/// Largest declarative file the import page takes; larger ones go through
/// `nexusctl apply`.
const IMPORT_FORM_LIMIT: usize = 8 << 20;

/// The console's routes, with their own state, for `server::router` to
/// merge.
pub(crate) fn router<S: Clone + Send + Sync + 'static>(app: Shared) -> Router<S> {
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
