//! The `quic` mode: the edge's `nexus-resolve/1` protocol, behind the same
//! [`Connector`]/[`Connection`] traits as HTTP, so the driver, recorder and
//! report are shared and the numbers compare like for like: one QUIC
//! connection per task (handshake and token once), one stream on it, one
//! request in flight at a time, exactly as an HTTP/1.1 keep-alive
//! connection is driven. Connections are driven by [`wire`] (quinn-proto in
//! the caller's task) with the client library's TLS configuration
//! ([`nexus_edge::quic_client::client_config`]).

pub mod wire;

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::time::Duration;

use nexus_edge::quic_client::{self, ClientError};
use nexus_protocol::quic::{Request, Status};

use self::wire::{WireConnection, WireError};

use crate::keyspace::Keyspace;
use crate::recorder::Failure;
use crate::tls::Trust;
use crate::transport::{Connection, Connector};

/// The resolve path prefix the key space is written with.
const RESOLVE_PREFIX: &str = "/api/aliases/resolve/";

/// Everything a QUIC run needs to know, parsed from the command line.
#[derive(Debug, Clone)]
pub struct QuicOptions {
    /// `host:port` (a `quic://` prefix is accepted).
    pub target: String,
    /// Name checked against the certificate (default: the target's host).
    pub server_name: Option<String>,
    /// Sent once per connection.
    pub token: Option<String>,
    /// `--insecure` or `--ca-file`; QUIC is always TLS.
    pub trust: Option<Trust>,
    /// Longest wait for a connection or an answer.
    pub timeout: Duration,
}

/// Why a QUIC connector could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("QUIC is always TLS: pass --insecure or --ca-file")]
    NoTrust,
    #[error("target {0:?} is not host:port")]
    Target(String),
    #[error("cannot resolve {target:?}: {source}")]
    Lookup { target: String, source: std::io::Error },
    #[error("CA file {path}: {source}")]
    CaFile { path: PathBuf, source: ClientError },
    #[error("key space path {0:?} is not a resolve path")]
    Path(String),
    #[error("QUIC client configuration: {0}")]
    Config(ClientError),
}

/// Opens QUIC connections to one edge.
#[derive(Debug)]
pub struct QuicConnector {
    addr: SocketAddr,
    server_name: String,
    config: quinn::ClientConfig,
    token: Option<String>,
    /// `(context, alias)` of each key, in key space order.
    keys: std::sync::Arc<[(String, String)]>,
    timeout: Duration,
}

impl QuicConnector {
    pub fn new(options: &QuicOptions, keys: &Keyspace) -> Result<Self, SetupError> {
        let raw = options.target.strip_prefix("quic://").unwrap_or(&options.target);
        let raw = raw.trim_end_matches('/');
        let (host, _) = raw.rsplit_once(':').ok_or_else(|| SetupError::Target(raw.to_owned()))?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let addr = raw
            .to_socket_addrs()
            .map_err(|source| SetupError::Lookup { target: raw.to_owned(), source })?
            .next()
            .ok_or_else(|| SetupError::Target(raw.to_owned()))?;
        let trust = match options.trust.as_ref().ok_or(SetupError::NoTrust)? {
            Trust::Insecure => quic_client::Trust::Insecure,
            Trust::CaFile(path) => quic_client::Trust::from_pem_file(path)
                .map_err(|source| SetupError::CaFile { path: path.clone(), source })?,
        };
        let keys = keys
            .paths()
            .iter()
            .map(|p| {
                p.strip_prefix(RESOLVE_PREFIX)
                    .and_then(|t| t.split_once('/'))
                    .map(|(c, a)| (c.to_owned(), a.to_owned()))
                    .ok_or_else(|| SetupError::Path(p.clone()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            addr,
            server_name: options.server_name.clone().unwrap_or_else(|| host.to_owned()),
            config: quic_client::client_config(&trust).map_err(SetupError::Config)?,
            token: options.token.clone(),
            keys: keys.into(),
            timeout: options.timeout,
        })
    }

    async fn open(&self) -> Result<QuicConnection, Failure> {
        let mut wire = WireConnection::connect(self.addr, &self.server_name, self.config.clone())
            .await
            .map_err(|_| Failure::Connect)?;
        if let Some(token) = self.token.as_deref() {
            let answer = wire
                .call(|id, out| {
                    let _ = Request::Auth { id, token }.encode(out);
                })
                .await
                .map_err(|_| Failure::Connect)?;
            if answer.status != Status::Ok {
                // A refused token is an answer, as a 401 is over HTTP.
                return Err(Failure::Status(answer.status.code()));
            }
        }
        Ok(QuicConnection { wire, keys: self.keys.clone(), timeout: self.timeout })
    }
}

impl Connector for QuicConnector {
    type Conn = QuicConnection;

    async fn connect(&self) -> Result<QuicConnection, Failure> {
        tokio::time::timeout(self.timeout, self.open()).await.unwrap_or(Err(Failure::Connect))
    }

    fn name(&self) -> &'static str {
        "quic"
    }
}

/// One QUIC connection and the stream its requests travel on.
#[derive(Debug)]
pub struct QuicConnection {
    wire: WireConnection,
    keys: std::sync::Arc<[(String, String)]>,
    timeout: Duration,
}

impl Connection for QuicConnection {
    async fn resolve(&mut self, index: usize) -> Result<(), Failure> {
        let (context, alias) = self.keys.get(index).ok_or(Failure::Protocol)?;
        let answer = tokio::time::timeout(self.timeout, self.wire.resolve(context, alias))
            .await
            // A late answer would be read as the next one's: the driver
            // drops the connection after a timeout.
            .map_err(|_| Failure::Timeout)?
            .map_err(failure)?;
        outcome(answer.status)
    }

