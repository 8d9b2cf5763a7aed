//! `rediss://` against a real TLS redis-server started here on a free port
//! with an rcgen certificate: the right CA carries commands and pub/sub; a
//! wrong CA or a host name the certificate does not hold is a clear
//! start-up error (`check_tls`), never a silent retry or a downgrade. The
//! server has no plaintext port (`--port 0`), so whatever works went over
//! TLS.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nexus_runtime::bus::redis::{RedisBus, RedisConfig, RedisTlsError, tls_config};
use nexus_runtime::bus::{Event, Transport};

/// Bound on redis-server accepting TLS after it was started.
const START: Duration = Duration::from_secs(20);

/// A TLS-only redis-server; killed when dropped.
struct TlsRedis {
    child: Child,
    port: u16,
    /// The certificate (self-signed for `localhost`): the right CA.
    ca: PathBuf,
    dir: tempfile::TempDir,
}

impl Drop for TlsRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl TlsRedis {
    async fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
        let (ca, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
        std::fs::write(&ca, cert.cert.pem()).unwrap();
        std::fs::write(&key, cert.signing_key.serialize_pem()).unwrap();
        // A free port: redis-server cannot bind port 0 for TLS. Another
        // process may take it in between; then the start is retried.
        for _ in 0..5 {
            let port =
                std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
            let mut child = Command::new("redis-server")
                .args(["--port", "0", "--tls-port", &port.to_string(), "--bind", "127.0.0.1"])
                .arg("--tls-cert-file")
                .arg(&ca)
                .arg("--tls-key-file")
                .arg(&key)
                .arg("--tls-ca-cert-file")
                .arg(&ca)
                .args(["--tls-auth-clients", "no", "--save", "", "--appendonly", "no"])
                .arg("--dir")
                .arg(dir.path())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("redis-server (with TLS support) must be installed");
            if ready(&mut child, port, &ca).await {
                return Self { child, port, ca, dir };
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("could not start redis-server on a free port");
    }

    fn bus(&self, host: &str, ca: Option<&Path>) -> RedisBus {
        bus(self.port, host, ca)
    }
}

fn bus(port: u16, host: &str, ca: Option<&Path>) -> RedisBus {
    RedisConfig::new(&format!("rediss://{host}:{port}"), &format!("tls-{port}"))
        .with_ca_file(ca.map(Path::to_owned))
        .connect()
        .unwrap()
}

/// Waits until a command goes through over verified TLS; false when the
/// server exited (its port was taken).
async fn ready(child: &mut Child, port: u16, ca: &Path) -> bool {
    let deadline = Instant::now() + START;
    let bus = bus(port, "localhost", Some(ca));
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return false;
        }
        if bus.reports().await.is_ok() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("redis-server did not accept TLS on port {port} within {START:?}");
}

#[tokio::test]
async fn the_right_ca_carries_commands_and_pubsub() {
    let redis = TlsRedis::start().await;
    let bus = redis.bus("localhost", Some(&redis.ca));
    bus.check_tls(Duration::from_secs(5)).await.unwrap();
    bus.report("edge-1", "{\"version\":7}".into()).await.unwrap();
    let reports = bus.reports().await.unwrap();
    assert_eq!(reports.get("edge-1").map(String::as_str), Some("{\"version\":7}"));
    // The subscriber connection goes over TLS too.
    let mut feed = bus.feed().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let event = tokio::time::timeout_at(deadline.into(), feed.next()).await.unwrap();
        match event {
            Event::Connected => break,
            Event::Failed(e) => panic!("feed failed: {e}"),
            _ => {}
        }
    }
    feed.subscribe().await.unwrap();
    bus.announce(vec![b"delta".to_vec()]).await.unwrap();
    loop {
        match tokio::time::timeout_at(deadline.into(), feed.next()).await.unwrap() {
            Event::Message(m) => {
                assert_eq!(m, b"delta");
                break;
            }
            Event::Failed(e) => panic!("feed failed: {e}"),
            _ => {}
        }
    }
}

#[tokio::test]
async fn a_wrong_ca_is_a_clear_start_up_error() {
    let redis = TlsRedis::start().await;
    // Another CA under another name (rcgen's default name would make it
    // look like the issuer, and fail as a bad signature instead).
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name.push(rcgen::DnType::CommonName, "some other CA");
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let other = params.self_signed(&rcgen::KeyPair::generate().unwrap()).unwrap();
    let wrong = redis.dir.path().join("wrong-ca.pem");
    std::fs::write(&wrong, other.pem()).unwrap();
    let bus = redis.bus("localhost", Some(&wrong));
    let e = bus.check_tls(Duration::from_secs(5)).await.unwrap_err();
    let shown = chain(&e);
    assert!(shown.contains("UnknownIssuer") && shown.contains("REDIS_CA_FILE"), "{shown}");
    // Nor do commands get through in the background.
    assert!(bus.reports().await.is_err());
}

#[tokio::test]
async fn a_host_name_the_certificate_lacks_is_a_clear_start_up_error() {
    let redis = TlsRedis::start().await;
    let bus = redis.bus("127.0.0.1", Some(&redis.ca));
    let e = bus.check_tls(Duration::from_secs(5)).await.unwrap_err();
    let shown = chain(&e);
    assert!(shown.contains("not valid for name") && shown.contains("127.0.0.1"), "{shown}");
}

#[test]
fn a_ca_file_on_a_plaintext_url_or_an_unreadable_one_is_refused() {
    let e = tls_config("redis://localhost:6379", Some(Path::new("/etc/hostname"))).unwrap_err();
    assert!(matches!(e, RedisTlsError::CaWithoutTls), "{e}");
    let e =
        tls_config("rediss://localhost:6379", Some(Path::new("/nonexistent/ca.pem"))).unwrap_err();
    assert!(chain(&e).contains("/nonexistent/ca.pem"), "{e}");
    assert!(tls_config("redis://localhost:6379", None).unwrap().is_none());
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
