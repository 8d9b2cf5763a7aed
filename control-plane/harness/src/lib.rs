//! The one test harness of the workspace: every rig that boots a real
//! control plane, a real edge, or both, against real PostgreSQL and Redis,
//! each test with its own database and its own Redis key prefix so the
//! tests of every crate run in parallel on one server of each.
//!
//! The servers come from `nexus-local` (re-exported as [`local`]): the
//! given URL, the usual local port, or a private server per test binary.
//!
//! # Layout
//!
//! - [`database`]: a fresh database per test, dropped by its guard.
//! - [`redis`]: the Redis URL, command clients, fresh key prefixes, a
//!   channel subscriber.
//! - [`app`]: `spawn_app`, the admin API on port 0 over a fresh database,
//!   with tokens for every role; a plane whose database is gone.
//! - [`plane`]: the control plane as `serve` starts it, publishing to a
//!   Redis the test chose, with an admin API key.
//! - [`live`]: a test app with its publisher running, for end-to-end tests.
//! - [`publisher`]: publishers a test steps one unit of work at a time, and
//!   direct reads of the keys the propagation contract names.
//! - [`sync`]: a fake publisher writing exactly what the contract says, and
//!   an edge syncing from Redis in-process.
//! - [`edge`]: an edge in-process on an alias file, or a whole node on a bus.
//! - [`process`]: the `nexus-edge` binary as a child process.
//! - [`nexusctl`]: the `nexusctl` binary as an admin's shell runs it.
//! - [`proxy`]: a TCP proxy a test can take down and bring back.
//! - [`wait`]: waiting on a condition with a deadline.

pub mod app;
pub mod database;
pub mod edge;
pub mod live;
pub mod nexusctl;
pub mod plane;
pub mod process;
pub mod proxy;
pub mod publisher;
pub mod redis;
pub mod sync;
pub mod wait;

pub use nexus_local as local;

pub use app::{
    DeadStoreApp, GOVERNANCE, SECRET, TestApp, spawn_app, spawn_app_with,
    spawn_app_without_database,
};
pub use database::{Database, admin_client, base_url, drop_database, fresh_database, url_for};
pub use edge::{Options, TestEdge, YAML, get, launch_edge, launch_edge_with_clock, spawn_edge};
pub use live::LivePlane;
pub use nexusctl::nexusctl;
pub use plane::Plane;
pub use process::EdgeProcess;
pub use proxy::Proxy;
pub use publisher::{Rig, step_until, step_until_ok, step_until_takeover, steps_until_idle};
pub use redis::{Channel, PATIENCE, closed_port_url, connect, fresh_keys, redis_client, redis_url};
pub use sync::{EdgeConfig, FakePublisher, SyncEdge, now_ms, rec, sync_config};
pub use wait::{wait_until, wait_until_within};

use std::path::PathBuf;

/// A binary of the package under test, beside the test executable
/// (`target/<profile>/deps/<test>` → `target/<profile>/<name>`): cargo
/// builds a package's binaries before its integration tests, and this is
/// where it puts them.
pub fn cargo_bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the test executable's path");
    let profile = exe.parent().and_then(|deps| deps.parent()).expect("target/<profile>/deps");
    profile.join(format!("{name}{}", std::env::consts::EXE_SUFFIX))
}
