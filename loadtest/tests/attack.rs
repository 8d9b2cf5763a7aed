//! The attack suite's short form, run by CI: the control plane as `serve`
//! starts it (a real state signing key), two edges syncing from Redis and
//! checking credentials, and an attacker with full access to the registry's
//! keys. Between the attacker's copy and the attacks, the canary alias moved
//! and an API key was revoked: whatever the attacker writes back or forges,
//! no edge may serve the old canary or accept the key again, and a frozen
//! Redis must be reported `stale`. `--nocapture` prints the table.

use std::time::{Duration, Instant};

use nexus_harness::{Plane, SECRET, SyncEdge, redis_url, sync_config, wait_until_within};
use nexus_loadtest::attack::{Attack, Mirror, Probe, Row, Table};
use nexus_protocol::keys::RedisKeys;
use nexus_protocol::signing::{self, SigningKey};
use nexus_protocol::{ContextScope, Role, TokenSigner, TokenVerifier};
use rand::RngCore;
use serde_json::{Value, json};

const CANARY: &str = "frontend/canary";
const OLD: &str = "https://api.nexus.com/v1/old";
const NEW: &str = "https://api.nexus.com/v1/new";
/// The edges' staleness bound: past two of the leader's 2 s statements, short
/// enough that the freeze shows within the test.
const MAX_STALENESS: Duration = Duration::from_secs(5);
/// How long each attack is watched: several of the edges' 200 ms checks.
const WATCH: Duration = Duration::from_millis(1_500);
const PATIENCE: Duration = Duration::from_secs(20);

async fn admin(plane: &Plane, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
    let mut req = reqwest::Client::new()
        .request(method, format!("http://{}{path}", plane.api))
        .bearer_auth(&plane.key);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let res = req.send().await.unwrap();
    assert!(res.status().is_success(), "{path}: {}", res.status());
    res.json().await.unwrap_or(Value::Null)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_attacker_with_redis_cannot_roll_back_freeze_unnoticed_or_resurrect_a_key() {
    let redis = redis_url();
    let mut seed = [0u8; 32];
    rand::rng().fill_bytes(&mut seed);
    let seed_hex = hex::encode(seed);
    let key = signing::parse_signing_key(&seed_hex).unwrap();
    let secret = std::str::from_utf8(SECRET).unwrap();
    let plane =
        Plane::start_with("nexus-attack", &redis, secret, &[("NEXUS_SIGNING_KEY", &seed_hex)])
            .await;
    let keys = RedisKeys::new(&plane.prefix);
    let edges = {
        let mut edges = Vec::new();
        for _ in 0..2 {
            let mut config = sync_config(&keys, &redis, None);
            config.sync.verify_keys = vec![key.verifying_key()];
            config.sync.max_staleness = MAX_STALENESS;
            let verifier = TokenVerifier::hs256(SECRET).with_max_ttl(3600);
            edges.push(SyncEdge::start_with_auth(config, Some(verifier)).await);
        }
        edges
    };

    // The history the attacker will try to bring back: the canary at OLD and
    // a resolver key that works.
    let body = json!({"context": "frontend", "alias": "canary", "canonical": OLD});
    admin(&plane, reqwest::Method::POST, "/api/admin/aliases", Some(body)).await;
    let body = json!({"name": "doomed", "role": "resolver", "contexts": ["*"]});
    let created = admin(&plane, reqwest::Method::POST, "/api/admin/api-keys", Some(body)).await;
    let revoked = created["key"].as_str().unwrap().to_owned();
    let now = chrono::Utc::now().timestamp();
    let good =
        TokenSigner::hs256(SECRET).mint("probe", Role::Resolver, ContextScope::All, now, 600);
    let mut probe = Probe {
        http: reqwest::Client::new(),
        edges: edges.iter().map(|e| e.url("")).collect(),
        canary: CANARY.into(),
        current: OLD.into(),
        good,
        revoked: revoked.clone(),
    };
    wait_until_within("both edges serve the old canary and the key", PATIENCE, || async {
        let o = probe.look().await;
        o.all_current() && o.revoked_accepted == o.edges
    })
    .await;
    let mirror = Mirror::connect(&redis, &plane.prefix).await.unwrap();
    let old = mirror.copy().await.unwrap();

    // Since then: the canary moved and the key was revoked.
    let path = format!("/api/admin/aliases/{CANARY}");
    admin(&plane, reqwest::Method::PUT, &path, Some(json!({"canonical": NEW}))).await;
    let id = created["id"].as_i64().unwrap();
    admin(&plane, reqwest::Method::DELETE, &format!("/api/admin/api-keys/{id}"), None).await;
    probe.current = NEW.into();
    wait_until_within("both edges serve the new canary, the key refused", PATIENCE, || async {
        let o = probe.look().await;
        o.all_current() && o.revoked_accepted == 0
    })
    .await;
    let legit = mirror.copy().await.unwrap().head;

    let digest = nexus_protocol::credentials::api_key_digest(&revoked);
    let retired = SigningKey::from_bytes(&[0x42; 32]);
    let mut table = Table::default();
    for attack in Attack::LIVE {
        match attack {
            Attack::ReplaySnapshot => mirror.write_back(&old).await.unwrap(),
            Attack::ReplayDeltas => mirror.replay_deltas(&old).await.unwrap(),
            Attack::MixSnapshotAndHead => mirror.mix(&old).await.unwrap(),
            Attack::Oversized => mirror.oversize().await.unwrap(),
            Attack::DevKeySigned => {
                let dev = signing::dev_signing_key();
                mirror.forge(&dev, CANARY, "https://evil.example", digest).await.unwrap();
            }
            Attack::RetiredKeySigned => {
                mirror.forge(&retired, CANARY, "https://evil.example", digest).await.unwrap();
            }
            Attack::Freeze => unreachable!("not a live attack"),
        }
        let served = probe.watch(WATCH).await;
        table.0.push(Row {
            attack,
            served,
            revoked_accepted: served.revoked_accepted,
            to_stale: None,
        });
        // The control plane refills what the attacker overwrote.
        wait_until_within("the leader restores the head", PATIENCE, || async {
            mirror.copy().await.is_ok_and(|c| c.head == legit)
        })
        .await;
    }

    // Freeze: the leader cut off, the old copy held in place.
    plane.stop().await;
    mirror.write_back(&old).await.unwrap();
    let frozen = Instant::now();
    wait_until_within("every edge reports stale", PATIENCE, || async {
        let o = probe.look().await;
        o.stale == o.edges
    })
    .await;
    let to_stale = frozen.elapsed();
    let served = probe.watch(WATCH).await;
    table.0.push(Row {
        attack: Attack::Freeze,
        served,
        revoked_accepted: served.revoked_accepted,
        to_stale: Some(to_stale),
    });
    println!("{table}");
    println!("(EDGE_MAX_STALENESS={MAX_STALENESS:?}, edge checks every 200 ms)");
    assert!(table.held(), "an attack got through:\n{table}");
    for e in &edges {
        assert!(e.metrics.reloads_older.get() >= 1, "the replay was refused as older");
    }
    mirror.clear().await.unwrap();
}
