//! Revocations and API keys reaching every edge through the signed stream:
//! the real control plane (its test harness, API on port 0, a fresh
//! database), its publisher on a random Redis prefix, and edges that check
//! credentials. Every "within 1 s" is measured from the control plane's
//! answer to the change, waiting on the edges' answers with a deadline.

use std::time::{Duration, Instant};

use nexus_protocol::{ContextScope, Role, TokenVerifier};
use reqwest::StatusCode;
use serde_json::{Value, json};

use nexus_harness::LivePlane;
use nexus_harness::{SyncEdge, redis_url, sync_config, wait_until};

/// How fast a credential change must be refused everywhere.
const WITHIN: Duration = Duration::from_secs(1);
const TARGET: &str = "/api/aliases/resolve/frontend/user-profile";

/// An edge verifying the harness's HS256 tokens, with the credential
/// set from the stream.
async fn checking_edge(plane: &LivePlane) -> SyncEdge {
    let verifier = TokenVerifier::hs256(nexus_harness::SECRET).with_max_ttl(3600);
    SyncEdge::start_with_auth(sync_config(&plane.keys, &redis_url(), None), Some(verifier)).await
}

/// Two edges holding the registry with `frontend/user-profile`.
async fn ready_edges(plane: &LivePlane) -> Vec<SyncEdge> {
    let (status, body) =
        plane.app.create("frontend", "user-profile", "https://api.nexus.com/v1/p").await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let v = body["version"].as_u64().unwrap();
    let edges = vec![checking_edge(plane).await, checking_edge(plane).await];
    for e in &edges {
        wait_until("edge at the alias", || async { e.state.version() >= v }).await;
    }
    edges
}

