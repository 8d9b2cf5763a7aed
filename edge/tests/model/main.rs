//! Model-based test of propagation: a seeded random sequence of admin
//! operations against the real control plane (a fresh PostgreSQL database,
//! its publisher on a random Redis prefix) and three edges syncing from
//! Redis, with faults injected between operations. Every answer of the
//! admin API is checked against a serial model (`model/serial.rs`); after
//! each round the fleet is left to settle and every edge's whole table must
//! equal the model. A round's operations (`model/round.rs`) are random
//! draws ending in a closing sequence that makes, whatever the seed, every
//! answer the coverage assertions at the end ask for.
//!
//! Replay a failure with `NEXUS_MODEL_SEED=<seed printed by the test>`;
//! `NEXUS_MODEL_OPS` changes the number of operations (default 240).

mod round;
mod serial;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use fred::prelude::KeysInterface;
use nexus_protocol::keys::RedisKeys;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::sync::oneshot;

use nexus_harness::{FakePublisher, SyncEdge, redis_url, sync_config, wait_until};
use nexus_harness::{TestApp, spawn_app};
use round::Round;
use serial::{Expect, Key, Op, Serial};

const EDGES: usize = 3;
const ROUNDS: usize = 3;
/// Chance of an extra fault after each operation, beyond the one of each
/// kind that every round gets at a random point.
const FAULT_RATE: f64 = 0.04;

/// An edge that can be restarted on the same state directory.
struct Node {
    edge: Option<SyncEdge>,
    config: nexus_harness::EdgeConfig,
    _dir: tempfile::TempDir,
}

impl Node {
    async fn start(keys: &RedisKeys) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let config = sync_config(keys, &redis_url(), Some(dir.path().to_owned()));
        Self { edge: Some(SyncEdge::start(config.clone()).await), config, _dir: dir }
    }

    fn edge(&self) -> &SyncEdge {
        self.edge.as_ref().unwrap()
    }

    /// Stops the edge and starts it again: same id, same last-known-good.
    async fn restart(&mut self) {
        let old = self.edge.take().unwrap();
        let addr = old.addr;
        drop(old);
        // Gone once its listener is: two live edges on one state directory
        // is not a restart.
        wait_until("the old edge stopped", || async {
            tokio::net::TcpStream::connect(addr).await.is_err()
        })
        .await;
        self.edge = Some(SyncEdge::start(self.config.clone()).await);
    }
}

#[derive(Debug, Default)]
struct Tally {
    answers: BTreeMap<String, usize>,
    kills: usize,
    /// Subscriber connections the kills closed.
    killed: usize,
    wipes: usize,
    restarts: usize,
}

impl Tally {
    fn count(&mut self, op: &Op, status: u16) {
        *self.answers.entry(format!("{} {status}", op.kind())).or_default() += 1;
    }

    fn seen(&self, what: &str) -> usize {
        self.answers.get(what).copied().unwrap_or(0)
    }
}

/// The control plane with its publisher on a fresh database and prefix.
async fn start_plane() -> (TestApp, nexus_harness::Rig, oneshot::Sender<()>) {
    let app = spawn_app().await;
    let rig = nexus_harness::Rig::new(&app).await;
    app.state.propagation.attach(rig.bus());
    let publisher = rig.publisher(&app);
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(publisher.run(async move {
        let _ = stopped.await;
    }));
    (app, rig, stop)
}

fn path_of(k: &Key) -> String {
    format!("/api/admin/aliases/{}/{}", k.0, k.1)
}

fn import_body(entries: &[(Key, String)], policy: &str) -> Value {
    let aliases: Vec<Value> = entries
        .iter()
        .map(|((c, a), k)| json!({"context": c, "alias": a, "canonical": k}))
        .collect();
    json!({"aliases": aliases, "on_conflict": policy})
}

async fn send(app: &TestApp, op: &Op) -> (StatusCode, Value) {
    match op {
        Op::Create { context, alias, canonical } => app.create(context, alias, canonical).await,
        Op::Update { key, canonical } => {
            app.put(&path_of(key), &json!({"canonical": canonical})).await
        }
        Op::Reactivate { key } => app.put(&path_of(key), &json!({"is_active": true})).await,
        Op::Deactivate { key } => app.delete(&path_of(key)).await,
        Op::Import { entries, policy } => {
            app.post("/api/admin/aliases/import", &import_body(entries, policy)).await
        }
        Op::BadName { context, alias } | Op::Reserved { context, alias } => {
            app.create(context, alias, "https://api.nexus.com/x").await
        }
        Op::BadHost { key } => app.put(&path_of(key), &json!({"canonical": serial::EVIL})).await,
        Op::BadImport { entries, bad } => {
            let mut body = import_body(entries, "replace");
            let entry = json!({"context": "frontend", "alias": bad, "canonical": "https://api.nexus.com/x"});
            if let Some(list) = body["aliases"].as_array_mut() {
                list.push(entry);
            }
            app.post("/api/admin/aliases/import", &body).await
        }
    }
}

