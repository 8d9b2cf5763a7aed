//! `nexus-control-plane`: serve (default), migrate, token, import.

use std::path::PathBuf;

use anyhow::{Context as _, bail};
use chrono::Utc;
use clap::{Parser, Subcommand};
use nexus_control_plane::audit::retention::Retention;
use nexus_control_plane::config::Config;
use nexus_control_plane::domain::governance::Governance;
use nexus_control_plane::domain::import::ImportPolicy;
use nexus_control_plane::publisher;
use nexus_control_plane::registry::{self, WriteError};
use nexus_control_plane::server::{self, RETENTION_INTERVAL};
use nexus_control_plane::store::{Actor, Store};
use nexus_protocol::{AliasFile, ContextScope, Role, TokenSigner, TokenVerifier};

#[derive(Debug, Parser)]
#[command(name = "nexus-control-plane", version, about = "NEXUS SSOT control plane")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the admin API (the default).
    Serve,
    /// Apply missing database migrations (safe to run twice).
    Migrate,
    /// Print a JWT signed with SECRET_KEY. Needs no database.
    Token {
        #[arg(long)]
        sub: String,
        #[arg(long)]
        role: Role,
        /// Comma-separated contexts, or `*` for all.
        #[arg(long, default_value = "*")]
        contexts: String,
        /// Lifetime in seconds (default TOKEN_EXPIRATION).
        #[arg(long)]
        ttl: Option<i64>,
    },
    /// Import a declarative alias file (YAML or JSON) in one transaction.
    Import {
        file: PathBuf,
        #[arg(long, value_enum, default_value = "reject")]
        on_conflict: PolicyArg,
        #[arg(long)]
        dry_run: bool,
    },
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum PolicyArg {
    Reject,
    Skip,
    Replace,
}

impl From<PolicyArg> for ImportPolicy {
    fn from(p: PolicyArg) -> Self {
        match p {
            PolicyArg::Reject => ImportPolicy::Reject,
            PolicyArg::Skip => ImportPolicy::Skip,
            PolicyArg::Replace => ImportPolicy::Replace,
        }
    }
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let config = Config::from_env()?;
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_new(&config.log_level)
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    if let Some(Command::Token { sub, role, contexts, ttl }) = &cli.command {
        return token(&config, sub, *role, contexts, *ttl);
    }
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    rt.block_on(async move {
        match cli.command.unwrap_or(Command::Serve) {
            Command::Serve => serve(config).await,
            Command::Migrate => migrate(&config).await,
            Command::Import { file, on_conflict, dry_run } => {
                import(&config, &file, on_conflict.into(), dry_run).await
            }
            Command::Token { .. } => Ok(()),
        }
    })
}

fn token(
    config: &Config,
    sub: &str,
    role: Role,
    contexts: &str,
    ttl: Option<i64>,
) -> anyhow::Result<()> {
    let secret = config.secret()?;
    let list: Vec<String> =
        contexts.split(',').map(|c| c.trim().to_owned()).filter(|c| !c.is_empty()).collect();
    let scope = ContextScope::try_from(list).context("--contexts")?;
    let ttl = ttl.unwrap_or(config.token_expiration_secs);
    if ttl <= 0 {
        bail!("--ttl must be positive");
    }
    let signer = TokenSigner::hs256(secret.expose().as_bytes());
    println!("{}", signer.mint(sub, role, scope, Utc::now().timestamp(), ttl));
    Ok(())
}

fn load_governance(config: &Config) -> anyhow::Result<Governance> {
    let path = &config.governance_file;
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading NEXUS_GOVERNANCE_FILE {}", path.display()))?;
    Governance::from_yaml(&text).with_context(|| format!("governance file {}", path.display()))
}

async fn serve(config: Config) -> anyhow::Result<()> {
    // Everything is checked before the port is bound.
    let secret = config.secret()?;
    let verifier = TokenVerifier::hs256(secret.expose().as_bytes());
    let governance = load_governance(&config)?;
    let store = Store::new(&config.db)?;
    let state = server::prepare(store, verifier, governance).await?;
    state.prometheus_enabled.store(config.prometheus_enabled, std::sync::atomic::Ordering::Relaxed);
    // Propagation: Redis for the fleet view, and the publisher (one leader).
    let (stop_publisher, mut publisher_stop) = tokio::sync::watch::channel(false);
    let publisher = publisher::start::start(
        &config.propagation,
        &config.db,
        &state.store,
        &state.propagation,
        state.metrics.publish.clone(),
        async move {
            let _ = publisher_stop.wait_for(|s| *s).await;
        },
    )?;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("binding {}", config.listen))?;
    tracing::info!(addr = %config.listen, "nexus-control-plane listening");
    let retention = Retention {
        archive_after_days: config.audit_archive_after_days,
        purge_after_days: config.audit_purge_after_days,
        interval: RETENTION_INTERVAL,
    };
    // Ctrl-C locally, SIGTERM from an orchestrator: both drain and stop.
    let shutdown = async {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            match signal(SignalKind::terminate()) {
                Ok(mut term) => {
                    tokio::select! {
                        _ = tokio::signal::ctrl_c() => {}
                        _ = term.recv() => {}
                    }
                }
                Err(_) => {
                    let _ = tokio::signal::ctrl_c().await;
                }
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
    };
    server::serve(listener, state, Some(retention), shutdown).await?;
    let _ = stop_publisher.send(true);
    if let Some(task) = publisher {
        let _ = task.await;
    }
    Ok(())
}

async fn migrate(config: &Config) -> anyhow::Result<()> {
    let store = Store::new(&config.db)?;
    let applied = store.migrate().await?;
    if applied.is_empty() {
        println!("schema is up to date");
    } else {
        println!("applied: {}", applied.join(", "));
    }
    Ok(())
}

async fn import(
    config: &Config,
    file: &PathBuf,
    policy: ImportPolicy,
    dry_run: bool,
) -> anyhow::Result<()> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    let parsed = AliasFile::parse(&text).with_context(|| format!("parsing {}", file.display()))?;
    let governance = load_governance(config)?;
    let store = Store::new(&config.db)?;
    let started = std::time::Instant::now();
    let actor = Actor::system("cli-import");
    let report =
        match registry::import(&store, &governance, &parsed.aliases, policy, dry_run, &actor).await
        {
            Ok(report) => report,
            Err(WriteError::Refused(report)) => {
                println!("{}", serde_json::to_string_pretty(&report)?);
                bail!("{} conflicts; nothing was written", report.conflicts.len());
            }
            Err(e) => return Err(e.into()),
        };
    println!("{}", serde_json::to_string_pretty(&report)?);
    eprintln!("imported {} entries in {:.2?}", parsed.aliases.len(), started.elapsed());
    Ok(())
}
