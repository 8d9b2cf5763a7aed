//! The PostgreSQL and Redis URLs every test rig uses, in this order:
//!
//! 1. `NEXUS_TEST_DATABASE_URL` / `NEXUS_TEST_REDIS_URL`, used as given;
//! 2. the usual local server (127.0.0.1:5432 / 127.0.0.1:6379), if one
//!    answers;
//! 3. a private server started once per test binary in a temporary
//!    directory, stopped and removed when the test process ends, even if it
//!    is killed (see the watchdog module);
//! 4. else a panic that names the install line.
//!
//! There is no skip: a test that needs a database fails without one, under
//! `CI=true` as everywhere else.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use crate::LocalError;
use crate::postgres::{self, Postgres};
use crate::redis::{self, Redis};

const POSTGRES_DEFAULT: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 5432);
const REDIS_DEFAULT: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 6379);
/// How long "does something answer at the default address" may take.
const PROBE: Duration = Duration::from_millis(500);

/// The PostgreSQL URL tests use (a server where user `postgres` may create
/// databases). Panics, with what to install, when there is none.
pub fn database_url() -> String {
    static POSTGRES: OnceLock<Result<Found<Postgres>, String>> = OnceLock::new();
    let found = POSTGRES.get_or_init(|| {
        find_postgres(given("NEXUS_TEST_DATABASE_URL"), POSTGRES_DEFAULT)
            .map_err(|e| failure("PostgreSQL", "NEXUS_TEST_DATABASE_URL", &e))
    });
    match found {
        Ok(found) => found.url.clone(),
        Err(message) => panic!("{message}"),
    }
}

/// The Redis URL tests use; the same policy as [`database_url`].
pub fn redis_url() -> String {
    static REDIS: OnceLock<Result<Found<Redis>, String>> = OnceLock::new();
    let found = REDIS.get_or_init(|| {
        find_redis(given("NEXUS_TEST_REDIS_URL"), REDIS_DEFAULT)
            .map_err(|e| failure("Redis", "NEXUS_TEST_REDIS_URL", &e))
    });
    match found {
        Ok(found) => found.url.clone(),
        Err(message) => panic!("{message}"),
    }
}

/// A URL and, when this process started the server, the server (kept alive
/// as long as the value; in a static, until the process ends).
#[derive(Debug)]
pub(crate) struct Found<S> {
    pub(crate) url: String,
    #[cfg_attr(not(test), expect(dead_code, reason = "held so the server lives; tests read it"))]
    pub(crate) private: Option<S>,
}

/// The lookup order, with the default address as a parameter so tests can
/// point it where nothing listens.
pub(crate) fn find_postgres(
    given: Option<String>,
    default: SocketAddr,
) -> Result<Found<Postgres>, LocalError> {
    if let Some(url) = given {
        return Ok(Found { url, private: None });
    }
    if postgres::answers(default, PROBE) {
        return Ok(Found { url: format!("postgres://postgres@{default}/postgres"), private: None });
    }
    let pg = Postgres::start(&unused_temp_path("pg"), true)?;
    Ok(Found { url: pg.url(), private: Some(pg) })
}

pub(crate) fn find_redis(
    given: Option<String>,
    default: SocketAddr,
) -> Result<Found<Redis>, LocalError> {
    if let Some(url) = given {
        return Ok(Found { url, private: None });
    }
    if redis::answers(default, PROBE) {
        return Ok(Found { url: format!("redis://{default}"), private: None });
    }
    let redis = Redis::start_in(&unused_temp_path("redis"), true)?;
    Ok(Found { url: redis.url(), private: Some(redis) })
}

fn given(var: &str) -> Option<String> {
    std::env::var(var).ok().filter(|v| !v.trim().is_empty())
}

/// A path under the temp dir that nothing uses yet (the server creates it).
fn unused_temp_path(kind: &str) -> PathBuf {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    loop {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path =
            std::env::temp_dir().join(format!("nexus-local-{kind}-{}-{n}", std::process::id()));
        if !path.exists() {
            return path;
        }
    }
}

fn failure(service: &str, var: &str, error: &LocalError) -> String {
    let ci = if std::env::var("CI").is_ok_and(|v| v == "true") {
        " (CI=true: a missing service fails the run; it is never skipped)"
    } else {
        ""
    };
    format!(
        "the tests need {service}: nothing answers at the usual local port and a private server \
         could not be started: {error}. Or set {var} to a running server{ci}."
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nowhere() -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], crate::os::free_port().unwrap()))
    }

    #[test]
    fn a_given_url_is_used_as_is() {
        let url = "postgres://someone@192.0.2.1:1/db".to_owned();
        let found = find_postgres(Some(url.clone()), nowhere()).unwrap();
        assert_eq!(found.url, url);
        assert!(found.private.is_none());
        let found = find_redis(Some("redis://192.0.2.1:1".to_owned()), nowhere()).unwrap();
        assert_eq!(found.url, "redis://192.0.2.1:1");
        assert!(found.private.is_none());
    }

    #[tokio::test]
    async fn nothing_at_the_default_address_starts_a_private_postgres() {
        let found = find_postgres(None, nowhere()).unwrap();
        let pg = found.private.as_ref().expect("a private cluster");
        assert_eq!(found.url, pg.url());
        let (client, conn) =
            tokio_postgres::connect(&found.url, tokio_postgres::NoTls).await.unwrap();
        tokio::spawn(conn);
        let one: i32 = client.query_one("SELECT 1", &[]).await.unwrap().get(0);
        assert_eq!(one, 1);

        // A server that answers at the default address is used, not a new one.
        let at = SocketAddr::from(([127, 0, 0, 1], pg.port()));
        let running = find_postgres(None, at).unwrap();
        assert!(running.private.is_none());
        assert_eq!(running.url, pg.url());

        let dir = pg.data_dir().to_owned();
        drop(client);
        found.private.unwrap().stop().unwrap();
        assert!(!dir.exists(), "{} was not removed", dir.display());
    }

    #[test]
    fn nothing_at_the_default_address_starts_a_private_redis() {
        let found = find_redis(None, nowhere()).unwrap();
        let redis = found.private.as_ref().expect("a private redis-server");
        let at = SocketAddr::from(([127, 0, 0, 1], redis.port()));
        assert!(redis::answers(at, Duration::from_secs(1)));
        let running = find_redis(None, at).unwrap();
        assert!(running.private.is_none());
        assert_eq!(running.url, redis.url());
        found.private.unwrap().stop().unwrap();
        assert!(!redis::answers(at, Duration::from_millis(200)));
    }

    #[test]
    fn the_failure_names_the_variable() {
        let e = LocalError::NoPostgresUser;
        let message = failure("PostgreSQL", "NEXUS_TEST_DATABASE_URL", &e);
        assert!(message.contains("NEXUS_TEST_DATABASE_URL"), "{message}");
        assert!(message.contains("postgres"), "{message}");
    }
}
