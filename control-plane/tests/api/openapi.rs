//! The OpenAPI document matches the router. Routes are registered only
//! through `routes!` in `api::routes()` (path and method from each
//! handler's `#[utoipa::path]`), so: no source file may route around it,
//! every documented operation is answered by the real server (not the
//! fallback), and the document is served, public, OpenAPI 3.1. When
//! `openapi-spec-validator` (PyPI) is installed the document is also
//! validated with it; the test does not need Python.

use std::collections::BTreeSet;

use reqwest::{Method, StatusCode};
use serde_json::Value;

use nexus_harness::spawn_app;

const METHODS: [&str; 5] = ["get", "put", "post", "delete", "patch"];

fn rust_files(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

#[test]
fn no_route_is_registered_around_the_route_table() {
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    assert!(files.len() > 10);
    // The console (HTML pages under /console, not API operations) is the
    // one router outside the table: merged in one place, and every one of
    // its routes under /console.
    let console = src.join("console");
    let merge_console = ".merge(crate::console::router(";
    let mut found = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        if f.starts_with(&console) {
            for line in text.lines().map(str::trim).filter(|l| l.starts_with(".route(")) {
                let path = line.trim_start_matches(".route(").trim_start_matches('"');
                if !path.is_empty() && !path.starts_with("/console") {
                    found.push(format!("{}: console route {line}", f.display()));
                }
            }
            continue;
        }
        let text = text.replacen(merge_console, "", 1);
        for needle in [".route(", ".route_service(", ".nest(", ".nest_service(", ".merge("] {
            if text.contains(needle) {
                found.push(format!("{}: {needle}", f.display()));
            }
        }
    }
    assert!(
        found.is_empty(),
        "routes registered outside routes!() are missing from the OpenAPI document; register \
         them in api::routes() with a #[utoipa::path] handler: {found:?}"
    );
}

/// The document's operations as (METHOD, path).
fn operations(doc: &Value) -> BTreeSet<(String, String)> {
    let mut ops = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for m in METHODS {
            if item.get(m).is_some() {
                ops.insert((m.to_uppercase(), path.clone()));
            }
        }
    }
    ops
}

#[tokio::test]
async fn the_document_is_public_openapi_3_1_and_matches_every_route() {
    let app = spawn_app().await;
    let (s, doc) = app.call(Method::GET, "/api/admin/openapi.json", None, None).await;
    assert_eq!(s, StatusCode::OK, "{doc}");
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"), "{}", doc["openapi"]);
    let schemes = &doc["components"]["securitySchemes"];
    assert_eq!(schemes["jwt"]["scheme"], "bearer");
    assert_eq!(schemes["api_key"]["scheme"], "bearer");
    assert!(doc["components"]["schemas"]["ErrorBody"].is_object());

    let ops = operations(&doc);
    let mut ids = BTreeSet::new();
    for (method, path) in &ops {
        let id = doc["paths"][path][method.to_lowercase()]["operationId"].as_str().unwrap();
        assert!(ids.insert(id.to_owned()), "operationId {id} is used twice");
    }
    let expected = [
        ("POST", "/api/admin/aliases"),
        ("GET", "/api/admin/aliases/{context}/{alias}/history"),
        ("GET", "/api/admin/export"),
        ("GET", "/api/admin/openapi.json"),
        ("GET", "/api/aliases/resolve/{context}/{alias}"),
        ("GET", "/metrics"),
    ];
    for (m, p) in expected {
        assert!(ops.contains(&(m.to_owned(), p.to_owned())), "{m} {p} missing: {ops:?}");
    }

    for (method, path) in &ops {
        let op = &doc["paths"][path][method.to_lowercase()];
        let responses = op["responses"].as_object().unwrap();
        assert!(responses.contains_key("500"), "{method} {path}: no 500");
        let public = op["security"] == serde_json::json!([{}]);
        if !public {
            for status in ["401", "403", "503"] {
                assert!(responses.contains_key(status), "{method} {path}: no {status}");
            }
        }
        // Every write takes the publish barrier's parameters, and may 202.
        if matches!(method.as_str(), "POST" | "PUT" | "DELETE") {
            let names: Vec<&str> = op["parameters"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|p| p["in"] == "query")
                .filter_map(|p| p["name"].as_str())
                .collect();
            for name in ["wait", "region", "quorum", "timeout"] {
                assert!(names.contains(&name), "{method} {path}: no barrier parameter {name}");
            }
            assert!(responses.contains_key("202"), "{method} {path}: no barrier 202");
        }
        for (status, r) in responses {
            if status.starts_with('4') || status.starts_with('5') {
                let schema = &r["content"]["application/json"]["schema"];
                assert!(schema.is_object(), "{method} {path} {status}: no JSON body schema");
            }
        }
        // The real server routes it: anything but the fallback's answers.
        let concrete =
            path.replace("{context}", "frontend").replace("{alias}", "x").replace("{id}", "1");
        let m = Method::from_bytes(method.as_bytes()).unwrap();
        let (s, body) = app.call(m, &concrete, Some(&app.admin), None).await;
        let fallback = s == StatusCode::METHOD_NOT_ALLOWED
            || (s == StatusCode::NOT_FOUND && body["message"] == "no such route");
        assert!(!fallback, "{method} {path} is documented but not routed: {s} {body}");
    }
    // The probe can fail: an undocumented path meets the fallback.
    let (s, body) = app.get("/api/admin/nothing-here").await;
    assert_eq!((s, body["message"].as_str()), (StatusCode::NOT_FOUND, Some("no such route")));

    // The Alias schema names exactly the fields the API returns.
    let (s, alias) = app.create("frontend", "schema-check", "https://api.nexus.com/s").await;
    assert_eq!(s, StatusCode::CREATED);
    let got: BTreeSet<&str> = alias.as_object().unwrap().keys().map(String::as_str).collect();
    let documented: BTreeSet<&str> = doc["components"]["schemas"]["Alias"]["properties"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(got, documented);

    // The fleet view documents how far each edge's clock is off, beside
    // when this control plane last heard it, and says by whose clock.
    // (Its own fields, beside the flattened report: an `allOf` part.)
    let view = &doc["components"]["schemas"]["EdgeView"];
    let parts = view["allOf"].as_array().map_or(vec![view], |p| p.iter().collect());
    let own = parts.iter().find(|p| p["properties"]["clock_skew_ms"].is_object());
    let own = own.unwrap_or_else(|| panic!("EdgeView.clock_skew_ms undocumented: {view}"));
    for field in ["last_seen_ms", "seen_seconds_ago", "stale"] {
        assert!(own["properties"][field].is_object(), "EdgeView.{field}: {view}");
    }
    let skew = own["properties"]["clock_skew_ms"]["description"].as_str().unwrap_or("");
    assert!(skew.contains("control plane"), "{skew}");
    assert!(own["required"].as_array().unwrap().iter().any(|f| f == "clock_skew_ms"), "{own}");

    validate_with_python_if_present(&doc);
}

/// `openapi-spec-validator`, when installed; silent otherwise.
fn validate_with_python_if_present(doc: &Value) {
    let probe = std::process::Command::new("python3")
        .args(["-c", "import openapi_spec_validator"])
        .output();
    if !probe.is_ok_and(|o| o.status.success()) {
        eprintln!("openapi-spec-validator not installed; skipping its check");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("openapi.json");
    std::fs::write(&file, serde_json::to_vec(doc).unwrap()).unwrap();
    let out = std::process::Command::new("python3")
        .args(["-m", "openapi_spec_validator", "--schema", "3.1.0"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "openapi-spec-validator refused the document:\n{:.2000}\n{:.2000}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
