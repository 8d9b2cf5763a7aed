//! Alias ownership against the real control plane: an alias is owned by
//! its creator; an editor changes only its own aliases (unless the context
//! shares them); an admin transfers ownership, audited and in the history;
//! apply and import refuse, whole, what would change another's alias.

use chrono::Utc;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use nexus_harness::{GOVERNANCE, TestApp, spawn_app, spawn_app_with};
use nexus_protocol::{Context, ContextScope, Role};

const CANON: &str = "https://api.nexus.com/x";

/// An editor of `frontend` whose token subject is `name`.
fn editor(app: &TestApp, name: &str) -> String {
    let scope = ContextScope::Only(vec![Context::parse("frontend").unwrap()]);
    app.signer.mint(name, Role::Editor, scope, Utc::now().timestamp(), 600)
}

async fn as_(
    app: &TestApp,
    token: &str,
    m: Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    app.call(m, path, Some(token), body.as_ref()).await
}

async fn head(app: &TestApp) -> i64 {
    let c = app.sql().await;
    c.query_one("SELECT version FROM registry WHERE id = 1", &[]).await.unwrap().get(0)
}

#[tokio::test]
async fn an_editor_is_refused_on_another_owners_alias_and_allowed_after_a_transfer() {
    let app = spawn_app().await;
    let (alice, bob) = (editor(&app, "alice"), editor(&app, "bob"));
    let create = json!({"context": "frontend", "alias": "cart", "canonical": CANON});
    let (s, a) = as_(&app, &alice, Method::POST, "/api/admin/aliases", Some(create)).await;
    assert_eq!(s, StatusCode::CREATED, "{a}");
    assert_eq!(a["owner"], "alice", "the creator owns it: {a}");
    let (_, got) = app.get("/api/admin/aliases/frontend/cart").await;
    assert_eq!(got["owner"], "alice");
    let (_, list) = app.get("/api/admin/aliases?context=frontend").await;
    assert_eq!(list["items"][0]["owner"], "alice");

    // Bob may neither change nor deactivate alice's alias.
    let path = "/api/admin/aliases/frontend/cart";
    let change = json!({"description": "bob was here"});
    let (s, e) = as_(&app, &bob, Method::PUT, path, Some(change.clone())).await;
    assert_eq!(
        (s, e["error"].as_str(), e["owner"].as_str()),
        (StatusCode::FORBIDDEN, Some("not_owner"), Some("alice")),
        "{e}"
    );
    let (s, e) = as_(&app, &bob, Method::DELETE, path, None).await;
    assert_eq!((s, e["error"].as_str()), (StatusCode::FORBIDDEN, Some("not_owner")), "{e}");
    // Refused before anything was written.
    let (_, got) = app.get(path).await;
    assert_eq!((got["description"].clone(), got["is_active"].clone()), (Value::Null, json!(true)));
    // Alice may.
    let (s, e) = as_(&app, &alice, Method::PUT, path, Some(json!({"description": "mine"}))).await;
    assert_eq!(s, StatusCode::OK, "{e}");
    assert_eq!(e["owner"], "alice", "a change keeps the owner");

    // Only an admin transfers; the body is checked.
    let owner = "/api/admin/aliases/frontend/cart/owner";
    let (s, e) = as_(&app, &bob, Method::POST, owner, Some(json!({"owner": "bob"}))).await;
    assert_eq!((s, e["error"].as_str()), (StatusCode::FORBIDDEN, Some("forbidden")), "{e}");
    for bad in [
        json!({"owner": ""}),
        json!({"owner": "a\nb"}),
        json!({"owner": "x".repeat(256)}),
        json!({"who": "bob"}),
    ] {
        let (s, e) = app.post(owner, &bad).await;
        assert_eq!(
            (s, e["error"].as_str()),
            (StatusCode::BAD_REQUEST, Some("bad_request")),
            "{bad}: {e}"
        );
    }
    let (s, e) = app.post("/api/admin/aliases/frontend/nope/owner", &json!({"owner": "bob"})).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{e}");

    let before = head(&app).await;
    let (s, moved) = app.post(owner, &json!({"owner": "bob"})).await;
    assert_eq!(s, StatusCode::OK, "{moved}");
    assert_eq!(moved["owner"], "bob");
    assert_eq!(moved["version"].as_i64(), Some(before + 1), "a transfer takes a version: {moved}");
    assert_eq!(moved["canonical"], CANON, "and changes nothing else");
    // The same owner again: nothing written.
    let (s, same) = app.post(owner, &json!({"owner": "bob"})).await;
    assert_eq!((s, same["version"].as_i64()), (StatusCode::OK, Some(before + 1)));
    assert_eq!(head(&app).await, before + 1);

    // Now bob may, and alice may not.
    let (s, e) = as_(&app, &bob, Method::PUT, path, Some(change)).await;
    assert_eq!(s, StatusCode::OK, "{e}");
    let (s, e) = as_(&app, &alice, Method::DELETE, path, None).await;
    assert_eq!((s, e["owner"].as_str()), (StatusCode::FORBIDDEN, Some("bob")), "{e}");
    let (s, _) = as_(&app, &bob, Method::DELETE, path, None).await;
    assert_eq!(s, StatusCode::NO_CONTENT);

    // The history shows the transfer, who did it, and the owner of each version.
    let (_, page) = app.get("/api/admin/aliases/frontend/cart/history").await;
    let items = page["items"].as_array().unwrap();
    let col = |f: &str| items.iter().map(|i| i[f].clone()).collect::<Vec<_>>();
    assert_eq!(
        col("action"),
        [
            json!("alias.deactivate"),
            json!("alias.update"),
            json!("alias.transfer"),
            json!("alias.update"),
            json!("alias.create")
        ],
        "{page}"
    );
    assert_eq!(
        col("who"),
        [json!("bob"), json!("bob"), json!("root"), json!("alice"), json!("alice")]
    );
    assert_eq!(
        col("owner"),
        [json!("bob"), json!("bob"), json!("bob"), json!("alice"), json!("alice")]
    );

    // Audited in the one chain: the row says from whom to whom, and the chain holds.
    let (_, audit) = app.get("/api/admin/audit?action=alias.transfer").await;
    let row = &audit["items"][0];
    assert_eq!(
        (row["user"].as_str(), row["target"].as_str()),
        (Some("root"), Some("frontend/cart")),
        "{audit}"
    );
    assert_eq!(row["before"]["owner"], "alice", "{row}");
    assert_eq!(row["after"]["owner"], "bob", "{row}");
    let (_, verify) = app.get("/api/admin/audit/verify").await;
    assert_eq!(verify["ok"], true, "{verify}");
}

