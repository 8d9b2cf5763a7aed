//! Propagation through highly available Redis: a primary with a replica
//! behind three sentinels, the primary killed in the middle of a stream of
//! writes; and a three-node Redis Cluster. Real servers, started here on
//! free ports and killed when the test ends; the publisher, the API and
//! the edges (the `nexus_edge` library) are the ones production runs.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use fred::cmd;
use fred::prelude::*;
use nexus_control_plane::publisher::Settings;
use nexus_edge::node::Node;
use nexus_harness::local::redis::{Redis, find_redis_server};
use nexus_protocol::signing::dev_verify_key;
use nexus_runtime::bus::redis::RedisConfig;
use reqwest::StatusCode;

use nexus_harness::Rig;
use nexus_harness::{TestApp, spawn_app, url_for};
use nexus_harness::{redis_client, wait_until_within};

/// Bound on every wait: a failover takes a few seconds.
const PATIENCE: Duration = Duration::from_secs(30);

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A `redis-server` started with extra arguments (sentinel or cluster
/// mode, which `nexus_harness::local::redis` does not start), killed on drop.
struct Server {
    child: Child,
    port: u16,
}

impl Server {
    fn start(dir: &Path, name: &str, extra: &[&str]) -> Self {
        let port = free_port();
        std::fs::create_dir_all(dir).unwrap();
        let log = std::fs::File::create(dir.join(format!("{name}.log"))).unwrap();
        let child = Command::new(find_redis_server().unwrap())
            .current_dir(dir)
            .args(extra)
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            .stdout(log)
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let deadline = Instant::now() + PATIENCE;
        while std::net::TcpStream::connect(addr).is_err() {
            assert!(Instant::now() < deadline, "redis-server {name} did not listen on {port}");
            std::thread::sleep(Duration::from_millis(20));
        }
        Self { child, port }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn command(c: &Client, name: &'static str, args: Vec<String>) -> Value {
    c.custom(cmd!(name), args).await.unwrap()
}

/// An edge on `url` under `prefix`, serving HTTP on port 0, checking the
/// head every 250 ms.
fn edge(url: &str, prefix: &str, region: &str) -> Node {
    edge_checking(url, prefix, region, Duration::from_millis(250))
}

/// The same, checking the head only every `check`: what it gets sooner,
/// it got from the channel.
fn edge_checking(url: &str, prefix: &str, region: &str, check: Duration) -> Node {
    let transport = Arc::new(RedisConfig::new(url, prefix).connect().unwrap());
    let id = format!("edge-{region}");
    nexus_harness::launch_edge(transport, None, dev_verify_key(), &id, region, check)
}

/// Runs the publisher on `url` until the returned sender is dropped.
fn publish(app: &TestApp, rig: &Rig, url: &str) -> tokio::sync::oneshot::Sender<()> {
    let (publisher, _) = rig.publisher_via(app, url, &url_for(&app.db_name), Settings::default());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(publisher.run(async move {
        let _ = stopped.await;
    }));
    stop
}

/// Waits until every edge serves every one of `aliases` (`l-0`..) with
/// its canonical; one deadline for all of them.
async fn converged(edges: &[Node], aliases: usize) {
    let http = reqwest::Client::builder().timeout(Duration::from_secs(2)).build().unwrap();
    let deadline = Instant::now() + PATIENCE;
    for e in edges {
        let addr = e.http_addr().unwrap();
        for i in 0..aliases {
            let url = format!("http://{addr}/api/aliases/resolve/frontend/l-{i}");
            loop {
                let served = match http.get(&url).send().await {
                    Ok(r) if r.status() == StatusCode::OK => {
                        r.json::<serde_json::Value>().await.is_ok_and(|b| {
                            b["canonical_name"] == format!("https://api.nexus.com/ha/{i}")
                        })
                    }
                    _ => false,
                };
                if served {
                    break;
                }
                if Instant::now() > deadline {
                    let status = http
                        .get(format!("http://{addr}/api/aliases/status"))
                        .send()
                        .await
                        .map(|r| r.status().to_string());
                    panic!("edge {addr} does not serve l-{i} in time; its status: {status:?}");
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sentinel_failover_mid_stream_loses_no_write() {
    let dir = tempfile::tempdir().unwrap();
    let primary = Redis::start(&dir.path().join("primary")).unwrap();
    let replica = Redis::start(&dir.path().join("replica")).unwrap();
    let to_replica = redis_client(&replica.url()).await;
    command(&to_replica, "REPLICAOF", vec!["127.0.0.1".into(), primary.port().to_string()]).await;
    let mut sentinels = Vec::new();
    for n in 0..3 {
        let sdir = dir.path().join(format!("sentinel-{n}"));
        std::fs::create_dir_all(&sdir).unwrap();
        // Sentinel rewrites its file, so each gets its own.
        let conf = sdir.join("sentinel.conf");
        std::fs::write(
            &conf,
            format!(
                "sentinel monitor nexus 127.0.0.1 {} 2\n\
                 sentinel down-after-milliseconds nexus 1000\n\
                 sentinel failover-timeout nexus 5000\n",
                primary.port()
            ),
        )
        .unwrap();
        sentinels.push(Server::start(&sdir, "sentinel", &[conf.to_str().unwrap(), "--sentinel"]));
    }
    let first = redis_client(&format!("redis://127.0.0.1:{}", sentinels[0].port)).await;
    wait_until_within(
        "the sentinels to agree on the primary and its replica",
        PATIENCE,
        || async {
            let ok: Result<String, _> =
                first.custom(cmd!("SENTINEL"), vec!["ckquorum", "nexus"]).await;
            let replicas: Result<Vec<Value>, _> =
                first.custom(cmd!("SENTINEL"), vec!["replicas", "nexus"]).await;
            ok.is_ok() && replicas.is_ok_and(|r| r.len() == 1)
        },
    )
    .await;

    let url = format!(
        "redis-sentinel://127.0.0.1:{}/0?sentinelServiceName=nexus&node=127.0.0.1:{}&node=127.0.0.1:{}",
        sentinels[0].port, sentinels[1].port, sentinels[2].port
    );
    let app = spawn_app().await;
    let rig = Rig::new(&app).await;
    let stop = publish(&app, &rig, &url);
    let edges = [edge(&url, rig.keys.prefix(), "a"), edge(&url, rig.keys.prefix(), "b")];

    const WRITES: usize = 120;
    let mut primary = Some(primary);
    let mut killed_at = None;
    for i in 0..WRITES {
        let (status, body) = app
            .create("frontend", &format!("l-{i}"), &format!("https://api.nexus.com/ha/{i}"))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        if i == WRITES / 3 {
            // `stop` is SIGKILL (no persistence, nothing to flush).
            primary.take().unwrap().stop().unwrap();
            killed_at = Some(Instant::now());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    wait_until_within("a sentinel to promote the replica", PATIENCE, || async {
        let info: Result<String, _> = to_replica.custom(cmd!("INFO"), vec!["replication"]).await;
        info.is_ok_and(|i| i.contains("role:master"))
    })
    .await;
    converged(&edges, WRITES).await;
    println!(
        "sentinel failover: {WRITES} writes, primary killed after {}, every edge had all of them \
         {:?} after the kill",
        WRITES / 3 + 1,
        killed_at.unwrap().elapsed()
    );
    drop(stop);
    for e in edges {
        e.stop().await;
    }
    drop(sentinels);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_three_node_cluster_carries_propagation() {
    let dir = tempfile::tempdir().unwrap();
    let nodes: Vec<Server> = (0..3)
        .map(|n| {
            Server::start(
                &dir.path().join(format!("node-{n}")),
                "node",
                &["--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf"],
            )
        })
        .collect();
    let cli = find_redis_server().unwrap().with_file_name("redis-cli");
    let addrs: Vec<String> = nodes.iter().map(|n| format!("127.0.0.1:{}", n.port)).collect();
    let created = Command::new(if cli.exists() { cli.as_path() } else { Path::new("redis-cli") })
        .args(["--cluster", "create"])
        .args(&addrs)
        .args(["--cluster-replicas", "0", "--cluster-yes"])
        .output()
        .expect("redis-cli is installed with redis-server");
    assert!(created.status.success(), "{}", String::from_utf8_lossy(&created.stdout));
    for a in &addrs {
        let c = redis_client(&format!("redis://{a}")).await;
        wait_until_within(&format!("cluster state ok on {a}"), PATIENCE, || async {
            let info: String = c.custom(cmd!("CLUSTER"), vec!["INFO"]).await.unwrap();
            info.contains("cluster_state:ok")
        })
        .await;
    }

    let url = format!("redis-cluster://{}?node={}&node={}", addrs[0], addrs[1], addrs[2]);
    let app = spawn_app().await;
    let rig = Rig::new(&app).await;
    let stop = publish(&app, &rig, &url);
    // The edges check the head only once a minute (after the first
    // catch-up): the writes below reach them within the test's patience
    // only through the shard channel.
    let minute = Duration::from_secs(60);
    let edges = [
        edge_checking(&url, rig.keys.prefix(), "a", minute),
        edge_checking(&url, rig.keys.prefix(), "b", minute),
    ];
    // Both edges hold a shard subscription on the node that owns the
    // registry's slot, and none a plain one anywhere.
    let channel = rig.keys.channel();
    let mut nodes = Vec::new();
    for a in &addrs {
        nodes.push(redis_client(&format!("redis://{a}")).await);
    }
    let count = |reply: Value| -> i64 {
        let pairs: Vec<Value> = reply.convert().unwrap();
        pairs.get(1).and_then(Value::as_i64).unwrap_or(0)
    };
    wait_until_within("both edges subscribed to the shard channel", PATIENCE, || async {
        let mut shard = 0;
        for n in &nodes {
            let sub = vec!["SHARDNUMSUB".to_owned(), channel.clone()];
            shard += count(n.custom(cmd!("PUBSUB"), sub).await.unwrap());
        }
        shard == 2
    })
    .await;
    for n in &nodes {
        let plain = vec!["NUMSUB".to_owned(), channel.clone()];
        assert_eq!(count(n.custom(cmd!("PUBSUB"), plain).await.unwrap()), 0);
    }
    const WRITES: usize = 40;
    for i in 0..WRITES {
        let (status, body) = app
            .create("frontend", &format!("l-{i}"), &format!("https://api.nexus.com/ha/{i}"))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    converged(&edges, WRITES).await;
    // No delta was copied over the cluster bus: a plain PUBLISH goes to
    // every node as a `publish` message (CLUSTER INFO lists only the kinds
    // it has sent).
    for (n, a) in nodes.iter().zip(&addrs) {
        let info: String = n.custom(cmd!("CLUSTER"), vec!["INFO"]).await.unwrap();
        let broadcast = info
            .lines()
            .find_map(|l| l.strip_prefix("cluster_stats_messages_publish_sent:"))
            .map_or(0, |v| v.trim().parse::<u64>().unwrap());
        assert_eq!(broadcast, 0, "{a} broadcast deltas over the cluster bus");
    }
    // Every key of the registry is in one slot (the hash tag), which is
    // what lets the publisher's multi-key scripts run on a cluster.
    let c = redis_client(&format!("redis://{}", addrs[0])).await;
    let slot = |key: String| {
        let c = c.clone();
        async move {
            let v: i64 = c.custom(cmd!("CLUSTER"), vec!["KEYSLOT".to_owned(), key]).await.unwrap();
            v
        }
    };
    let head_slot = slot(rig.keys.head()).await;
    assert_eq!(slot(rig.keys.deltas()).await, head_slot);
    assert_eq!(slot(rig.keys.snapshot()).await, head_slot);
    assert_eq!(slot(rig.keys.edges()).await, head_slot);
    drop(stop);
    for e in edges {
        e.stop().await;
    }
}
