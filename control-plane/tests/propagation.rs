//! The publisher against real PostgreSQL and Redis: each test has its own
//! database (through `spawn_app`) and its own random Redis prefix, and
//! drives the publisher one `step()` at a time.

use std::time::{Duration, Instant};

use nexus_control_plane::metrics::KindLabels;
use nexus_control_plane::publisher::batch::SealedDelta;
use nexus_control_plane::publisher::bus::BusError;
use nexus_control_plane::publisher::{Settings, SnapshotReason, Step};
use nexus_protocol::envelope::{decode_delta, decode_snapshot};
use nexus_protocol::signing::{dev_verify_key, parse_signing_key};
use nexus_protocol::{AliasRecord, DecodeError, Delta, Head, Limits};
use nexus_runtime::bus::Fence;
use reqwest::StatusCode;
use serde_json::json;

use nexus_harness::Proxy;
use nexus_harness::spawn_app;
use nexus_harness::{
    Channel, PATIENCE, Rig, step_until, step_until_ok, step_until_takeover, steps_until_idle,
    wait_until_within,
};

/// Decodes and verifies every channel message as a delta, in order.
fn deltas(messages: &[Vec<u8>]) -> Vec<Delta> {
    let key = dev_verify_key();
    messages
        .iter()
        .map(|m| decode_delta(m, &Limits::DELTA, Some(&key)).expect("a signed delta").1)
        .collect()
}

#[tokio::test]
async fn writes_go_out_as_signed_deltas_in_version_order() {
    let app = spawn_app().await;
    let rig = Rig::new(&app).await;
    let mut channel = Channel::subscribe(&rig.keys).await;
    let mut publisher = rig.publisher(&app);
    // An empty registry: the new leader publishes a snapshot first.
    let first = publisher.step().await.unwrap();
    assert!(
        matches!(first, Step::Snapshot { reason: SnapshotReason::Leader, records: 0, .. }),
        "{first:?}"
    );
    assert_eq!(Head::parse(&channel.next().await), Ok(rig.head().await.unwrap()));

    for (alias, target) in [("a", "x"), ("b", "y"), ("c", "z")] {
        let (status, _) =
            app.create("frontend", alias, &format!("https://api.nexus.com/{target}")).await;
        assert_eq!(status, StatusCode::CREATED);
        // One step per commit: each change is its own delta.
        assert!(matches!(publisher.step().await.unwrap(), Step::Deltas { messages: 1, .. }));
    }
    let (status, _) = app
        .put("/api/admin/aliases/frontend/b", &json!({"canonical": "https://api.nexus.com/b2"}))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(app.delete("/api/admin/aliases/frontend/c").await.0, StatusCode::NO_CONTENT);
    // Two commits, one step: batched into one delta covering both.
    let step = publisher.step().await.unwrap();
    assert_eq!(step, Step::Deltas { from_version: 3, to_version: 5, messages: 1 });
    assert_eq!(publisher.step().await.unwrap(), Step::Idle);

    let on_channel = deltas(&channel.take(4).await);
    let ring = deltas(&rig.ring().await);
    assert_eq!(on_channel, ring, "the channel carries exactly what the ring keeps");
    let spans: Vec<(u64, u64)> = ring.iter().map(|d| (d.from_version, d.to_version)).collect();
    assert_eq!(spans, [(0, 1), (1, 2), (2, 3), (3, 5)]);
    let last = &ring[3];
    assert_eq!(last.upserts.len(), 2);
    assert_eq!(last.upserts[0].canonical.as_str(), "https://api.nexus.com/b2");
    assert_eq!((last.upserts[1].alias.as_str(), last.upserts[1].is_active), ("c", false));
    let head = rig.head().await.unwrap();
    assert_eq!(head.version, 5);
    assert!(ring.iter().all(|d| d.epoch == head.epoch));

    // The signatures are real: another key refuses every delta.
    let stranger = parse_signing_key(&"11".repeat(32)).unwrap().verifying_key();
    for bytes in rig.ring().await {
        let refused = decode_delta(&bytes, &Limits::DELTA, Some(&stranger));
        assert!(matches!(refused, Err(DecodeError::BadSignature)));
    }
    rig.cleanup().await;
}

