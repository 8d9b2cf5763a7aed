//! Edge sync against a real Redis, with envelopes published exactly as the
//! propagation contract says (the control plane's publisher is tested
//! against the same contract on its side).

use std::time::Duration;

use fred::prelude::*;
use nexus_edge::config::Secret;
use nexus_harness::{
    FakePublisher, SyncEdge, closed_port_url, now_ms, rec, redis_url, sync_config, wait_until,
};
use nexus_protocol::envelope::encode_snapshot;
use nexus_protocol::signing::{SigningKey, dev_signing_key};

fn three(v: u64) -> Vec<nexus_protocol::AliasRecord> {
    vec![
        rec("frontend", "user-profile", "https://api.nexus.com/v1/users/profile", v),
        rec("frontend", "cart", "https://api.nexus.com/v1/cart", v),
        rec("backend", "billing", "https://api.nexus.com/v1/billing", v),
    ]
}

#[tokio::test]
async fn snapshot_then_deltas_apply_and_are_reported() {
    let p = FakePublisher::new().await;
    p.publish_snapshot(&p.snapshot(1, three(1))).await;
    let edge = SyncEdge::start(sync_config(&p.keys, &redis_url(), None)).await;
    edge.wait_version(1, 1).await;
    let (status, headers, body) = edge.get("/api/aliases/resolve/frontend/cart").await;
    assert_eq!(
        (status, body["canonical_name"].as_str()),
        (200, Some("https://api.nexus.com/v1/cart"))
    );
    assert_eq!(headers["x-nexus-version"], "1");
    let age: i64 = headers["x-nexus-state-age-ms"].to_str().unwrap().parse().unwrap();
    assert!((0..5_000).contains(&age), "{age}");

    let mut moved = rec("frontend", "cart", "https://api.nexus.com/v2/cart", 2);
    p.publish_delta(&p.delta(1, vec![moved.clone()], vec![])).await;
    moved.is_active = false;
    moved.version = 3;
    p.publish_delta(&p.delta(2, vec![moved], vec![])).await;
    p.publish_delta(&p.delta(3, vec![], vec![rec("backend", "billing", "https://x", 0).key()]))
        .await;
    edge.wait_version(1, 4).await;
    assert_eq!(edge.canonical("frontend", "cart").await, None);
    assert_eq!(edge.canonical("backend", "billing").await, None);
    assert!(edge.canonical("frontend", "user-profile").await.is_some());

    let (_, _, status) = edge.get("/api/aliases/status").await;
    assert_eq!(status["status"]["source"], "redis");
    assert_eq!(status["status"]["health"], "healthy");
    assert_eq!(status["status"]["registry_version"], 4);
    let text = reqwest::get(edge.url("/metrics")).await.unwrap().text().await.unwrap();
    assert!(text.contains("nexus_edge_sync_lag_seconds_count 3"), "{text}");
    assert!(text.contains("nexus_edge_sync_state 1"), "{text}");
    wait_until("report at version 4", || async {
        p.report(&edge.id).await.is_some_and(|r| r["version"] == 4)
    })
    .await;
    let r = p.report(&edge.id).await.unwrap();
    assert_eq!((r["region"].as_str(), r["epoch"].as_u64()), (Some("test"), Some(1)));
    assert_eq!(r["source"], "redis");
    assert_eq!(r["content_hash"].as_str().map(str::len), Some(64));
    assert!(r["last_rejection"].is_null());
    p.cleanup().await;
}

