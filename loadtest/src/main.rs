//! `nexus-loadtest`: `gen` synthetic registries, mint a `token`, load a
//! target over `http` (HTTP/1.1, h2c, HTTP/2 over TLS) or `quic`
//! (`nexus-resolve/1`), probe `propagation` (control plane → edges), or
//! serve a `hyper-peer` to compare the edge with.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, bail};
use clap::{Args, Parser, Subcommand};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use nexus_loadtest::driver::{self, Counter, Model, Plan};
use nexus_loadtest::http::{HttpConnector, HttpOptions, Version};
use nexus_loadtest::keyspace::{self, KeyChoice, Keyspace};
use nexus_loadtest::peer;
use nexus_loadtest::propagation::{self, Plan as ProbePlan};
use nexus_loadtest::quic::{QuicConnector, QuicOptions};
use nexus_loadtest::report::Report;
use nexus_loadtest::synthetic::{self, Spec};
use nexus_loadtest::target::Target;
use nexus_loadtest::tls::Trust;
use nexus_loadtest::transport::Connector;
use nexus_loadtest::{plot, synthetic::Written};
use nexus_protocol::{Context, ContextScope, Role, TokenSigner};

#[derive(Debug, Parser)]
#[command(name = "nexus-loadtest", version, about = "Load generator for NEXUS edges")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Write a synthetic aliases file plus a matching nginx map and wrk script.
    Gen(GenArgs),
    /// Print a JWT signed with the shared secret.
    Token(TokenArgs),
    /// Load a target over HTTP/1.1 or HTTP/2.
    Http(HttpArgs),
    /// Load an edge over QUIC (nexus-resolve/1), one connection per task.
    Quic(QuicArgs),
    /// Serve the aliases of a file with bare hyper (HTTP/1.1, one thread,
    /// no auth): the floor under the edge for compare-nginx.sh --with-hyper.
    HyperPeer(PeerArgs),
    /// Write aliases through the control plane and measure commit→visible
    /// on each edge. Exit 0: every write visible everywhere in time;
    /// 2: some were not (see the report); 1: could not run.
    Propagation(PropagationArgs),
}

#[derive(Debug, Args)]
struct PeerArgs {
    /// Declarative aliases file whose live aliases are answered.
    #[arg(long)]
    aliases_file: PathBuf,
    /// Address to listen on (port 0: the kernel picks; the address is
    /// printed once listening).
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: std::net::SocketAddr,
}

/// How TLS servers (edges, control plane) are trusted.
#[derive(Debug, Args)]
struct TrustArgs {
    /// Accept any server certificate (like curl -k).
    #[arg(long)]
    insecure: bool,
    /// Trust the CA certificates in this PEM file.
    #[arg(long, conflicts_with = "insecure")]
    ca_file: Option<PathBuf>,
}

impl TrustArgs {
    fn trust(&self) -> Option<Trust> {
        match (self.insecure, &self.ca_file) {
            (true, _) => Some(Trust::Insecure),
            (false, Some(path)) => Some(Trust::CaFile(path.clone())),
            (false, None) => None,
        }
    }
}

#[derive(Debug, Args)]
struct PropagationArgs {
    /// Control-plane base URL, e.g. http://cp:8081.
    #[arg(long)]
    control_plane: String,
    /// Admin JWT or API key (nxk_...) that may write aliases in --context.
    #[arg(long, env = "NEXUS_ADMIN_TOKEN", hide_env_values = true)]
    token: String,
    /// Edge base URL, e.g. http://edge-a:8080; repeat for every edge.
    #[arg(long = "edge", required = true)]
    edges: Vec<String>,
    /// Bearer token for the edges' resolves (when they check one).
    #[arg(long, env = "NEXUS_EDGE_TOKEN", hide_env_values = true)]
    edge_token: Option<String>,
    /// Number of writes.
    #[arg(long, default_value_t = 200)]
    writes: usize,
    /// Writes per second, on schedule (a write does not wait for earlier
    /// ones to show up).
    #[arg(long, default_value_t = 20.0)]
    rate: f64,
    /// Context the aliases are written in.
    #[arg(long, default_value = "frontend")]
    context: Context,
    /// Distinct aliases: the first N writes create them, the rest update
    /// them in turn. Default: every write creates its own alias.
    #[arg(long)]
    aliases: Option<usize>,
    /// How long an edge has to show a write (else a timeout for that edge);
    /// also the control plane's per-write timeout.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    timeout: Duration,
    /// Pause between resolves of a pending write on one edge, e.g. 0.5ms.
    #[arg(long, default_value = "0.5ms", value_parser = parse_duration)]
    poll_interval: Duration,
    /// Canonicals written are <base>/<run>/<write>; must pass governance.
    #[arg(long, default_value = "https://api.nexus.com/probe")]
    canonical_base: String,
    /// Leave the aliases active (default: deactivate them at the end).
    #[arg(long)]
    keep: bool,
    #[command(flatten)]
    trust: TrustArgs,
    /// Write the JSON report here.
    #[arg(long)]
    report: Option<PathBuf>,
}

