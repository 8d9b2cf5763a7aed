//! `nexus-control-plane dev`: the whole system in one process — the admin
//! API, the publisher and one edge (the edge library), over the
//! in-process bus or a Redis given with `--redis`, on a PostgreSQL given
//! with `DATABASE_URL` or a private cluster under the state directory —
//! with the sample aliases loaded on first start. Everything is kept under
//! `--dir` between runs ([`home`]).

pub(crate) mod home;

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use chrono::Utc;
use nexus_edge::metrics::Metrics;
use nexus_edge::node;
use nexus_edge::state::SourceKind;
use nexus_edge::sync::SyncConfig;
use nexus_local::postgres::Postgres;
use nexus_protocol::signing::verify_key_hex;
use nexus_protocol::{AliasFile, ContextScope, Role};
use nexus_runtime::bus::MESSAGE_BUFFER;
use nexus_runtime::bus::Transport;
use nexus_runtime::bus::memory::MemoryBus;
use nexus_runtime::bus::redis::RedisConfig;
use tokio::net::TcpListener;

use crate::config::Config;
use crate::domain::governance::Candidate;
use crate::domain::import::ImportPolicy;
use crate::publisher::bus::Bus;
use crate::store::{Actor, Store};
use crate::{registry, server};
use home::Home;

/// The sample registry loaded on first start.
const SAMPLE: &str = include_str!("../../../deploy/examples/aliases.yaml");
/// Lifetime of the printed tokens.
const TOKEN_TTL: Duration = Duration::from_secs(24 * 3600);
/// Bound on the edge taking its first state.
const READY_WITHIN: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, clap::Args)]
pub struct DevArgs {
    /// Where state is kept between runs.
    #[arg(long, default_value = ".nexus-dev")]
    pub(crate) dir: PathBuf,
    /// Start from nothing: remove what --dir holds (database included).
    #[arg(long)]
    pub(crate) reset: bool,
    /// Publish through this Redis instead of in-process, so more edges
    /// (`nexus-edge` with REDIS_URL) can join.
    #[arg(long, value_name = "URL")]
    pub(crate) redis: Option<String>,
    /// Admin API port on 127.0.0.1 (0: any free port; the default falls
    /// back to a free port when taken).
    #[arg(long)]
    pub(crate) api_port: Option<u16>,
    /// Edge port on 127.0.0.1 (same rules).
    #[arg(long)]
    pub(crate) edge_port: Option<u16>,
}

/// Runs dev mode until Ctrl-C or SIGTERM.
pub async fn run(args: DevArgs, env: impl Fn(&str) -> Option<String>) -> anyhow::Result<()> {
    let started = Instant::now();
    let home = Home::open(&args.dir, args.reset)?;
    let secrets = home.secrets()?;
    let (database_url, postgres) = match env("DATABASE_URL").filter(|u| !u.is_empty()) {
        Some(url) => (url, None),
        None => {
            let pg = start_postgres(&home).await?;
            (format!("postgres://postgres@127.0.0.1:{}/nexus", pg.port()), Some(pg))
        }
    };
    let result =
        serve(&args, &home, &secrets, &database_url, postgres.as_ref(), &env, started).await;
    if let Some(pg) = postgres {
        tokio::task::spawn_blocking(move || pg.stop()).await??;
    }
    result
}

