//! TLS on the control plane's hops, against the real servers: PostgreSQL
//! with each `sslmode` (this machine's server has `ssl=on`; its own
//! certificate file is the right CA, an rcgen one the wrong CA), and the
//! admin API served over TLS with h2 and HTTP/1.1.
//!
//! Whether a connection is encrypted is read from PostgreSQL itself
//! (`pg_stat_ssl`), for the backends of this test only (its own
//! `application_name`).

use std::time::Duration;

use nexus_control_plane::config::{Config, DbConfig};
use nexus_control_plane::store::Store;
use nexus_control_plane::store::leader::{LeaderConnection, LeaderDb};
use rand::RngCore;
use tokio::sync::Notify;

/// The tests' PostgreSQL (see `nexus_harness::local::test`), by host and port.
fn base_url() -> String {
    nexus_harness::local::test::database_url()
}

fn random(prefix: &str) -> String {
    let mut b = [0u8; 6];
    rand::rng().fill_bytes(&mut b);
    format!("{prefix}_{}", hex::encode(b))
}

async fn admin() -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(&base_url(), tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(conn);
    client
}

/// The server's certificate file: the right CA for `verify-ca`. Fails the
/// test (it does not skip) when the server has TLS off.
async fn server_cert() -> String {
    let c = admin().await;
    let ssl: String = c.query_one("SHOW ssl", &[]).await.unwrap().get(0);
    assert_eq!(ssl, "on", "these tests need a PostgreSQL with ssl=on at {}", base_url());
    c.query_one("SHOW ssl_cert_file", &[]).await.unwrap().get(0)
}

/// `base_url()` with `host` and the query `params`, named `app`.
fn url(host: &str, app: &str, params: &str) -> String {
    let mut u = url::Url::parse(&base_url()).unwrap();
    u.set_host(Some(host)).unwrap();
    u.set_query(Some(&format!("application_name={app}&{params}")));
    u.to_string()
}

