use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use nexus_harness::spawn_app;
use nexus_protocol::Role;

const CANON: &str = "https://api.nexus.com/x";

/// Every admin route × role, with a token scoped to `frontend`. The answer
/// is either "allowed" (anything but 401/403) or 403: `forbidden` for role
/// or context, `not_owner` for an editor on an alias another owns (root
/// created `fe`; the editor owns `new`, which it creates).
#[tokio::test]
async fn rbac_table_over_every_route() {
    let app = spawn_app().await;
    app.create("frontend", "fe", CANON).await;
    app.create("backend", "be", CANON).await;
    let (_, c) = app.create("frontend", "fe", "https://api.nexus.com/other").await;
    let conflict = c["conflict_id"].as_i64().unwrap();
    let (_, gov) = app.get("/api/admin/governance").await;

    struct Route {
        method: Method,
        path: String,
        body: Option<Value>,
        // admin, editor, viewer, resolver
        allowed: [bool; 4],
        // A role the table allows to write is refused here by ownership.
        owned_by_another: bool,
    }
    let r = |method: Method, path: &str, body: Option<Value>, allowed: [bool; 4]| Route {
        method,
        path: path.to_owned(),
        body,
        allowed,
        owned_by_another: false,
    };
    let roots = |method: Method, path: &str, body: Option<Value>| Route {
        owned_by_another: true,
        ..r(method, path, body, [true, false, false, false])
    };
    let routes = vec![
        r(Method::GET, "/api/aliases/resolve/frontend/fe", None, [true, true, true, true]),
        r(Method::GET, "/api/aliases/resolve/backend/be", None, [true, false, false, false]),
        r(Method::GET, "/api/admin/aliases?context=frontend", None, [true, true, true, false]),
        r(Method::GET, "/api/admin/aliases?context=backend", None, [true, false, false, false]),
        r(Method::GET, "/api/admin/aliases", None, [true, true, true, false]),
        r(Method::GET, "/api/admin/aliases/frontend/fe", None, [true, true, true, false]),
        r(Method::GET, "/api/admin/aliases/backend/be", None, [true, false, false, false]),
        r(
            Method::POST,
            "/api/admin/aliases",
            Some(json!({"context":"frontend","alias":"new","canonical":CANON})),
            [true, true, false, false],
        ),
        r(
            Method::POST,
            "/api/admin/aliases",
            Some(json!({"context":"backend","alias":"new","canonical":CANON})),
            [true, false, false, false],
        ),
        roots(Method::PUT, "/api/admin/aliases/frontend/fe", Some(json!({"description":"d"}))),
        r(
            Method::PUT,
            "/api/admin/aliases/frontend/new",
            Some(json!({"description":"d"})),
            [true, true, false, false],
        ),
        r(
            Method::POST,
            "/api/admin/aliases/frontend/fe/owner",
            Some(json!({"owner":"root"})),
            [true, false, false, false],
        ),
        r(
            Method::POST,
            "/api/admin/aliases/import",
            Some(
                json!({"aliases":[{"context":"frontend","alias":"imp","canonical":CANON}],"dry_run":true}),
            ),
            [true, true, false, false],
        ),
        r(Method::GET, "/api/admin/conflicts", None, [true, true, true, false]),
        r(
            Method::POST,
            &format!("/api/admin/conflicts/{conflict}/resolve"),
            Some(json!({"resolution":"keep_existing"})),
            [true, true, false, false],
        ),
        r(Method::GET, "/api/admin/audit", None, [true, false, false, false]),
        r(Method::GET, "/api/admin/audit/verify", None, [true, false, false, false]),
        r(Method::GET, "/api/admin/governance", None, [true, false, false, false]),
        r(Method::PUT, "/api/admin/governance", Some(gov.clone()), [true, false, false, false]),
        r(
            Method::POST,
            "/api/admin/api-keys",
            Some(json!({"name":"k","role":"viewer","contexts":["frontend"]})),
            [true, false, false, false],
        ),
        r(Method::DELETE, "/api/admin/api-keys/424242", None, [true, false, false, false]),
        r(Method::GET, "/api/admin/edges", None, [true, false, false, false]),
        roots(Method::DELETE, "/api/admin/aliases/frontend/fe", None),
        r(Method::DELETE, "/api/admin/aliases/frontend/new", None, [true, true, false, false]),
    ];
    let roles = [Role::Admin, Role::Editor, Role::Viewer, Role::Resolver];
    // Writes go last for each role so earlier checks see the same data; the
    // admin (allowed everything) runs last.
    for (i, role) in roles.iter().enumerate().rev() {
        let token = app.token(*role, &["frontend"]);
        for route in &routes {
            let (s, body) = app
                .call(route.method.clone(), &route.path, Some(&token), route.body.as_ref())
                .await;
            if route.allowed[i] {
                assert!(
                    s != StatusCode::FORBIDDEN && s != StatusCode::UNAUTHORIZED,
                    "{role:?} {} {} → {s} {body}",
                    route.method,
                    route.path
                );
            } else {
                assert_eq!(
                    s,
                    StatusCode::FORBIDDEN,
                    "{role:?} {} {} → {body}",
                    route.method,
                    route.path
                );
                let code = if route.owned_by_another && *role == Role::Editor {
                    "not_owner"
                } else {
                    "forbidden"
                };
                assert_eq!(body["error"], code, "{role:?} {} {}", route.method, route.path);
            }
        }
    }
}