    async fn resolve_pipelined(
        &mut self,
        keys: &[usize],
        mut answered: impl FnMut(Result<(), Failure>) + Send,
    ) {
        if keys.iter().any(|&k| k >= self.keys.len()) {
            keys.iter().for_each(|_| answered(Err(Failure::Protocol)));
            return;
        }
        let names = &self.keys;
        let mut given = 0;
        let batch = self.wire.call_many(
            keys.len(),
            |i, id, out| {
                let (context, alias) = &names[keys[i]];
                // Names from the key space are far below the frame limit.
                let _ = Request::Resolve { id, context, alias }.encode(out);
            },
            |answer| {
                given += 1;
                answered(outcome(answer.status));
            },
        );
        // The whole batch has one timeout: its answers come back together.
        let ended = match tokio::time::timeout(self.timeout, batch).await {
            Ok(Ok(())) => return,
            Ok(Err(e)) => failure(e),
            Err(_) => Failure::Timeout,
        };
        for _ in given..keys.len() {
            answered(Err(ended));
        }
    }

    async fn idle_until(&mut self, until: tokio::time::Instant) -> bool {
        self.wire.idle_until(until.into_std()).await.is_ok()
    }
}

/// What an answer's status counts as.
fn outcome(status: Status) -> Result<(), Failure> {
    match status {
        Status::Ok => Ok(()),
        other => Err(Failure::Status(other.code())),
    }
}

/// What a broken connection counts as.
fn failure(e: WireError) -> Failure {
    match e {
        WireError::Io(_) | WireError::Lost(_) | WireError::Connect(_) => Failure::Connect,
        _ => Failure::Protocol,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use nexus_edge::app::App;
    use nexus_edge::auth::Authenticator;
    use nexus_edge::connections::ConnectionCap;
    use nexus_edge::metrics::Metrics;
    use nexus_edge::quic as edge_quic;
    use nexus_edge::state::{SourceKind, State};
    use nexus_protocol::{
        AliasName, AliasRecord, Canonical, Context, ContextScope, Role, Snapshot, TokenSigner,
        TokenVerifier,
    };

    use super::*;
    use crate::driver::{self, Counter, Model, Plan};
    use crate::keyspace::{KeyChoice, resolve_path};

    const SECRET: &[u8] = b"loadtest-quic-secret";

    /// A real edge QUIC endpoint on 127.0.0.1:0 serving `frontend/a` and
    /// `frontend/b`, with tokens required.
    fn edge() -> (SocketAddr, Arc<App>, tokio::sync::watch::Sender<bool>) {
        let record = |alias: &str| AliasRecord {
            id: 1,
            context: Context::parse("frontend").unwrap(),
            alias: AliasName::parse(alias).unwrap(),
            canonical: Canonical::parse("https://api.nexus.com/v1/x").unwrap(),
            description: None,
            expires_at_ms: None,
            is_active: true,
            version: 1,
            updated_at_ms: 0,
        };
        let state = Arc::new(State::new(SourceKind::File));
        state.install_snapshot(
            &Snapshot {
                epoch: 0,
                version: 1,
                created_at_ms: 0,
                intended_shrink: false,
                records: vec![record("a"), record("b")],
                contexts: nexus_protocol::KnownContexts::Any,
                credentials: Default::default(),
            },
            0,
        );
        let metrics = Arc::new(Metrics::new());
        let app = Arc::new(App {
            state,
            auth: Some(Authenticator::new(TokenVerifier::hs256(SECRET))),
            connections: ConnectionCap::new(100, metrics.clone()),
            prometheus: true,
            metrics,
        });
        let (tls, _) = edge_quic::cert::self_signed().unwrap();
        let endpoint = edge_quic::bind(
            "127.0.0.1:0".parse().unwrap(),
            edge_quic::server_config(&tls).unwrap(),
        )
        .unwrap();
        let addr = endpoint.local_addr().unwrap();
        let (stop, mut rx) = tokio::sync::watch::channel(false);
        tokio::spawn(edge_quic::serve(endpoint, app.clone(), async move {
            let _ = rx.wait_for(|s| *s).await;
        }));
        (addr, app, stop)
    }

    async fn run(addr: SocketAddr, token: Option<String>, paths: &[&str]) -> driver::Outcome {
        run_model(addr, token, paths, Model::Open { rate: 400.0 }).await
    }

    async fn run_model(
        addr: SocketAddr,
        token: Option<String>,
        paths: &[&str],
        model: Model,
    ) -> driver::Outcome {
        let keys = Keyspace::from_paths(paths.iter().map(|p| p.to_string()).collect()).unwrap();
        let options = QuicOptions {
            target: addr.to_string(),
            server_name: Some("localhost".into()),
            token,
            trust: Some(Trust::Insecure),
            timeout: Duration::from_secs(5),
        };
        let connector = Arc::new(QuicConnector::new(&options, &keys).unwrap());
        let plan = Plan {
            model,
            connections: 4,
            duration: Duration::from_millis(500),
            keys: keys.len(),
            choice: KeyChoice::Uniform,
            seed: 7,
        };
        driver::run(connector, &plan, Arc::new(Counter::default())).await.unwrap()
    }

    #[tokio::test]
    async fn a_run_counts_answers_by_status_like_http() {
        let (addr, app, _stop) = edge();
        let paths = [resolve_path("frontend", "a"), resolve_path("frontend", "b")];
        let paths: Vec<&str> = paths.iter().map(String::as_str).collect();
        let ok = run(addr, Some(token()), &paths).await;
        assert!(ok.recorder.successes() >= 100, "{:?}", ok.recorder.failures_by_kind());
        assert_eq!(ok.recorder.failures(), 0, "{:?}", ok.recorder.failures_by_kind());
        // The edge counted what the generator saw.
        let text = app.metrics.encode();
        let line =
            format!("nexus_edge_resolve_total{{outcome=\"ok\"}} {}", ok.recorder.successes());
        assert!(text.contains(&line), "{line} missing from\n{text}");

        // Without a token every answer is a 401, and a missing alias a 404.
        let denied = run(addr, None, &paths).await;
        assert_eq!(denied.recorder.successes(), 0);
        assert!(denied.recorder.failures_by_kind().get(&Failure::Status(401)) > Some(&50));
        let missing = [resolve_path("frontend", "nope")];
        let gone = run(addr, Some(token()), &[missing[0].as_str()]).await;
        assert!(gone.recorder.failures_by_kind().get(&Failure::Status(404)) > Some(&50));
    }

    fn token() -> String {
        TokenSigner::hs256(SECRET).mint(
            "loadtest",
            Role::Resolver,
            ContextScope::All,
            chrono_now_s(),
            60,
        )
    }

    #[tokio::test]
    async fn pipelined_batches_count_every_answer_with_its_own_status() {
        let (addr, app, _stop) = edge();
        let paths = [resolve_path("frontend", "a"), resolve_path("frontend", "nope")];
        let paths: Vec<&str> = paths.iter().map(String::as_str).collect();
        let depth = 16;
        let out = run_model(addr, Some(token()), &paths, Model::Pipelined { depth }).await;
        let r = &out.recorder;
        assert!(r.requests() >= 100 * depth as u64, "only {} requests", r.requests());
        // Whole batches only, and every key got its own answer: hits are
        // successes and misses 404s, nothing else.
        assert_eq!(r.requests() % depth as u64, 0);
        let misses = r.failures_by_kind().get(&Failure::Status(404)).copied().unwrap_or(0);
        assert_eq!(r.failures(), misses, "{:?}", r.failures_by_kind());
        assert!(r.successes() > 0 && misses > 0);
        // The edge answered exactly what the generator counted.
        let text = app.metrics.encode();
        for line in [
            format!("nexus_edge_resolve_total{{outcome=\"ok\"}} {}", r.successes()),
            format!("nexus_edge_resolve_total{{outcome=\"not_found\"}} {misses}"),
        ] {
            assert!(text.contains(&line), "{line} missing from\n{text}");
        }
    }

    #[tokio::test]
    async fn a_pipelined_batch_leaves_in_one_datagram_and_answers_in_order() {
        let (addr, _app, _stop) = edge();
        let config = quic_client::client_config(&quic_client::Trust::Insecure).unwrap();
        let mut wire = WireConnection::connect(addr, "localhost", config).await.unwrap();
        let aliases = ["a", "nope", "b", "a"].repeat(8);
        let before = wire.stats().udp_tx.datagrams;
        let mut answers = Vec::new();
        wire.call_many(
            aliases.len(),
            |i, id, out| {
                Request::Resolve { id, context: "frontend", alias: aliases[i] }
                    .encode(out)
                    .unwrap();
            },
            |answer| answers.push(answer),
        )
        .await
        .unwrap();
        // 32 requests of ~30 bytes fit one packet; one at a time they
        // would take 32 (and the ACKs in between).
        let sent = wire.stats().udp_tx.datagrams - before;
        assert!(sent <= 2, "{sent} datagrams for one batch");
        let ids: Vec<u64> = answers.iter().map(|a| a.id).collect();
        assert_eq!(ids, (ids[0]..ids[0] + 32).collect::<Vec<_>>());
        // No token on this connection: every answer is the same refusal,
        // one per request.
        assert!(answers.iter().all(|a| a.status == answers[0].status));
    }

    #[tokio::test]
    async fn an_idle_connection_is_tended_between_requests() {
        let (addr, _app, _stop) = edge();
        let config = quic_client::client_config(&quic_client::Trust::Insecure).unwrap();
        let mut wire = WireConnection::connect(addr, "localhost", config).await.unwrap();
        wire.resolve("frontend", "a").await.unwrap();
        // Far past the client's 25 ms ACK delay and the edge's probe timeout.
        let idle = Duration::from_millis(300);

        // Left alone, the connection owes the edge an ACK for its answer:
        // the edge probes, and the probes wait for the next request.
        tokio::time::sleep(idle).await;
        let before = wire.stats().udp_rx.datagrams;
        wire.resolve("frontend", "a").await.unwrap();
        let untended = wire.stats().udp_rx.datagrams - before;
        assert!(untended > 1, "the edge should have probed, got {untended} datagram(s)");

        // Tended, the ACK leaves on time and the edge has nothing to resend:
        // the next request finds only its answer.
        wire.idle_until(std::time::Instant::now() + idle).await.unwrap();
        let before = wire.stats().udp_rx.datagrams;
        wire.resolve("frontend", "a").await.unwrap();
        assert_eq!(wire.stats().udp_rx.datagrams - before, 1);
    }

    #[test]
    fn setup_refuses_a_plaintext_run_and_bad_targets() {
        let keys = Keyspace::from_paths(vec![resolve_path("frontend", "a")]).unwrap();
        let mut options = QuicOptions {
            target: "127.0.0.1:8443".into(),
            server_name: None,
            token: None,
            trust: None,
            timeout: Duration::from_secs(1),
        };
        assert!(matches!(QuicConnector::new(&options, &keys), Err(SetupError::NoTrust)));
        options.trust = Some(Trust::Insecure);
        let c = QuicConnector::new(&options, &keys).unwrap();
        assert_eq!(
            (c.addr.to_string(), c.server_name.as_str()),
            ("127.0.0.1:8443".into(), "127.0.0.1")
        );
        options.target = "quic://[::1]:9000".into();
        assert_eq!(QuicConnector::new(&options, &keys).unwrap().addr.port(), 9000);
        options.target = "no-port".into();
        assert!(QuicConnector::new(&options, &keys).is_err());
    }

    fn chrono_now_s() -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64)
    }
}
