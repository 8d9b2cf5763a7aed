//! The HTTP layer the admin API (`api/`) and the console (`console/`) stand
//! on, so neither imports the other: `server::router` mounts both over the
//! middleware here.
//!
//! - [`state`]: [`AppState`], what every handler gets.
//! - [`error`]: `ApiError` and the one table of statuses and bodies (the
//!   console renders the same answers as pages).
//! - [`extract`]: extractors that refuse with that error, and the alias key
//!   of a `{context}/{alias}` path.
//! - [`caller`]: the authenticated caller and its RBAC checks.
//! - [`observe`]: the request id, the request's log line and metrics.
//! - [`rate_limit`]: the per-credential buckets; [`throttle`]: the
//!   middleware that charges them.
//! - [`fleet`]: the edges' reports judged against the registry head.
//! - [`history`]: an alias's versions and the answer as of one.

pub(crate) mod caller;
pub mod error;
pub(crate) mod extract;
pub(crate) mod fleet;
pub(crate) mod history;
pub(crate) mod observe;
pub(crate) mod rate_limit;
mod state;
pub(crate) mod throttle;

pub use state::{AppState, Shared};