#[tokio::test]
async fn a_gap_is_filled_from_the_ring() {
    let p = FakePublisher::new().await;
    p.publish_snapshot(&p.snapshot(1, three(1))).await;
    let edge = SyncEdge::start(sync_config(&p.keys, &redis_url(), None)).await;
    edge.wait_version(1, 1).await;
    // 2 and 3 reach the ring but their messages are lost; 4 arrives.
    p.ring_only(&p.delta(1, vec![rec("system", "a", "https://a", 2)], vec![])).await;
    p.ring_only(&p.delta(2, vec![rec("system", "b", "https://b", 3)], vec![])).await;
    p.publish_delta(&p.delta(3, vec![rec("system", "c", "https://c", 4)], vec![])).await;
    edge.wait_version(1, 4).await;
    for a in ["a", "b", "c"] {
        assert!(edge.canonical("system", a).await.is_some(), "{a}");
    }
    // Caught up without falling back to a snapshot.
    assert_eq!(edge.metrics.reloads_ok.get(), 1);
    p.cleanup().await;
}

#[tokio::test]
async fn a_ring_that_no_longer_reaches_back_means_the_snapshot() {
    let p = FakePublisher::new().await;
    p.publish_snapshot(&p.snapshot(1, three(1))).await;
    let edge = SyncEdge::start(sync_config(&p.keys, &redis_url(), None)).await;
    edge.wait_version(1, 1).await;
    // The control plane moved on to 10 (snapshot), the ring holds 10→11 only.
    let mut later = three(10);
    later.push(rec("system", "new", "https://new", 10));
    p.set_snapshot_bytes(encode_snapshot(&p.snapshot(10, later), Some(&dev_signing_key()))).await;
    p.publish_delta(&p.delta(10, vec![rec("system", "newer", "https://newer", 11)], vec![])).await;
    edge.wait_version(1, 11).await;
    assert!(edge.canonical("system", "new").await.is_some());
    assert!(edge.canonical("system", "newer").await.is_some());
    p.cleanup().await;
}

#[tokio::test]
async fn duplicates_are_ignored() {
    let p = FakePublisher::new().await;
    p.publish_snapshot(&p.snapshot(1, three(1))).await;
    let edge = SyncEdge::start(sync_config(&p.keys, &redis_url(), None)).await;
    edge.wait_version(1, 1).await;
    let d2 = p.delta(1, vec![rec("system", "a", "https://a", 2)], vec![]);
    p.publish_delta(&d2).await;
    p.publish_delta(&d2).await;
    p.publish_delta(&p.delta(2, vec![rec("system", "a", "https://a2", 3)], vec![])).await;
    // The old 1→2 again, after 3: must not bring "https://a" back.
    p.publish_delta(&d2).await;
    p.publish_delta(&p.delta(3, vec![], vec![])).await;
    edge.wait_version(1, 4).await;
    assert_eq!(edge.canonical("system", "a").await.as_deref(), Some("https://a2"));
    assert_eq!(edge.metrics.reloads_ok.get(), 1, "no snapshot fallback");
    p.cleanup().await;
}

#[tokio::test]
async fn a_new_epoch_means_a_fresh_snapshot_even_at_a_lower_version() {
    let mut p = FakePublisher::new().await;
    p.publish_snapshot(&p.snapshot(1, three(1))).await;
    let edge = SyncEdge::start(sync_config(&p.keys, &redis_url(), None)).await;
    edge.wait_version(1, 1).await;
    p.publish_delta(&p.delta(1, vec![], vec![])).await;
    p.publish_delta(&p.delta(2, vec![], vec![])).await;
    edge.wait_version(1, 3).await;
    // A restored database: epoch 2, version 2.
    p.epoch = 2;
    p.clear_ring().await;
    let mut restored = three(2);
    restored[0].canonical = nexus_protocol::Canonical::parse("https://restored").unwrap();
    p.publish_snapshot(&p.snapshot(2, restored)).await;
    edge.wait_version(2, 2).await;
    assert_eq!(
        edge.canonical("frontend", "user-profile").await.as_deref(),
        Some("https://restored")
    );
    p.cleanup().await;
}

