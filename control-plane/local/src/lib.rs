//! Private PostgreSQL and Redis servers started from the binaries installed on
//! this machine, so tests and `nexus-control-plane dev` need nothing running
//! beforehand and nothing but the packages.
//!
//! Layout:
//! - [`postgres`]: a private cluster (`initdb`, `pg_ctl`) and where its
//!   binaries are found.
//! - [`redis`]: a private `redis-server`.
//! - [`test`]: the URL lookup every test rig uses (environment, the usual
//!   local port, else a private server per test binary).
//! - `watchdog`: the child process that stops a server when its owner dies,
//!   even by `kill -9`.
//! - `os`: the OS user PostgreSQL runs as under root, free ports, install
//!   lines.
//!
//! Everything here blocks (std::process); async callers use `spawn_blocking`.

mod error;
mod os;
pub mod postgres;
pub mod redis;
pub mod test;
mod watchdog;

pub use error::LocalError;
