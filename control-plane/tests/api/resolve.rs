//! The resolve contract's order, as design.md writes it for both planes:
//! credentials (401) → name syntax (400 `bad_request`) → the credential's
//! scope (403 `forbidden`) → context configured (400 `unknown_context`) →
//! alias (404 `not_found`). Each row differs from a neighbour in one step,
//! so a check run in the wrong order fails a row.

use reqwest::{Method, StatusCode};

use nexus_harness::spawn_app;
use nexus_protocol::Role;

#[tokio::test]
async fn resolve_checks_credentials_syntax_scope_context_alias_in_that_order() {
    let app = spawn_app().await;
    let (s, _) = app.create("frontend", "live", "https://api.nexus.com/live").await;
    assert_eq!(s, StatusCode::CREATED);
    let scoped = app.token(Role::Resolver, &["frontend"]);
    let everywhere = app.token(Role::Resolver, &["*"]);
    let garbage = "not-a-token".to_owned();

    let rows: [(&str, Option<&String>, StatusCode, &str); 13] = [
        // Credentials come first, even before a malformed name.
        ("frontend/live", None, StatusCode::UNAUTHORIZED, "unauthorized"),
        ("frontend/-bad", None, StatusCode::UNAUTHORIZED, "unauthorized"),
        ("nowhere/live", Some(&garbage), StatusCode::UNAUTHORIZED, "unauthorized"),
        // Syntax before scope: a malformed name is 400 whoever asks.
        ("frontend/-bad", Some(&scoped), StatusCode::BAD_REQUEST, "bad_request"),
        ("no!where/live", Some(&scoped), StatusCode::BAD_REQUEST, "bad_request"),
        ("backend/-bad", Some(&scoped), StatusCode::BAD_REQUEST, "bad_request"),
        // Scope before context: a scoped caller learns nothing outside it.
        ("backend/live", Some(&scoped), StatusCode::FORBIDDEN, "forbidden"),
        ("nowhere/live", Some(&scoped), StatusCode::FORBIDDEN, "forbidden"),
        // Context before alias.
        ("nowhere/live", Some(&everywhere), StatusCode::BAD_REQUEST, "unknown_context"),
        ("nowhere/missing", Some(&everywhere), StatusCode::BAD_REQUEST, "unknown_context"),
        // Then the alias.
        ("frontend/missing", Some(&scoped), StatusCode::NOT_FOUND, "not_found"),
        ("backend/missing", Some(&everywhere), StatusCode::NOT_FOUND, "not_found"),
        ("frontend/live", Some(&scoped), StatusCode::OK, ""),
    ];
    for (path, token, status, code) in rows {
        let url = format!("/api/aliases/resolve/{path}");
        let (s, body) = app.call(Method::GET, &url, token.map(String::as_str), None).await;
        assert_eq!(s, status, "{path} with {token:?}: {body}");
        if status == StatusCode::OK {
            assert_eq!(body["canonical_name"], "https://api.nexus.com/live");
        } else {
            assert_eq!(body["error"], code, "{path}: {body}");
        }
    }
}
