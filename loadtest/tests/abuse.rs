//! The abuse mode against a real edge (the edge's own test harness, in
//! process, on port 0): under HTTP/2 rapid reset and slowloris the edge
//! keeps answering its health check and the legitimate load, and the
//! attack shows in its metrics. No throughput is asserted: a debug build
//! on a shared machine says nothing about rates.

use std::sync::Arc;
use std::time::Duration;

use nexus_loadtest::abuse::attack::Aim;
use nexus_loadtest::abuse::report::ScenarioReport;
use nexus_loadtest::abuse::{self, Scenario, Setup};
use nexus_loadtest::http::{HttpConnector, HttpOptions, Version};
use nexus_loadtest::keyspace::Keyspace;
use nexus_loadtest::target::Target;

/// Starts an edge on a runtime of its own (the abuse mode blocks on its
/// own runtimes, so it cannot run inside the test's) and runs `scenario`.
fn run(scenario: Scenario) -> ScenarioReport {
    let runtime =
        tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let edge = runtime.block_on(nexus_harness::spawn_edge(
        nexus_harness::YAML,
        nexus_harness::Options::default(),
    ));
    let bearer = edge.bearer(&["*"]);
    let token = bearer.strip_prefix("Bearer ").unwrap().to_owned();
    let keys = Keyspace::from_paths(vec![
        "/api/aliases/resolve/frontend/user-profile".to_owned(),
        "/api/aliases/resolve/backend/billing".to_owned(),
    ])
    .unwrap();
    let target = Target::parse(&format!("http://{}", edge.addr)).unwrap();
    let options = HttpOptions {
        target: target.clone(),
        version: Version::Http1,
        token: Some(token.clone()),
        trust: None,
        timeout: Duration::from_secs(2),
    };
    let setup = Setup {
        aim: Aim {
            http: edge.addr,
            quic: None,
            authority: target.authority(),
            path: keys.paths()[0].clone(),
            token: Some(token),
            connections: 2,
            idle: 0,
            slowloris: 200,
            slowloris_every: Duration::from_millis(200),
            flood_hold: 0,
            flood_tasks: 0,
            quic_sockets: 0,
        },
        pid: None,
        legit: Arc::new(HttpConnector::new(&options, &keys).unwrap()),
        keys: keys.len(),
        connections: 4,
        rate: None,
        duration: Duration::from_secs(2),
        warmup: Duration::from_millis(200),
        threads: 1,
        seed: 7,
    };
    let report = abuse::run(&setup, scenario).unwrap();
    println!("{report}");
    drop(edge);
    report
}

fn assert_served_throughout(r: &ScenarioReport) {
    assert!(r.healthy_throughout, "health checks failed:\n{r}");
    assert!(r.during.health_ok > 0, "no health check ran during the attack:\n{r}");
    assert!(r.without_attack.successes > 0, "no legitimate answer without the attack:\n{r}");
    assert!(r.during_attack.successes > 0, "no legitimate answer during the attack:\n{r}");
}

#[test]
fn rapid_reset_leaves_the_edge_serving_and_shows_as_connection_errors() {
    let r = run(Scenario::RapidReset);
    assert_served_throughout(&r);
    assert!(r.attack.sent > 0 && r.attack.connections_opened > 0, "the attack did nothing:\n{r}");
    // The edge ends flooding connections (GOAWAY), and counts each one.
    assert!(
        r.counters_moved.get("nexus_edge_connection_errors_total").is_some_and(|n| *n > 0.0),
        "no connection error counted:\n{r}"
    );
}

#[test]
fn a_settings_flood_is_closed_by_the_edge_and_counted() {
    let r = run(Scenario::SettingsFlood);
    assert_served_throughout(&r);
    // Each flooding connection is closed once its control-frame bucket is
    // empty; the attacker reconnects, so there are many.
    assert!(r.attack.closed_by_edge > 1, "the edge closed no flooding connection:\n{r}");
    let closed: f64 = r
        .counters_moved
        .iter()
        .filter(|(k, _)| k.starts_with("nexus_edge_h2_flood_closed_total"))
        .map(|(_, v)| v)
        .sum();
    assert!(closed > 1.0, "no flood closure counted:\n{r}");
}

#[test]
fn slowloris_leaves_the_edge_serving() {
    let r = run(Scenario::Slowloris);
    assert_served_throughout(&r);
    assert!(r.attack.peak_held >= 100, "slowloris connections were not held:\n{r}");
    assert!(r.during.peak_connections.is_some_and(|c| c >= 100.0), "gauge missed them:\n{r}");
}