async fn serve(
    args: &DevArgs,
    home: &Home,
    secrets: &home::Secrets,
    database_url: &str,
    postgres: Option<&Postgres>,
    env: &impl Fn(&str) -> Option<String>,
    started: Instant,
) -> anyhow::Result<()> {
    // The control plane's own parser, over the environment with dev's
    // values where the user set none.
    let mut config = Config::from_lookup(|k| {
        let dev = match k {
            "DATABASE_URL" => Some(database_url.to_owned()),
            // Dev signs tokens with EdDSA, as production does: the edge
            // gets the public key only. (A SECRET_KEY set by the user still
            // applies, with its warning.)
            "NEXUS_TOKEN_SIGNING_KEY" if env("NEXUS_TOKEN_SIGNING_KEY_FILE").is_none() => {
                env(k).or_else(|| secrets.token_signing_key.clone())
            }
            "NEXUS_SIGNING_KEY" if env("NEXUS_SIGNING_KEY_FILE").is_none() => {
                env(k).or_else(|| Some(secrets.signing_key.clone()))
            }
            "REDIS_URL" => args.redis.clone(),
            _ => None,
        };
        dev.or_else(|| env(k))
    })?;
    // Dev brings its own bus, so it always publishes (the environment's
    // rule, no publishing without REDIS_URL, is about the binary's bus).
    config.propagation.publish = true;
    let store = Store::new(&config.db)?;
    let applied = store.migrate().await.context("migrating the dev database")?;
    if !applied.is_empty() {
        tracing::info!(?applied, "dev database migrated");
    }
    let transport: Arc<dyn Transport> = match &args.redis {
        Some(url) => Arc::new(RedisConfig::new(url, &config.propagation.prefix).connect()?),
        None => Arc::new(MemoryBus::new(MESSAGE_BUFFER)),
    };
    let service = server::start(&config, Some(Bus::new(transport.clone()))).await?;
    let seeded = seed(&store, &service).await?;

    // The edge: the library, fed by the same bus, holding only the public
    // keys the API verifies with.
    let signer = config.tokens.signer()?.clone();
    let verify_keys =
        nexus_protocol::jwk::jwks(&config.tokens.verifier()?.public_keys()).to_string();
    // The default port when free, else any: the banner says which.
    let edge_port = args.edge_port.unwrap_or_else(|| {
        let free = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 8080)).is_ok();
        if free { 8080 } else { 0 }
    });
    let edge_config = nexus_edge::config::Config::embedded(|k| match k {
        "EDGE_HTTP_ADDR" => Some(format!("127.0.0.1:{edge_port}")),
        "EDGE_WORKERS" => Some("1".into()),
        "EDGE_QUIC" => Some("off".into()),
        "NEXUS_TOKEN_VERIFY_KEYS" => Some(verify_keys.clone()),
        "NEXUS_TOKEN_VERIFY_KEYS_FILE"
        | "NEXUS_TOKEN_SIGNING_KEY"
        | "NEXUS_TOKEN_SIGNING_KEY_FILE" => None,
        _ => env(k),
    })?;
    let sync = SyncConfig {
        verify_keys: vec![config.propagation.signing_key.verifying_key()],
        edge_id: "dev-edge".into(),
        region: "dev".into(),
        state_dir: Some(home.edge()),
        check_interval: Duration::from_secs(1),
        max_staleness: nexus_edge::sync::MAX_STALENESS,
        stale_refuse: Vec::new(),
    };
    let kind = if args.redis.is_some() { SourceKind::Redis } else { SourceKind::InProcess };
    let metrics = Arc::new(Metrics::new());
    let (state, feed) = node::open_bus(&sync, transport, kind, &metrics)?;
    let edge = node::launch(&edge_config, state.clone(), feed, metrics)?;
    let api = bind(args.api_port, 8000).await?;
    let api_addr = api.local_addr()?;
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let mut api_stop = stopped.clone();
    let api_task = tokio::spawn(service.serve(api, async move {
        let _ = api_stop.wait_for(|s| *s).await;
    }));
    // Printed once the edge holds the registry as it is now, so the first
    // curl works.
    let head = store.registry_head().await?;
    let deadline = Instant::now() + READY_WITHIN;
    while !(state.is_loaded() && state.epoch() == head.epoch && state.version() >= head.version) {
        if Instant::now() > deadline {
            bail!("the edge did not receive the registry within {READY_WITHIN:?}");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let edge_addr = edge.http_addr().context("the edge has no HTTP listener")?;
    banner(&Banner {
        home,
        api: api_addr,
        edge: edge_addr,
        signer: &signer,
        verify_keys: &verify_keys,
        postgres,
        redis: args.redis.as_deref(),
        prefix: &config.propagation.prefix,
        verify_key: &verify_key_hex(&config.propagation.signing_key.verifying_key()).to_string(),
        seeded,
        ready: started.elapsed(),
    })?;
    server::terminated().await;
    eprintln!("stopping: admin API, publisher, edge, then PostgreSQL");
    let _ = stop.send(true);
    api_task.await??;
    edge.stop().await;
    Ok(())
}

/// A private PostgreSQL under the state directory, with a `nexus`
/// database.
async fn start_postgres(home: &Home) -> anyhow::Result<Postgres> {
    let dir = home.postgres();
    let pg = tokio::task::spawn_blocking(move || Postgres::start(&dir, false)).await??;
    let (client, connection) = tokio_postgres::connect(&pg.url(), tokio_postgres::NoTls)
        .await
        .context("connecting to the dev PostgreSQL")?;
    tokio::spawn(connection);
    let exists = client.query_opt("SELECT 1 FROM pg_database WHERE datname = 'nexus'", &[]).await?;
    if exists.is_none() {
        client.batch_execute("CREATE DATABASE nexus").await?;
    }
    Ok(pg)
}

/// Loads the sample aliases into a registry nothing was ever written to;
/// returns how many.
async fn seed(store: &Store, service: &server::Service) -> anyhow::Result<Option<usize>> {
    if store.registry_head().await?.version > 0 {
        return Ok(None);
    }
    let mut file = AliasFile::parse(SAMPLE).context("the built-in sample aliases")?;
    let governance = service.state().governance();
    // The file is also the file-mode edge's demo (an expired alias, a
    // reserved name): keep what the rules in force accept.
    let now = Utc::now();
    file.aliases.retain(|e| governance.check(&Candidate::from(e), now).is_ok());
    let actor = Actor::system("dev-sample");
    registry::import(store, &governance, &file.aliases, ImportPolicy::Skip, false, &actor)
        .await
        .map_err(|e| anyhow::anyhow!("loading the sample aliases: {e:?}"))?;
    Ok(Some(file.aliases.len()))
}

/// Binds 127.0.0.1:`port`, or the default and, when that is taken, any
/// free port.
async fn bind(port: Option<u16>, default: u16) -> anyhow::Result<TcpListener> {
    let at = |p: u16| SocketAddr::from((Ipv4Addr::LOCALHOST, p));
    match port {
        Some(p) => TcpListener::bind(at(p)).await.with_context(|| format!("binding {}", at(p))),
        None => match TcpListener::bind(at(default)).await {
            Ok(l) => Ok(l),
            Err(_) => Ok(TcpListener::bind(at(0)).await?),
        },
    }
}

struct Banner<'a> {
    home: &'a Home,
    api: SocketAddr,
    edge: SocketAddr,
    signer: &'a nexus_protocol::TokenSigner,
    verify_keys: &'a str,
    postgres: Option<&'a Postgres>,
    redis: Option<&'a str>,
    prefix: &'a str,
    verify_key: &'a str,
    seeded: Option<usize>,
    ready: Duration,
}