/// Whether the answer is the one the model predicted.
fn matches(expect: &Expect, status: StatusCode, body: &Value) -> bool {
    match expect {
        Expect::Status(s, record) => {
            status.as_u16() == *s
                && record.as_ref().is_none_or(|((c, a), row)| {
                    body["context"] == c.as_str()
                        && body["alias"] == a.as_str()
                        && body["canonical"] == row.canonical.as_str()
                        && body["is_active"] == row.active
                })
                && (*s < 400 || body["error"].is_string())
        }
        Expect::Imported(counts) => {
            let got = ["created", "updated", "skipped", "unchanged"].map(|f| body[f].as_u64());
            status == StatusCode::OK && got == counts.map(Some)
        }
    }
}

/// Faults injected between operations.
struct Faults {
    redis: FakePublisher,
    /// Empty Redis even while a publication may be in flight (see
    /// [`Faults::inject`]).
    tally: Tally,
}

impl Faults {
    /// Injects fault `kind` (0: pub/sub cut, 1: Redis emptied, 2: edge restart).
    async fn inject(&mut self, kind: usize, rng: &mut StdRng, nodes: &mut [Node]) {
        let tally = &mut self.tally;
        match kind {
            0 => {
                // Only this test's subscribers (by name): other tests share
                // this Redis, so `CLIENT KILL TYPE pubsub` would cut theirs too.
                // A cut that finds every edge between connections (just
                // restarted, or reconnecting from the last cut) cuts nothing
                // and is no fault: cut again until one subscriber was there,
                // so that every cut counted really closed a connection.
                tally.kills += 1;
                let deadline = Instant::now() + nexus_harness::PATIENCE;
                tally.killed += loop {
                    let mut killed = 0;
                    for n in nodes.iter() {
                        killed += self.redis.kill_client(&n.edge().subscriber).await;
                    }
                    if killed > 0 {
                        break killed;
                    }
                    assert!(Instant::now() < deadline, "no edge had a pub/sub connection to cut");
                    tokio::time::sleep(POLL).await;
                };
            }
            1 => {
                // At once, possibly while the publisher is between its head
                // check and its delta write: that race once left a head with
                // no snapshot behind it (found by this test; the publisher now
                // writes deltas only onto the head and snapshot it checked).
                // As if Redis restarted empty: the control plane must refill it.
                self.redis.delete_keys().await;
                tally.wipes += 1;
            }
            _ => {
                let i = rng.random_range(0..nodes.len());
                nodes[i].restart().await;
                tally.restarts += 1;
            }
        }
    }
}

/// The registry's `(epoch, version)` as committed in PostgreSQL.
async fn registry_head(app: &TestApp) -> (u64, u64) {
    let row = app.sql().await.query_one("SELECT epoch, version FROM registry", &[]).await.unwrap();
    let (epoch, version): (i64, i64) = (row.get(0), row.get(1));
    (epoch as u64, version as u64)
}

/// The control plane's active aliases with their record versions.
async fn control_plane_active(app: &TestApp) -> BTreeMap<Key, (String, u64)> {
    let (status, list) = app.get("/api/admin/aliases?active=true&limit=1000").await;
    assert_eq!(status, StatusCode::OK, "{list}");
    assert!(list["next_cursor"].is_null(), "more active aliases than one page: {list}");
    let mut out = BTreeMap::new();
    for r in list["items"].as_array().unwrap() {
        let k = serial::key(r["context"].as_str().unwrap(), r["alias"].as_str().unwrap());
        let c = r["canonical"].as_str().unwrap().to_owned();
        out.insert(k, (c, r["version"].as_u64().unwrap()));
    }
    out
}

/// How often a wait looks again.
const POLL: Duration = Duration::from_millis(10);

