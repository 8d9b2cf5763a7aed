//! The NEXUS control plane: the only writer of the alias registry.
//!
//! Layout:
//! - [`config`]: environment, read once, validated before anything binds.
//! - [`domain`]: pure rules — validation, governance, conflicts, RBAC.
//! - [`store`]: PostgreSQL; the only module with SQL; owns transactions.
//! - [`audit`]: the hash chain (pure) and the retention job.
//! - [`auth`]: tokens (via `nexus_protocol::jwt`) and API keys.
//! - [`api`]: axum routes and handlers; errors mapped to statuses once.
//! - [`metrics`]: Prometheus metrics.
//! - [`publisher`]: signed deltas and snapshots to Redis, one leader.
//! - [`server`]: start-up checks and serving on a given listener.

pub mod api;
pub mod audit;
pub mod auth;
pub mod config;
pub mod domain;
pub mod metrics;
pub mod publisher;
pub mod server;
pub mod store;
