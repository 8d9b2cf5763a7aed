//! `nexusctl` run as an admin runs it, against the real control plane:
//! what it prints for people and for scripts, and the exit code of each
//! kind of failure.

use std::process::Output;

use nexus_protocol::Role;
use serde_json::Value;

use nexus_harness::{TestApp, spawn_app};

/// Runs `nexusctl ARGS` against `app` with `token`.
async fn ctl(app: &TestApp, token: &str, args: &[&str]) -> Output {
    nexus_harness::nexusctl(app.url(""), token, args).await
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[tokio::test]
async fn nexusctl_manages_aliases_with_meaningful_exit_codes() {
    let app = spawn_app().await;
    let admin = app.admin.clone();

    let out = ctl(
        &app,
        &admin,
        &["alias", "create", "frontend", "cart", "https://api.nexus.com/v1/cart"],
    )
    .await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let table = text(&out.stdout);
    assert!(table.starts_with("CONTEXT"), "{table}");
    assert!(
        table.contains("frontend") && table.contains("https://api.nexus.com/v1/cart"),
        "{table}"
    );

    // Scripts get JSON.
    let out = ctl(&app, &admin, &["-o", "json", "alias", "list", "--context", "frontend"]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let listed: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(listed["items"][0]["alias"], "cart");

    let out = ctl(&app, &admin, &["resolve", "frontend", "cart"]).await;
    assert!(text(&out.stdout).starts_with("https://api.nexus.com/v1/cart  (registry version"));

    // The same alias elsewhere: a conflict, exit 5, queued.
    let out = ctl(
        &app,
        &admin,
        &["alias", "create", "frontend", "cart", "https://api.nexus.com/v2/cart"],
    )
    .await;
    assert_eq!(out.status.code(), Some(5), "{}", text(&out.stderr));
    let out = ctl(&app, &admin, &["conflicts", "list"]).await;
    assert!(text(&out.stdout).contains("https://api.nexus.com/v2/cart"), "{}", text(&out.stdout));

    // Governance: exit 6, the rule named.
    let out =
        ctl(&app, &admin, &["alias", "create", "frontend", "evil", "https://evil.example/x"]).await;
    assert_eq!(out.status.code(), Some(6));
    assert!(text(&out.stderr).contains("governance rule allowed_hosts"), "{}", text(&out.stderr));

    // Not found: 4. Not allowed: 7. Nothing listening: 3.
    let out = ctl(&app, &admin, &["alias", "get", "frontend", "nope"]).await;
    assert_eq!(out.status.code(), Some(4), "{}", text(&out.stderr));
    let viewer = app.token(Role::Viewer, &["*"]);
    let out = ctl(&app, &viewer, &["alias", "rm", "frontend", "cart"]).await;
    assert_eq!(out.status.code(), Some(7), "{}", text(&out.stderr));
    let out = ctl(&app, "not-a-token", &["alias", "list"]).await;
    assert_eq!(out.status.code(), Some(7), "{}", text(&out.stderr));
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let dead = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_nexusctl"))
            .env_clear()
            .args(["--url", &dead, "alias", "list"])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert!(text(&out.stderr).contains("cannot reach the admin API"), "{}", text(&out.stderr));

    // What the registry holds now, as the file import takes.
    let out = ctl(&app, &admin, &["export", "--context", "frontend"]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let file = nexus_protocol::AliasFile::parse(&text(&out.stdout)).unwrap();
    assert_eq!(file.aliases.len(), 1);

    // Deactivate, and the chain still verifies.
    let out = ctl(&app, &admin, &["alias", "rm", "frontend", "cart"]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    // History: both versions, newest first; as of the first, the old answer.
    let out = ctl(&app, &admin, &["-o", "json", "alias", "history", "frontend", "cart"]).await;
    let history: Value = serde_json::from_slice(&out.stdout).unwrap();
    let items = history["items"].as_array().unwrap();
    assert_eq!(items.len(), 2, "{history}");
    assert_eq!(
        (items[0]["active"].as_bool(), items[1]["active"].as_bool()),
        (Some(false), Some(true))
    );
    let first = items[1]["version"].to_string();
    let out = ctl(&app, &admin, &["resolve", "frontend", "cart", "--as-of", &first]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout)
            .starts_with(&format!("https://api.nexus.com/v1/cart  (registry version {first})"))
    );
    let out = ctl(&app, &admin, &["resolve", "frontend", "cart"]).await;
    assert_eq!(out.status.code(), Some(4), "{}", text(&out.stdout));
    let out = ctl(&app, &admin, &["alias", "get", "frontend", "cart"]).await;
    assert!(text(&out.stdout).contains("false"), "{}", text(&out.stdout));
    let out = ctl(&app, &admin, &["audit", "verify"]).await;
    assert!(out.status.success(), "{}{}", text(&out.stdout), text(&out.stderr));
    assert!(text(&out.stdout).contains("chain intact"), "{}", text(&out.stdout));

    // Keys: created (shown once), listed without the secret, revoked.
    let out = ctl(
        &app,
        &admin,
        &["-o", "json", "keys", "create", "ci", "--role", "resolver", "--contexts", "frontend"],
    )
    .await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let key: Value = serde_json::from_slice(&out.stdout).unwrap();
    let secret = key["key"].as_str().unwrap().to_owned();
    let out = ctl(&app, &admin, &["keys", "list"]).await;
    let listed = text(&out.stdout);
    assert!(
        listed.contains("ci") && listed.contains("resolver") && !listed.contains(&secret),
        "{listed}"
    );
    let id = key["id"].to_string();
    let out = ctl(&app, &admin, &["keys", "revoke", &id]).await;
    assert!(text(&out.stdout).contains(&format!("revoked key {id}")), "{}", text(&out.stdout));
    let out = ctl(&app, &secret, &["resolve", "frontend", "cart"]).await;
    assert_eq!(out.status.code(), Some(7), "a revoked key is refused");

    // Completions are generated, not hand-kept.
    let out = ctl(&app, &admin, &["completions", "bash"]).await;
    assert!(text(&out.stdout).contains("nexusctl"));
}

#[tokio::test]
async fn export_edit_diff_apply_round_trip() {
    let app = spawn_app().await;
    let admin = app.admin.clone();
    for (alias, canonical) in [
        ("keep", "https://api.nexus.com/k"),
        ("edit", "https://api.nexus.com/e1"),
        ("drop", "https://api.nexus.com/d"),
    ] {
        assert_eq!(app.create("frontend", alias, canonical).await.0, 201);
    }
    assert_eq!(app.create("backend", "other", "https://api.nexus.com/o").await.0, 201);

    // Export frontend, edit it as a person would, diff, apply with prune.
    let out = ctl(&app, &admin, &["export", "--context", "frontend"]).await;
    let exported = text(&out.stdout);
    let edited = exported.replace("https://api.nexus.com/e1", "https://api.nexus.com/e2");
    let mut file = nexus_protocol::AliasFile::parse(&edited).unwrap();
    file.aliases.retain(|e| e.alias.as_str() != "drop");
    let mut new = file.aliases[0].clone();
    new.alias = nexus_protocol::AliasName::parse("added").unwrap();
    new.canonical = nexus_protocol::Canonical::parse("https://api.nexus.com/a").unwrap();
    file.aliases.push(new);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("frontend.json");
    std::fs::write(&path, serde_json::to_vec_pretty(&file).unwrap()).unwrap();
    let path = path.to_str().unwrap();

    let out = ctl(&app, &admin, &["diff", path, "--prune"]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let diff = text(&out.stdout);
    assert!(diff.contains("+ frontend/added  https://api.nexus.com/a"), "{diff}");
    assert!(
        diff.contains(
            "~ frontend/edit  canonical: https://api.nexus.com/e1 → https://api.nexus.com/e2"
        ),
        "{diff}"
    );
    assert!(diff.contains("- frontend/drop"), "{diff}");
    assert!(diff.contains("1 to create, 1 to update, 1 to deactivate, 1 unchanged"), "{diff}");
    // A dry run wrote nothing; without a terminal, apply wants --yes.
    let out = ctl(&app, &admin, &["apply", path, "--prune"]).await;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));

    let out = ctl(&app, &admin, &["apply", path, "--prune", "--yes"]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("applied: registry version"), "{}", text(&out.stdout));
    let (status, a) = app.get("/api/admin/aliases/frontend/edit").await;
    assert_eq!((status.as_u16(), a["canonical"].as_str()), (200, Some("https://api.nexus.com/e2")));
    let (_, d) = app.get("/api/admin/aliases/frontend/drop").await;
    assert_eq!(d["is_active"], false);
    // Another context is never pruned.
    let (_, o) = app.get("/api/admin/aliases/backend/other").await;
    assert_eq!(o["is_active"], true);
    // Applying again changes nothing.
    let out = ctl(&app, &admin, &["apply", path, "--prune", "--yes"]).await;
    assert!(text(&out.stdout).contains("nothing to apply"), "{}", text(&out.stdout));

    // A plan reviewed at one version is refused once the registry moved.
    let (_, plan) =
        app.post("/api/admin/apply?dry_run=true", &serde_json::to_value(&file).unwrap()).await;
    let reviewed = plan["from_version"].as_i64().unwrap();
    assert_eq!(app.create("frontend", "meanwhile", "https://api.nexus.com/m").await.0, 201);
    let (status, body) = app
        .post(
            &format!("/api/admin/apply?prune=true&expected_version={reviewed}"),
            &serde_json::to_value(&file).unwrap(),
        )
        .await;
    assert_eq!((status.as_u16(), body["error"].as_str()), (409, Some("registry_moved")), "{body}");
    let (_, m) = app.get("/api/admin/aliases/frontend/meanwhile").await;
    assert_eq!(m["is_active"], true, "nothing was written");
}