#[tokio::test]
async fn an_older_signed_state_written_back_to_redis_is_refused() {
    // The attacker with Redis: every key written back from an older copy
    // (snapshot, head and an empty ring), validly signed, same epoch.
    let p = FakePublisher::new().await;
    let old = p.snapshot(1, three(1));
    p.publish_snapshot(&old).await;
    let edge = SyncEdge::start(sync_config(&p.keys, &redis_url(), None)).await;
    edge.wait_version(1, 1).await;
    p.publish_delta(&p.delta(1, vec![rec("frontend", "cart", "https://new", 2)], vec![])).await;
    edge.wait_version(1, 2).await;
    p.clear_ring().await;
    p.publish_snapshot(&old).await;
    // Refused, counted and reported; the edge keeps serving version 2.
    let older = || edge.metrics.reloads_older.get();
    wait_until("the older snapshot refused", || async { older() >= 1 }).await;
    edge.wait_checks(2).await;
    assert_eq!((edge.state.epoch(), edge.state.version()), (1, 2));
    assert_eq!(edge.canonical("frontend", "cart").await.as_deref(), Some("https://new"));
    assert_eq!(older(), 1, "the refused snapshot is not fetched and judged again");
    let report = p.report(&edge.id).await.expect("a fleet report");
    let reason = report["last_rejection"]["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("offered 1:1, holding 1:2"), "{report}");
    p.cleanup().await;
}

#[tokio::test]
async fn an_earlier_epoch_is_refused_even_at_a_higher_version() {
    // Epochs are ordered: a state of an earlier epoch is older, whatever
    // its version (a replay from before an `epoch bump`, or a restored
    // database that was not bumped).
    let mut p = FakePublisher::new().await;
    p.epoch = 5;
    p.publish_snapshot(&p.snapshot(1, three(1))).await;
    let edge = SyncEdge::start(sync_config(&p.keys, &redis_url(), None)).await;
    edge.wait_version(5, 1).await;
    p.epoch = 4;
    p.clear_ring().await;
    p.publish_snapshot(&p.snapshot(9, three(9))).await;
    wait_until("the earlier epoch refused", || async { edge.metrics.reloads_older.get() >= 1 })
        .await;
    assert_eq!((edge.state.epoch(), edge.state.version()), (5, 1));
    p.cleanup().await;
}

#[tokio::test]
async fn a_frozen_redis_is_reported_stale_and_a_replayed_or_forged_statement_does_not_help() {
    let p = FakePublisher::new().await;
    p.publish_snapshot(&p.snapshot(1, three(1))).await;
    p.state_head(1, 1).await;
    let mut config = sync_config(&p.keys, &redis_url(), None);
    config.sync.max_staleness = Duration::from_secs(1);
    // A second edge whose operator wants `frontend` refused while stale.
    let mut strict = config.clone();
    strict.sync.edge_id.push_str("-strict");
    strict.sync.stale_refuse = vec!["frontend".into()];
    let edge = SyncEdge::start(config).await;
    let strict = SyncEdge::start(strict).await;
    edge.wait_version(1, 1).await;
    strict.wait_version(1, 1).await;
    edge.wait_checks(2).await;
    let target = "/api/aliases/resolve/frontend/user-profile";
    let (status, headers, _) = edge.get(target).await;
    assert_eq!(status, 200);
    assert!(headers.get("x-nexus-stale").is_none(), "fresh: no header");
    let stale = || async {
        let (_, _, body) = edge.get("/api/aliases/status").await;
        body["status"]["health"] == "stale"
    };
    assert!(!stale().await);
    // Frozen: Redis keeps answering the same head, and nothing signs anew.
    // An old statement written back, and a fresh one forged with another
    // key, change nothing.
    let frozen_at = std::time::Instant::now();
    p.statement(1, 1, now_ms() - 3_600_000, &dev_signing_key()).await;
    wait_until("the edge reports stale", stale).await;
    let to_stale = frozen_at.elapsed();
    p.statement(1, 1, now_ms(), &SigningKey::from_bytes(&[9; 32])).await;
    edge.wait_checks(2).await;
    assert!(stale().await, "a forged statement made the edge fresh");
    assert_eq!(edge.metrics.statements_refused.get(), 1);
    // Still serving, and saying so on every answer, in health and the report.
    let (status, headers, body) = edge.get(target).await;
    assert_eq!(status, 200, "{body}");
    assert!(headers.get("x-nexus-stale").is_some(), "{headers:?}");
    assert_eq!(edge.get("/api/aliases/health").await.2["status"], "stale");
    let report = p.report(&edge.id).await.expect("a report");
    assert_eq!(report["stale"], true, "{report}");
    let (status, headers, body) = strict.get(target).await;
    assert_eq!((status, body["error"].as_str()), (503, Some("stale")), "{body}");
    assert!(headers.get("x-nexus-stale").is_some());
    let (status, _, _) = strict.get("/api/aliases/resolve/backend/billing").await;
    assert_ne!(status, 503, "only the listed context is refused");
    // The leader signs again: fresh.
    p.state_head(1, 1).await;
    wait_until("fresh again", || async { !stale().await }).await;
    println!("frozen redis: stale after {to_stale:?} (EDGE_MAX_STALENESS=1s, checks every 200 ms)");
    p.cleanup().await;
}

#[tokio::test]
async fn a_state_key_rotation_trusts_both_keys_then_retires_the_old_one() {
    // Edges first trust the old and the new key; the control plane then
    // signs with the new one; an edge given only the new key refuses what
    // the old one signs.
    let p = FakePublisher::new().await;
    let (old, new) = (dev_signing_key(), SigningKey::from_bytes(&[6; 32]));
    let publish = |version: u64, key: SigningKey| {
        let s = p.snapshot(version, three(version));
        let p = &p;
        async move {
            p.set_snapshot_bytes(encode_snapshot(&s, Some(&key))).await;
            p.set_head(s.epoch, s.version).await;
            p.notice(s.epoch, s.version).await;
        }
    };
    publish(1, old.clone()).await;
    let mut both = sync_config(&p.keys, &redis_url(), None);
    both.sync.verify_keys = vec![old.verifying_key(), new.verifying_key()];
    let rotating = SyncEdge::start(both).await;
    rotating.wait_version(1, 1).await;
    publish(2, new.clone()).await;
    rotating.wait_version(1, 2).await;
    let mut only_new = sync_config(&p.keys, &redis_url(), None);
    only_new.sync.verify_keys = vec![new.verifying_key()];
    let retired = SyncEdge::start(only_new).await;
    retired.wait_version(1, 2).await;
    // A state signed with the retired key: the rotating edge still takes
    // it, the edge that dropped the key refuses it.
    publish(3, old).await;
    rotating.wait_version(1, 3).await;
    wait_until("the retired key refused", || async { retired.metrics.reloads_rejected.get() >= 1 })
        .await;
    assert_eq!(retired.state.version(), 2);
    p.cleanup().await;
}

#[tokio::test]
async fn a_lost_last_message_is_recovered_by_the_periodic_check() {
    let p = FakePublisher::new().await;
    p.publish_snapshot(&p.snapshot(1, three(1))).await;
    let edge = SyncEdge::start(sync_config(&p.keys, &redis_url(), None)).await;
    edge.wait_version(1, 1).await;
    let started = std::time::Instant::now();
    // Nothing is announced: only the ring and the head know.
    p.ring_only(&p.delta(1, vec![rec("system", "quiet", "https://q", 2)], vec![])).await;
    edge.wait_version(1, 2).await;
    // Check interval is 200 ms in the rig; allow scheduling slack.
    assert!(started.elapsed() < Duration::from_secs(3), "{:?}", started.elapsed());
    assert!(edge.canonical("system", "quiet").await.is_some());
    p.cleanup().await;
}

#[tokio::test]
async fn a_head_notice_makes_the_edge_catch_up_at_once() {
    let p = FakePublisher::new().await;
    p.publish_snapshot(&p.snapshot(1, three(1))).await;
    let mut config = sync_config(&p.keys, &redis_url(), None);
    // Long enough that only the notice can explain a quick catch-up.
    config.sync.check_interval = Duration::from_secs(60);
    let edge = SyncEdge::start(config).await;
    edge.wait_version(1, 1).await;
    p.ring_only(&p.delta(1, vec![rec("system", "big", "https://big", 2)], vec![])).await;
    p.notice(1, 2).await;
    edge.wait_version(1, 2).await;
    p.cleanup().await;
}

#[tokio::test]
async fn killed_subscriber_connection_converges_while_deltas_continue() {
    let p = FakePublisher::new().await;
    p.publish_snapshot(&p.snapshot(1, three(1))).await;
    let edge = SyncEdge::start(sync_config(&p.keys, &redis_url(), None)).await;
    edge.wait_version(1, 1).await;
    let mut killed = 0;
    let mut converged_after = Duration::ZERO;
    for v in 1..=60u64 {
        let r = rec("system", &format!("k{v}"), "https://k", v + 1);
        p.publish_delta(&p.delta(v, vec![r], vec![])).await;
        if v == 20 {
            killed = p.kill_client(&edge.subscriber).await;
        }
        if v == 60 {
            let t = std::time::Instant::now();
            edge.wait_version(1, 61).await;
            converged_after = t.elapsed();
        }
    }
    assert!(killed >= 1, "the edge's subscriber connection was found and killed");
    for v in [1u64, 21, 60] {
        assert!(edge.canonical("system", &format!("k{v}")).await.is_some(), "k{v}");
    }
    println!("converged {converged_after:?} after the last write (subscriber killed at 20/60)");
    p.cleanup().await;
}

#[tokio::test]
async fn keys_deleted_and_refilled_converge() {
    let p = FakePublisher::new().await;
    p.publish_snapshot(&p.snapshot(1, three(1))).await;
    let edge = SyncEdge::start(sync_config(&p.keys, &redis_url(), None)).await;
    edge.wait_version(1, 1).await;
    let failures = edge.failures();
    p.delete_keys().await;
    // Still serving while Redis is empty: once the edge has looked and found
    // nothing to load (a failed catch-up), not after a guessed delay.
    edge.wait_progress("the edge to find Redis empty", |s| s.failures > failures).await;
    assert!(edge.canonical("frontend", "cart").await.is_some());
    let mut more = three(5);
    more.push(rec("system", "refilled", "https://r", 5));
    p.publish_snapshot(&p.snapshot(5, more)).await;
    edge.wait_version(1, 5).await;
    assert!(edge.canonical("system", "refilled").await.is_some());
    p.cleanup().await;
}

#[tokio::test]
async fn bad_snapshots_are_refused_and_the_old_state_kept() {
    let p = FakePublisher::new().await;
    let mut many = three(1);
    many.extend((0..10).map(|i| rec("frontend", &format!("x{i}"), "https://x", 1)));
    p.publish_snapshot(&p.snapshot(1, many.clone())).await;
    let edge = SyncEdge::start(sync_config(&p.keys, &redis_url(), None)).await;
    edge.wait_version(1, 1).await;

    let other = SigningKey::from_bytes(&[7; 32]);
    let corrupt = {
        let mut b = encode_snapshot(&p.snapshot(2, many.clone()), Some(&dev_signing_key()));
        let last = b.len() - 1;
        b[last] ^= 0xff;
        b
    };
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("corrupt", corrupt),
        ("unsigned", encode_snapshot(&p.snapshot(2, many.clone()), None)),
        ("wrong key", encode_snapshot(&p.snapshot(2, many.clone()), Some(&other))),
        ("oversized", {
            let mut b = encode_snapshot(&p.snapshot(2, many.clone()), Some(&dev_signing_key()));
            // Declares a payload beyond Limits::SNAPSHOT.
            b[24..28].copy_from_slice(&u32::MAX.to_le_bytes());
            b
        }),
        ("empties backend", {
            let s = p.snapshot(
                2,
                many.iter().filter(|r| r.context.as_str() != "backend").cloned().collect(),
            );
            encode_snapshot(&s, Some(&dev_signing_key()))
        }),
        ("drops most", encode_snapshot(&p.snapshot(2, three(2)), Some(&dev_signing_key()))),
    ];
    for (what, bytes) in cases {
        let before = edge.metrics.reloads_rejected.get();
        p.set_snapshot_bytes(bytes).await;
        p.set_head(1, 2).await;
        p.notice(1, 2).await;
        wait_until(what, || async { edge.metrics.reloads_rejected.get() > before }).await;
        assert_eq!(edge.state.version(), 1, "{what}");
        assert!(edge.canonical("backend", "billing").await.is_some(), "{what}");
    }
    wait_until("the shrink refusal reported", || async {
        p.report(&edge.id).await.is_some_and(|r| {
            r["last_rejection"]["reason"].as_str().is_some_and(|s| s.contains("drops"))
        })
    })
    .await;
    // The same shrink, marked intended, goes through.
    let mut intended = p.snapshot(2, three(2));
    intended.intended_shrink = true;
    p.publish_snapshot(&intended).await;
    edge.wait_version(1, 2).await;
    assert_eq!(edge.canonical("frontend", "x0").await, None);
    p.cleanup().await;
}