#[tokio::test]
async fn the_snapshot_equals_the_database() {
    let app = spawn_app().await;
    let rig = Rig::new(&app).await;
    for i in 0..20 {
        let (status, _) =
            app.create("backend", &format!("svc-{i}"), "https://api.nexus.com/s").await;
        assert_eq!(status, StatusCode::CREATED);
    }
    assert_eq!(app.delete("/api/admin/aliases/backend/svc-3").await.0, StatusCode::NO_CONTENT);
    // Re-created after deactivation: two rows share the key in SQL, one
    // record (the active one) in the snapshot.
    assert_eq!(
        app.create("backend", "svc-3", "https://api.nexus.com/t").await.0,
        StatusCode::CREATED
    );
    let settings = Settings { snapshot_every_versions: 3, ..Settings::default() };
    let (mut publisher, metrics) = rig.publisher_with(&app, settings);
    assert!(matches!(
        publisher.step().await.unwrap(),
        Step::Snapshot { reason: SnapshotReason::Leader, records: 20, .. }
    ));
    // Three more versions: deltas first, then the periodic rebuild.
    for i in 20..23 {
        app.create("backend", &format!("svc-{i}"), "https://api.nexus.com/s").await;
    }
    assert_eq!(
        publisher.step().await.unwrap(),
        Step::Deltas { from_version: 22, to_version: 25, messages: 1 }
    );
    // The rebuild runs beside the loop; steps stay idle until it is done.
    let rebuilt = step_until(&mut publisher, |s| matches!(s, Step::Snapshot { .. })).await;
    assert!(
        matches!(rebuilt, Step::Snapshot { reason: SnapshotReason::Periodic, records: 23, .. }),
        "{rebuilt:?}"
    );
    assert_eq!(publisher.step().await.unwrap(), Step::Idle);
    let kinds = |kind| metrics.publish_total.get_or_create(&KindLabels { kind }).get();
    assert_eq!((kinds("snapshot"), kinds("delta")), (2, 1));
    assert_eq!(metrics.published_version.get(), 25);
    let (_, snapshot) =
        decode_snapshot(&rig.snapshot().await, &Limits::SNAPSHOT, Some(&dev_verify_key()))
            .expect("a signed snapshot");
    let sql = app.sql().await;
    let rows = sql
        .query(
            "SELECT context, alias, canonical, is_active, version FROM aliases WHERE is_active",
            &[],
        )
        .await
        .unwrap();
    let mut expected: Vec<(String, String, String, bool, u64)> = rows
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get::<_, i64>(4) as u64))
        .collect();
    // The snapshot is in byte order of the names, SQL in collation order.
    expected.sort();
    let got: Vec<(String, String, String, bool, u64)> = snapshot
        .records
        .iter()
        .map(|r| {
            let (c, a) = (r.context.to_string(), r.alias.to_string());
            (c, a, r.canonical.to_string(), r.is_active, r.version)
        })
        .collect();
    assert_eq!(got, expected);
    let head = rig.head().await.unwrap();
    assert_eq!((snapshot.epoch, snapshot.version), (head.epoch, head.version));
    // A record reads the same from a delta and from a snapshot, to the ms.
    let ring = deltas(&rig.ring().await);
    let from_delta = ring.last().unwrap().upserts.last().unwrap();
    let from_snapshot = snapshot.records.iter().find(|r| r.alias == from_delta.alias).unwrap();
    assert_eq!(from_snapshot, from_delta);
    assert_eq!(snapshot.version, 25);
    rig.cleanup().await;
}

