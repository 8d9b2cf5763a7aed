//! An edge reading a regional Redis replica, as in a region away from the
//! control plane: what the primary publishes reaches it through
//! replication, and when the replica loses its primary (a WAN partition)
//! the edge keeps serving but says `degraded`, rather than taking the
//! replica's frozen head as a confirmation.

use std::time::Duration;

use fred::cmd;
use fred::prelude::*;
use nexus_harness::local::redis::Redis;
use nexus_harness::{FakePublisher, SyncEdge, rec, sync_config, wait_until};
use nexus_protocol::keys::RedisKeys;

async fn client(url: &str) -> Client {
    let c = Builder::from_config(Config::from_url(url).unwrap()).build().unwrap();
    tokio::time::timeout(Duration::from_secs(5), c.init()).await.unwrap().unwrap();
    c
}

async fn replication(c: &Client) -> String {
    c.custom(cmd!("INFO"), vec!["replication"]).await.unwrap()
}

#[tokio::test]
async fn edge_on_a_replica_follows_the_primary_and_turns_degraded_when_cut_off() {
    let dir = tempfile::tempdir().unwrap();
    let primary = Redis::start(&dir.path().join("primary")).unwrap();
    let replica = Redis::start(&dir.path().join("replica")).unwrap();
    let to_replica = client(&replica.url()).await;
    let _: Value = to_replica
        .custom(cmd!("REPLICAOF"), vec!["127.0.0.1".to_owned(), primary.port().to_string()])
        .await
        .unwrap();
    wait_until("the replica in sync", || async {
        replication(&to_replica).await.contains("master_link_status:up")
    })
    .await;

    let p = FakePublisher {
        keys: RedisKeys::new("nexus-replica-test"),
        redis: client(&primary.url()).await,
        epoch: 1,
    };
    p.publish_snapshot(&p.snapshot(1, vec![rec("frontend", "cart", "https://a.example/v1", 1)]))
        .await;
    let edge = SyncEdge::start(sync_config(&p.keys, &replica.url(), None)).await;
    edge.wait_version(1, 1).await;

    // A delta published on the primary arrives through the replica (its
    // pub/sub message is replicated too).
    p.publish_delta(&p.delta(1, vec![rec("frontend", "cart", "https://a.example/v2", 2)], vec![]))
        .await;
    edge.wait_version(1, 2).await;
    assert_eq!(edge.canonical("frontend", "cart").await.as_deref(), Some("https://a.example/v2"));
    let health = || async { edge.get("/api/aliases/status").await.2["status"]["health"].clone() };
    assert_eq!(health().await, "healthy");

    // The WAN goes: the replica loses its primary.
    primary.stop().unwrap();
    wait_until("the replica to see its primary gone", || async {
        replication(&to_replica).await.contains("master_link_status:down")
    })
    .await;
    wait_until("the edge to say degraded", || async { health().await == "degraded" }).await;
    // Still serving what it had, with the age that says how old it is.
    let (status, headers, _) = edge.get("/api/aliases/resolve/frontend/cart").await;
    assert_eq!(status, 200);
    let age: u64 = headers["x-nexus-state-age-ms"].to_str().unwrap().parse().unwrap();
    assert!(age >= 600, "age {age} ms, degraded after 3 checks of 200 ms");

    // The region is on its own now (the replica promoted): its head is a
    // confirmation again.
    let _: Value = to_replica
        .custom(cmd!("REPLICAOF"), vec!["NO".to_owned(), "ONE".to_owned()])
        .await
        .unwrap();
    wait_until("the edge healthy again", || async { health().await == "healthy" }).await;
}