/// Whether `state` reaches `epoch:version` within [`nexus_harness::PATIENCE`]
/// (polled), so that the caller can say why not.
async fn at_head(state: &nexus_edge::state::State, epoch: u64, version: u64) -> bool {
    let deadline = Instant::now() + nexus_harness::PATIENCE;
    loop {
        if state.is_loaded() && state.epoch() == epoch && state.version() == version {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Waits until every edge holds the registry's head, then compares each
/// edge's whole table with the model. Returns how many deactivated keys
/// were checked.
async fn verify(
    app: &TestApp,
    rig: &nexus_harness::Rig,
    redis: &FakePublisher,
    nodes: &[Node],
    model: &Serial,
    at: &str,
) -> usize {
    let (epoch, version) = registry_head(app).await;
    let active = model.active();
    let cp = control_plane_active(app).await;
    let cp_view: BTreeMap<Key, String> =
        cp.iter().map(|(k, (c, _))| (k.clone(), c.clone())).collect();
    assert_eq!(cp_view, active, "{at}: the control plane's active aliases differ from the model");
    for n in nodes {
        let (e, s) = (n.edge(), &n.edge().state);
        if !at_head(s, epoch, version).await {
            // What the edge and Redis say, to tell a lost notice from a
            // refused update.
            let report = redis.report(&e.id).await;
            let head = rig.head().await;
            let snapshot: i64 = redis.redis.exists(redis.keys.snapshot()).await.unwrap();
            panic!(
                "{at}: {} stuck at {}:{} (loaded {}), registry at {epoch}:{version}, \
                 Redis head {head:?} (snapshot key present: {}), its report {report:?}",
                e.id,
                s.epoch(),
                s.version(),
                s.is_loaded(),
                snapshot == 1
            );
        }
        {
            let guard = s.table();
            let table = guard.as_ref().unwrap();
            // With every model key present and live below, equal counts
            // mean the edge holds no active alias the model does not.
            assert_eq!(table.active_len(), active.len(), "{at}: {} active aliases", e.id);
        }
        for (k, canonical) in &active {
            let (status, headers, body) =
                e.get(&format!("/api/aliases/resolve/{}/{}", k.0, k.1)).await;
            assert_eq!(status, 200, "{at}: {} resolving {k:?}: {body}", e.id);
            assert_eq!(body["canonical_name"], canonical.as_str(), "{at}: {} {k:?}", e.id);
            let record_version = cp[k].1.to_string();
            assert_eq!(headers["x-nexus-version"], record_version.as_str(), "{at}: {} {k:?}", e.id);
        }
        for k in model.retired() {
            let (status, _, body) = e.get(&format!("/api/aliases/resolve/{}/{}", k.0, k.1)).await;
            assert_eq!(status, 404, "{at}: {} still resolves deactivated {k:?}: {body}", e.id);
        }
    }
    model.retired().len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_edge_converges_to_the_serial_model_through_faults() {
    let seed: u64 = match std::env::var("NEXUS_MODEL_SEED") {
        Ok(s) => s.parse().expect("NEXUS_MODEL_SEED is a u64"),
        Err(_) => rand::random(),
    };
    let ops: usize = std::env::var("NEXUS_MODEL_OPS").map_or(240, |s| s.parse().unwrap());
    // Printed first so that any failure below shows how to replay it.
    println!("model seed {seed} ({ops} operations): replay with NEXUS_MODEL_SEED={seed}");
    let started = Instant::now();
    if std::env::var_os("RUST_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
    }
    let mut rng = StdRng::seed_from_u64(seed);

    let (app, rig, _stop) = start_plane().await;
    let redis =
        FakePublisher { keys: rig.keys.clone(), redis: nexus_harness::connect().await, epoch: 0 };
    let mut nodes = Vec::with_capacity(EDGES);
    for _ in 0..EDGES {
        nodes.push(Node::start(&rig.keys).await);
    }
    for n in &nodes {
        let s = &n.edge().state;
        wait_until("edge loaded its first state", || async { s.is_loaded() }).await;
    }

    let mut model = Serial::default();
    let mut faults = Faults { redis, tally: Tally::default() };
    let mut retired_checked = 0;
    for round in 0..ROUNDS {
        let span = (round * ops / ROUNDS)..((round + 1) * ops / ROUNDS);
        let planned: Vec<usize> = (0..3).map(|_| rng.random_range(span.clone())).collect();
        // Ends with the operations that make this round cover what the
        // assertions at the end require, whatever the seed.
        let mut sequence = Round::new(span.len());
        for i in span {
            let op = sequence.next(&model, &mut rng);
            let expect = model.expect(&op);
            let (status, body) = send(&app, &op).await;
            assert!(
                matches(&expect, status, &body),
                "seed {seed}, operation {i}: {op:?}\nexpected {expect:?}\ngot {status} {body}"
            );
            faults.tally.count(&op, status.as_u16());
            model.apply(&op, &expect);
            for kind in (0..3).filter(|k| planned[*k] == i) {
                faults.inject(kind, &mut rng, &mut nodes).await;
            }
            if rng.random_bool(FAULT_RATE) {
                let kind = rng.random_range(0..3);
                faults.inject(kind, &mut rng, &mut nodes).await;
            }
        }
        let at = format!("seed {seed}, after round {round}");
        retired_checked += verify(&app, &rig, &faults.redis, &nodes, &model, &at).await;
    }
    let tally = &faults.tally;
    println!(
        "model seed {seed}: {tally:?}, {} active at the end, took {:?}",
        model.active().len(),
        started.elapsed()
    );

    // The sequence must have exercised what the test is about; a generator
    // that drifted into only no-ops would otherwise pass.
    // (`round::REQUIRED`: the answers every round's closing sequence makes.)
    for what in round::REQUIRED {
        assert!(tally.seen(what) > 0, "seed {seed}: no `{what}` in {tally:?}");
    }
    assert!(retired_checked > 0, "seed {seed}: no deactivated alias was ever checked");
    assert!(
        tally.kills >= ROUNDS
            && tally.killed > 0
            && tally.wipes >= ROUNDS
            && tally.restarts >= ROUNDS,
        "seed {seed}: a fault kind was not injected every round: {tally:?}"
    );
    faults.redis.cleanup().await;
}