#[tokio::test]
async fn restarted_with_redis_down_serves_the_disk_copy() {
    let p = FakePublisher::new().await;
    p.publish_snapshot(&p.snapshot(1, three(1))).await;
    let dir = tempfile::tempdir().unwrap();
    let config = sync_config(&p.keys, &redis_url(), Some(dir.path().to_owned()));
    let first = SyncEdge::start(config.clone()).await;
    first.wait_version(1, 1).await;
    p.publish_delta(&p.delta(1, vec![rec("system", "after", "https://after", 2)], vec![])).await;
    first.wait_version(1, 2).await;
    wait_until("delta persisted", || async {
        std::fs::metadata(dir.path().join("deltas.log")).is_ok_and(|m| m.len() > 0)
    })
    .await;
    drop(first);

    let mut down = config.clone();
    down.redis.url = Secret::new(closed_port_url());
    let second = SyncEdge::start(down).await;
    assert_eq!((second.state.epoch(), second.state.version()), (1, 2));
    assert_eq!(second.canonical("system", "after").await.as_deref(), Some("https://after"));
    let (status, _, _) = second.get("/api/aliases/health").await;
    assert_eq!(status, 200);
    let (_, _, s) = second.get("/api/aliases/status").await;
    assert_eq!(s["status"]["source"], "disk");
    wait_until("degraded", || async {
        second.get("/api/aliases/status").await.2["status"]["health"] == "degraded"
    })
    .await;

    // A tampered disk copy is refused: no state rather than a forged one.
    let snap = dir.path().join("snapshot.nxus");
    let mut bytes = std::fs::read(&snap).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(&snap, bytes).unwrap();
    let mut down = config;
    down.redis.url = Secret::new(closed_port_url());
    let third = SyncEdge::start(down).await;
    assert!(!third.state.is_loaded());
    p.cleanup().await;
}