#[tokio::test]
async fn the_periodic_snapshot_from_the_mirror_equals_a_database_read() {
    let app = spawn_app().await;
    let rig = Rig::new(&app).await;
    for i in 0..5 {
        let (status, _) = app.create("backend", &format!("m-{i}"), "https://api.nexus.com/m").await;
        assert_eq!(status, StatusCode::CREATED);
    }
    // Twelve versions after the leader's snapshot make the rebuild due.
    let settings = Settings { snapshot_every_versions: 12, ..Settings::default() };
    let (mut publisher, _) = rig.publisher_with(&app, settings);
    assert!(matches!(
        publisher.step().await.unwrap(),
        Step::Snapshot { reason: SnapshotReason::Leader, records: 5, .. }
    ));
    // Creates, then updates, then deactivations and a re-creation, each
    // published as its own batch, so the mirror applies three.
    for (context, alias) in [
        ("frontend", "m-0"),
        ("frontend", "z"),
        ("system", "a"),
        ("backend", "m-9"),
        ("backend", "0"),
    ] {
        let (status, _) = app.create(context, alias, "https://api.nexus.com/n").await;
        assert_eq!(status, StatusCode::CREATED);
    }
    assert!(matches!(publisher.step().await.unwrap(), Step::Deltas { to_version: 10, .. }));
    let expires = (chrono::Utc::now() + chrono::Duration::days(1)).to_rfc3339();
    let updates = [
        ("/api/admin/aliases/backend/m-1", json!({"canonical": "https://api.nexus.com/u1"})),
        (
            "/api/admin/aliases/frontend/z",
            json!({"description": "now described", "expires_at": expires}),
        ),
        ("/api/admin/aliases/backend/m-2", json!({"description": "also described"})),
    ];
    for (path, body) in &updates {
        assert_eq!(app.put(path, body).await.0, StatusCode::OK, "{path}");
    }
    assert!(matches!(publisher.step().await.unwrap(), Step::Deltas { to_version: 13, .. }));
    for path in ["/api/admin/aliases/backend/m-3", "/api/admin/aliases/system/a"] {
        assert_eq!(app.delete(path).await.0, StatusCode::NO_CONTENT, "{path}");
    }
    // Same key as a deactivated one: the active record wins everywhere.
    assert_eq!(
        app.create("backend", "m-3", "https://api.nexus.com/again").await.0,
        StatusCode::CREATED
    );
    let (status, _) = app
        .put("/api/admin/aliases/backend/m-4", &json!({"canonical": "https://api.nexus.com/u4"}))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(matches!(publisher.step().await.unwrap(), Step::Deltas { to_version: 17, .. }));

    let rebuilt = step_until(&mut publisher, |s| matches!(s, Step::Snapshot { .. })).await;
    assert!(
        matches!(rebuilt, Step::Snapshot { reason: SnapshotReason::Periodic, records: 10, .. }),
        "{rebuilt:?}"
    );
    let (_, from_mirror) =
        decode_snapshot(&rig.snapshot().await, &Limits::SNAPSHOT, Some(&dev_verify_key()))
            .expect("a signed snapshot");
    let mut read = app.store.snapshot_read().await.unwrap();
    assert_eq!((from_mirror.epoch, from_mirror.version), (read.head.epoch, read.head.version));
    assert_eq!(from_mirror.version, 17);
    read.records.sort_by_key(AliasRecord::key);
    assert_eq!(from_mirror.records.len(), read.records.len());
    for (got, want) in from_mirror.records.iter().zip(&read.records) {
        assert_eq!(got, want);
    }
    let m3 = from_mirror.records.iter().find(|r| r.alias.as_str() == "m-3").unwrap();
    assert_eq!((m3.canonical.as_str(), m3.is_active), ("https://api.nexus.com/again", true));
    let z = from_mirror.records.iter().find(|r| r.alias.as_str() == "z").unwrap();
    assert!(z.expires_at_ms.is_some() && z.description.is_some(), "{z:?}");
    rig.cleanup().await;
}

#[tokio::test]
async fn a_redis_that_lost_its_keys_is_refilled() {
    let app = spawn_app().await;
    let rig = Rig::new(&app).await;
    let mut publisher = rig.publisher(&app);
    steps_until_idle(&mut publisher).await;
    for i in 0..5 {
        app.create("frontend", &format!("p-{i}"), "https://api.nexus.com/p").await;
    }
    steps_until_idle(&mut publisher).await;
    assert_eq!(rig.head().await.unwrap().version, 5);

    rig.delete_keys().await;
    assert_eq!(rig.head().await, None);
    let mut channel = Channel::subscribe(&rig.keys).await;
    let step = publisher.step().await.unwrap();
    assert!(
        matches!(step, Step::Snapshot { reason: SnapshotReason::RedisLost, records: 5, .. }),
        "{step:?}"
    );
    let head = rig.head().await.expect("head is back");
    assert_eq!(head.version, 5);
    assert_eq!(Head::parse(&channel.next().await), Ok(head));
    let (_, snapshot) =
        decode_snapshot(&rig.snapshot().await, &Limits::SNAPSHOT, Some(&dev_verify_key())).unwrap();
    assert_eq!(snapshot.records.len(), 5);
    assert!(snapshot.intended_shrink, "same history: nothing to guard against");
    // And it carries on with deltas from there.
    app.create("frontend", "p-5", "https://api.nexus.com/p").await;
    assert_eq!(
        publisher.step().await.unwrap(),
        Step::Deltas { from_version: 5, to_version: 6, messages: 1 }
    );
    rig.cleanup().await;
}

