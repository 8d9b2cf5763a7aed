//! The resolve contract of the design, as one table run against both
//! planes: the real control plane (its own test harness: a fresh
//! PostgreSQL database, the API on port 0, its publisher on a random Redis
//! prefix) and an edge synced from it, with tokens required on both. Every
//! case must get the same status and the same error code from each.
//!
//! The order under test: credentials (401 `unauthorized`) → name syntax
//! (400 `bad_request`) → token scope (403 `forbidden`) → context known
//! (400 `unknown_context`) → alias (404 `not_found`) → 200.
//!
//! "Unknown context" means "not configured in governance" on both planes:
//! the edge learns the configured contexts from the snapshot and from the
//! delta of a governance change. So a configured context without any alias
//! (`system`) is a 404 on both, and once governance drops a context
//! (`backend`, still holding an alias) it is a 400 on both.

use std::sync::Arc;

use nexus_edge::app::App;
use nexus_edge::auth::Authenticator;
use nexus_edge::connections::ConnectionCap;
use nexus_edge::metrics::Metrics;
use nexus_protocol::{ContextScope, Role, TokenSigner, TokenVerifier};
use reqwest::StatusCode;
use tokio::sync::oneshot;

use nexus_harness::LivePlane;
use nexus_harness::{FakePublisher, SyncEdge, redis_url, sync_config, wait_until};

/// Which credentials a case sends.
#[derive(Debug, Clone, Copy)]
enum Cred {
    None,
    /// Signed with another secret.
    Bad,
    /// A resolver token for `frontend` only.
    Frontend,
    /// A resolver token for every context.
    All,
}

/// One request and the one answer both planes must give.
struct Case {
    what: &'static str,
    cred: Cred,
    target: &'static str,
    status: u16,
    /// `{"error": ...}`, or `None` for 200.
    code: Option<&'static str>,
}

const CASES: &[Case] = &[
    Case {
        what: "no credentials",
        cred: Cred::None,
        target: "frontend/user-profile",
        status: 401,
        code: Some("unauthorized"),
    },
    Case {
        what: "bad credentials",
        cred: Cred::Bad,
        target: "frontend/user-profile",
        status: 401,
        code: Some("unauthorized"),
    },
    Case {
        what: "credentials before name syntax",
        cred: Cred::None,
        target: "frontend/bad%20name",
        status: 401,
        code: Some("unauthorized"),
    },
    Case {
        what: "bad name syntax",
        cred: Cred::All,
        target: "frontend/bad%20name",
        status: 400,
        code: Some("bad_request"),
    },
    Case {
        what: "name syntax before scope",
        cred: Cred::Frontend,
        target: "back%20end/billing",
        status: 400,
        code: Some("bad_request"),
    },
    Case {
        what: "known context out of scope",
        cred: Cred::Frontend,
        target: "backend/billing",
        status: 403,
        code: Some("forbidden"),
    },
    Case {
        what: "unknown context out of scope: scope first",
        cred: Cred::Frontend,
        target: "nowhere/billing",
        status: 403,
        code: Some("forbidden"),
    },
    Case {
        what: "unknown context in scope",
        cred: Cred::All,
        target: "nowhere/billing",
        status: 400,
        code: Some("unknown_context"),
    },
    Case {
        what: "unknown alias",
        cred: Cred::Frontend,
        target: "frontend/nope",
        status: 404,
        code: Some("not_found"),
    },
    Case {
        what: "found",
        cred: Cred::Frontend,
        target: "frontend/user-profile",
        status: 200,
        code: None,
    },
    Case {
        what: "found with an all-context token",
        cred: Cred::All,
        target: "backend/billing",
        status: 200,
        code: None,
    },
    Case {
        what: "configured context without aliases",
        cred: Cred::All,
        target: "system/anything",
        status: 404,
        code: Some("not_found"),
    },
];

/// The cases once governance no longer configures `backend`.
const AFTER_DROP: &[Case] = &[
    Case {
        what: "dropped context, its alias still stored",
        cred: Cred::All,
        target: "backend/billing",
        status: 400,
        code: Some("unknown_context"),
    },
    Case {
        what: "dropped context, unknown alias",
        cred: Cred::All,
        target: "backend/nope",
        status: 400,
        code: Some("unknown_context"),
    },
    Case {
        what: "dropped context out of scope: scope first",
        cred: Cred::Frontend,
        target: "backend/billing",
        status: 403,
        code: Some("forbidden"),
    },
    Case {
        what: "a kept context still resolves",
        cred: Cred::Frontend,
        target: "frontend/user-profile",
        status: 200,
        code: None,
    },
    Case {
        what: "a kept context without aliases",
        cred: Cred::All,
        target: "system/anything",
        status: 404,
        code: Some("not_found"),
    },
];