#[derive(Debug, Args)]
struct GenArgs {
    /// Number of aliases.
    #[arg(long, default_value_t = 99_999)]
    count: usize,
    /// Contexts, comma separated; aliases are spread round-robin.
    #[arg(long, value_delimiter = ',', default_value = "frontend,backend,system")]
    contexts: Vec<Context>,
    /// Canonical endpoints start with this.
    #[arg(long, default_value = "https://api.nexus.com/v1")]
    base: String,
    /// Output directory (created if missing).
    #[arg(long, default_value = ".")]
    out: PathBuf,
    /// Also print a resolver token (contexts *) signed with this secret.
    #[arg(long, env = "SECRET_KEY", hide_env_values = true)]
    secret: Option<String>,
    /// Lifetime of that token, in seconds.
    #[arg(long, default_value_t = 3600)]
    ttl: i64,
}

#[derive(Debug, Args)]
struct TokenArgs {
    #[arg(long, env = "SECRET_KEY", hide_env_values = true)]
    secret: String,
    #[arg(long, default_value = "loadtest")]
    sub: String,
    #[arg(long, default_value = "resolver")]
    role: Role,
    /// Comma-separated contexts, or `*` for all.
    #[arg(long, value_delimiter = ',', default_value = "*")]
    contexts: Vec<String>,
    /// Lifetime in seconds.
    #[arg(long, default_value_t = 3600)]
    ttl: i64,
}

#[derive(Debug, Args)]
struct HttpArgs {
    /// Base URL of the edge, e.g. http://127.0.0.1:8080 or https://edge:8443.
    #[arg(long)]
    target: String,
    /// Speak HTTP/2 (h2c prior knowledge on http://, ALPN h2 on https://).
    #[arg(long)]
    http2: bool,
    /// Requests in flight per connection (closed model): each batch is
    /// sent before the first answer is awaited, pipelined in one write over
    /// HTTP/1.1, one stream per request over HTTP/2. At most 100, the
    /// fewest concurrent streams RFC 9113 asks an HTTP/2 server to allow.
    #[arg(long, default_value_t = 1, conflicts_with = "rate",
          value_parser = clap::value_parser!(u16).range(1..=MAX_HTTP_PIPELINE))]
    pipeline: u16,
    #[command(flatten)]
    load: LoadArgs,
}

const MAX_HTTP_PIPELINE: i64 = 100;

#[derive(Debug, Args)]
struct QuicArgs {
    /// Edge QUIC address, host:port (e.g. 127.0.0.1:8443).
    #[arg(long)]
    target: String,
    /// Name to check the certificate against (default: the target's host).
    #[arg(long)]
    server_name: Option<String>,
    /// Requests in flight per connection (closed model): each batch goes
    /// out at once on the connection's stream, the next when the batch's
    /// last answer is in; latency counts from the batch's send.
    #[arg(long, default_value_t = 1, conflicts_with = "rate",
          value_parser = clap::value_parser!(u16).range(1..=MAX_PIPELINE))]
    pipeline: u16,
    #[command(flatten)]
    load: LoadArgs,
}

/// Deepest `--pipeline`. Deeper adds nothing but memory: 1024 requests
/// (~40 KiB) already fill most of the edge's 64 KiB stream window.
const MAX_PIPELINE: i64 = 1024;

