//! PostgreSQL failover as libpq does it: a multi-host `DATABASE_URL` with
//! `target_session_attrs=read-write` connects to whichever host takes
//! writes, and when the database moves (the writable one turns read-only,
//! another turns writable) the control plane's next connection finds the new
//! one, without a restart. Two real clusters, started here (nexus-local);
//! "read-only" is `default_transaction_read_only`, which is what libpq's and
//! tokio-postgres's check reads (`SHOW transaction_read_only`), as on a hot
//! standby.

use std::time::{Duration, Instant};

use nexus_control_plane::config::DbConfig;
use nexus_control_plane::domain::alias::NewAlias;
use nexus_control_plane::domain::governance::Governance;
use nexus_control_plane::registry;
use nexus_control_plane::store::{Actor, Store};
use nexus_harness::local::postgres::Postgres;

const GOVERNANCE: &str = include_str!("../../deploy/config/alias_governance.yaml");

async fn sql(pg: &Postgres) -> tokio_postgres::Client {
    let (c, conn) = tokio_postgres::connect(&pg.url(), tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(conn);
    c
}

/// Makes `pg` refuse writes (or take them again) and, when refusing, ends
/// every other session, as a failover does.
async fn writable(pg: &Postgres, on: bool) {
    let c = sql(pg).await;
    let setting = if on { "off" } else { "on" };
    // One statement each: ALTER SYSTEM refuses to run in a transaction block.
    c.batch_execute("SET default_transaction_read_only = off").await.unwrap();
    c.batch_execute(&format!("ALTER SYSTEM SET default_transaction_read_only = {setting}"))
        .await
        .unwrap();
    c.batch_execute("SELECT pg_reload_conf()").await.unwrap();
    if !on {
        c.batch_execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE pid <> pg_backend_pid() AND backend_type = 'client backend'",
        )
        .await
        .unwrap();
    }
}

async fn holds(pg: &Postgres, alias: &str) -> bool {
    let c = sql(pg).await;
    let row = c.query_one("SELECT count(*) FROM aliases WHERE alias = $1", &[&alias]).await;
    row.is_ok_and(|r| r.get::<_, i64>(0) == 1)
}

#[tokio::test]
async fn a_multi_host_url_follows_the_writable_database_without_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let a = Postgres::start(&dir.path().join("a"), true).unwrap();
    let b = Postgres::start(&dir.path().join("b"), true).unwrap();
    // Both hold the schema (in production the standby has it by replication).
    for pg in [&a, &b] {
        Store::new(&DbConfig::new(&pg.url())).unwrap().migrate().await.unwrap();
    }
    writable(&a, false).await;

    let url = format!(
        "postgres://postgres@127.0.0.1:{},127.0.0.1:{}/postgres?target_session_attrs=read-write&sslmode=disable",
        a.port(),
        b.port()
    );
    let store = Store::new(&DbConfig::new(&url)).unwrap();
    let rules = Governance::from_yaml(GOVERNANCE).unwrap();
    let actor = Actor::system("failover-test");
    let create = |alias: &'static str| {
        let (store, rules, actor) = (&store, &rules, &actor);
        async move {
            let new = NewAlias::parse("frontend", alias, "https://api.nexus.com/v1/f", None, None)
                .unwrap();
            registry::create(store, rules, &new, actor).await
        }
    };
    // A is first in the URL but read-only: the write goes to B.
    create("first").await.unwrap();
    assert!(holds(&b, "first").await && !holds(&a, "first").await);

    // The database moves: B refuses writes (its sessions cut), A takes them.
    writable(&a, true).await;
    writable(&b, false).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut failures = 0;
    loop {
        match create("second").await {
            Ok(_) => break,
            Err(e) => {
                failures += 1;
                assert!(Instant::now() < deadline, "never reconnected: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    assert!(holds(&a, "second").await && !holds(&b, "second").await);
    // At most the writes that met a connection cut under them fail.
    assert!(failures <= 2, "{failures} writes failed before the reconnect");
}