#[tokio::test]
async fn a_shared_context_lets_any_editor_change_any_alias() {
    let shared = GOVERNANCE.replace(
        "  frontend:\n    require_description: false\n",
        "  frontend:\n    require_description: false\n    shared_ownership: true\n",
    );
    assert_ne!(shared, GOVERNANCE);
    let app = spawn_app_with(&shared).await;
    let (alice, bob) = (editor(&app, "alice"), editor(&app, "bob"));
    let create = json!({"context": "frontend", "alias": "cart", "canonical": CANON});
    as_(&app, &alice, Method::POST, "/api/admin/aliases", Some(create)).await;
    let path = "/api/admin/aliases/frontend/cart";
    let (s, e) = as_(&app, &bob, Method::PUT, path, Some(json!({"description": "d"}))).await;
    assert_eq!(s, StatusCode::OK, "{e}");
    assert_eq!(e["owner"], "alice", "sharing does not move ownership");
    let (s, _) = as_(&app, &bob, Method::DELETE, path, None).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn a_team_owns_what_its_members_create_and_only_its_members_change_it() {
    let app = spawn_app().await;
    let member = |name: &str, team: &str| {
        let scope = ContextScope::Only(vec![Context::parse("frontend").unwrap()]);
        let now = Utc::now().timestamp();
        app.signer.issue_for_team(name, Some(team), Role::Editor, scope, now, 600).unwrap()
    };
    let (alice, bob, carol) =
        (member("alice", "payments"), member("bob", "payments"), member("carol", "search"));
    let create = json!({"context": "frontend", "alias": "checkout", "canonical": CANON});
    let (s, a) = as_(&app, &alice, Method::POST, "/api/admin/aliases", Some(create)).await;
    assert_eq!((s, a["owner"].as_str()), (StatusCode::CREATED, Some("team:payments")), "{a}");
    let path = "/api/admin/aliases/frontend/checkout";
    let (_, got) = app.get(path).await;
    assert_eq!(got["owner"], "team:payments", "stored, not only answered: {got}");

    // Another member changes it; the team keeps it; the audit names the person.
    let (s, e) = as_(&app, &bob, Method::PUT, path, Some(json!({"description": "bob's"}))).await;
    assert_eq!((s, e["owner"].as_str()), (StatusCode::OK, Some("team:payments")), "{e}");
    let (_, page) = app.get(&format!("{path}/history")).await;
    let who: Vec<&str> =
        page["items"].as_array().unwrap().iter().filter_map(|i| i["who"].as_str()).collect();
    assert_eq!(who, ["bob", "alice"], "{page}");
    // Another team may not.
    let (s, e) = as_(&app, &carol, Method::DELETE, path, None).await;
    assert_eq!(
        (s, e["error"].as_str(), e["owner"].as_str()),
        (StatusCode::FORBIDDEN, Some("not_owner"), Some("team:payments")),
        "{e}"
    );

    // Apply creates for the team too (the ledger's one statement).
    let res = app
        .http
        .post(app.url("/api/admin/apply"))
        .bearer_auth(&bob)
        .header("content-type", "application/yaml")
        .body("aliases:\n  - {context: frontend, alias: refunds, canonical: 'https://api.nexus.com/r'}\n")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK, "{}", res.text().await.unwrap());
    let (_, got) = app.get("/api/admin/aliases/frontend/refunds").await;
    assert_eq!(got["owner"], "team:payments", "{got}");

    // No subject may pass for a team, and a team name is checked.
    let now = Utc::now().timestamp();
    let err = app.signer.issue("team:payments", Role::Editor, ContextScope::All, now, 60);
    assert!(err.is_err(), "a team: subject is refused at mint");
    let forged = app.signer.sign(&nexus_protocol::token::Claims {
        sub: "team:payments".into(),
        role: Role::Editor,
        contexts: ContextScope::All,
        aud: nexus_protocol::AUDIENCE.into(),
        iat: now,
        exp: now + 60,
        nbf: None,
        jti: Some("forged-1".into()),
        team: None,
    });
    let (s, e) = as_(&app, &forged, Method::DELETE, path, None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{e}");
    let bad = app.signer.issue_for_team(
        "dave",
        Some("Bad Team"),
        Role::Editor,
        ContextScope::All,
        now,
        60,
    );
    assert!(bad.is_err());
}

#[tokio::test]
async fn apply_and_import_refuse_whole_what_changes_another_owners_alias() {
    let app = spawn_app().await;
    let alice = editor(&app, "alice");
    app.create("frontend", "roots", CANON).await;
    let create = json!({"context": "frontend", "alias": "mine", "canonical": CANON});
    as_(&app, &alice, Method::POST, "/api/admin/aliases", Some(create)).await;

    let file = "aliases:\n  - {context: frontend, alias: roots, canonical: 'https://api.nexus.com/new'}\n  \
                - {context: frontend, alias: mine, canonical: 'https://api.nexus.com/new'}\n";
    let apply = |q: &str| {
        app.http
            .post(app.url(&format!("/api/admin/apply?{q}")))
            .bearer_auth(&alice)
            .header("content-type", "application/yaml")
            .body(file)
            .send()
    };
    // The dry run shows the refusal, with the owner.
    let plan: Value = apply("dry_run=true").await.unwrap().json().await.unwrap();
    let item = |p: &Value, alias: &str| {
        p["items"].as_array().unwrap().iter().find(|i| i["alias"] == alias).cloned().unwrap()
    };
    assert_eq!(item(&plan, "roots")["action"], "refused", "{plan}");
    assert_eq!(item(&plan, "roots")["owner"], "root");
    assert_eq!(item(&plan, "mine")["action"], "update");
    assert_eq!(
        (plan["counts"]["refused"].as_u64(), plan["counts"]["update"].as_u64()),
        (Some(1), Some(1))
    );
    // Carried out: refused whole, nothing written.
    let before = head(&app).await;
    let res = apply("").await.unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let e: Value = res.json().await.unwrap();
    assert_eq!(e["error"], "not_owner", "{e}");
    assert_eq!(e["refused"][0]["alias"], "roots", "{e}");
    assert_eq!(head(&app).await, before);
    // Pruning another's alias is refused the same way.
    let only_mine =
        "aliases:\n  - {context: frontend, alias: mine, canonical: 'https://api.nexus.com/x'}\n";
    let res = app
        .http
        .post(app.url("/api/admin/apply?prune=true"))
        .bearer_auth(&alice)
        .header("content-type", "application/yaml")
        .body(only_mine)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);

    // Import: replacing root's alias is refused whole; skipping it is not.
    let entries = json!([
        {"context": "frontend", "alias": "roots", "canonical": "https://api.nexus.com/new"},
        {"context": "frontend", "alias": "fresh", "canonical": CANON},
    ]);
    let import = |policy: &str| json!({"aliases": entries.clone(), "on_conflict": policy});
    let (s, e) =
        as_(&app, &alice, Method::POST, "/api/admin/aliases/import", Some(import("replace"))).await;
    assert_eq!((s, e["error"].as_str()), (StatusCode::FORBIDDEN, Some("not_owner")), "{e}");
    assert_eq!(e["refused"][0]["owner"], "root", "{e}");
    assert_eq!(head(&app).await, before);
    let (s, r) =
        as_(&app, &alice, Method::POST, "/api/admin/aliases/import", Some(import("skip"))).await;
    assert_eq!(
        (s, r["created"].as_u64(), r["skipped"].as_u64()),
        (StatusCode::OK, Some(1), Some(1)),
        "{r}"
    );
    let (_, fresh) = app.get("/api/admin/aliases/frontend/fresh").await;
    assert_eq!(fresh["owner"], "alice", "an import's new aliases are the importer's");

    // After a transfer, alice's apply goes through.
    let (s, _) =
        app.post("/api/admin/aliases/frontend/roots/owner", &json!({"owner": "alice"})).await;
    assert_eq!(s, StatusCode::OK);
    let res = apply("").await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let (_, roots) = app.get("/api/admin/aliases/frontend/roots").await;
    assert_eq!(
        (roots["canonical"].as_str(), roots["owner"].as_str()),
        (Some("https://api.nexus.com/new"), Some("alice"))
    );
}

