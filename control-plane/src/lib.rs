//! The NEXUS control plane: the only writer of the alias registry.
//!
//! Layout:
//! - [`config`]: environment, read once, validated before anything binds; a
//!   leaf every other module may import.
//! - [`domain`]: pure rules — validation, governance, conflicts, RBAC.
//! - [`store`]: PostgreSQL; the only module with SQL; owns transactions.
//! - [`registry`]: the use cases (create, update, import) the admin API and
//!   the command line share: rules checked once, the store carries out the
//!   domain's plan.
//! - [`audit`]: the hash chain (pure) and the retention job.
//! - [`auth`]: tokens (via `nexus_protocol::jwt`) and API keys.
//! - [`web`]: the HTTP layer `api` and `console` share: state, extractors,
//!   the caller, errors mapped to statuses once, the rate limit, the
//!   request-id and metrics middleware, the fleet and history views.
//! - [`api`]: the admin and service API: the route table (the OpenAPI
//!   document is made from it) and its handlers.
//! - [`console`]: the admin's web pages under `/console`, server-rendered,
//!   on the same RBAC and write path as the API.
//! - [`metrics`]: Prometheus metrics.
//! - [`publisher`]: signed deltas and snapshots to the bus (Redis, or
//!   in-process), one leader.
//! - [`report`]: an error with its whole source chain, for logs.
//! - [`server`]: start-up checks, the router (`api` and `console` over
//!   `web`'s middleware), and serving on a given listener.
//! - [`dev`]: `nexus-control-plane dev`, the whole system in one process.
//! - [`ctl`]: `nexusctl`, the admin's CLI over the admin API.

pub mod api;
pub(crate) mod audit;
pub mod auth;
pub mod config;
pub(crate) mod console;
pub mod ctl;
pub mod dev;
pub mod domain;
pub mod metrics;
pub mod publisher;
pub mod registry;
pub(crate) mod report;
pub mod server;
pub mod store;
pub mod web;