#[tokio::test]
async fn an_epoch_bump_sends_a_fresh_snapshot_under_the_new_epoch() {
    let app = spawn_app().await;
    let rig = Rig::new(&app).await;
    let mut publisher = rig.publisher(&app);
    for i in 0..3 {
        app.create("frontend", &format!("e-{i}"), "https://api.nexus.com/e").await;
    }
    steps_until_idle(&mut publisher).await;
    let before = rig.head().await.unwrap();
    assert_eq!(before.version, 3);

    // What an operator runs after restoring the database from a backup.
    let actor = nexus_control_plane::store::Actor::system("test");
    let (old, new) = app.store.bump_epoch(&actor).await.unwrap();
    assert_eq!(old as u64, before.epoch);
    assert_ne!(new, old);
    let step = publisher.step().await.unwrap();
    assert!(
        matches!(step, Step::Snapshot { reason: SnapshotReason::Discontinuous, records: 3, .. }),
        "{step:?}"
    );
    let head = rig.head().await.unwrap();
    assert_eq!((head.epoch, head.version), (new as u64, 3));
    let (_, snapshot) =
        decode_snapshot(&rig.snapshot().await, &Limits::SNAPSHOT, Some(&dev_verify_key())).unwrap();
    assert_eq!((snapshot.epoch, snapshot.records.len()), (new as u64, 3));
    // New writes continue under the new epoch, as deltas.
    app.create("frontend", "e-3", "https://api.nexus.com/e").await;
    assert_eq!(
        publisher.step().await.unwrap(),
        Step::Deltas { from_version: 3, to_version: 4, messages: 1 }
    );
    // Audited, and the chain still verifies.
    let (_, audit) = app.get("/api/admin/audit?action=registry.epoch_bump").await;
    assert_eq!(audit["items"][0]["details"], format!("epoch {old} -> {new}"), "{audit}");
    let (_, verify) = app.get("/api/admin/audit/verify").await;
    assert_eq!(
        (verify["ok"].as_bool(), verify["checked"].as_u64()),
        (Some(true), Some(6)),
        "{verify}"
    );
    rig.cleanup().await;
}