#[tokio::test]
async fn new_rows_take_their_creator_as_owner_in_sql_and_the_outbox_carries_it() {
    let app = spawn_app().await;
    app.create("frontend", "a", CANON).await;
    let c = app.sql().await;
    // A row inserted without an owner (as the ledger inserts) takes its creator.
    c.batch_execute(
        "INSERT INTO aliases (context, alias, canonical, created_by) VALUES ('backend', 'b', 'https://x', 'carol');
         INSERT INTO aliases (context, alias, canonical) VALUES ('backend', 'c', 'https://x')",
    )
    .await
    .unwrap();
    let owners: Vec<(String, String)> = c
        .query("SELECT alias, owner FROM aliases ORDER BY alias", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let want = [("a", "root"), ("b", "carol"), ("c", "system:unknown")];
    assert_eq!(owners, want.map(|(a, o)| (a.to_owned(), o.to_owned())));
    let record: Value = c
        .query_one("SELECT record FROM changes ORDER BY version DESC LIMIT 1", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(record["owner"], "root", "{record}");
}

/// Drops the database when the test ends, passed or not.
struct Db(String);

impl Drop for Db {
    fn drop(&mut self) {
        nexus_harness::drop_database(self.0.clone());
    }
}

#[tokio::test]
async fn migration_0006_gives_existing_aliases_an_owner() {
    use nexus_control_plane::store::migrate::MIGRATIONS;
    let db = Db(nexus_harness::fresh_database().await);
    let url = nexus_harness::url_for(&db.0);
    let (c, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(conn);
    let (before, ownership) = MIGRATIONS.split_at(5);
    assert_eq!(ownership[0].name, "0006_ownership");
    for m in before {
        c.batch_execute(m.sql).await.unwrap();
    }
    // A registry written before ownership: a row with its creator, a seed
    // row whose creator only the audit trail names, one nobody names.
    c.batch_execute(
        "INSERT INTO aliases (context, alias, canonical, created_by) VALUES ('f', 'a', 'https://x', 'alice');
         INSERT INTO aliases (context, alias, canonical) VALUES ('f', 'b', 'https://x'), ('f', 'c', 'https://x');
         INSERT INTO audit_logs (action, \"user\", target) VALUES ('alias.update', 'carol', 'f/b'),
                                                                ('alias.create', 'bob', 'f/b');",
    )
    .await
    .unwrap();
    c.batch_execute(ownership[0].sql).await.unwrap();
    let owners: Vec<(String, String)> = c
        .query("SELECT alias, owner FROM aliases ORDER BY alias", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let want = [("a", "alice"), ("b", "bob"), ("c", "system:unknown")];
    assert_eq!(owners, want.map(|(a, o)| (a.to_owned(), o.to_owned())));
    // Safe to run twice (migrate re-checks, a restore may replay it).
    c.batch_execute(ownership[0].sql).await.unwrap();
    let null: i64 =
        c.query_one("SELECT count(*) FROM aliases WHERE owner IS NULL", &[]).await.unwrap().get(0);
    assert_eq!(null, 0);
}

#[tokio::test]
async fn using_the_incoming_side_of_a_conflict_is_a_change_that_needs_the_owner() {
    let app = spawn_app().await;
    let (alice, bob) = (editor(&app, "alice"), editor(&app, "bob"));
    let create =
        |canonical: &str| json!({"context": "frontend", "alias": "cart", "canonical": canonical});
    let (s, _) = as_(&app, &alice, Method::POST, "/api/admin/aliases", Some(create(CANON))).await;
    assert_eq!(s, StatusCode::CREATED);
    // Bob's create of the same alias elsewhere is a conflict, queued.
    let other = "https://api.nexus.com/bob";
    let (s, e) = as_(&app, &bob, Method::POST, "/api/admin/aliases", Some(create(other))).await;
    assert_eq!(s, StatusCode::CONFLICT, "{e}");
    let id = e["conflict_id"].as_i64().unwrap();
    let path = format!("/api/admin/conflicts/{id}/resolve");
    let incoming = json!({"resolution": "use_incoming"});

    // Bob settling it his way would change alice's alias: refused, unwritten.
    let before = head(&app).await;
    let (s, e) = as_(&app, &bob, Method::POST, &path, Some(incoming.clone())).await;
    assert_eq!(
        (s, e["error"].as_str(), e["owner"].as_str()),
        (StatusCode::FORBIDDEN, Some("not_owner"), Some("alice")),
        "{e}"
    );
    assert_eq!(head(&app).await, before);
    let (_, got) = app.get("/api/admin/aliases/frontend/cart").await;
    assert_eq!(got["canonical"], CANON);

    // Alice, who owns it, may take the incoming side.
    let (s, done) = as_(&app, &alice, Method::POST, &path, Some(incoming)).await;
    assert_eq!(s, StatusCode::OK, "{done}");
    let (_, got) = app.get("/api/admin/aliases/frontend/cart").await;
    assert_eq!(got["canonical"], other);
}
