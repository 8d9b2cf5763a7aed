//! `nexus-control-plane`: serve (default), dev, migrate, token, import.

use std::path::PathBuf;

use anyhow::{Context as _, bail};
use chrono::Utc;
use clap::{Parser, Subcommand};
use nexus_control_plane::config::Config;
use nexus_control_plane::domain::governance::Governance;
use nexus_control_plane::domain::import::ImportPolicy;
use nexus_control_plane::registry::{self, WriteError};
use nexus_control_plane::server;
use nexus_control_plane::store::{Actor, Store};
use nexus_protocol::{AliasFile, ContextScope, MintError, Role};

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
    /// The whole system in one process: admin API, publisher and an edge,
    /// on a private PostgreSQL unless DATABASE_URL is set, sample aliases
    /// loaded on first start. State is kept in --dir.
    Dev(nexus_control_plane::dev::DevArgs),
    /// Apply missing database migrations (safe to run twice).
    Migrate,
    /// Print a JWT signed with the configured key (NEXUS_TOKEN_SIGNING_KEY,
    /// or SECRET_KEY in development). Needs no database.
    Token {
        #[arg(long)]
        sub: String,
        #[arg(long)]
        role: Role,
        /// Comma-separated contexts, or `*` for all.
        #[arg(long, default_value = "*")]
        contexts: String,
        /// Lifetime in seconds (default TOKEN_EXPIRATION; at most
        /// TOKEN_MAX_TTL).
        #[arg(long)]
        ttl: Option<i64>,
        /// The team the holder writes for: aliases it creates are owned by
        /// `team:<TEAM>`, which every member of the team may change.
        #[arg(long)]
        team: Option<String>,
    },
    /// Registry epoch: `epoch bump` after restoring the database from a
    /// backup, so every edge takes a fresh snapshot (audited).
    Epoch {
        #[command(subcommand)]
        action: EpochAction,
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

#[derive(Debug, Subcommand)]
enum EpochAction {
    /// Give the registry a new random epoch.
    Bump,
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
    nexus_runtime::logging::init(&config.log_level, config.log_format)?;
    if let Some(Command::Token { sub, role, contexts, ttl, team }) = &cli.command {
        return token(&config, sub, team.as_deref(), *role, contexts, *ttl);
    }
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    rt.block_on(async move {
        match cli.command.unwrap_or(Command::Serve) {
            Command::Serve => serve(config).await,
            Command::Dev(args) => {
                nexus_control_plane::dev::run(args, |k| std::env::var(k).ok()).await
            }
            Command::Migrate => migrate(&config).await,
            Command::Epoch { action: EpochAction::Bump } => {
                let store = Store::new(&config.db)?;
                let (old, new) = store.bump_epoch(&Actor::system("cli")).await?;
                println!(
                    "epoch {old} -> {new}: the publisher sends a fresh snapshot and every edge \
                     takes it"
                );
                Ok(())
            }
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
    team: Option<&str>,
    role: Role,
    contexts: &str,
    ttl: Option<i64>,
) -> anyhow::Result<()> {
    let signer = config.tokens.signer()?;
    let list: Vec<String> =
        contexts.split(',').map(|c| c.trim().to_owned()).filter(|c| !c.is_empty()).collect();
    let scope = ContextScope::try_from(list).context("--contexts")?;
    let ttl = ttl.unwrap_or(config.token_expiration_secs);
    let token = signer
        .issue_for_team(sub, team, role, scope, Utc::now().timestamp(), ttl)
        .map_err(|e| match e {
            MintError::Team(_) => anyhow::anyhow!("--team: {e}"),
            MintError::ReservedSubject(_) => anyhow::anyhow!("--sub: {e}"),
            _ => anyhow::anyhow!("--ttl: {e}"),
        })?;
    println!("{token}");
    Ok(())
}

/// The library's loader (built-in rules unless `NEXUS_GOVERNANCE_FILE`);
/// its errors already name the variable and the path.
fn load_governance(config: &Config) -> anyhow::Result<Governance> {
    Ok(nexus_control_plane::config::load_governance(config)?)
}

async fn serve(config: Config) -> anyhow::Result<()> {
    // Everything is checked before the port is bound.
    let service = server::start(&config, None).await?;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("binding {}", config.listen))?;
    tracing::info!(addr = %config.listen, "nexus-control-plane listening");
    service.serve(listener, server::terminated()).await?;
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