#[tokio::test]
async fn the_outbox_is_pruned_behind_the_ring_and_the_history_window() {
    let app = spawn_app().await;
    let rig = Rig::new(&app).await;
    let aliases: Vec<_> = (0..1_100)
        .map(|i| {
            json!({"context": "backend", "alias": format!("o-{i}"),
                        "canonical": format!("https://api.nexus.com/v1/o/{i}")})
        })
        .collect();
    let (status, body) = app
        .post("/api/admin/aliases/import", &json!({"aliases": aliases, "on_conflict": "reject"}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let outbox = || async {
        let row = app
            .sql()
            .await
            .query_one("SELECT min(version), count(*) FROM changes", &[])
            .await
            .unwrap();
        (row.get::<_, Option<i64>>(0), row.get::<_, i64>(1))
    };
    assert_eq!(outbox().await, (Some(1), 1_100));

    // A history window of 30 days keeps every row, however far behind.
    let kept = Settings { prune_every: Duration::ZERO, ..Settings::default() };
    let (mut publisher, _) = rig.publisher_via(
        &app,
        &nexus_harness::redis_url(),
        &nexus_harness::url_for(&app.db_name),
        kept,
    );
    steps_until_idle(&mut publisher).await;
    assert_eq!(outbox().await, (Some(1), 1_100));
    drop(publisher);

    // With no window, what the ring no longer needs goes: 1,100 - 1,024.
    let short = Settings {
        prune_every: Duration::ZERO,
        outbox_retention: Duration::ZERO,
        ..Settings::default()
    };
    let (mut publisher, _) = rig.publisher_via(
        &app,
        &nexus_harness::redis_url(),
        &nexus_harness::url_for(&app.db_name),
        short,
    );
    steps_until_idle(&mut publisher).await;
    assert_eq!(outbox().await, (Some(77), 1_024));
    // Time travel says what it can no longer show (410), and still shows
    // what is kept.
    let (status, body) = app.get("/api/aliases/resolve/backend/o-0?as_of=10").await;
    assert_eq!(status, StatusCode::GONE, "{body}");
    let (status, body) = app.get("/api/aliases/resolve/backend/o-1099?as_of=1100").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, _) = app.get("/api/admin/aliases/backend/o-1099/history").await;
    assert_eq!(status, StatusCode::OK);
    rig.cleanup().await;
}

#[tokio::test]
async fn deltas_never_land_on_a_redis_emptied_since_the_step_looked() {
    let app = spawn_app().await;
    let rig = Rig::new(&app).await;
    let mut publisher = rig.publisher(&app);
    app.create("frontend", "w-0", "https://api.nexus.com/w").await;
    steps_until_idle(&mut publisher).await;
    let published = rig.head().await.expect("published");

    // Redis empties between a step's look at the head and its delta write.
    rig.delete_keys().await;
    let next = Head { epoch: published.epoch, version: published.version + 1 };
    let sealed =
        SealedDelta { from_version: published.version, to_version: next.version, bytes: vec![1] };
    let fence = Fence { epoch: published.epoch, term: u64::MAX };
    let err =
        rig.bus().publish_deltas(fence, &[sealed], published, next, 1 << 16).await.unwrap_err();
    assert!(matches!(err, BusError::HeadMoved { .. }), "{err}");
    assert_eq!(rig.head().await, None, "no head without the snapshot behind it");
    assert!(rig.ring().await.is_empty());

    // The next step sees the loss and refills with a snapshot.
    let step = publisher.step().await.unwrap();
    assert!(matches!(step, Step::Snapshot { reason: SnapshotReason::RedisLost, .. }), "{step:?}");
    assert_eq!(rig.head().await, Some(published));
    rig.cleanup().await;
}

#[tokio::test]
async fn one_leader_at_a_time_and_a_takeover_when_it_dies() {
    let app = spawn_app().await;
    let rig = Rig::new(&app).await;
    let (mut a, a_metrics) = rig.publisher_with_metrics(&app);
    let (mut b, b_metrics) = rig.publisher_with_metrics(&app);
    assert!(matches!(a.step().await.unwrap(), Step::Snapshot { .. }));
    assert_eq!(b.step().await.unwrap(), Step::Follower);
    app.create("frontend", "one", "https://api.nexus.com/1").await;
    assert_eq!(b.step().await.unwrap(), Step::Follower);
    assert!(matches!(a.step().await.unwrap(), Step::Deltas { to_version: 1, .. }));
    assert_eq!((a_metrics.is_leader.get(), b_metrics.is_leader.get()), (1, 0));

    // The leader dies: its connection closes and PostgreSQL frees the lock.
    drop(a);
    app.create("frontend", "two", "https://api.nexus.com/2").await;
    step_until_takeover(&mut b).await;
    assert_eq!(b_metrics.is_leader.get(), 1);
    steps_until_idle(&mut b).await;
    // The new leader continued the ring rather than starting over.
    let ring = deltas(&rig.ring().await);
    let spans: Vec<(u64, u64)> = ring.iter().map(|d| (d.from_version, d.to_version)).collect();
    assert_eq!(spans, [(0, 1), (1, 2)]);
    assert_eq!(rig.head().await.unwrap().version, 2);
    rig.cleanup().await;
}

/// The last leader term drawn (migration 0009's sequence).
async fn leader_term(sql: &tokio_postgres::Client) -> u64 {
    let row = sql.query_one("SELECT last_value FROM leader_term", &[]).await.unwrap();
    u64::try_from(row.get::<_, i64>(0)).unwrap()
}

/// Rounds of [`a_deposed_leader_never_moves_anything_back`].
const DEPOSED_ROUNDS: u64 = 25;

#[tokio::test]
async fn a_deposed_leader_never_moves_anything_back() {
    // Leader A publishes, then loses its lock session (killed in
    // PostgreSQL) while it still believes it leads; B takes over. Every
    // write A still had in flight — a snapshot, deltas, a rebuild — carries
    // A's term, and Redis must refuse each one, round after round, while
    // the head only ever moves forward.
    let app = spawn_app().await;
    let rig = Rig::new(&app).await;
    let mut a = rig.publisher(&app);
    let mut b = rig.publisher(&app);
    app.create("frontend", "a-0", "https://api.nexus.com/a").await;
    steps_until_idle(&mut a).await;
    assert_eq!(b.step().await.unwrap(), Step::Follower);
    let sql = app.sql().await;
    let a_term = leader_term(&sql).await;
    let a_head = rig.head().await.expect("A published");
    let a_snapshot = rig.snapshot().await;
    // A's lock session dies; PostgreSQL frees the lock and B takes it.
    let killed = sql
        .execute(
            "SELECT pg_terminate_backend(pid) FROM pg_locks \
             WHERE locktype = 'advisory' AND database = \
             (SELECT oid FROM pg_database WHERE datname = current_database())",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(killed, 1, "A's lock session");
    step_until_takeover(&mut b).await;
    steps_until_idle(&mut b).await;
    assert!(leader_term(&sql).await > a_term, "B drew a later term");
    let a_fence = Fence { epoch: a_head.epoch, term: a_term };
    let bus = rig.bus();
    let mut seen = rig.head().await.expect("B's head");
    for round in 0..DEPOSED_ROUNDS {
        app.create("frontend", &format!("b-{round}"), "https://api.nexus.com/b").await;
        steps_until_idle(&mut b).await;
        let head = rig.head().await.expect("a head");
        assert!(
            (head.epoch, head.version) >= (seen.epoch, seen.version),
            "round {round}: {head} after {seen}"
        );
        seen = head;
        let b_snapshot = rig.snapshot().await;
        let ahead = Head { epoch: head.epoch, version: head.version + 1 };
        // A's snapshot, having read the head just before (so only the fence
        // can stop it), at a head past B's and at its own, older one.
        for at in [ahead, a_head] {
            let e = bus
                .publish_snapshot(a_fence, Some(head), a_snapshot.clone(), at, true)
                .await
                .unwrap_err();
            assert!(matches!(e, BusError::Fenced { .. }), "round {round}: {e}");
        }
        // A's deltas continuing B's head.
        let d =
            SealedDelta { from_version: head.version, to_version: ahead.version, bytes: vec![1] };
        let e = bus.publish_deltas(a_fence, &[d], head, ahead, 1 << 16).await.unwrap_err();
        assert!(matches!(e, BusError::Fenced { .. }), "round {round}: {e}");
        // A's periodic rebuild at B's head.
        let e = bus.refresh_snapshot(a_fence, a_snapshot.clone(), head).await.unwrap_err();
        assert!(matches!(e, BusError::Fenced { .. }), "round {round}: {e}");
        assert_eq!(rig.head().await, Some(head), "round {round}: the head stayed");
        assert!(rig.snapshot().await == b_snapshot, "round {round}: B's snapshot stayed");
    }
    // A itself, stepped again, finds it no longer leads and writes nothing.
    assert_eq!(a.step().await.unwrap(), Step::Follower);
    assert_eq!(rig.head().await, Some(seen));
    println!(
        "deposed leader: {DEPOSED_ROUNDS} rounds, 4 fenced writes each, head {a_head} -> {seen}, never back"
    );
    rig.cleanup().await;
}

#[tokio::test]
async fn a_big_import_goes_out_as_a_head_notice_and_a_snapshot() {
    let app = spawn_app().await;
    let rig = Rig::new(&app).await;
    let mut publisher = rig.publisher(&app);
    steps_until_idle(&mut publisher).await;
    let mut channel = Channel::subscribe(&rig.keys).await;
    let aliases: Vec<_> = (0..5_000)
        .map(|i| {
            json!({"context": "backend", "alias": format!("bulk-{i}"),
                        "canonical": format!("https://api.nexus.com/v1/bulk/{i}")})
        })
        .collect();
    let (status, body) = app
        .post("/api/admin/aliases/import", &json!({"aliases": aliases, "on_conflict": "reject"}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let step = publisher.step().await.unwrap();
    assert!(
        matches!(step, Step::Snapshot { reason: SnapshotReason::BigChange, records: 5_000, .. }),
        "{step:?}"
    );
    let notice = channel.next().await;
    assert_eq!(
        Head::parse(&notice),
        Ok(Head { epoch: rig.head().await.unwrap().epoch, version: 5_000 })
    );
    assert!(rig.ring().await.is_empty(), "the ring restarts at the snapshot");
    let (_, snapshot) =
        decode_snapshot(&rig.snapshot().await, &Limits::SNAPSHOT, Some(&dev_verify_key())).unwrap();
    assert_eq!(snapshot.records.len(), 5_000);
    assert!(snapshot.intended_shrink);
    // Nothing else went through pub/sub.
    assert_eq!(publisher.step().await.unwrap(), Step::Idle);
    assert!(channel.try_next().is_none());
    rig.cleanup().await;
}

#[tokio::test]
async fn the_fleet_view_shows_who_is_behind_and_who_is_stale() {
    let app = spawn_app().await;
    let rig = Rig::new(&app).await;
    app.state.propagation.attach(rig.bus());
    for i in 0..3 {
        app.create("frontend", &format!("f-{i}"), "https://api.nexus.com/f").await;
    }
    let epoch = app.store.registry_head().await.unwrap().epoch;
    let now = chrono::Utc::now().timestamp_millis();
    rig.report_edge("edge-a", epoch, 3, now).await;
    rig.report_edge("edge-b", epoch, 1, now - 60_000).await;
    // Silent for two days: the leader prunes it at its first idle step.
    rig.report_edge("edge-gone", epoch, 1, now - 2 * 86_400_000).await;
    let mut publisher = rig.publisher(&app);
    steps_until_idle(&mut publisher).await;
    // Liveness is the control plane's own clock: a report first seen now
    // counts as live, and one that stops changing goes stale once the
    // control plane has seen it unchanged for the window — edge-a keeps
    // reporting, edge-b (whose own stamp is a minute old) has stopped.
    let (status, body) = app.get("/api/admin/edges").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["summary"]["stale"], 0, "first sightings are live: {body}");
    let latest = std::sync::Mutex::new(body);
    wait_until_within("edge-b stale by the control plane's clock", PATIENCE * 2, || {
        let (app, rig, latest) = (&app, &rig, &latest);
        async move {
            let now = chrono::Utc::now().timestamp_millis();
            rig.report_edge("edge-a", epoch, 3, now).await;
            let body = app.get("/api/admin/edges").await.1;
            let stale = body["summary"]["stale"] == 1;
            *latest.lock().unwrap() = body;
            stale
        }
    })
    .await;
    let body = latest.into_inner().unwrap();
    let items = body["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(items[0]["id"], "edge-a");
    assert_eq!(
        (items[0]["versions_behind"].as_u64(), items[0]["stale"].as_bool()),
        (Some(0), Some(false))
    );
    assert_eq!(items[1]["id"], "edge-b");
    assert_eq!(
        (items[1]["versions_behind"].as_u64(), items[1]["stale"].as_bool()),
        (Some(2), Some(true))
    );
    assert_eq!(body["summary"], json!({"edges": 2, "stale": 1, "behind": 1}));
    // Only admin-readers see it.
    let resolver = app.token(nexus_protocol::Role::Resolver, &["*"]);
    let (status, body) =
        app.call(reqwest::Method::GET, "/api/admin/edges", Some(&resolver), None).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    rig.cleanup().await;
}

#[tokio::test]
async fn commit_to_visible_latency_with_the_run_loop() {
    let app = spawn_app().await;
    let rig = Rig::new(&app).await;
    let mut channel = Channel::subscribe(&rig.keys).await;
    let publisher = rig.publisher(&app);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(publisher.run(async move {
        let _ = stopped.await;
    }));
    let _ = channel.next().await; // the first snapshot's notice
    let mut lat = Vec::new();
    for i in 0..200 {
        let (status, body) =
            app.create("frontend", &format!("l-{i}"), "https://api.nexus.com/l").await;
        assert_eq!(status, StatusCode::CREATED);
        let committed = Instant::now();
        let version = body["version"].as_u64().unwrap();
        loop {
            let msg = channel.next().await;
            let d = decode_delta(&msg, &Limits::DELTA, Some(&dev_verify_key())).unwrap().1;
            if d.to_version >= version {
                break;
            }
        }
        lat.push(committed.elapsed());
    }
    lat.sort();
    let p = |q: f64| lat[((lat.len() as f64 * q) as usize).min(lat.len() - 1)];
    println!(
        "commit->on channel (after the HTTP response), 200 sequential creates: p50 {:?} p99 {:?} max {:?}",
        p(0.5),
        p(0.99),
        lat[lat.len() - 1]
    );
    // Far above the target: NOTIFY, not the 200 ms poll, must be what wakes it.
    assert!(p(0.5) < Duration::from_millis(100), "p50 {:?}", p(0.5));
    let (_, status) = app.get("/api/aliases/status").await;
    let sync = &status["status"]["propagation"];
    assert_eq!((sync["enabled"].as_bool(), sync["leader"].as_bool()), (Some(true), Some(true)));
    assert_eq!(sync["published_version"].as_u64(), Some(200), "{status}");
    assert_eq!(sync["last_error"], serde_json::Value::Null);
    let _ = stop.send(());
    task.await.unwrap();
    assert_eq!(app.get("/api/aliases/status").await.1["status"]["propagation"]["leader"], false);
    rig.cleanup().await;
}

/// The address a `redis://` or `postgres://` URL points at.
fn upstream(url: &str, default_port: u16) -> std::net::SocketAddr {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let host = rest.split(['/', '?']).next().unwrap_or(rest);
    let host = host.rsplit_once('@').map_or(host, |(_, h)| h);
    let (name, port) =
        host.rsplit_once(':').map_or((host, default_port), |(h, p)| (h, p.parse().unwrap()));
    let name = if name == "localhost" { "127.0.0.1" } else { name };
    std::net::SocketAddr::new(name.parse().unwrap(), port)
}

#[tokio::test]
async fn a_redis_outage_costs_nothing_but_time() {
    let app = spawn_app().await;
    let rig = Rig::new(&app).await;
    let proxy = Proxy::start(upstream(&nexus_harness::redis_url(), 6379)).await;
    let via = format!("redis://{}", proxy.addr);
    let db = nexus_harness::url_for(&app.db_name);
    let (mut publisher, _) = rig.publisher_via(&app, &via, &db, Settings::default());
    steps_until_idle(&mut publisher).await;
    app.create("frontend", "before", "https://api.nexus.com/b").await;
    steps_until_idle(&mut publisher).await;

    // Redis goes away; writes go on.
    proxy.down();
    app.create("frontend", "during", "https://api.nexus.com/d").await;
    let failed = publisher.step().await;
    assert!(failed.is_err(), "{failed:?}");
    let (_, status) = app.get("/api/aliases/status").await;
    assert!(status["status"]["propagation"]["last_error"].is_string(), "{status}");

    // It comes back with its data: the publisher resumes with deltas.
    proxy.up();
    let resumed = step_until_ok(&mut publisher).await;
    assert_eq!(resumed, Step::Deltas { from_version: 1, to_version: 2, messages: 1 });
    let spans: Vec<(u64, u64)> =
        deltas(&rig.ring().await).iter().map(|d| (d.from_version, d.to_version)).collect();
    assert_eq!(spans, [(0, 1), (1, 2)]);

    // It comes back empty (restarted without persistence): refilled.
    proxy.down();
    app.create("frontend", "after", "https://api.nexus.com/a").await;
    rig.delete_keys().await;
    proxy.up();
    let refilled = step_until_ok(&mut publisher).await;
    assert!(
        matches!(refilled, Step::Snapshot { reason: SnapshotReason::RedisLost, records: 3, .. }),
        "{refilled:?}"
    );
    assert_eq!(rig.head().await.unwrap().version, 3);
    rig.cleanup().await;
}

#[tokio::test]
async fn a_leader_cut_off_from_postgres_stops_and_another_takes_over() {
    let app = spawn_app().await;
    let rig = Rig::new(&app).await;
    let db = nexus_harness::url_for(&app.db_name);
    let proxy = Proxy::start(upstream(&db, 5432)).await;
    let cut_db = format!("postgres://postgres@{}/{}", proxy.addr, app.db_name);
    let (mut a, a_metrics) =
        rig.publisher_via(&app, &nexus_harness::redis_url(), &cut_db, Settings::default());
    let (mut b, _) = rig.publisher_with(&app, Settings::default());
    assert!(matches!(a.step().await.unwrap(), Step::Snapshot { .. }));
    assert_eq!(b.step().await.unwrap(), Step::Follower);

    // The leader's election connection is cut: PostgreSQL frees the lock.
    proxy.down();
    app.create("frontend", "x", "https://api.nexus.com/x").await;
    let taken = step_until_takeover(&mut b).await;
    assert_eq!(taken, Step::Deltas { from_version: 0, to_version: 1, messages: 1 });
    // The old leader cannot prove it holds the lock, so it publishes nothing.
    assert!(!matches!(a.step().await, Ok(Step::Deltas { .. } | Step::Snapshot { .. })));
    assert_eq!(a_metrics.is_leader.get(), 0);
    rig.cleanup().await;
}
