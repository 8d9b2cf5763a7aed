//! The admin console in a real browser (headless Chromium through
//! WebDriver) against the real control plane, PostgreSQL, Redis and edges.
//! `NEXUS_CONSOLE_SCREENSHOTS=control-plane/docs/console` refreshes the
//! README's screenshots. `perf.rs` holds the (ignored) 100,000-alias
//! timing run.

mod browser;
mod http;
mod perf;
mod rig;

use std::time::Instant;

use nexus_protocol::{ContextScope, Role, TokenSigner};

use browser::Browser;
use rig::{PATIENCE, SECRET, System};

macro_rules! browser {
    ($sys:expr) => {
        match Browser::open(&$sys.url("")).await {
            Some(b) => b,
            None => return,
        }
    };
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alias_created_on_the_page_resolves_on_the_edges_and_the_fleet_page_follows() {
    let sys = System::start(&["eu-west", "us-east"]).await;
    let (_, admin) = sys.key("ops", Role::Admin, &["*"]).await;
    let b = browser!(sys);
    b.sign_in(&admin).await;
    b.js_ready().await;

    b.goto("/console/aliases/new").await;
    b.fill("#context", "frontend").await;
    b.fill("#alias", "console-hello").await;
    b.fill("#canonical", "https://api.nexus.com/v1/hello").await;
    b.fill("#description", "Made in the console").await;
    b.click("form.stack button[type=submit]").await;
    b.wait_text("p.notice", "Alias created").await;
    assert!(b.text("#record-canonical").await.contains("https://api.nexus.com/v1/hello"));
    assert!(b.text("#history").await.contains("alias.create"), "history shows the change");
    b.screenshot("alias").await;
    sys.wait_resolved_everywhere("frontend", "console-hello", "https://api.nexus.com/v1/hello")
        .await;

    // The fleet page, left open, shows both edges reach the next version
    // (its table reloads itself: no navigation here).
    b.goto("/console/fleet").await;
    b.js_ready().await;
    for e in &sys.edges {
        b.find(&format!("tr[data-edge='edge-{}']", e.region)).await;
    }
    let before = sys.store.registry_head().await.unwrap().version;
    assert_eq!(
        sys.create(&admin, "frontend", "fleet-next", "https://api.nexus.com/v1/next").await,
        201
    );
    let next = (before + 1).to_string();
    b.wait_text(".registry-version", &next).await;
    for e in &sys.edges {
        let row = format!("tr[data-edge='edge-{}']", e.region);
        b.wait_text(&format!("{row} .edge-version"), &next).await;
        b.wait_text(&row, "current").await;
    }
    b.screenshot("fleet").await;

    // The overview: version, aliases per context, fleet by region.
    b.goto("/console").await;
    b.js_ready().await;
    assert_eq!(b.text("#registry-version").await, next);
    let page = b.text("main").await;
    assert!(
        page.contains("frontend") && page.contains("eu-west") && page.contains("us-east"),
        "{page}"
    );
    b.screenshot("overview").await;
    b.goto("/console/aliases").await;
    b.js_ready().await;
    assert!(b.text("#aliases").await.contains("console-hello"));
    b.screenshot("aliases").await;
    b.goto("/console/governance").await;
    assert!(b.text("main").await.contains("allowed_schemes"));
    b.screenshot("governance").await;
    b.close().await;
    sys.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_conflict_made_on_the_page_is_resolved_on_the_page() {
    let sys = System::start(&[]).await;
    let (_, admin) = sys.key("ops", Role::Admin, &["*"]).await;
    let b = browser!(sys);
    b.sign_in(&admin).await;
    for canonical in ["https://api.nexus.com/v1/old", "https://api.nexus.com/v1/new"] {
        b.goto("/console/aliases/new").await;
        b.fill("#context", "backend").await;
        b.fill("#alias", "orders").await;
        b.fill("#canonical", canonical).await;
        b.click("form.stack button[type=submit]").await;
        b.find("main").await;
    }
    let refused = b.wait_text("div.error", "duplicate conflict").await;
    assert!(refused.contains("Recorded as"), "{refused}");
    b.goto("/console/conflicts").await;
    b.js_ready().await;
    let section = b.text("section.conflict").await;
    assert!(section.contains("v1/old") && section.contains("v1/new"), "both sides: {section}");
    b.screenshot("conflicts").await;
    b.click("section.conflict form:nth-of-type(2) button").await;
    b.wait_text("p.notice", "Conflict resolved").await;
    b.goto("/console/aliases/backend/orders").await;
    assert!(
        b.text("#record-canonical").await.contains("v1/new"),
        "use incoming wrote the incoming side"
    );
    b.goto("/console/conflicts?status=resolved").await;
    assert!(b.text("main").await.contains("use_incoming"));
    b.close().await;
    sys.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_governance_violation_is_shown_next_to_its_field_naming_the_rule() {
    let sys = System::start(&[]).await;
    let (_, editor) = sys.key("team", Role::Editor, &["frontend"]).await;
    let b = browser!(sys);
    b.sign_in(&editor).await;
    b.goto("/console/aliases/new").await;
    b.fill("#context", "frontend").await;
    b.fill("#alias", "admin").await;
    b.fill("#canonical", "https://api.nexus.com/v1/a").await;
    b.click("form.stack button[type=submit]").await;
    let e = b.wait_text("#alias-error", "reserved_names").await;
    assert!(e.contains("governance rule"), "{e}");
    assert_eq!(b.find("#alias").await.attr("aria-invalid").await.unwrap().as_deref(), Some("true"));

    assert_eq!(sys.create(&editor, "frontend", "profile", "https://api.nexus.com/v1/p").await, 201);
    b.goto("/console/aliases/frontend/profile").await;
    b.fill("#canonical", "http://api.nexus.com/v1/p").await;
    b.click("form.stack button[type=submit]").await;
    let e = b.wait_text("#canonical-error", "allowed_schemes").await;
    assert!(e.contains("governance rule allowed_schemes"), "{e}");
    b.screenshot("governance-error").await;
    // Nothing was written.
    b.goto("/console/aliases/frontend/profile").await;
    assert!(b.text("#record-canonical").await.contains("https://api.nexus.com/v1/p"));
    b.close().await;
    sys.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_the_chain_finds_a_row_tampered_with_in_the_database() {
    let sys = System::start(&[]).await;
    let (_, admin) = sys.key("ops", Role::Admin, &["*"]).await;
    for i in 0..5 {
        let c = format!("https://api.nexus.com/v1/{i}");
        assert_eq!(sys.create(&admin, "frontend", &format!("a{i}"), &c).await, 201);
    }
    let b = browser!(sys);
    b.sign_in(&admin).await;
    b.goto("/console/audit").await;
    b.click("#verify").await;
    b.wait_text("#verify-result", "The chain is intact").await;
    b.js_ready().await;
    b.screenshot("audit").await;

    let sql = sys.sql().await;
    let row = sql
        .query_one(
            "SELECT id FROM audit_logs WHERE action = 'alias.create' ORDER BY id LIMIT 1 OFFSET 2",
            &[],
        )
        .await
        .unwrap();
    let id: i32 = row.get(0);
    sql.execute("UPDATE audit_logs SET details = 'edited by hand' WHERE id = $1", &[&id])
        .await
        .unwrap();
    b.goto("/console/audit").await;
    b.click("#verify").await;
    b.wait_text("#verify-result", "The chain is broken").await;
    assert_eq!(b.text("#first-bad").await, id.to_string());
    assert!(
        b.exists(&format!("#verify-result tr#audit-{id}.bad-row")).await,
        "the bad row is shown"
    );
    b.screenshot("audit-broken").await;

    // The filters narrow the rows.
    b.goto("/console/audit?action=api_key.create").await;
    let rows = b.text("#audit").await;
    assert!(rows.contains("api_key.create") && !rows.contains("alias.create"), "{rows}");
    b.close().await;
    sys.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_viewer_sees_no_write_controls_and_a_forged_write_is_refused() {
    let sys = System::start(&[]).await;
    let (_, admin) = sys.key("ops", Role::Admin, &["*"]).await;
    let (_, viewer) = sys.key("watcher", Role::Viewer, &["*"]).await;
    assert_eq!(sys.create(&admin, "frontend", "seen", "https://api.nexus.com/v1/s").await, 201);
    assert_eq!(sys.create(&admin, "system", "seen", "https://api.nexus.com/v1/t").await, 201);
    let b = browser!(sys);
    b.sign_in(&viewer).await;
    b.goto("/console/aliases").await;
    assert!(b.text("#aliases").await.contains("seen"));
    assert!(!b.exists("a[href='/console/aliases/new']").await, "no New alias link");
    b.goto("/console/aliases/frontend/seen").await;
    assert!(b.exists("#record").await);
    assert!(
        !b.exists("form[method=post][action*='/console/aliases/']").await,
        "no edit or deactivate form"
    );
    b.goto("/console/conflicts?status=all").await;
    assert!(!b.exists("form[action*='/resolve']").await, "no resolve buttons");
    let nav = b.text("header nav").await;
    assert!(!nav.contains("Import") && !nav.contains("API keys"), "{nav}");

    // A forged write: a form built in the page with the session's own
    // token, posted to the deactivate route. The server decides: 403.
    b.goto("/console/aliases/frontend/seen").await;
    b.client
        .execute(
            "const f = document.createElement('form'); f.method = 'post'; \
             f.action = '/console/aliases/frontend/seen/deactivate'; \
             const t = document.querySelector('input[name=csrf]').cloneNode(); f.appendChild(t); \
             document.body.appendChild(f); f.submit();",
            vec![],
        )
        .await
        .unwrap();
    b.wait_text("main h1", "403").await;
    assert!(b.text("main").await.contains("may not WriteAliases"));
    let still = sys.store.alias(&key("frontend", "seen")).await.unwrap().unwrap();
    assert!(still.is_active, "the forged write changed nothing");
    b.goto("/console/keys").await;
    b.wait_text("main h1", "403").await;
    b.close().await;
    sys.stop().await;
}

fn key(context: &str, alias: &str) -> nexus_protocol::AliasKey {
    nexus_protocol::AliasKey {
        context: nexus_protocol::Context::parse(context).unwrap(),
        alias: nexus_protocol::AliasName::parse(alias).unwrap(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cross_site_form_post_is_refused() {
    let sys = System::start(&[]).await;
    let (_, admin) = sys.key("ops", Role::Admin, &["*"]).await;
    let s = http::Session::sign_in(&sys, &admin).await;
    let form = |csrf: &str| {
        vec![
            ("csrf", csrf.to_owned()),
            ("context", "frontend".to_owned()),
            ("alias", "forged".to_owned()),
            ("canonical", "https://api.nexus.com/v1/f".to_owned()),
        ]
    };
    let csrf = s.csrf("/console/aliases/new").await;
    // Another site's page posting the form (its Origin), token and all.
    let (status, body) =
        s.post("/console/aliases", &form(&csrf), Some("http://evil.example")).await;
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("another site"), "{body}");
    let (status, _) =
        s.post_with("/console/aliases", &form(&csrf), &[("sec-fetch-site", "cross-site")]).await;
    assert_eq!(status, 403);
    // No token, or another token: refused too.
    let (status, body) = s.post("/console/aliases", &form(""), Some(&sys.url(""))).await;
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("anti-forgery token"), "{body}");
    let (status, _) = s.post("/console/aliases", &form("AAAA"), None).await;
    assert_eq!(status, 403);
    assert!(sys.store.alias(&key("frontend", "forged")).await.unwrap().is_none());
    // The same form from the console itself goes through (the test can fail).
    let (status, _) = s.post("/console/aliases", &form(&csrf), Some(&sys.url(""))).await;
    assert_eq!(status, 303);
    assert!(sys.store.alias(&key("frontend", "forged")).await.unwrap().is_some());
    // A sign-in posted from another site is refused as well (login CSRF).
    let res = reqwest::Client::new()
        .post(sys.url("/console/sign-in"))
        .header("origin", "http://evil.example")
        .form(&[("credential", admin.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    // Reached over TLS (the browser's Origin says https, as behind a TLS
    // proxy or with API_TLS_CERT): the cookie is Secure; over plain HTTP not.
    let https = sys.url("").replace("http://", "https://");
    for (origin, secure) in [(https.as_str(), true), (&*sys.url(""), false)] {
        let res = http::client()
            .post(sys.url("/console/sign-in"))
            .header("origin", origin)
            .form(&[("credential", admin.as_str())])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 303);
        let cookie = res.headers()["set-cookie"].to_str().unwrap().to_owned();
        assert_eq!(cookie.contains("; Secure"), secure, "{origin}: {cookie}");
    }
    sys.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_out_ends_the_session_and_a_revoked_key_ends_its_sessions() {
    let sys = System::start(&[]).await;
    let (id, admin) = sys.key("ops", Role::Admin, &["*"]).await;
    let b = browser!(sys);
    b.goto("/console").await;
    b.find("#credential").await;
    assert!(b.url().await.ends_with("/console/sign-in"), "no session: sent to sign in");
    b.screenshot("sign-in").await;
    b.sign_in(&admin).await;
    let cookie = b.client.get_named_cookie("nexus_console").await.unwrap();
    assert_eq!(cookie.http_only(), Some(true));
    assert_eq!(format!("{:?}", cookie.same_site()), "Some(Strict)");
    let replay = cookie.value().to_owned();
    b.click(".who button").await;
    b.wait_text("p.notice", "signed out").await;
    b.goto("/console/aliases").await;
    b.find("#credential").await;
    assert!(b.url().await.contains("/console/sign-in"));
    // The old cookie, replayed, opens nothing.
    let res = http::client()
        .get(sys.url("/console/aliases"))
        .header("cookie", format!("nexus_console={replay}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);

    // Revoking the key (on the keys page, from another admin's session)
    // ends the first key's session at its next request.
    let (_, other) = sys.key("other-admin", Role::Admin, &["*"]).await;
    b.sign_in(&admin).await;
    let s2 = http::Session::sign_in(&sys, &other).await;
    let csrf = s2.csrf("/console/keys").await;
    let (status, _) =
        s2.post(&format!("/console/keys/{id}/revoke"), &[("csrf", csrf)], Some(&sys.url(""))).await;
    assert_eq!(status, 303);
    b.goto("/console/aliases").await;
    b.wait_text("p.notice", "no longer accepted").await;
    b.close().await;
    sys.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_signs_in_and_keys_are_created_once_listed_and_revoked() {
    let sys = System::start(&[]).await;
    let now = chrono::Utc::now().timestamp();
    let token = TokenSigner::hs256(SECRET.as_bytes()).mint(
        "alice",
        Role::Admin,
        ContextScope::All,
        now,
        600,
    );
    let b = browser!(sys);
    b.sign_in(&token).await;
    assert!(b.text(".who").await.contains("alice"));
    b.goto("/console/keys").await;
    b.fill("#name", "ci-bot").await;
    b.find("#role").await.select_by_value("editor").await.unwrap();
    b.fill("#contexts", "frontend, backend").await;
    b.click("form.stack button[type=submit]").await;
    let key = b.text("#new-key").await;
    assert!(key.starts_with("nxk_"), "{key}");
    b.screenshot("keys").await;
    b.goto("/console/keys").await;
    let listed = b.text("#keys").await;
    assert!(listed.contains("ci-bot") && !listed.contains(&key), "listed without its secret");
    // The key shown works, once.
    let s = http::Session::sign_in(&sys, &key).await;
    assert!(s.get("/console/aliases").await.0 == 200);
    b.click("#keys button.danger").await;
    b.wait_text("p.notice", "revoked").await;
    assert_eq!(s.get("/console/aliases").await.0, 303, "revoked: the key's session ended");

    // Import: a file's plan, then applying it.
    b.goto("/console/import").await;
    let file = "aliases:\n  - {context: frontend, alias: imp-one, canonical: 'https://api.nexus.com/v1/1'}\n  \
                - {context: frontend, alias: imp-two, canonical: 'https://api.nexus.com/v1/2'}\n";
    b.find("#file").await.send_keys(file).await.unwrap();
    b.click("form.stack button[type=submit]").await;
    let plan = b.wait_text("#plan-summary", "2 to create").await;
    assert!(plan.contains("0 to update"), "{plan}");
    assert!(b.text("#plan").await.contains("imp-two"));
    b.screenshot("import").await;
    assert!(sys.store.alias(&key_of("imp-one")).await.unwrap().is_none(), "a plan writes nothing");
    b.click("#apply").await;
    b.wait_text("#applied", "2 created").await;
    assert!(sys.store.alias(&key_of("imp-one")).await.unwrap().is_some());

    // Phone width: the page still reads (no horizontal scroll of the page).
    b.client.set_window_size(390, 844).await.unwrap();
    b.goto("/console").await;
    let overflow = b
        .client
        .execute("return document.documentElement.scrollWidth - window.innerWidth", vec![])
        .await
        .unwrap();
    assert!(overflow.as_i64().unwrap_or(0) <= 0, "page wider than the phone: {overflow}");
    b.screenshot("overview-phone").await;
    b.close().await;
    sys.stop().await;
}

fn key_of(alias: &str) -> nexus_protocol::AliasKey {
    key("frontend", alias)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_page_is_reachable_by_keyboard_and_every_control_is_labelled() {
    let sys = System::start(&[]).await;
    let (_, admin) = sys.key("ops", Role::Admin, &["*"]).await;
    assert_eq!(sys.create(&admin, "frontend", "kbd", "https://api.nexus.com/v1/k").await, 201);
    let b = browser!(sys);
    b.sign_in(&admin).await;
    let pages = [
        "/console",
        "/console/aliases",
        "/console/aliases/new",
        "/console/aliases/frontend/kbd",
        "/console/conflicts",
        "/console/audit",
        "/console/fleet",
        "/console/import",
        "/console/keys",
        "/console/governance",
    ];
    // Every input, select and textarea has a label (wrapping, for=, or
    // aria-label); hidden inputs excepted.
    let unlabelled = "return [...document.querySelectorAll('input:not([type=hidden]),select,textarea')]\
        .filter(e => !(e.labels && e.labels.length) && !e.getAttribute('aria-label'))\
        .map(e => e.name || e.id)";
    for p in pages {
        b.goto(p).await;
        b.find("main h1").await;
        let missing = b.client.execute(unlabelled, vec![]).await.unwrap();
        assert_eq!(missing, serde_json::json!([]), "unlabelled controls on {p}");
    }
    // The keyboard: Tab from the top reaches the skip link, then the nav.
    b.goto("/console").await;
    let deadline = Instant::now() + PATIENCE;
    let mut seen = Vec::new();
    let body = b.find("body").await;
    for _ in 0..4 {
        body.send_keys("\u{e004}").await.unwrap();
        let active = b
            .client
            .execute("return document.activeElement.textContent.trim()", vec![])
            .await
            .unwrap();
        seen.push(active.as_str().unwrap_or_default().to_owned());
        assert!(Instant::now() < deadline);
    }
    assert!(seen.iter().any(|s| s == "Skip to content"), "{seen:?}");
    assert!(seen.iter().any(|s| s == "Overview" || s == "Aliases"), "{seen:?}");
    b.close().await;
    sys.stop().await;
}