/// What a newcomer needs, on stdout (logs go to stderr).
fn banner(b: &Banner<'_>) -> anyhow::Result<()> {
    let now = Utc::now().timestamp();
    // A day, or less when TOKEN_MAX_TTL says so.
    let ttl = (TOKEN_TTL.as_secs() as i64).min(b.signer.max_ttl().unwrap_or(i64::MAX));
    let admin = b.signer.issue("dev-admin", Role::Admin, ContextScope::All, now, ttl)?;
    let resolver = b.signer.issue("dev-resolver", Role::Resolver, ContextScope::All, now, ttl)?;
    let database = match b.postgres {
        Some(pg) => format!("private PostgreSQL on 127.0.0.1:{}", pg.port()),
        None => "PostgreSQL from DATABASE_URL".to_owned(),
    };
    let bus = match b.redis {
        Some(_) => "Redis from --redis",
        None => "in-process bus",
    };
    let seeded = match b.seeded {
        Some(n) => format!("{n} sample aliases loaded"),
        None => "registry kept from the last run".to_owned(),
    };
    println!();
    println!("NEXUS dev ready in {:.1} s: {database}, {bus}, {seeded}", b.ready.as_secs_f64());
    println!("state in {}", b.home.dir().display());
    println!();
    println!("  admin API:       http://{}", b.api);
    println!("  edge:            http://{}", b.edge);
    println!("  console:         http://{}/console  (sign in with the admin token)", b.api);
    println!("  admin token:     {admin}");
    println!("  resolver token:  {resolver}");
    println!("  (tokens valid for {} h, {} signed)", ttl / 3600, b.signer.algorithm());
    println!();
    println!("Try:");
    println!(
        "  curl -H 'Authorization: Bearer {resolver}' \
         http://{}/api/aliases/resolve/frontend/user-profile",
        b.edge
    );
    println!(
        "  curl -X POST -H 'Authorization: Bearer {admin}' -H 'content-type: application/json' \
         -d '{{\"context\":\"frontend\",\"alias\":\"hello\",\"canonical\":\"https://api.nexus.com/v1/hello\"}}' \
         http://{}/api/admin/aliases",
        b.api
    );
    if let Some(url) = b.redis {
        println!();
        println!("More edges can join:");
        println!(
            "  REDIS_URL={url} NEXUS_REDIS_PREFIX={} NEXUS_VERIFY_KEY={} \
             NEXUS_TOKEN_VERIFY_KEYS='{}' EDGE_HTTP_ADDR=127.0.0.1:0 nexus-edge",
            b.prefix, b.verify_key, b.verify_keys
        );
    }
    println!();
    println!("Ctrl-C stops everything.");
    Ok(())
}
