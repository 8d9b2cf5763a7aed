//! Each subcommand's arguments, and the groups several of them flatten
//! in ([`LoadArgs`], [`TrustArgs`]). The doc comments are the `--help`
//! text.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use nexus_loadtest::tls::Trust;
use nexus_protocol::{Context, Role};

use super::duration::parse_duration;

#[derive(Debug, Args)]
pub struct GenArgs {
    /// Number of aliases.
    #[arg(long, default_value_t = 99_999)]
    pub count: usize,
    /// Contexts, comma separated; aliases are spread round-robin.
    #[arg(long, value_delimiter = ',', default_value = "frontend,backend,system")]
    pub contexts: Vec<Context>,
    /// Canonical endpoints start with this.
    #[arg(long, default_value = "https://api.nexus.com/v1")]
    pub base: String,
    /// Output directory (created if missing).
    #[arg(long, default_value = ".")]
    pub out: PathBuf,
    /// Also print a resolver token (contexts *) signed with this secret.
    #[arg(long, env = "SECRET_KEY", hide_env_values = true)]
    pub secret: Option<String>,
    /// Lifetime of that token, in seconds.
    #[arg(long, default_value_t = 3600)]
    pub ttl: i64,
}

#[derive(Debug, Args)]
pub struct TokenArgs {
    #[arg(long, env = "SECRET_KEY", hide_env_values = true)]
    pub secret: String,
    #[arg(long, default_value = "loadtest")]
    pub sub: String,
    #[arg(long, default_value = "resolver")]
    pub role: Role,
    /// Comma-separated contexts, or `*` for all.
    #[arg(long, value_delimiter = ',', default_value = "*")]
    pub contexts: Vec<String>,
    /// Lifetime in seconds.
    #[arg(long, default_value_t = 3600)]
    pub ttl: i64,
}

#[derive(Debug, Args)]
pub struct HttpArgs {
    /// Base URL of the edge, e.g. http://127.0.0.1:8080 or https://edge:8443.
    #[arg(long)]
    pub target: String,
    /// Speak HTTP/2 (h2c prior knowledge on http://, ALPN h2 on https://).
    #[arg(long)]
    pub http2: bool,
    /// Requests in flight per connection (closed model): each batch is
    /// sent before the first answer is awaited, pipelined in one write over
    /// HTTP/1.1, one stream per request over HTTP/2. At most 100, the
    /// fewest concurrent streams RFC 9113 asks an HTTP/2 server to allow.
    #[arg(long, default_value_t = 1, conflicts_with = "rate",
          value_parser = clap::value_parser!(u16).range(1..=MAX_HTTP_PIPELINE))]
    pub pipeline: u16,
    #[command(flatten)]
    pub load: LoadArgs,
}

pub const MAX_HTTP_PIPELINE: i64 = 100;

#[derive(Debug, Args)]
pub struct QuicArgs {
    /// Edge QUIC address, host:port (e.g. 127.0.0.1:8443).
    #[arg(long)]
    pub target: String,
    /// Name to check the certificate against (default: the target's host).
    #[arg(long)]
    pub server_name: Option<String>,
    /// Requests in flight per connection (closed model): each batch goes
    /// out at once on the connection's stream, the next when the batch's
    /// last answer is in; latency counts from the batch's send.
    #[arg(long, default_value_t = 1, conflicts_with = "rate",
          value_parser = clap::value_parser!(u16).range(1..=MAX_PIPELINE))]
    pub pipeline: u16,
    #[command(flatten)]
    pub load: LoadArgs,
}

/// Deepest `--pipeline`. Deeper adds nothing but memory: 1024 requests
/// (~40 KiB) already fill most of the edge's 64 KiB stream window.
pub const MAX_PIPELINE: i64 = 1024;

/// What every load mode shares: keys, concurrency or rate, credentials,
/// trust and the report.
#[derive(Debug, Args)]
pub struct LoadArgs {
    /// Declarative aliases file whose live aliases are requested.
    #[arg(long)]
    pub aliases_file: PathBuf,
    /// Connections (one task each; QUIC: one stream each). Closed model
    /// unless --rate is given.
    #[arg(long, default_value_t = 64)]
    pub connections: usize,
    /// Open model: requests per second over all connections, latency
    /// measured from each request's scheduled time.
    #[arg(long)]
    pub rate: Option<f64>,
    /// How long to send, e.g. 10s, 500ms, 2m.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub duration: Duration,
    /// Per-request (and per-connect) timeout.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub timeout: Duration,
    /// Zipf exponent for key choice (uniform when absent).
    #[arg(long)]
    pub zipf: Option<f64>,
    /// Bearer token: sent with every HTTP request, once per QUIC connection.
    #[arg(long, env = "NEXUS_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    #[command(flatten)]
    pub trust: TrustArgs,
    /// Write the JSON report here (and the SVG plot next to it, .svg).
    #[arg(long)]
    pub report: Option<PathBuf>,
    /// Seed for key choice (random when absent; printed in the report).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Generator worker threads (default: one per core).
    #[arg(long)]
    pub threads: Option<usize>,
}

/// How TLS servers (edges, control plane) are trusted.
#[derive(Debug, Args)]
pub struct TrustArgs {
    /// Accept any server certificate (like curl -k).
    #[arg(long)]
    pub insecure: bool,
    /// Trust the CA certificates in this PEM file.
    #[arg(long, conflicts_with = "insecure")]
    pub ca_file: Option<PathBuf>,
}