#[tokio::test]
async fn no_redis_and_no_disk_copy_stays_not_ready() {
    let p = FakePublisher::new().await;
    let dir = tempfile::tempdir().unwrap();
    let edge =
        SyncEdge::start(sync_config(&p.keys, &closed_port_url(), Some(dir.path().into()))).await;
    // Not ready after the edge has tried Redis and failed, not just "yet".
    edge.wait_progress("a failed attempt to reach Redis", |s| s.failures >= 1).await;
    let (status, _, body) = edge.get("/api/aliases/health").await;
    assert_eq!((status, body["status"].as_str()), (503, Some("starting")));
    let (status, _, _) = edge.get("/api/aliases/resolve/frontend/cart").await;
    assert_eq!(status, 503);
}

#[tokio::test]
async fn redis_up_but_empty_stays_not_ready_until_published() {
    let p = FakePublisher::new().await;
    let edge = SyncEdge::start(sync_config(&p.keys, &redis_url(), None)).await;
    // Not ready once the edge has looked and found nothing published.
    edge.wait_progress("a catch-up that found nothing", |s| s.failures >= 1).await;
    assert_eq!(edge.get("/api/aliases/health").await.0, 503);
    p.publish_snapshot(&p.snapshot(3, three(3))).await;
    edge.wait_version(1, 3).await;
    assert_eq!(edge.get("/api/aliases/health").await.0, 200);
    p.cleanup().await;
}

