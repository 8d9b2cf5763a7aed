//! The publish barrier against real servers: a private Redis, the control
//! plane as `serve` starts it, and three edges (two in region `home`, one
//! in `far`) checking the head only every 2 s, so an answer within that
//! proves the edges report as soon as they apply. A write with
//! `?wait=applied` is answered only once every live edge serves it; a
//! stopped edge (its last report still fresh) is named as the straggler.
//! Liveness is the control plane's to judge: an edge whose clock is 15 s
//! behind is live and waited for, a stopped one is left out once silent.

use std::sync::Arc;
use std::time::Duration;

use nexus_edge::clock::Clock;
use nexus_edge::node::Node;
use nexus_harness::Plane;
use nexus_harness::local::redis::Redis;
use nexus_harness::{launch_edge_with_clock, nexusctl, wait_until_within};
use nexus_runtime::bus::Transport;
use nexus_runtime::bus::redis::RedisConfig;
use reqwest::StatusCode;
use serde_json::{Value, json};

const SECRET: &str = "barrier-test-secret-barrier-test-secret-01";
const PATIENCE: Duration = Duration::from_secs(20);

async fn served_by(http: &reqwest::Client, edge: &Node, alias: &str) -> Option<String> {
    let addr = edge.http_addr().unwrap();
    let url = format!("http://{addr}/api/aliases/resolve/frontend/{alias}");
    let r = http.get(url).send().await.ok()?;
    if r.status() != StatusCode::OK {
        return None;
    }
    r.json::<Value>().await.ok()?["canonical_name"].as_str().map(str::to_owned)
}