/// An HTTP edge that requires tokens (the control plane's test secret),
/// serving the state a synced edge keeps current.
struct AuthEdge {
    addr: std::net::SocketAddr,
    _stop: oneshot::Sender<()>,
}

impl AuthEdge {
    async fn over(synced: &SyncEdge) -> Self {
        let metrics = Arc::new(Metrics::new());
        let app = Arc::new(App {
            state: synced.state.clone(),
            auth: Some(Authenticator::new(TokenVerifier::hs256(nexus_harness::SECRET))),
            connections: ConnectionCap::new(100, metrics.clone()),
            prometheus: false,
            metrics,
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(nexus_edge::server::serve(listener, app, None, async move {
            let _ = stopped.await;
        }));
        Self { addr, _stop: stop }
    }
}

/// (status, error code) of one resolve request.
async fn ask(
    http: &reqwest::Client,
    base: &str,
    target: &str,
    token: Option<&str>,
) -> (u16, Option<String>) {
    let mut req = http.get(format!("{base}/api/aliases/resolve/{target}"));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    let body: serde_json::Value = res.json().await.unwrap_or(serde_json::Value::Null);
    (status, body["error"].as_str().map(str::to_owned))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_planes_give_every_request_the_same_answer() {
    let mut plane = LivePlane::start("nexus-contract").await;
    for (ctx, alias, canonical) in [
        ("frontend", "user-profile", "https://api.nexus.com/v1/users/profile"),
        ("backend", "billing", "https://api.nexus.com/v1/billing"),
    ] {
        let (status, body) = plane.app.create(ctx, alias, canonical).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    let (_, last) = plane.app.get("/api/admin/aliases/backend/billing").await;
    let version = last["version"].as_u64().unwrap();
    let synced = SyncEdge::start(sync_config(&plane.keys, &redis_url(), None)).await;
    wait_until(&format!("edge at version {version}"), || async {
        synced.state.is_loaded() && synced.state.version() >= version
    })
    .await;
    let edge = AuthEdge::over(&synced).await;

    let frontend = plane.app.token(Role::Resolver, &["frontend"]);
    let all = plane.app.token(Role::Resolver, &["*"]);
    let now = chrono::Utc::now().timestamp();
    let bad = TokenSigner::hs256(b"not-the-secret").mint(
        "x",
        Role::Resolver,
        ContextScope::All,
        now,
        600,
    );
    let http = reqwest::Client::new();
    let planes = [("control plane", plane.app.url("")), ("edge", format!("http://{}", edge.addr))];
    let run = async |cases: &[Case]| {
        let mut wrong = Vec::new();
        for case in cases {
            let token = match case.cred {
                Cred::None => None,
                Cred::Bad => Some(bad.as_str()),
                Cred::Frontend => Some(frontend.as_str()),
                Cred::All => Some(all.as_str()),
            };
            let want = (case.status, case.code.map(str::to_owned));
            for (name, base) in &planes {
                let got = ask(&http, base, case.target, token).await;
                if got != want {
                    wrong.push(format!(
                        "{}: {name} answered {got:?}, the contract says {want:?} ({:?} {})",
                        case.what, case.cred, case.target
                    ));
                }
            }
        }
        wrong
    };
    let wrong = run(CASES).await;
    assert!(wrong.is_empty(), "the planes disagree with the contract:\n{}", wrong.join("\n"));

    // Governance drops `backend`: the change takes a version, and the edge
    // has the new set once it is at that version.
    let (_, mut doc) = plane.app.get("/api/admin/governance").await;
    doc["contexts"].as_object_mut().unwrap().remove("backend").unwrap();
    let (status, body) = plane.app.put("/api/admin/governance", &doc).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let dropped = plane.app.store.registry_head().await.unwrap().version;
    assert_eq!(dropped, version + 1, "a change of the configured contexts takes a version");
    wait_until(&format!("edge at version {dropped}"), || async {
        synced.state.version() >= dropped
    })
    .await;
    let wrong = run(AFTER_DROP).await;
    assert!(wrong.is_empty(), "after the drop, the planes disagree:\n{}", wrong.join("\n"));

    drop(synced);
    // Stopped first, so it writes nothing under the prefix after cleanup.
    plane.stop_publisher().await;
    FakePublisher { keys: plane.keys.clone(), redis: nexus_harness::connect().await, epoch: 0 }
        .cleanup()
        .await;
}