#[tokio::test]
async fn an_edge_that_found_nothing_takes_the_first_snapshot_at_its_notice() {
    let p = FakePublisher::new().await;
    let mut config = sync_config(&p.keys, &redis_url(), None);
    // Longer than the rig's patience: only the notice can explain a load.
    config.sync.check_interval = Duration::from_secs(60);
    let edge = SyncEdge::start(config).await;
    edge.wait_progress("a catch-up that found nothing", |s| s.failures >= 1).await;
    p.publish_snapshot(&p.snapshot(3, three(3))).await;
    edge.wait_version(1, 3).await;
    p.cleanup().await;
}

/// Measured, not asserted: publish on Redis → applied on the edge, so the
/// end-to-end figure can be split into publisher and edge shares.
#[tokio::test]
async fn publish_to_applied_latency() {
    let p = FakePublisher::new().await;
    p.publish_snapshot(&p.snapshot(1, three(1))).await;
    let edge = SyncEdge::start(sync_config(&p.keys, &redis_url(), None)).await;
    edge.wait_version(1, 1).await;
    let mut lags = Vec::new();
    let mut sent = Vec::new();
    for v in 1..=200u64 {
        let d = p.delta(v, vec![rec("system", &format!("l{v}"), "https://l", v + 1)], vec![]);
        let t = std::time::Instant::now();
        p.publish_delta(&d).await;
        sent.push(t.elapsed());
        // Woken by the applier itself, so the figure is not a polling period.
        let mut progress = edge.progress.clone();
        let applied = async { progress.wait_for(|s| s.version > v).await.is_ok() };
        let applied = tokio::time::timeout(Duration::from_secs(10), applied).await;
        lags.push(t.elapsed());
        assert!(applied == Ok(true), "delta {v} never applied");
    }
    lags.sort_unstable();
    sent.sort_unstable();
    println!(
        "publish→applied over 200 deltas: p50 {:?}, p99 {:?} (of which the 3 writes: p50 {:?})",
        lags[100], lags[198], sent[100]
    );
    p.cleanup().await;
}