/// The edge ids of a barrier's list, sorted: `applied` names them,
/// `stragglers` are objects with an `id`.
fn ids(v: &Value) -> Vec<String> {
    let id = |e: &Value| e.as_str().or_else(|| e["id"].as_str()).unwrap_or("?").to_owned();
    let mut ids: Vec<String> = v.as_array().unwrap().iter().map(id).collect();
    ids.sort();
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_applied_answers_once_every_live_edge_serves_the_write() {
    let dir = tempfile::tempdir().unwrap();
    let redis = Redis::start(&dir.path().join("redis")).unwrap();
    let plane = Plane::start("barrier", &redis.url(), SECRET).await;
    let (api, key, store, prefix) = (plane.api, plane.key.clone(), &plane.store, &plane.prefix);
    let verify = plane.config.propagation.signing_key.verifying_key();
    let edge = |id: &str, region: &str| {
        let t: Arc<dyn Transport> =
            Arc::new(RedisConfig::new(&redis.url(), prefix).connect().unwrap());
        nexus_harness::launch_edge(t, None, verify, id, region, Duration::from_secs(2))
    };
    let edges = [edge("edge-1", "home"), edge("edge-2", "home"), edge("edge-3", "far")];

    let http = reqwest::Client::new();
    let write = |method: reqwest::Method, path: String, body: Option<Value>| {
        let (http, key) = (http.clone(), key.clone());
        async move {
            let mut r = http.request(method, format!("http://{api}{path}")).bearer_auth(key);
            if let Some(b) = body {
                r = r.json(&b);
            }
            let r = r.send().await.unwrap();
            let (status, header) = (r.status(), r.headers().get("x-nexus-barrier").cloned());
            let header = header.map(|h| h.to_str().unwrap().to_owned());
            (status, header, r.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let create = |alias: String, query: &'static str| {
        let body = json!({"context": "frontend", "alias": alias,
                          "canonical": format!("https://api.nexus.com/{alias}")});
        write(reqwest::Method::POST, format!("/api/admin/aliases{query}"), Some(body))
    };
    wait_until_within("every edge in the fleet view", PATIENCE, || async {
        let (s, _, f) = write(reqwest::Method::GET, "/api/admin/edges".into(), None).await;
        s == StatusCode::OK && f["items"].as_array().is_some_and(|i| i.len() == 3)
    })
    .await;

    // Several writes in a row, so a lucky race cannot pass: each answer
    // comes only once all three edges serve it.
    let mut waits = Vec::new();
    for i in 0..5 {
        let alias = format!("b-{i}");
        let (s, h, a) = create(alias.clone(), "?wait=applied").await;
        assert_eq!((s, h.as_deref()), (StatusCode::CREATED, Some("applied")), "{a}");
        assert_eq!(a["alias"], alias, "the write's own answer is kept: {a}");
        let mut applied: Vec<&str> =
            a["barrier"]["applied"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
        applied.sort_unstable();
        assert_eq!(applied, ["edge-1", "edge-2", "edge-3"], "every edge applied it: {a}");
        for e in &edges {
            assert_eq!(
                served_by(&http, e, &alias).await.as_deref(),
                Some(format!("https://api.nexus.com/{alias}").as_str()),
                "an edge does not serve {alias} though the barrier said applied: {a}"
            );
        }
        waits.push(a["barrier"]["waited_ms"].as_u64().unwrap());
    }
    // Well under the 2 s check interval: the edges report when they apply.
    assert!(waits.iter().all(|w| *w < 1500), "barrier waits {waits:?} ms");
    println!("barrier waits for 3 edges: {waits:?} ms");

    // An update and a deactivation wait the same way; the 204 becomes 200.
    let path = "/api/admin/aliases/frontend/b-0";
    let change = json!({"canonical": "https://api.nexus.com/moved"});
    let (s, _, a) = write(reqwest::Method::PUT, format!("{path}?wait=applied"), Some(change)).await;
    assert_eq!(s, StatusCode::OK, "{a}");
    for e in &edges {
        assert_eq!(
            served_by(&http, e, "b-0").await.as_deref(),
            Some("https://api.nexus.com/moved")
        );
    }
    let (s, h, a) = write(reqwest::Method::DELETE, format!("{path}?wait=applied"), None).await;
    assert_eq!((s, h.as_deref()), (StatusCode::OK, Some("applied")), "{a}");
    for e in &edges {
        assert_eq!(served_by(&http, e, "b-0").await, None, "deactivated everywhere");
    }

    // Bad parameters: 400, and nothing written.
    let head = store.registry_head().await.unwrap();
    for q in
        ["?wait=served", "?wait=applied&quorum=2", "?wait=applied&timeout=forever", "?timeout=1s"]
    {
        let (s, _, e) = create("never".into(), q).await;
        assert_eq!(
            (s, e["error"].as_str()),
            (StatusCode::BAD_REQUEST, Some("bad_request")),
            "{q}: {e}"
        );
    }
    assert_eq!(store.registry_head().await.unwrap().version, head.version);

    // nexusctl --wait applied: returns once all three serve it, says so
    // on stderr (stdout stays the command's answer), exit 0.
    let canonical = "https://api.nexus.com/ctl";
    let out = nexusctl(
        format!("http://{api}"),
        &key,
        &["--wait", "applied", "alias", "create", "frontend", "ctl", canonical],
    )
    .await;
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(err.contains("served: version") && err.contains("on 3 of 3 live edges"), "{err}");
    for e in &edges {
        assert_eq!(served_by(&http, e, "ctl").await.as_deref(), Some(canonical));
    }

    // Edge 3 stops; its last report stays fresh for a while: a straggler.
    let [one, two, three] = edges;
    three.stop().await;
    // nexusctl names it and exits 9; the write is committed all the same.
    let args = ["--wait", "applied", "--wait-timeout", "500ms", "alias", "create", "frontend"];
    let out =
        nexusctl(format!("http://{api}"), &key, &[&args[..], &["ctl-late", canonical]].concat())
            .await;
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(9), "{err}");
    assert!(err.contains("not yet served") && err.contains("edge-3 (far"), "{err}");
    let path = "/api/admin/aliases/frontend/ctl-late".to_owned();
    let (s, _, a) = write(reqwest::Method::GET, path, None).await;
    assert_eq!((s, a["canonical"].as_str()), (StatusCode::OK, Some(canonical)), "{a}");
    // Region home's edges are both up: the same wait there succeeds.
    let args = ["--wait", "applied", "--wait-region", "home", "alias", "create", "frontend"];
    let out =
        nexusctl(format!("http://{api}"), &key, &[&args[..], &["ctl-home", canonical]].concat())
            .await;
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(err.contains("on 2 of 2 live edges in home"), "{err}");
    let (s, h, a) = create("late".into(), "?wait=applied&timeout=1s").await;
    assert_eq!((s, h.as_deref()), (StatusCode::ACCEPTED, Some("timeout")), "{a}");
    assert_eq!(ids(&a["barrier"]["stragglers"]), ["edge-3"], "{a}");
    assert_eq!(a["barrier"]["stragglers"][0]["region"], "far");
    assert!(a["barrier"]["waited_ms"].as_u64().unwrap() >= 1000);
    assert_eq!(a["alias"], "late", "committed all the same: {a}");
    // Two of three is enough for half; region home has both of its edges.
    let (s, h, a) = create("half".into(), "?wait=applied&quorum=0.5&timeout=5s").await;
    assert_eq!((s, h.as_deref()), (StatusCode::CREATED, Some("applied")), "{a}");
    assert_eq!(a["barrier"]["required"], 2, "{a}");
    let (s, _, a) = create("home".into(), "?wait=applied&region=home&timeout=5s").await;
    assert_eq!((s, a["barrier"]["live"].as_u64()), (StatusCode::CREATED, Some(2)), "{a}");
    let (s, _, a) = create("far".into(), "?wait=applied&region=far&timeout=300ms").await;
    assert_eq!(s, StatusCode::ACCEPTED, "{a}");
    assert_eq!(ids(&a["barrier"]["stragglers"]), ["edge-3"], "{a}");
    // A region with no live edge: nothing can confirm it.
    let (s, _, a) = create("moon".into(), "?wait=applied&region=moon").await;
    assert_eq!((s, a["barrier"]["live"].as_u64()), (StatusCode::ACCEPTED, Some(0)), "{a}");

    one.stop().await;
    two.stop().await;
    plane.stop().await;
}

/// `POST /api/admin/aliases{query}` creating `alias`: status and answer.
async fn create(plane: &Plane, alias: &str, query: &str) -> (StatusCode, Value) {
    let body = json!({"context": "frontend", "alias": alias,
                      "canonical": format!("https://api.nexus.com/{alias}")});
    let r = reqwest::Client::new()
        .post(format!("http://{}/api/admin/aliases{query}", plane.api))
        .bearer_auth(&plane.key)
        .json(&body)
        .send()
        .await
        .unwrap();
    (r.status(), r.json().await.unwrap_or(Value::Null))
}

async fn fleet(plane: &Plane) -> Value {
    let r = reqwest::Client::new()
        .get(format!("http://{}/api/admin/edges", plane.api))
        .bearer_auth(&plane.key)
        .send()
        .await
        .unwrap();
    r.json().await.unwrap_or(Value::Null)
}

fn item<'a>(fleet: &'a Value, id: &str) -> Option<&'a Value> {
    fleet["items"].as_array()?.iter().find(|e| e["id"] == id)
}

/// An edge whose clock is 15 s behind stamps every report 15 s in the
/// past: judged by that stamp it looks silent, and the barrier answered
/// 201 without it while it could still serve the old registry. Judged by
/// when the control plane heard it, it is live and waited for, with its
/// skew shown; an edge that stopped is still left out once the control
/// plane has not heard it for the window.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edge_whose_clock_is_behind_is_waited_for_and_a_stopped_one_is_not() {
    let dir = tempfile::tempdir().unwrap();
    let redis = Redis::start(&dir.path().join("redis")).unwrap();
    let plane = Plane::start("barrier-skew", &redis.url(), SECRET).await;
    let verify = plane.config.propagation.signing_key.verifying_key();
    let edge = |id: &str, clock: Clock| {
        let t: Arc<dyn Transport> =
            Arc::new(RedisConfig::new(&redis.url(), &plane.prefix).connect().unwrap());
        launch_edge_with_clock(t, None, verify, id, "home", Duration::from_millis(200), clock)
    };
    let behind = edge("edge-behind", Clock::skewed(-15_000));
    let steady = edge("edge-steady", Clock::system());
    let stopping = edge("edge-stopping", Clock::system());

    // All three live, each with its skew measured.
    let skew = |f: &Value, id: &str| item(f, id).and_then(|e| e["clock_skew_ms"].as_i64());
    wait_until_within("three live edges, their skews measured", PATIENCE, || async {
        let f = fleet(&plane).await;
        let live = f["items"].as_array().is_some_and(|i| {
            i.len() == 3 && i.iter().all(|e| e["stale"] == false && e["versions_behind"] == 0)
        });
        live && skew(&f, "edge-behind").is_some_and(|s| (-16_000..=-14_000).contains(&s))
            && skew(&f, "edge-steady").is_some_and(|s| s.abs() < 1_000)
    })
    .await;
    // The premise: by its own stamp, the edge behind was silent too long.
    let f = fleet(&plane).await;
    let seen = item(&f, "edge-behind").unwrap();
    let stamped_silence =
        seen["last_seen_ms"].as_i64().unwrap() - seen["heartbeat_ms"].as_i64().unwrap();
    assert!(stamped_silence > 10_000, "{seen}");

    let (s, a) = create(&plane, "skewed", "?wait=applied&timeout=5s").await;
    assert_eq!(s, StatusCode::CREATED, "{a}");
    assert_eq!(a["barrier"]["live"], 3, "{a}");
    assert_eq!(ids(&a["barrier"]["applied"]), ["edge-behind", "edge-steady", "edge-stopping"]);
    let http = reqwest::Client::new();
    assert_eq!(
        served_by(&http, &behind, "skewed").await.as_deref(),
        Some("https://api.nexus.com/skewed"),
        "the barrier counted the edge behind, so it serves the write: {a}"
    );

    // Stopped: its report stops changing, and the control plane's clock
    // says so within the window, while the edge behind stays live.
    stopping.stop().await;
    wait_until_within("the stopped edge stale", PATIENCE, || async {
        item(&fleet(&plane).await, "edge-stopping").is_some_and(|e| e["stale"] == true)
    })
    .await;
    let f = fleet(&plane).await;
    assert_eq!(item(&f, "edge-behind").unwrap()["stale"], false, "{f}");
    let (s, a) = create(&plane, "after-stop", "?wait=applied&timeout=5s").await;
    assert_eq!(s, StatusCode::CREATED, "the stopped edge is not waited for: {a}");
    assert_eq!(a["barrier"]["live"], 2, "{a}");
    assert_eq!(ids(&a["barrier"]["applied"]), ["edge-behind", "edge-steady"]);
    assert_eq!(a["barrier"]["stragglers"], json!([]), "{a}");
    assert_eq!(
        served_by(&http, &behind, "after-stop").await.as_deref(),
        Some("https://api.nexus.com/after-stop")
    );

    behind.stop().await;
    steady.stop().await;
    plane.stop().await;
}