/// What every load mode shares: keys, concurrency or rate, credentials,
/// trust and the report.
#[derive(Debug, Args)]
struct LoadArgs {
    /// Declarative aliases file whose live aliases are requested.
    #[arg(long)]
    aliases_file: PathBuf,
    /// Connections (one task each; QUIC: one stream each). Closed model
    /// unless --rate is given.
    #[arg(long, default_value_t = 64)]
    connections: usize,
    /// Open model: requests per second over all connections, latency
    /// measured from each request's scheduled time.
    #[arg(long)]
    rate: Option<f64>,
    /// How long to send, e.g. 10s, 500ms, 2m.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    duration: Duration,
    /// Per-request (and per-connect) timeout.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    timeout: Duration,
    /// Zipf exponent for key choice (uniform when absent).
    #[arg(long)]
    zipf: Option<f64>,
    /// Bearer token: sent with every HTTP request, once per QUIC connection.
    #[arg(long, env = "NEXUS_TOKEN", hide_env_values = true)]
    token: Option<String>,
    #[command(flatten)]
    trust: TrustArgs,
    /// Write the JSON report here (and the SVG plot next to it, .svg).
    #[arg(long)]
    report: Option<PathBuf>,
    /// Seed for key choice (random when absent; printed in the report).
    #[arg(long)]
    seed: Option<u64>,
    /// Generator worker threads (default: one per core).
    #[arg(long)]
    threads: Option<usize>,
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Gen(args) => generate(args),
        Command::Token(args) => {
            println!("{}", mint(&args)?);
            Ok(())
        }
        Command::Http(args) => http(args),
        Command::Quic(args) => quic(args),
        Command::HyperPeer(args) => hyper_peer(args),
        Command::Propagation(args) => probe(args),
    }
}

fn hyper_peer(args: PeerArgs) -> anyhow::Result<()> {
    let aliases = keyspace::live_aliases(&args.aliases_file)
        .with_context(|| format!("--aliases-file {}", args.aliases_file.display()))?;
    let bodies = Arc::new(peer::Bodies::new(aliases));
    if bodies.is_empty() {
        bail!("no live alias in {}", args.aliases_file.display());
    }
    // One thread, as the edge with EDGE_WORKERS=1 and nginx with one worker.
    let runtime =
        tokio::runtime::Builder::new_current_thread().enable_all().build().context("runtime")?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .with_context(|| format!("binding {}", args.listen))?;
        println!("hyper-peer listening on {} ({} aliases)", listener.local_addr()?, bodies.len());
        tokio::select! {
            () = peer::serve(listener, bodies) => {}
            _ = tokio::signal::ctrl_c() => {}
        }
        Ok(())
    })
}

fn probe(args: PropagationArgs) -> anyhow::Result<()> {
    // Everything is parsed and checked before the runtime starts.
    let plan = ProbePlan {
        control_plane: Target::parse(&args.control_plane).context("--control-plane")?,
        token: args.token,
        edges: args
            .edges
            .iter()
            .map(|e| Target::parse(e).with_context(|| format!("--edge {e}")))
            .collect::<anyhow::Result<_>>()?,
        edge_token: args.edge_token,
        trust: args.trust.trust(),
        context: args.context,
        writes: args.writes,
        rate: args.rate,
        aliases: args.aliases,
        timeout: args.timeout,
        poll_interval: args.poll_interval,
        canonical_base: args.canonical_base.trim_end_matches('/').to_owned(),
        keep: args.keep,
    };
    plan.check()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("tokio runtime")?;
    let outcome = runtime.block_on(propagation::run(&plan, async {
        // Ctrl-C stops the writing; what was written is still measured and
        // cleaned up.
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    }))?;
    let report = propagation::report::Report::new(&plan, &outcome);
    println!("{report}");
    if let Some(path) = args.report {
        let json = serde_json::to_string_pretty(&report).context("report")?;
        std::fs::write(&path, json + "\n")
            .with_context(|| format!("writing {}", path.display()))?;
        eprintln!("report {}", path.display());
    }
    if !report.success {
        let expected = report.committed * plan.edges.len() as u64;
        eprintln!(
            "not every write was visible on every edge within {:?}: {} of {} (write, edge) \
             pairs missing, {} write(s) failed",
            plan.timeout,
            report.errors + expected.saturating_sub(report.requests),
            expected,
            report.write_errors
        );
        std::process::exit(2);
    }
    Ok(())
}

fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

fn mint(args: &TokenArgs) -> anyhow::Result<String> {
    if args.ttl <= 0 {
        bail!("--ttl must be positive");
    }
    let scope = ContextScope::try_from(args.contexts.clone()).context("--contexts")?;
    let signer = TokenSigner::hs256(args.secret.as_bytes());
    Ok(signer.mint(&args.sub, args.role, scope, now_secs(), args.ttl))
}

fn generate(args: GenArgs) -> anyhow::Result<()> {
    let spec = Spec { count: args.count, contexts: args.contexts, base: args.base };
    let Written { aliases, nginx_map, paths, wrk_script } =
        synthetic::write(&spec, &args.out).context("gen")?;
    eprintln!("wrote {} aliases to {}", spec.count, aliases.display());
    eprintln!("nginx map  {}", nginx_map.display());
    eprintln!("paths      {}", paths.display());
    eprintln!("wrk script {}", wrk_script.display());
    if let Some(secret) = args.secret {
        let token = TokenArgs {
            secret,
            sub: "loadtest".into(),
            role: Role::Resolver,
            contexts: vec!["*".into()],
            ttl: args.ttl,
        };
        println!("{}", mint(&token)?);
    }
    Ok(())
}

fn http(args: HttpArgs) -> anyhow::Result<()> {
    // Everything is parsed and checked before the runtime starts.
    let target = Target::parse(&args.target).context("--target")?;
    let mut load = args.load.checked()?;
    load.pipeline(args.pipeline);
    let options = HttpOptions {
        target: target.clone(),
        version: if args.http2 { Version::Http2 } else { Version::Http1 },
        token: load.token.clone(),
        trust: load.trust(),
        timeout: load.args.timeout,
    };
    let connector = Arc::new(HttpConnector::new(&options, &load.keys).context("http")?);
    load.execute(connector, target.to_string())
}

fn quic(args: QuicArgs) -> anyhow::Result<()> {
    // Everything is parsed and checked before the runtime starts.
    let mut load = args.load.checked()?;
    load.pipeline(args.pipeline);
    let options = QuicOptions {
        target: args.target.clone(),
        server_name: args.server_name,
        token: load.token.clone(),
        trust: load.trust(),
        timeout: load.args.timeout,
    };
    let connector = Arc::new(QuicConnector::new(&options, &load.keys).context("quic")?);
    load.execute(connector, format!("quic://{}", args.target))
}

/// [`LoadArgs`] checked, with the keys loaded.
struct Load {
    keys: Keyspace,
    model: Model,
    token: Option<String>,
    args: LoadArgs,
}

impl LoadArgs {
    fn checked(mut self) -> anyhow::Result<Load> {
        let keys = Keyspace::load(&self.aliases_file).context("--aliases-file")?;
        if self.connections == 0 {
            bail!("--connections must be at least 1");
        }
        let model = model(self.rate)?;
        Ok(Load { keys, model, token: self.token.take(), args: self })
    }
}

impl Load {
    /// `--pipeline`: more than one request in flight per connection makes
    /// the (closed) model pipelined; clap keeps it away from `--rate`.
    fn pipeline(&mut self, depth: u16) {
        if depth > 1 {
            self.model = Model::Pipelined { depth: usize::from(depth) };
        }
    }

    fn trust(&self) -> Option<Trust> {
        self.args.trust.trust()
    }

    fn execute<C: Connector>(self, connector: Arc<C>, target: String) -> anyhow::Result<()> {
        let a = self.args;
        let choice = a.zipf.map_or(KeyChoice::Uniform, KeyChoice::Zipf);
        let plan = plan(self.model, a.connections, a.duration, &self.keys, choice, a.seed);
        execute(connector, target, &plan, a.threads, a.report)
    }
}

fn model(rate: Option<f64>) -> anyhow::Result<Model> {
    match rate {
        None => Ok(Model::Closed),
        Some(rate) if rate.is_finite() && rate > 0.0 => Ok(Model::Open { rate }),
        Some(rate) => bail!("--rate must be a positive number, got {rate}"),
    }
}