async fn status(edge: &SyncEdge, path: &str, credential: &str) -> u16 {
    reqwest::Client::new()
        .get(edge.url(path))
        .bearer_auth(credential)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// Waits until every edge answers `expected` for `credential`; returns how
/// long that took from `since`, failing past `WITHIN` (plus slack for a
/// slow machine, reported in the message).
async fn refused_everywhere(edges: &[SyncEdge], credential: &str, since: Instant) -> Duration {
    let deadline = since + WITHIN * 5;
    for e in edges {
        while status(e, TARGET, credential).await != 401 {
            assert!(Instant::now() < deadline, "edge {} still accepts the credential", e.id);
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    since.elapsed()
}

async fn revoke(plane: &LivePlane, body: Value) -> Value {
    let (s, answer) = plane.app.post("/api/admin/tokens/revoke", &body).await;
    assert_eq!(s, StatusCode::OK, "{answer}");
    answer
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_jti_is_refused_on_every_edge_within_a_second() {
    let plane = LivePlane::start("nexus-cred").await;
    let edges = ready_edges(&plane).await;
    let token = plane.app.token(Role::Resolver, &["frontend"]);
    let jti = TokenVerifier::hs256(nexus_harness::SECRET).verify(&token).unwrap().jti.unwrap();
    for e in &edges {
        // Twice: the second answer comes from the edge's cache.
        assert_eq!(status(e, TARGET, &token).await, 200);
        assert_eq!(status(e, TARGET, &token).await, 200);
    }
    let other = plane.app.token(Role::Resolver, &["frontend"]);

    let answer = revoke(&plane, json!({ "jti": jti })).await;
    let since = Instant::now();
    assert_eq!(answer["revoked"]["jti"], jti.as_str());
    let took = refused_everywhere(&edges, &token, since).await;
    println!("revoked jti refused on {} edges after {took:?}", edges.len());
    assert!(took < WITHIN, "took {took:?}");

    // Refused by the control plane too; another token of the same subject
    // is not touched; the revocation is audited.
    let (s, _) =
        plane.app.call(reqwest::Method::GET, "/api/admin/aliases", Some(&token), None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    for e in &edges {
        assert_eq!(status(e, TARGET, &other).await, 200);
    }
    let (_, audit) = plane.app.get("/api/admin/audit?action=token.revoke").await;
    assert!(audit.to_string().contains(&format!("token/{jti}")), "{audit}");

    // An edge that starts now gets it in its snapshot.
    let late = checking_edge(&plane).await;
    let head = edges[0].state.version();
    wait_until("late edge", || async { late.state.version() >= head }).await;
    assert_eq!(status(&late, TARGET, &token).await, 401);
    assert_eq!(status(&late, TARGET, &other).await, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_subject_is_refused_everywhere_and_its_new_tokens_are_not() {
    let plane = LivePlane::start("nexus-cred").await;
    let edges = ready_edges(&plane).await;
    let now = chrono::Utc::now().timestamp();
    let scope = ContextScope::All;
    let old = plane.app.signer.mint("deployer", Role::Resolver, scope.clone(), now - 10, 600);
    for e in &edges {
        assert_eq!(status(e, TARGET, &old).await, 200);
    }
    let answer = revoke(&plane, json!({ "sub": "deployer" })).await;
    let since = Instant::now();
    assert_eq!(answer["revoked"]["sub"], "deployer");
    let took = refused_everywhere(&edges, &old, since).await;
    println!("revoked subject refused on {} edges after {took:?}", edges.len());
    assert!(took < WITHIN, "took {took:?}");
    // Issued after the revocation: good again.
    let before =
        chrono::DateTime::parse_from_rfc3339(answer["revoked"]["before"].as_str().unwrap())
            .unwrap()
            .timestamp();
    let fresh = plane.app.signer.mint("deployer", Role::Resolver, scope, before + 1, 600);
    for e in &edges {
        assert_eq!(status(e, TARGET, &fresh).await, 200);
    }
    let (s, _) = plane.app.call(reqwest::Method::GET, "/api/admin/aliases", Some(&old), None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);

    // Bad requests say what is wrong.
    for (body, says) in [
        (json!({}), "jti or sub"),
        (json!({"jti": "a", "sub": "b"}), "not both"),
        (json!({"jti": "a", "before": "2020-01-01T00:00:00Z"}), "before goes with sub"),
        (json!({"sub": "a", "before": "2999-01-01T00:00:00Z"}), "future"),
        (json!({"jti": ""}), "printable"),
    ] {
        let (s, e) = plane.app.post("/api/admin/tokens/revoke", &body).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{body}: {e}");
        assert!(e["message"].as_str().unwrap().contains(says), "{body}: {e}");
    }
    let viewer = plane.app.token(Role::Viewer, &["*"]);
    let (s, _) = plane
        .app
        .call(
            reqwest::Method::POST,
            "/api/admin/tokens/revoke",
            Some(&viewer),
            Some(&json!({"sub": "x"})),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
}

/// The verdict on a token of `sub` issued at `iat`, by the control plane
/// and by each edge: 401 or 200.
async fn verdicts(plane: &LivePlane, edges: &[&SyncEdge], sub: &str, iat: i64) -> Vec<u16> {
    let token = plane.app.signer.mint(sub, Role::Resolver, ContextScope::All, iat, 600);
    let (s, _) = plane.app.call(reqwest::Method::GET, TARGET, Some(&token), None).await;
    let mut all = vec![s.as_u16()];
    for e in edges {
        all.push(status(e, TARGET, &token).await);
    }
    all
}

/// The same verdict on every plane for tokens issued in the second before
/// a subject revocation, in its own second and in the next: the edges took
/// the revocation from a delta and from a snapshot (a late edge), and the
/// revocation falls a quarter into its second (where truncating, or
/// rounding to the nearest second, lets its own second's tokens through
/// on the edges) or exactly on one (where rounding up blindly would refuse
/// the next second's).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subject_revocation_has_one_verdict_on_every_plane_at_its_seconds_boundary() {
    let plane = LivePlane::start("nexus-cred").await;
    let edges = ready_edges(&plane).await;
    let s = chrono::Utc::now().timestamp() - 20;
    let at = |secs: i64, ms: i64| {
        let t = chrono::DateTime::from_timestamp(secs, 0).unwrap();
        (t + chrono::Duration::milliseconds(ms)).to_rfc3339()
    };
    let mut version = 0;
    for (sub, before) in [("inside", at(s, 250)), ("on-the-second", at(s, 0))] {
        let answer = revoke(&plane, json!({ "sub": sub, "before": before })).await;
        version = answer["version"].as_u64().unwrap();
    }
    for e in &edges {
        wait_until("edge at the revocations", || async { e.state.version() >= version }).await;
    }
    let late = checking_edge(&plane).await;
    wait_until("late edge at the revocations", || async { late.state.version() >= version }).await;
    let planes = [&edges[0], &edges[1], &late];
    let every = |code: u16| vec![code; planes.len() + 1];
    // Revoked at s + 0.25: what second s issued may be older, so refused.
    assert_eq!(verdicts(&plane, &planes, "inside", s - 1).await, every(401));
    assert_eq!(verdicts(&plane, &planes, "inside", s).await, every(401));
    assert_eq!(verdicts(&plane, &planes, "inside", s + 1).await, every(200));
    // Revoked at s exactly: second s's tokens came after it.
    assert_eq!(verdicts(&plane, &planes, "on-the-second", s - 1).await, every(401));
    assert_eq!(verdicts(&plane, &planes, "on-the-second", s).await, every(200));
    assert_eq!(verdicts(&plane, &planes, "on-the-second", s + 1).await, every(200));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resolver_key_resolves_on_every_edge_and_a_revoked_one_is_refused_within_a_second() {
    let plane = LivePlane::start("nexus-cred").await;
    let edges = ready_edges(&plane).await;
    let (s, k) = plane
        .app
        .post(
            "/api/admin/api-keys",
            &json!({"name": "svc", "role": "resolver", "contexts": ["frontend"]}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{k}");
    let key = k["key"].as_str().unwrap().to_owned();
    let id = k["id"].as_i64().unwrap();
    for e in &edges {
        wait_until("key granted on the edge", || async { status(e, TARGET, &key).await == 200 })
            .await;
        assert_eq!(status(e, TARGET, &key).await, 200, "cached");
        // Its contexts hold on the edge too.
        assert_eq!(status(e, "/api/aliases/resolve/backend/billing", &key).await, 403);
        let (_, _, st) = e.get("/api/aliases/status").await;
        assert_eq!(st["status"]["auth"]["api_keys"], 1, "{st}");
        assert!(!st.to_string().contains(&key[4..]), "the key is never shown");
    }

    let (s, _) = plane.app.delete(&format!("/api/admin/api-keys/{id}")).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let since = Instant::now();
    let took = refused_everywhere(&edges, &key, since).await;
    println!("revoked API key refused on {} edges after {took:?}", edges.len());
    assert!(took < WITHIN, "took {took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_api_key_is_refused_on_every_edge_without_being_told() {
    let plane = LivePlane::start("nexus-cred").await;
    let edges = ready_edges(&plane).await;
    // Whole seconds, as the control plane keeps it.
    let expires = chrono::Utc::now() + chrono::Duration::milliseconds(3_500);
    let (s, k) = plane
        .app
        .post(
            "/api/admin/api-keys",
            &json!({"name": "short", "role": "resolver", "contexts": ["*"],
                    "expires_at": expires.to_rfc3339()}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{k}");
    let key = k["key"].as_str().unwrap().to_owned();
    for e in &edges {
        wait_until("key granted", || async { status(e, TARGET, &key).await == 200 }).await;
    }
    // Nothing is published at expiry: each edge refuses it on its own clock,
    // from `expires_at` on.
    let at = expires.timestamp();
    assert_eq!(k["expires_at"].as_str().map(|t| t.contains(".")), Some(false), "{k}");
    for e in &edges {
        let deadline = Instant::now() + Duration::from_secs(10);
        while status(e, TARGET, &key).await == 200 {
            assert!(Instant::now() < deadline, "still accepted");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let now = chrono::Utc::now().timestamp();
        assert!(now >= at && now <= at + 1, "refused at {now}, expiry {at}");
    }
    let (s, _) = plane.app.call(reqwest::Method::GET, TARGET, Some(&key), None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "the control plane agrees");

    let (s, e) = plane
        .app
        .post(
            "/api/admin/api-keys",
            &json!({"name": "past", "role": "resolver", "contexts": ["*"],
                    "expires_at": "2020-01-01T00:00:00Z"}),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{e}");
    let (_, list) = plane.app.get("/api/admin/api-keys").await;
    assert_eq!(list["items"][0]["expires_at"].as_str().map(|t| t.len() > 10), Some(true), "{list}");
}

/// A client is handed a new API key and tries it on an edge before the
/// delta that grants it has arrived: refused, and the refusal is
/// remembered. The delta changes the credential generation, and the key
/// resolves at once, well before the remembered refusal's TTL would have
/// let it be checked again.
#[tokio::test]
async fn a_refused_key_resolves_once_the_delta_granting_it_arrives() {
    use base64::Engine;
    use nexus_harness::{FakePublisher, rec};
    use nexus_protocol::credentials::{KeyGrant, api_key_digest};
    use nexus_protocol::{Context, CredentialChange};

    let p = FakePublisher::new().await;
    let profile = rec("frontend", "user-profile", "https://api.nexus.com/v1/p", 1);
    p.publish_snapshot(&p.snapshot(1, vec![profile])).await;
    let verifier = TokenVerifier::hs256(nexus_harness::SECRET);
    let edge =
        SyncEdge::start_with_auth(sync_config(&p.keys, &redis_url(), None), Some(verifier)).await;
    edge.wait_version(1, 1).await;

    let key = format!("nxk_{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode([7u8; 32]));
    let refused_at = Instant::now();
    assert_eq!(status(&edge, TARGET, &key).await, 401);
    assert_eq!(status(&edge, TARGET, &key).await, 401);
    let (_, _, s) = edge.get("/api/aliases/status").await;
    assert_eq!(s["status"]["auth"]["refusals_remembered"], 1, "{s}");

    let grant = KeyGrant {
        digest: api_key_digest(&key).unwrap(),
        name: "api_key:1:late".into(),
        role: Role::Resolver,
        contexts: ContextScope::Only(vec![Context::parse("frontend").unwrap()]),
        expires_at: None,
    };
    let mut delta = p.delta(1, vec![], vec![]);
    delta.credentials = vec![CredentialChange::GrantKey(grant)];
    p.publish_delta(&delta).await;
    edge.wait_version(1, 2).await;
    assert_eq!(status(&edge, TARGET, &key).await, 200, "the new generation checks again");
    let ttl = Duration::from_secs(nexus_edge::refusals::REFUSAL_TTL_S as u64);
    assert!(
        refused_at.elapsed() < ttl,
        "took {:?}: the TTL, not the generation",
        refused_at.elapsed()
    );
    p.cleanup().await;
}