impl TrustArgs {
    pub fn trust(&self) -> Option<Trust> {
        match (self.insecure, &self.ca_file) {
            (true, _) => Some(Trust::Insecure),
            (false, Some(path)) => Some(Trust::CaFile(path.clone())),
            (false, None) => None,
        }
    }
}

#[derive(Debug, Args)]
pub struct PeerArgs {
    /// Declarative aliases file whose live aliases are answered.
    #[arg(long)]
    pub aliases_file: PathBuf,
    /// Address to listen on (port 0: the kernel picks; the address is
    /// printed once listening).
    #[arg(long, default_value = "127.0.0.1:0")]
    pub listen: std::net::SocketAddr,
}

#[derive(Debug, Args)]
pub struct PropagationArgs {
    /// Control-plane base URL, e.g. http://cp:8081.
    #[arg(long)]
    pub control_plane: String,
    /// Admin JWT or API key (nxk_...) that may write aliases in --context.
    #[arg(long, env = "NEXUS_ADMIN_TOKEN", hide_env_values = true)]
    pub token: String,
    /// Edge base URL, e.g. http://edge-a:8080; repeat for every edge.
    #[arg(long = "edge", required = true)]
    pub edges: Vec<String>,
    /// Bearer token for the edges' resolves (when they check one).
    #[arg(long, env = "NEXUS_EDGE_TOKEN", hide_env_values = true)]
    pub edge_token: Option<String>,
    /// Number of writes.
    #[arg(long, default_value_t = 200)]
    pub writes: usize,
    /// Writes per second, on schedule (a write does not wait for earlier
    /// ones to show up).
    #[arg(long, default_value_t = 20.0)]
    pub rate: f64,
    /// Context the aliases are written in.
    #[arg(long, default_value = "frontend")]
    pub context: Context,
    /// Distinct aliases: the first N writes create them, the rest update
    /// them in turn. Default: every write creates its own alias.
    #[arg(long)]
    pub aliases: Option<usize>,
    /// How long an edge has to show a write (else a timeout for that edge);
    /// also the control plane's per-write timeout.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub timeout: Duration,
    /// Pause between resolves of a pending write on one edge, e.g. 0.5ms.
    #[arg(long, default_value = "0.5ms", value_parser = parse_duration)]
    pub poll_interval: Duration,
    /// Canonicals written are <base>/<run>/<write>; must pass governance.
    #[arg(long, default_value = "https://api.nexus.com/probe")]
    pub canonical_base: String,
    /// Leave the aliases active (default: deactivate them at the end).
    #[arg(long)]
    pub keep: bool,
    #[command(flatten)]
    pub trust: TrustArgs,
    /// Write the JSON report here.
    #[arg(long)]
    pub report: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct AbuseArgs {
    /// Edge HTTP base URL (h2c attacks and the legitimate load), http://host:port.
    #[arg(long)]
    pub target: String,
    /// Edge QUIC address host:port (needed by the quic-* scenarios).
    #[arg(long)]
    pub quic_target: Option<String>,
    /// Scenarios, comma separated, or `all`: rapid-reset, continuation,
    /// settings-flood, ping-flood, idle, slowloris, conn-flood,
    /// quic-initial-flood, quic-abandoned-streams, junk-tokens.
    #[arg(long, value_delimiter = ',', default_value = "all")]
    pub scenario: Vec<String>,
    /// Declarative aliases file whose live aliases the legitimate load asks for.
    #[arg(long)]
    pub aliases_file: PathBuf,
    /// Bearer token of the legitimate load (and of the QUIC attack connections).
    #[arg(long, env = "NEXUS_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// The edge's process id: RSS (/proc/PID/status) and CPU are read from it.
    #[arg(long)]
    pub pid: Option<u32>,
    /// Legitimate load per phase (alone, then under attack).
    #[arg(long, default_value = "8s", value_parser = parse_duration)]
    pub duration: Duration,
    /// Attack alone before the legitimate load under attack starts.
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    pub warmup: Duration,
    /// Legitimate connections (closed model, one request in flight each).
    #[arg(long, default_value_t = 16)]
    pub connections: usize,
    /// Offer the legitimate load at this many requests/s over its
    /// connections (open model) instead of as fast as they go: the ratio
    /// then says whether the edge kept serving that rate, not how much of
    /// the shared generator core the attacker took.
    #[arg(long)]
    pub rate: Option<f64>,
    /// Legitimate load's per-request timeout.
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    pub timeout: Duration,
    /// Legitimate load's generator threads.
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
    /// HTTP/2 connections of each h2c flood; QUIC connections of
    /// quic-abandoned-streams; HTTP/1.1 connections of junk-tokens.
    #[arg(long, default_value_t = 4)]
    pub attack_connections: usize,
    /// Idle connections held (idle).
    #[arg(long, default_value_t = 10_000)]
    pub idle_connections: usize,
    /// Slowloris connections.
    #[arg(long, default_value_t = 1_000)]
    pub slowloris_connections: usize,
    /// Pause between two bytes of one slowloris connection.
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    pub slowloris_every: Duration,
    /// conn-flood: connections held open (set above EDGE_MAX_CONNECTIONS to pass the cap).
    #[arg(long, default_value_t = 0)]
    pub flood_hold: usize,
    /// conn-flood: tasks opening and resetting connections as fast as they can.
    #[arg(long, default_value_t = 64)]
    pub flood_tasks: usize,
    /// quic-initial-flood: UDP sockets sending at once.
    #[arg(long, default_value_t = 64)]
    pub quic_sockets: usize,
    /// Seed for the legitimate load's key choice.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Write the JSON report (a list, one entry per scenario) here.
    #[arg(long)]
    pub report: Option<PathBuf>,
}
