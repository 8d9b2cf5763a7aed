//! Tokens on an edge that holds only public keys: the edge booted as the
//! binary boots it (its configuration from the environment, `node::open`
//! and `node::launch`), tokens minted by the control plane's signer or
//! built by hand the way a foreign library (PyJWT) would.

use std::net::SocketAddr;
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::Signer as _;
use nexus_edge::config::{Args, Config, ConfigError};
use nexus_edge::metrics::Metrics;
use nexus_edge::node::{self, Node};
use nexus_protocol::jwk::{self, PublicKey};
use nexus_protocol::signing::SigningKey;
use nexus_protocol::{AUDIENCE, ContextScope, Role, TokenSigner};
use serde_json::{Value, json};

const YAML: &str = "aliases:
  - context: frontend
    alias: user-profile
    canonical: https://api.nexus.com/v1/users/profile
";

fn key(seed: u8) -> SigningKey {
    SigningKey::from_bytes(&[seed; 32])
}

struct Edge {
    node: Option<Node>,
    addr: SocketAddr,
    _dir: tempfile::TempDir,
}

impl Edge {
    async fn stop(mut self) {
        if let Some(n) = self.node.take() {
            n.stop().await;
        }
    }
}

fn config(vars: &[(&str, String)]) -> Result<(Config, tempfile::TempDir), ConfigError> {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("aliases.yaml");
    std::fs::write(&file, YAML).unwrap();
    let mut env: Vec<(String, String)> = vec![
        ("EDGE_HTTP_ADDR".into(), "127.0.0.1:0".into()),
        ("EDGE_WORKERS".into(), "1".into()),
        ("EDGE_QUIC".into(), "off".into()),
    ];
    env.extend(vars.iter().map(|(k, v)| (k.to_string(), v.clone())));
    let lookup = move |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    Config::from_parts(Args { aliases_file: Some(file) }, lookup).map(|c| (c, dir))
}

/// An edge given `NEXUS_TOKEN_VERIFY_KEYS` = a JWKS of `keys`, nothing else.
async fn edge_with(keys: &[&SigningKey]) -> Edge {
    edge_with_vars(keys, &[]).await
}

/// The same, plus `vars`.
async fn edge_with_vars(keys: &[&SigningKey], vars: &[(&str, String)]) -> Edge {
    let public: Vec<PublicKey> = keys.iter().map(|k| PublicKey::new(k.verifying_key())).collect();
    let mut vars = vars.to_vec();
    vars.push(("NEXUS_TOKEN_VERIFY_KEYS", jwk::jwks(&public).to_string()));
    let (config, dir) = config(&vars).unwrap();
    let metrics = Arc::new(Metrics::new());
    let (state, feed) = node::open(&config, &metrics).await.unwrap();
    let node = node::launch(&config, state, feed, metrics).unwrap();
    let addr = node.http_addr().unwrap();
    Edge { node: Some(node), addr, _dir: dir }
}

