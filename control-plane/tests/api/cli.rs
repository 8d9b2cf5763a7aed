//! The `nexus-control-plane` binary's commands, run as a user would.

use std::process::Command;

use nexus_protocol::{Role, TokenVerifier};

use nexus_harness::{SECRET, drop_database, fresh_database, url_for};

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_nexus-control-plane"));
    c.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("SECRET_KEY", std::str::from_utf8(SECRET).unwrap())
        .env("LOG_LEVEL", "warn")
        .env(
            "NEXUS_GOVERNANCE_FILE",
            concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/config/alias_governance.yaml"),
        );
    c
}

#[test]
fn token_needs_no_database() {
    let out = bin()
        .env("DATABASE_URL", "postgres://nobody@127.0.0.1:1/none")
        .args([
            "token",
            "--sub",
            "ci",
            "--role",
            "editor",
            "--contexts",
            "frontend,backend",
            "--ttl",
            "60",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let token = String::from_utf8(out.stdout).unwrap();
    let claims = TokenVerifier::hs256(SECRET).verify(token.trim()).unwrap();
    assert_eq!((claims.sub.as_str(), claims.role), ("ci", Role::Editor));
    assert!(claims.contexts.allows("backend") && !claims.contexts.allows("system"));
    assert!(claims.exp - claims.iat == 60);

    let out = bin().args(["token", "--sub", "x", "--role", "root"]).output().unwrap();
    assert!(!out.status.success());
    let out = bin()
        .env_remove("SECRET_KEY")
        .args(["token", "--sub", "x", "--role", "admin"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("SECRET_KEY"));
}

#[test]
fn a_publisher_without_the_state_signing_key_does_not_start() {
    // Closed by default: publishing (REDIS_URL set) needs NEXUS_SIGNING_KEY.
    let out = bin()
        .env("DATABASE_URL", "postgres://nobody@127.0.0.1:1/none")
        .env("REDIS_URL", "redis://127.0.0.1:1")
        .arg("serve")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("NEXUS_SIGNING_KEY") && stderr.contains("NEXUS_VERIFY_KEY"),
        "{stderr}"
    );
}

#[tokio::test]
async fn migrate_then_import_a_file() {
    let db = fresh_database().await;
    let url = url_for(&db);
    let migrate = bin().env("DATABASE_URL", &url).arg("migrate").output().unwrap();
    assert!(migrate.status.success(), "{}", String::from_utf8_lossy(&migrate.stderr));
    let again = bin().env("DATABASE_URL", &url).arg("migrate").output().unwrap();
    assert_eq!(String::from_utf8_lossy(&again.stdout).trim(), "schema is up to date");

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("aliases.yaml");
    std::fs::write(
        &file,
        "aliases:\n  - context: frontend\n    alias: from-file\n    canonical: https://api.nexus.com/f\n",
    )
    .unwrap();
    let import = bin().env("DATABASE_URL", &url).arg("import").arg(&file).output().unwrap();
    assert!(import.status.success(), "{}", String::from_utf8_lossy(&import.stderr));
    let report: serde_json::Value = serde_json::from_slice(&import.stdout).unwrap();
    assert_eq!(report["created"], 1);
    // Importing it again changes nothing.
    let again = bin().env("DATABASE_URL", &url).arg("import").arg(&file).output().unwrap();
    let report: serde_json::Value = serde_json::from_slice(&again.stdout).unwrap();
    assert_eq!((report["created"].as_u64(), report["unchanged"].as_u64()), (Some(0), Some(1)));
    drop_database(db);
}