fn plan(
    model: Model,
    connections: usize,
    duration: Duration,
    keys: &Keyspace,
    choice: KeyChoice,
    seed: Option<u64>,
) -> Plan {
    Plan {
        model,
        connections,
        duration,
        keys: keys.len(),
        choice,
        seed: seed.unwrap_or_else(rand::random),
    }
}

/// Runs `plan` against `connector`, prints the report and writes it (with
/// its plot) when asked: the same for every mode.
fn execute<C: Connector>(
    connector: Arc<C>,
    target: String,
    plan: &Plan,
    threads: Option<usize>,
    report_path: Option<PathBuf>,
) -> anyhow::Result<()> {
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    if let Some(threads) = threads {
        runtime.worker_threads(threads.max(1));
    }
    let runtime = runtime.enable_all().build().context("tokio runtime")?;
    let name = connector.name();
    let outcome = runtime.block_on(async {
        let counter = Arc::new(Counter::default());
        let progress = progress(plan.duration, counter.clone());
        let outcome = driver::run(connector, plan, counter).await;
        progress.abort();
        outcome
    })?;
    let report = Report::new(target, name, plan, &outcome);
    println!("{report}");
    if let Some(path) = report_path {
        let json = serde_json::to_string_pretty(&report).context("report")?;
        std::fs::write(&path, json + "\n")
            .with_context(|| format!("writing {}", path.display()))?;
        let svg_path = path.with_extension("svg");
        let title =
            format!("{} {} ({}, {} conns)", report.target, name, report.model, plan.connections);
        std::fs::write(&svg_path, plot::percentile_svg(outcome.recorder.histogram(), &title))
            .with_context(|| format!("writing {}", svg_path.display()))?;
        eprintln!("report {} plot {}", path.display(), svg_path.display());
    }
    Ok(())
}

/// A progress bar over the run's duration, drawn only on a terminal.
fn progress(duration: Duration, counter: Arc<Counter>) -> tokio::task::JoinHandle<()> {
    let tenths = (duration.as_millis() / 100).max(1) as u64;
    let bar = ProgressBar::new(tenths);
    if std::io::stdout().is_terminal() {
        bar.set_style(
            ProgressStyle::with_template("{bar:40} {elapsed}/{duration} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
    } else {
        bar.set_draw_target(ProgressDrawTarget::hidden());
    }
    tokio::spawn(async move {
        let start = tokio::time::Instant::now();
        let mut tick = tokio::time::interval(Duration::from_millis(200));
        loop {
            tick.tick().await;
            let secs = start.elapsed().as_secs_f64().max(1e-3);
            let done = counter.get();
            bar.set_position(((secs * 10.0) as u64).min(tenths));
            bar.set_message(format!("{done} requests, {:.0} req/s", done as f64 / secs));
            if bar.position() >= tenths {
                bar.finish_and_clear();
                return;
            }
        }
    })
}

/// `10s`, `500ms`, `2m`, or plain seconds (`10`, `0.5`).
fn parse_duration(raw: &str) -> Result<Duration, String> {
    let raw = raw.trim();
    let (number, scale) = if let Some(n) = raw.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = raw.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = raw.strip_suffix('m') {
        (n, 60.0)
    } else {
        (raw, 1.0)
    };
    let value: f64 = number.trim().parse().map_err(|_| format!("not a duration: {raw:?}"))?;
    let secs = value * scale;
    if !(secs.is_finite() && secs > 0.0 && secs < 86_400.0) {
        return Err(format!("duration out of range: {raw:?}"));
    }
    Ok(Duration::from_secs_f64(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1.5"), Ok(Duration::from_millis(1500)));
        assert!(parse_duration("-1s").is_err());
        assert!(parse_duration("ten").is_err());
    }

    #[test]
    fn minted_token_verifies_with_the_same_secret() {
        let args = TokenArgs {
            secret: "s3cret".into(),
            sub: "bench".into(),
            role: Role::Resolver,
            contexts: vec!["frontend".into(), "backend".into()],
            ttl: 60,
        };
        let claims =
            nexus_protocol::TokenVerifier::hs256(b"s3cret").verify(&mint(&args).unwrap()).unwrap();
        assert_eq!(claims.role, Role::Resolver);
        assert!(claims.contexts.allows("backend") && !claims.contexts.allows("system"));
    }
}