async fn resolve(edge: &Edge, token: &str) -> (u16, Value) {
    let res = reqwest::Client::new()
        .get(format!("http://{}/api/aliases/resolve/frontend/user-profile", edge.addr))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

fn mint(signer: &TokenSigner) -> String {
    signer.mint("svc", Role::Resolver, ContextScope::All, now(), 300)
}

fn segment(v: &Value) -> String {
    URL_SAFE_NO_PAD.encode(v.to_string())
}

/// An EdDSA token assembled from raw JSON, signed with `key`.
fn by_hand(header: Value, claims: Value, key: &SigningKey) -> String {
    let msg = format!("{}.{}", segment(&header), segment(&claims));
    format!("{msg}.{}", URL_SAFE_NO_PAD.encode(key.sign(msg.as_bytes()).to_bytes()))
}

fn claims(iat: i64) -> Value {
    json!({"sub": "py", "role": "resolver", "contexts": ["frontend"], "aud": AUDIENCE,
           "iat": iat, "exp": iat + 600, "jti": "hand-1"})
}

#[tokio::test]
async fn a_control_plane_token_resolves_on_an_edge_holding_only_public_keys() {
    let cp = key(1);
    let edge = edge_with(&[&cp]).await;
    let signer = TokenSigner::eddsa(&cp).with_max_ttl(3600);
    let (s, body) = resolve(&edge, &mint(&signer)).await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(body["canonical_name"], "https://api.nexus.com/v1/users/profile");

    // The status says what is in force, by key id only.
    let status: Value = reqwest::get(format!("http://{}/api/aliases/status", edge.addr))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let kid = signer.public_key().unwrap().kid.clone();
    let auth = &status["status"]["auth"];
    assert_eq!((&auth["mode"], &auth["keys"]), (&json!("eddsa"), &json!([kid])), "{auth}");
    assert_eq!(auth["api_keys"], 0);
    edge.stop().await;
}

#[tokio::test]
async fn an_hs256_token_is_refused_whatever_the_secret() {
    let cp = key(2);
    let edge = edge_with(&[&cp]).await;
    let public = cp.verifying_key();
    let secrets: [&[u8]; 4] =
        [b"", b"test-secret-of-reasonable-length", b"SECRET_KEY", public.as_bytes()];
    for secret in secrets {
        let (s, body) = resolve(&edge, &mint(&TokenSigner::hs256(secret))).await;
        assert_eq!((s, body["error"].as_str()), (401, Some("unauthorized")), "{body}");
    }
    // HS256 naming the edge's key, its public key as the HMAC secret: the
    // algorithm confusion RFC 8725 §2.1 warns of.
    let header = json!({"alg": "HS256", "typ": "JWT", "kid": PublicKey::new(public).kid});
    let msg = format!("{}.{}", segment(&header), segment(&claims(now())));
    let mac = jsonwebtoken::crypto::sign(
        msg.as_bytes(),
        &jsonwebtoken::EncodingKey::from_secret(public.as_bytes()),
        jsonwebtoken::Algorithm::HS256,
    )
    .unwrap();
    let (s, body) = resolve(&edge, &format!("{msg}.{mac}")).await;
    assert_eq!(s, 401, "{body}");
    assert!(body["message"].as_str().unwrap().contains("algorithm"), "{body}");
    edge.stop().await;
}

#[tokio::test]
async fn an_unknown_kid_is_refused_and_two_keys_live_rotate() {
    let (old, new, stranger) = (key(3), key(4), key(5));
    let edge = edge_with(&[&old, &new]).await;
    for k in [&old, &new] {
        assert_eq!(resolve(&edge, &mint(&TokenSigner::eddsa(k))).await.0, 200);
    }
    let (s, body) = resolve(&edge, &mint(&TokenSigner::eddsa(&stranger))).await;
    assert_eq!(s, 401);
    assert!(body["message"].as_str().unwrap().contains("key id"), "{body}");
    edge.stop().await;

    // The rotation done: the old key is gone from the edge's keys.
    let edge = edge_with(&[&new]).await;
    assert_eq!(resolve(&edge, &mint(&TokenSigner::eddsa(&old))).await.0, 401);
    assert_eq!(resolve(&edge, &mint(&TokenSigner::eddsa(&new))).await.0, 200);
    edge.stop().await;
}

#[tokio::test]
async fn rfc_8725_cases_on_tokens_built_by_hand() {
    let cp = key(6);
    let edge = edge_with(&[&cp]).await;
    let header =
        json!({"alg": "EdDSA", "typ": "JWT", "kid": PublicKey::new(cp.verifying_key()).kid});
    assert_eq!(resolve(&edge, &by_hand(header.clone(), claims(now()), &cp)).await.0, 200);

    let mut crit = header.clone();
    crit["crit"] = json!(["exp"]);
    let (s, body) = resolve(&edge, &by_hand(crit, claims(now()), &cp)).await;
    assert_eq!(s, 401, "crit: {body}");
    assert!(body["message"].as_str().unwrap().contains("crit"), "{body}");

    let (s, body) = resolve(&edge, &by_hand(header.clone(), claims(now() + 3600), &cp)).await;
    assert_eq!(s, 401, "iat an hour ahead: {body}");

    let mut many = claims(now());
    many["aud"] = json!(["billing", AUDIENCE]);
    assert_eq!(resolve(&edge, &by_hand(header.clone(), many.clone(), &cp)).await.0, 200);
    many["aud"] = json!(["billing", "nexus"]);
    assert_eq!(resolve(&edge, &by_hand(header, many, &cp)).await.0, 401);
    edge.stop().await;
}

#[test]
fn an_edge_given_a_signing_key_refuses_to_start() {
    let pem = jwk::signing_key_pem(&key(7));
    let e = config(&[("NEXUS_TOKEN_SIGNING_KEY", pem.clone())]).err().unwrap();
    assert!(matches!(e, ConfigError::SigningKeyOnEdge(_)), "{e}");
    // Nor a private key passed as a "verify key".
    let e = config(&[("NEXUS_TOKEN_VERIFY_KEYS", pem.clone())]).err().unwrap().to_string();
    assert!(e.contains("PRIVATE") && !e.contains(pem.lines().nth(1).unwrap()), "{e}");
}

#[tokio::test]
async fn a_credential_over_edge_rate_limit_gets_429_with_retry_after() {
    let k = key(9);
    let vars = [("EDGE_RATE_LIMIT", "2/h".to_owned()), ("EDGE_RATE_LIMIT_BURST", "2".into())];
    let edge = edge_with_vars(&[&k], &vars).await;
    let signer = TokenSigner::eddsa(&k);
    let (noisy, quiet) = (mint(&signer), mint(&signer));
    for _ in 0..2 {
        assert_eq!(resolve(&edge, &noisy).await.0, 200);
    }
    let res = reqwest::Client::new()
        .get(format!("http://{}/api/aliases/resolve/frontend/user-profile", edge.addr))
        .bearer_auth(&noisy)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 429);
    // Two an hour: the next allowance is back in half an hour.
    let retry: u64 = res.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1700..=1800).contains(&retry), "Retry-After: {retry}");
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"], "rate_limited", "{body}");
    // Each credential has its own bucket.
    assert_eq!(resolve(&edge, &quiet).await.0, 200);
    let get = |path: &'static str| {
        let url = format!("http://{}{path}", edge.addr);
        async move { reqwest::get(url).await.unwrap().text().await.unwrap() }
    };
    let metrics = get("/metrics").await;
    assert!(metrics.contains(r#"nexus_edge_resolve_total{outcome="rate_limited"} 1"#), "{metrics}");
    let status: Value = serde_json::from_str(&get("/api/aliases/status").await).unwrap();
    assert_eq!(status["status"]["auth"]["rate_limit"]["burst"], 2, "{status}");
    edge.stop().await;
}

#[test]
fn a_rate_limit_without_credentials_to_count_refuses_to_start() {
    let e = config(&[("EDGE_AUTH", "off".into()), ("EDGE_RATE_LIMIT", "10/s".into())]);
    let message = e.expect_err("EDGE_RATE_LIMIT with EDGE_AUTH=off must not start").to_string();
    assert!(message.contains("EDGE_RATE_LIMIT") && message.contains("EDGE_AUTH=off"), "{message}");
}

/// A client whose connections come from `source` (any 127/8 address is
/// this host's loopback, and a different host to the edge's budget).
fn client_from(source: [u8; 4]) -> reqwest::Client {
    reqwest::Client::builder().local_address(std::net::IpAddr::from(source)).build().unwrap()
}

async fn resolve_from(client: &reqwest::Client, edge: &Edge, token: &str) -> reqwest::Response {
    client
        .get(format!("http://{}/api/aliases/resolve/frontend/user-profile", edge.addr))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

/// `token` with its signature replaced by `n` junk bytes' worth: the real
/// header (and so the real `kid`) and claims, a signature nobody made.
fn junk_signed(token: &str, n: u32) -> String {
    let (signed, _) = token.rsplit_once('.').unwrap();
    let mut junk = [0u8; 64];
    junk[..4].copy_from_slice(&n.to_be_bytes());
    format!("{signed}.{}", URL_SAFE_NO_PAD.encode(junk))
}

async fn text(edge: &Edge, path: &str) -> String {
    reqwest::get(format!("http://{}{path}", edge.addr)).await.unwrap().text().await.unwrap()
}

/// The attacker holds a real token's header and claims and floods junk
/// signatures from one host, each one different so no cache can answer
/// it: past the host's budget it gets 429 before any signature is
/// checked, while another host's fresh valid token resolves at once.
#[tokio::test]
async fn a_junk_signature_flood_is_refused_unchecked_past_its_hosts_budget() {
    let k = key(11);
    let vars = [("EDGE_AUTH_FAILURES", "1/h".to_owned()), ("EDGE_AUTH_FAILURES_BURST", "5".into())];
    let edge = edge_with_vars(&[&k], &vars).await;
    let signer = TokenSigner::eddsa(&k);
    let real = mint(&signer);
    let attacker = client_from([127, 0, 0, 2]);
    for n in 0..5 {
        let res = resolve_from(&attacker, &edge, &junk_signed(&real, n)).await;
        assert_eq!(res.status().as_u16(), 401, "junk {n} is within the budget: checked");
    }
    for n in 5..50 {
        let res = resolve_from(&attacker, &edge, &junk_signed(&real, n)).await;
        assert_eq!(res.status().as_u16(), 429, "junk {n} is past the budget");
        let retry: u64 = res.headers()["retry-after"].to_str().unwrap().parse().unwrap();
        assert!((1..=3600).contains(&retry), "Retry-After: {retry}");
    }
    // Another host's token, never seen before, is checked and resolves.
    let legit = client_from([127, 0, 0, 1]);
    let fresh = mint(&signer);
    assert_eq!(resolve_from(&legit, &edge, &fresh).await.status().as_u16(), 200);
    // From the spent host even a good token waits: it cannot be told from
    // junk without the check the budget withholds.
    assert_eq!(resolve_from(&attacker, &edge, &mint(&signer)).await.status().as_u16(), 429);
    let metrics = text(&edge, "/metrics").await;
    assert!(
        metrics.contains(r#"nexus_edge_auth_refusals_total{answer="over_budget"} 46"#),
        "{metrics}"
    );
    assert!(metrics.contains(r#"nexus_edge_resolve_total{outcome="unauthorized"} 5"#), "{metrics}");
    edge.stop().await;
}

/// The same junk token sent again is refused from memory (no second
/// check), and however many distinct junk tokens arrive, the memory of
/// them stays within its bound.
#[tokio::test]
async fn refusals_are_remembered_within_a_bound() {
    let k = key(12);
    let edge = edge_with_vars(&[&k], &[("EDGE_AUTH_FAILURES", "off".to_owned())]).await;
    let real = mint(&TokenSigner::eddsa(&k));
    let client = reqwest::Client::new();
    let junk = junk_signed(&real, 0);
    let first: Value = resolve_from(&client, &edge, &junk).await.json().await.unwrap();
    let again: Value = resolve_from(&client, &edge, &junk).await.json().await.unwrap();
    assert_eq!(first, again, "a remembered refusal says what the check said");
    let metrics = text(&edge, "/metrics").await;
    assert!(
        metrics.contains(r#"nexus_edge_auth_refusals_total{answer="remembered"} 1"#),
        "{metrics}"
    );
    // The bound is about memory, not checks: tokens naming a key the edge
    // does not hold are refused before any signature check (a debug build
    // checks Ed25519 slowly), and remembered all the same.
    let stranger = mint(&TokenSigner::eddsa(&key(99)));
    let bound = nexus_edge::refusals::REFUSAL_CAPACITY;
    let sent = Arc::new(std::sync::atomic::AtomicU32::new(1));
    let url = format!("http://{}/api/aliases/resolve/frontend/user-profile", edge.addr);
    let mut flood = tokio::task::JoinSet::new();
    for _ in 0..16 {
        let (sent, url, stranger) = (sent.clone(), url.clone(), stranger.clone());
        flood.spawn(async move {
            let client = reqwest::Client::new();
            loop {
                let n = sent.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if n as usize > bound + 500 {
                    return;
                }
                let res = client.get(&url).bearer_auth(junk_signed(&stranger, n)).send().await;
                assert_eq!(res.unwrap().status().as_u16(), 401);
            }
        });
    }
    while let Some(done) = flood.join_next().await {
        done.unwrap();
    }
    let status: Value = serde_json::from_str(&text(&edge, "/api/aliases/status").await).unwrap();
    let held = status["status"]["auth"]["refusals_remembered"].as_u64().unwrap();
    assert!(held > 0 && held as usize <= bound, "{held} refusals held, bound {bound}");
    assert_eq!(resolve(&edge, &real).await.0, 200, "the real token was never refused");
    edge.stop().await;
}