#[tokio::test]
async fn a_lagging_receiver_is_a_gap_and_the_loop_goes_on() {
    let p = FakePublisher::new().await;
    p.publish_snapshot(&p.snapshot(1, three(1))).await;
    let mut config = sync_config(&p.keys, &redis_url(), None);
    // Only a drop can explain a catch-up within the test's patience.
    config.sync.check_interval = Duration::from_secs(60);
    config.redis.message_buffer = 4;
    let edge = SyncEdge::start(config).await;
    edge.wait_version(1, 1).await;
    // The change is in the ring only; its message is "lost" in the flood.
    p.ring_only(&p.delta(1, vec![rec("system", "flooded", "https://f", 2)], vec![])).await;
    let stale = nexus_protocol::envelope::encode_delta(
        &p.delta(0, vec![], vec![]),
        Some(&dev_signing_key()),
    );
    let pipe = p.redis.pipeline();
    for _ in 0..64 {
        let _: () = pipe
            .publish(p.keys.channel(), fred::types::Value::Bytes(stale.clone().into()))
            .await
            .unwrap();
    }
    let _: Vec<fred::types::Value> = pipe.all().await.unwrap();
    edge.wait_version(1, 2).await;
    assert!(edge.canonical("system", "flooded").await.is_some());
    // Still listening afterwards.
    p.publish_delta(&p.delta(2, vec![rec("system", "after", "https://a", 3)], vec![])).await;
    edge.wait_version(1, 3).await;
    p.cleanup().await;
}