#[tokio::test]
async fn listings_are_narrowed_to_the_callers_contexts() {
    let app = spawn_app().await;
    app.create("frontend", "fe", CANON).await;
    app.create("backend", "be", CANON).await;
    app.create("backend", "be", "https://api.nexus.com/other").await;
    let viewer = app.token(Role::Viewer, &["frontend"]);
    let (s, list) = app.call(Method::GET, "/api/admin/aliases", Some(&viewer), None).await;
    assert_eq!(s, StatusCode::OK);
    let contexts: Vec<&str> =
        list["items"].as_array().unwrap().iter().map(|a| a["context"].as_str().unwrap()).collect();
    assert_eq!(contexts, ["frontend"]);
    let (_, conflicts) = app.call(Method::GET, "/api/admin/conflicts", Some(&viewer), None).await;
    assert!(conflicts["items"].as_array().unwrap().is_empty());
    let (_, all) = app.get("/api/admin/conflicts").await;
    assert_eq!(all["items"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn missing_bad_and_expired_credentials_are_401() {
    let app = spawn_app().await;
    let path = "/api/admin/aliases";
    let (s, e) = app.call(Method::GET, path, None, None).await;
    assert_eq!((s, e["error"].as_str()), (StatusCode::UNAUTHORIZED, Some("unauthorized")));
    let (s, _) = app.call(Method::GET, path, Some("not-a-token"), None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let other = nexus_protocol::TokenSigner::hs256(b"another-secret-another-secret-123456");
    let forged = other.mint(
        "x",
        Role::Admin,
        nexus_protocol::ContextScope::All,
        chrono::Utc::now().timestamp(),
        60,
    );
    let (s, _) = app.call(Method::GET, path, Some(&forged), None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let expired = app.signer.mint(
        "x",
        Role::Admin,
        nexus_protocol::ContextScope::All,
        chrono::Utc::now().timestamp() - 3600,
        60,
    );
    let (s, _) = app.call(Method::GET, path, Some(&expired), None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    // Service endpoints are open.
    let (s, h) = app.call(Method::GET, "/api/aliases/health", None, None).await;
    assert_eq!((s, h["status"].as_str()), (StatusCode::OK, Some("ok")));
    let res = app.http.get(app.url("/metrics")).send().await.unwrap();
    let text = res.text().await.unwrap();
    assert!(text.contains("nexus_cp_db_up 1"), "{text}");
    assert!(text.contains("nexus_cp_http_requests_total"), "{text}");
    // PROMETHEUS_ENABLED=false (what `serve` stores at start) hides it.
    app.state.prometheus_enabled.store(false, std::sync::atomic::Ordering::Relaxed);
    let res = app.http.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn api_key_lifecycle() {
    let app = spawn_app().await;
    let (s, k) = app
        .post("/api/admin/api-keys", &json!({"name":"ci","role":"editor","contexts":["frontend"]}))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{k}");
    let key = k["key"].as_str().unwrap().to_owned();
    assert!(key.starts_with("nxk_") && key.len() >= 4 + 43);
    let id = k["id"].as_i64().unwrap();

    let body = json!({"context":"frontend","alias":"by-key","canonical":CANON});
    let (s, a) = app.call(Method::POST, "/api/admin/aliases", Some(&key), Some(&body)).await;
    assert_eq!(s, StatusCode::CREATED, "{a}");
    assert_eq!(a["created_by"], format!("api_key:{id}:ci"));
    let body = json!({"context":"backend","alias":"by-key","canonical":CANON});
    let (s, _) = app.call(Method::POST, "/api/admin/aliases", Some(&key), Some(&body)).await;
    assert_eq!(s, StatusCode::FORBIDDEN);

    // Only the digest is stored.
    let db = app.sql().await;
    let stored: Vec<u8> =
        db.query_one("SELECT key_digest FROM api_keys", &[]).await.unwrap().get(0);
    assert_eq!(stored.len(), 32);
    let (_, audit) = app.get("/api/admin/audit?limit=1000").await;
    assert!(!audit.to_string().contains(&key[4..]));

    let (s, _) = app.delete(&format!("/api/admin/api-keys/{id}")).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, e) = app.call(Method::GET, "/api/admin/aliases", Some(&key), None).await;
    assert_eq!((s, e["error"].as_str()), (StatusCode::UNAUTHORIZED, Some("unauthorized")));
    let (s, _) = app.delete(&format!("/api/admin/api-keys/{id}")).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let forged = format!("nxk_{}", "A".repeat(43));
    let (s, _) = app.call(Method::GET, "/api/admin/aliases", Some(&forged), None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
}

/// A control plane that verifies with `verifier` (EdDSA keys, say), on its
/// own fresh database; the database is dropped with the guard.
struct KeyedApp {
    addr: std::net::SocketAddr,
    http: reqwest::Client,
    db: String,
    state: nexus_control_plane::web::Shared,
}

impl Drop for KeyedApp {
    fn drop(&mut self) {
        nexus_harness::drop_database(self.db.clone());
    }
}

impl KeyedApp {
    async fn start(verifier: nexus_protocol::TokenVerifier) -> Self {
        use nexus_control_plane::config::DbConfig;
        use nexus_control_plane::domain::governance::Governance;
        use nexus_control_plane::{server, store::Store};
        let db = nexus_harness::fresh_database().await;
        let store = Store::new(&DbConfig::new(&nexus_harness::url_for(&db))).unwrap();
        store.migrate().await.unwrap();
        let gov = Governance::from_yaml(nexus_harness::GOVERNANCE).unwrap();
        let state = server::prepare(store, verifier, gov).await.unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(server::serve(listener, state.clone(), None, std::future::pending()));
        Self { addr, http: reqwest::Client::new(), db, state }
    }

    async fn get(&self, path: &str, token: Option<&str>) -> (StatusCode, Value) {
        let mut req = self.http.get(format!("http://{}{path}", self.addr));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let res = req.send().await.unwrap();
        let status = res.status();
        (status, res.json().await.unwrap_or(Value::Null))
    }
}

mod keys {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use ed25519_dalek::Signer as _;
    use nexus_protocol::jwk::PublicKey;
    use nexus_protocol::signing::SigningKey;
    use nexus_protocol::{AUDIENCE, ContextScope, Role, TokenSigner};
    use serde_json::{Value, json};

    pub fn key(seed: u8) -> SigningKey {
        SigningKey::from_bytes(&[seed; 32])
    }

    pub fn public(k: &SigningKey) -> PublicKey {
        PublicKey::new(k.verifying_key())
    }

    pub fn mint(signer: &TokenSigner, role: Role) -> String {
        signer.mint("kid-test", role, ContextScope::All, chrono::Utc::now().timestamp(), 300)
    }

    /// An EdDSA token from raw JSON, as PyJWT would build it.
    pub fn by_hand(header: &Value, claims: &Value, key: &SigningKey) -> String {
        let seg = |v: &Value| URL_SAFE_NO_PAD.encode(v.to_string());
        let msg = format!("{}.{}", seg(header), seg(claims));
        format!("{msg}.{}", URL_SAFE_NO_PAD.encode(key.sign(msg.as_bytes()).to_bytes()))
    }

    pub fn header(key: &SigningKey) -> Value {
        json!({"alg": "EdDSA", "typ": "JWT", "kid": public(key).kid})
    }

    pub fn claims(iat: i64) -> Value {
        json!({"sub": "py", "role": "admin", "contexts": ["*"], "aud": AUDIENCE,
               "iat": iat, "exp": iat + 600})
    }
}

#[tokio::test]
async fn eddsa_tokens_rotation_and_rfc_8725_cases_on_the_control_plane() {
    use keys::*;
    use nexus_protocol::{TokenSigner, TokenVerifier};
    let (old, new, stranger) = (key(11), key(12), key(13));
    let app = KeyedApp::start(TokenVerifier::eddsa([public(&old), public(&new)])).await;
    let path = "/api/admin/aliases";
    for k in [&old, &new] {
        let (s, body) = app.get(path, Some(&mint(&TokenSigner::eddsa(k), Role::Admin))).await;
        assert_eq!(s, StatusCode::OK, "{body}");
    }
    let refused = |what: &'static str| {
        move |(s, body): (StatusCode, Value)| {
            assert_eq!(
                (s, body["error"].as_str()),
                (StatusCode::UNAUTHORIZED, Some("unauthorized")),
                "{what}: {body}"
            );
            body["message"].as_str().unwrap_or_default().to_owned()
        }
    };
    let m = refused("unknown kid")(
        app.get(path, Some(&mint(&TokenSigner::eddsa(&stranger), Role::Admin))).await,
    );
    assert!(m.contains("key id"), "{m}");
    for secret in [&b"test-secret-test-secret-test-secret-0123"[..], b"anything"] {
        refused("hs256")(
            app.get(path, Some(&mint(&TokenSigner::hs256(secret), Role::Admin))).await,
        );
    }
    let now = chrono::Utc::now().timestamp();
    let mut crit = header(&new);
    crit["crit"] = json!(["exp"]);
    let m = refused("crit")(app.get(path, Some(&by_hand(&crit, &claims(now), &new))).await);
    assert!(m.contains("crit"), "{m}");
    let m = refused("future iat")(
        app.get(path, Some(&by_hand(&header(&new), &claims(now + 3600), &new))).await,
    );
    assert!(m.contains("future"), "{m}");
    let mut many = claims(now);
    many["aud"] = json!(["other", nexus_protocol::AUDIENCE]);
    let (s, body) = app.get(path, Some(&by_hand(&header(&new), &many, &new))).await;
    assert_eq!(s, StatusCode::OK, "aud array: {body}");
    many["aud"] = json!(["other"]);
    refused("aud array without us")(
        app.get(path, Some(&by_hand(&header(&new), &many, &new))).await,
    );
    let _ = &app.state;
}

#[tokio::test]
async fn jwks_serves_the_public_keys_verifiers_need() {
    use keys::*;
    use nexus_protocol::{TokenSigner, TokenVerifier, jwk};
    let (k1, k2) = (key(21), key(22));
    let app = KeyedApp::start(TokenVerifier::eddsa([public(&k1), public(&k2)])).await;
    let res = app.http.get(format!("http://{}/.well-known/jwks.json", app.addr)).send().await;
    let res = res.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["cache-control"], "max-age=300");
    let doc: Value = res.json().await.unwrap();
    assert_eq!(doc["keys"][0]["kid"], public(&k1).kid);
    assert_eq!(doc["keys"][1]["crv"], "Ed25519");
    assert!(doc.to_string().find("\"d\"").is_none());
    // What an edge does with it: parse it, verify a token of the signer.
    let keys = jwk::parse_verify_keys(&doc.to_string()).unwrap();
    let token = mint(&TokenSigner::eddsa(&k2), Role::Resolver);
    assert!(TokenVerifier::eddsa(keys).verify(&token).is_ok());
}

#[test]
fn the_token_command_signs_eddsa_and_caps_the_ttl() {
    use nexus_protocol::{TokenVerifier, jwk};
    let key = keys::key(31);
    let run = |ttl: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_nexus-control-plane"))
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("LOG_LEVEL", "warn")
            .env("DATABASE_URL", "postgres://nobody@127.0.0.1:1/none")
            .env("NEXUS_TOKEN_SIGNING_KEY", jwk::signing_key_pem(&key))
            .env("TOKEN_MAX_TTL", "3600")
            .args(["token", "--sub", "ci", "--role", "resolver", "--ttl", ttl])
            .output()
            .unwrap()
    };
    let out = run("3600");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let token = String::from_utf8(out.stdout).unwrap();
    let claims = TokenVerifier::eddsa([keys::public(&key)]).verify(token.trim()).unwrap();
    assert_eq!((claims.exp - claims.iat, claims.role), (3600, Role::Resolver));
    assert!(claims.jti.is_some());

    let out = run("3601");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("TOKEN_MAX_TTL") && stderr.contains("3601"), "{stderr}");
    assert!(out.stdout.is_empty());
}

#[tokio::test]
async fn revocations_are_pruned_once_every_token_they_refuse_has_expired() {
    let app = spawn_app().await;
    for body in [json!({"jti": "old"}), json!({"jti": "live"}), json!({"sub": "gone"})] {
        let (s, e) = app.post("/api/admin/tokens/revoke", &body).await;
        assert_eq!(s, StatusCode::OK, "{body}: {e}");
    }
    let c = app.sql().await;
    // Time passes for two of them: every token they refuse has expired.
    c.execute("UPDATE revoked_tokens SET until = now() - interval '1 s' WHERE jti = 'old'", &[])
        .await
        .unwrap();
    c.execute("UPDATE revoked_subjects SET until = now() - interval '1 s'", &[]).await.unwrap();
    assert_eq!(app.store.prune_revocations().await.unwrap(), 2);
    let left: Vec<String> = c
        .query("SELECT jti FROM revoked_tokens", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(left, ["live"], "a revocation still in force is kept");
    let subjects: i64 =
        c.query_one("SELECT count(*) FROM revoked_subjects", &[]).await.unwrap().get(0);
    assert_eq!(subjects, 0);
    assert_eq!(app.store.prune_revocations().await.unwrap(), 0);
}