/// `ssl` of every backend named `app`.
async fn encrypted(app: &str) -> Vec<bool> {
    admin()
        .await
        .query(
            "SELECT s.ssl FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) \
             WHERE a.application_name = $1",
            &[&app],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

/// Connects a store (one pooled connection) and a leader connection.
async fn connect_both(url: &str) -> Result<(Store, LeaderConnection), String> {
    let db = DbConfig::new(url);
    let store = Store::new(&db).map_err(|e| e.to_string())?;
    store.ping().await.map_err(|e| chain(&e))?;
    let leader = LeaderDb::new(&db)
        .unwrap()
        .connect(std::sync::Arc::new(Notify::new()))
        .await
        .map_err(|e| chain(&e))?;
    Ok((store, leader))
}

fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

#[tokio::test]
async fn require_encrypts_pool_and_leader_connections() {
    server_cert().await;
    let app = random("tls_require");
    let _held = connect_both(&url("127.0.0.1", &app, "sslmode=require")).await.unwrap();
    assert_eq!(encrypted(&app).await, vec![true, true]);
}

#[tokio::test]
async fn disable_is_plaintext() {
    server_cert().await;
    let app = random("tls_disable");
    let _held = connect_both(&url("127.0.0.1", &app, "sslmode=disable")).await.unwrap();
    assert_eq!(encrypted(&app).await, vec![false, false]);
}

#[tokio::test]
async fn verify_ca_trusts_the_named_root_without_checking_the_name() {
    let cert = server_cert().await;
    let app = random("tls_verify_ca");
    let params = format!("sslmode=verify-ca&sslrootcert={cert}");
    // The certificate names localhost, not 127.0.0.1: verify-ca does not care.
    let _held = connect_both(&url("127.0.0.1", &app, &params)).await.unwrap();
    assert_eq!(encrypted(&app).await, vec![true, true]);
}

#[tokio::test]
async fn verify_full_checks_the_host_name() {
    let cert = server_cert().await;
    let params = format!("sslmode=verify-full&sslrootcert={cert}");
    let e = connect_both(&url("127.0.0.1", &random("tls_full_ip"), &params)).await.err().unwrap();
    assert!(e.contains("not valid for name") && e.contains("127.0.0.1"), "{e}");
    // Debian's snakeoil certificate names localhost.
    let app = random("tls_full_name");
    let _held = connect_both(&url("localhost", &app, &params)).await.unwrap();
    assert_eq!(encrypted(&app).await, vec![true, true]);
}

#[tokio::test]
async fn a_wrong_ca_fails_and_stops_the_start() {
    server_cert().await;
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("wrong-ca.pem");
    let other = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    std::fs::write(&ca, other.cert.pem()).unwrap();
    let params = format!("sslmode=verify-full&sslrootcert={}", ca.display());
    let url = url("localhost", &random("tls_wrong_ca"), &params);
    let e = connect_both(&url).await.err().unwrap();
    assert!(e.contains("UnknownIssuer"), "{e}");
    // The same through the binary's start-up path: an error, not a retry.
    let secret = "s".repeat(40);
    let config = Config::from_lookup(|k| match k {
        "DATABASE_URL" => Some(url.clone()),
        "SECRET_KEY" => Some(secret.clone()),
        _ => None,
    })
    .unwrap();
    let started = tokio::time::timeout(
        Duration::from_secs(30),
        nexus_control_plane::server::start(&config, None),
    )
    .await
    .expect("start neither failed nor succeeded");
    let e = format!("{:#}", started.expect_err("started against a wrong CA"));
    assert!(e.contains("TLS") && e.contains("UnknownIssuer"), "{e}");
}

#[test]
fn unusable_tls_settings_are_start_up_errors() {
    let from = |url: &str| {
        let url = url.to_owned();
        Config::from_lookup(move |k| (k == "DATABASE_URL").then(|| url.clone())).err().unwrap()
    };
    let e = from("postgres://db/nexus?sslmode=verify").to_string();
    assert!(e.starts_with("DATABASE_URL") && e.contains("verify-full"), "{e}");
    let e = from("postgres://db/nexus?sslmode=verify-ca&sslrootcert=/nonexistent/root.crt");
    assert!(e.to_string().contains("/nonexistent/root.crt"), "{e}");
}

mod api {
    //! The admin API over TLS: a fresh database, the binary's start-up
    //! path with `API_TLS_CERT`/`API_TLS_KEY`, and reqwest trusting the
    //! rcgen certificate.

    use super::*;

    struct Served {
        addr: std::net::SocketAddr,
        root: reqwest::Certificate,
        db: String,
        stop: Option<tokio::sync::oneshot::Sender<()>>,
        _dir: tempfile::TempDir,
    }

    impl Drop for Served {
        fn drop(&mut self) {
            if let Some(s) = self.stop.take() {
                let _ = s.send(());
            }
            let db = self.db.clone();
            let _ = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread().enable_all().build();
                if let Ok(rt) = rt {
                    rt.block_on(async {
                        let sql = format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)");
                        let _ = admin().await.batch_execute(&sql).await;
                    });
                }
            })
            .join();
        }
    }

    async fn serve_tls() -> Served {
        let db = random("nexus_test_tls");
        admin().await.batch_execute(&format!("CREATE DATABASE {db}")).await.unwrap();
        let mut u = url::Url::parse(&base_url()).unwrap();
        u.set_path(&db);
        let db_url = u.to_string();
        Store::new(&DbConfig::new(&db_url)).unwrap().migrate().await.unwrap();
        let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let (cert_path, key_path) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
        std::fs::write(&cert_path, cert.cert.pem()).unwrap();
        std::fs::write(&key_path, cert.signing_key.serialize_pem()).unwrap();
        let vars = [
            ("DATABASE_URL", db_url),
            ("SECRET_KEY", "s".repeat(40)),
            ("API_TLS_CERT", cert_path.display().to_string()),
            ("API_TLS_KEY", key_path.display().to_string()),
        ];
        let config = Config::from_lookup(|k| {
            vars.iter().find(|(name, _)| *name == k).map(|(_, v)| v.clone())
        })
        .unwrap();
        let service = nexus_control_plane::server::start(&config, None).await.unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(service.serve(listener, async move {
            let _ = stopped.await;
        }));
        let root = reqwest::Certificate::from_pem(cert.cert.pem().as_bytes()).unwrap();
        Served { addr, root, db, stop: Some(stop), _dir: dir }
    }

    #[tokio::test]
    async fn admin_api_answers_over_tls_with_h2_and_http1() {
        let served = serve_tls().await;
        let url = format!("https://localhost:{}/api/aliases/health", served.addr.port());
        let client = |http1: bool| {
            let b = reqwest::Client::builder()
                .add_root_certificate(served.root.clone())
                .tls_built_in_root_certs(false)
                .resolve("localhost", served.addr);
            if http1 { b.http1_only() } else { b }.build().unwrap()
        };
        for (http1, version) in
            [(false, reqwest::Version::HTTP_2), (true, reqwest::Version::HTTP_11)]
        {
            let r = client(http1).get(&url).send().await.unwrap();
            assert_eq!((r.status().as_u16(), r.version()), (200, version));
            let body: serde_json::Value = r.json().await.unwrap();
            assert_eq!(body["status"], "ok");
        }
        // Plaintext on the TLS port gets no answer.
        let plain = format!("http://127.0.0.1:{}/api/aliases/health", served.addr.port());
        let r = reqwest::Client::new().get(&plain).timeout(Duration::from_secs(5)).send().await;
        assert!(r.is_err(), "{r:?}");
    }
}
