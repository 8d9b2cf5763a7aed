//! Measures (does not assert) what a snapshot of a large registry costs the
//! publisher and an edge: SQL read, encode + sign, Redis SET, envelope size,
//! and on the edge side Redis GET and verify + decode. Also the publisher's
//! steady-state path: building its mirror from the read records (done once
//! per snapshot from PostgreSQL), then clone + collect + encode + sign (each
//! periodic rebuild), which must stay under a second at a million aliases.
//!
//! ```text
//! cargo run --release -p nexus-control-plane --example snapshot_scale -- [ALIASES]
//! ```
//!
//! Uses a throw-away database (dropped at the end) and a random key on the
//! servers the tests use (`nexus_local::test`: `NEXUS_TEST_DATABASE_URL` /
//! `NEXUS_TEST_REDIS_URL`, else 127.0.0.1:5432 / :6379, else private ones).

use std::time::{Duration, Instant};

use anyhow::Context as _;
use fred::prelude::*;
use nexus_control_plane::config::DbConfig;
use nexus_control_plane::publisher::mirror::Mirror;
use nexus_control_plane::publisher::rebuild;
use nexus_control_plane::store::Store;
use nexus_protocol::envelope::decode_snapshot;
use nexus_protocol::signing::dev_signing_key;
use nexus_protocol::{Head, Limits};
use rand::RngCore;

const FILL: &str = "INSERT INTO aliases (context, alias, canonical, description, is_active, \
                    version, created_by) \
    SELECT (ARRAY['frontend','backend','system'])[1 + i % 3], 'alias-' || i, \
           'https://api.nexus.com/v1/resources/' || i || '/profile', \
           CASE WHEN i % 4 = 0 THEN 'Generated alias number ' || i END, \
           i % 10 <> 0, i, 'scale' \
    FROM generate_series(1, $1::BIGINT) AS i";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let n: i64 = std::env::args().nth(1).map(|a| a.parse()).transpose()?.unwrap_or(1_000_000);
    // Blocking (may start private servers): off the runtime's threads.
    let (base, redis_url) = tokio::task::spawn_blocking(|| {
        (nexus_local::test::database_url(), nexus_local::test::redis_url())
    })
    .await?;
    let mut b = [0u8; 8];
    rand::rng().fill_bytes(&mut b);
    let db = format!("nexus_scale_{}", hex::encode(b));
    let (admin, conn) =
        tokio_postgres::connect(&base, tokio_postgres::NoTls).await.with_context(|| {
            format!("PostgreSQL at {base} (set NEXUS_TEST_DATABASE_URL to another)")
        })?;
    tokio::spawn(conn);
    admin.batch_execute(&format!("CREATE DATABASE {db}")).await?;
    let result = run(&base, &db, &redis_url, n).await;
    admin.batch_execute(&format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)")).await?;
    result
}

async fn run(base: &str, db: &str, redis_url: &str, n: i64) -> anyhow::Result<()> {
    let url = format!("{}/{db}", base.rsplit_once('/').map_or(base, |(h, _)| h));
    let mut config = DbConfig::new(&url);
    config.timeout = Duration::from_secs(600);
    let store = Store::new(&config)?;
    store.migrate().await?;
    let (fill, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await?;
    tokio::spawn(conn);
    let t = Instant::now();
    fill.execute(FILL, &[&n]).await?;
    fill.execute("UPDATE registry SET version = $1 WHERE id = 1", &[&n]).await?;
    fill.batch_execute("VACUUM ANALYZE aliases").await?;
    println!("fill {n} aliases: {:.2?} (setup, not measured)", t.elapsed());

    let t = Instant::now();
    let read = store.snapshot_read().await?;
    let read_time = t.elapsed();
    let records = read.records.len();
    let key = dev_signing_key();
    let head = Head { epoch: read.head.epoch, version: read.head.version };
    let t = Instant::now();
    let mirror = tokio::task::spawn_blocking({
        let records = read.records.clone();
        move || Mirror::new(head, records)
    })
    .await?;
    let mirror_build_time = t.elapsed();
    let t = Instant::now();
    let envelope = rebuild::seal(read, &key, false, false).await?.envelope;
    let seal_time = t.elapsed();
    // The periodic rebuild: an O(1) clone at the head, then collect +
    // encode + sign on a blocking thread.
    let t = Instant::now();
    let from_mirror = rebuild::seal_mirror(mirror.clone(), &key, false).await?;
    let mirror_seal_time = t.elapsed();
    anyhow::ensure!(from_mirror.records == records, "the mirror lost records");
    // Same records, same order: the payload is the same up to the
    // creation time stamp, so the sizes agree.
    anyhow::ensure!(
        from_mirror.envelope.len().abs_diff(envelope.len()) < 16,
        "mirror snapshot differs in size: {} vs {}",
        from_mirror.envelope.len(),
        envelope.len()
    );
    drop(mirror);

    let client = Builder::from_config(Config::from_url(redis_url)?)
        .with_performance_config(|p| p.default_command_timeout = Duration::from_secs(120))
        .build()?;
    client.init().await.with_context(|| format!("Redis at {redis_url}"))?;
    let redis_key = format!("nexus-scale-{}:snapshot", db);
    let size = envelope.len();
    let t = Instant::now();
    let () = client.set(&redis_key, Value::Bytes(envelope.into()), None, None, false).await?;
    let set_time = t.elapsed();
    let t = Instant::now();
    let back: Value = client.get(&redis_key).await?;
    let get_time = t.elapsed();
    let bytes = back.as_bytes().context("snapshot came back")?;
    let t = Instant::now();
    let (_, decoded) = decode_snapshot(bytes, &Limits::SNAPSHOT, Some(&key.verifying_key()))?;
    let open_time = t.elapsed();
    let _: i64 = client.del(&redis_key).await?;
    anyhow::ensure!(decoded.records.len() == records, "round trip lost records");

    println!("machine: {} CPUs (shared), PostgreSQL and Redis on localhost", cpus());
    println!("records in snapshot         {records}");
    println!("envelope size               {:.1} MiB ({size} bytes)", size as f64 / 1048576.0);
    println!("snapshot read (SQL, RR tx)  {read_time:.2?}");
    println!("sort + encode + hash + sign {seal_time:.2?}");
    println!("build before (read + seal)  {:.2?}", read_time + seal_time);
    println!("mirror build (per SQL snap) {mirror_build_time:.2?}");
    println!("build from mirror (clone +  {mirror_seal_time:.2?}");
    println!("  collect + encode + sign)");
    println!("redis SET                   {set_time:.2?}");
    println!("redis GET (edge)            {get_time:.2?}");
    println!("verify + decode (edge)      {open_time:.2?}");
    Ok(())
}

fn cpus() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}
