//! Each subcommand's arguments. Values the API takes typed (roles,
//! context scopes, times) are parsed here, into the API's own types, so a
//! bad one is a usage error before anything is sent.
//!
//! The argument structs carry `//` comments, not doc comments: clap would
//! take a struct's doc comment as the `about` of a subcommand that has none
//! of its own, and the help text would change.

use std::path::PathBuf;

use chrono::{DateTime, Utc};
use clap::{Args, Subcommand, ValueEnum};
use nexus_protocol::{ContextScope, Role};

use super::value::{Expiry, scope};
use crate::domain::conflict::Resolution;

#[derive(Debug, Subcommand)]
pub(crate) enum AliasCmd {
    List(AliasListArgs),
    Get(AliasArgs),
    Create(AliasCreateArgs),
    Update(AliasUpdateArgs),
    /// Deactivate (the history keeps it).
    Rm(AliasArgs),
    /// Every version of one alias, newest first.
    History(AliasHistoryArgs),
}

// One alias, by its key.
#[derive(Debug, Args)]
pub(crate) struct AliasArgs {
    pub context: String,
    pub alias: String,
}

#[derive(Debug, Args)]
pub(crate) struct AliasListArgs {
    #[arg(long)]
    pub context: Option<String>,
    /// Search alias names and canonicals.
    #[arg(long)]
    pub search: Option<String>,
    /// Inactive ones too.
    #[arg(long)]
    pub all: bool,
    #[arg(long, default_value_t = 100)]
    pub limit: u32,
}

#[derive(Debug, Args)]
pub(crate) struct AliasCreateArgs {
    pub context: String,
    pub alias: String,
    pub canonical: String,
    #[arg(long)]
    pub description: Option<String>,
    /// RFC 3339.
    #[arg(long)]
    pub expires_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Args)]
pub(crate) struct AliasUpdateArgs {
    pub context: String,
    pub alias: String,
    #[arg(long)]
    pub canonical: Option<String>,
    #[arg(long)]
    pub description: Option<String>,
    /// RFC 3339, or `none` to clear.
    #[arg(long)]
    pub expires_at: Option<Expiry>,
    /// Make it active again.
    #[arg(long)]
    pub activate: bool,
}

#[derive(Debug, Args)]
pub(crate) struct AliasHistoryArgs {
    pub context: String,
    pub alias: String,
    #[arg(long, default_value_t = 50)]
    pub limit: u32,
}

#[derive(Debug, Args)]
pub(crate) struct ResolveArgs {
    pub context: String,
    pub alias: String,
    /// A registry version, or an RFC 3339 time.
    #[arg(long)]
    pub as_of: Option<String>,
}

#[derive(Debug, Subcommand)]
pub(crate) enum ConflictCmd {
    List {
        /// `open` (default) or `resolved`.
        #[arg(long, default_value = "open")]
        status: String,
    },
    Resolve {
        id: i64,
        /// Which side wins.
        #[arg(long = "use", value_enum)]
        side: Side,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum Side {
    Existing,
    Incoming,
}

/// The CLI names the side; the API names what happens to it.
impl From<Side> for Resolution {
    fn from(side: Side) -> Self {
        match side {
            Side::Existing => Resolution::KeepExisting,
            Side::Incoming => Resolution::UseIncoming,
        }
    }
}

#[derive(Debug, Subcommand)]
pub(crate) enum AuditCmd {
    List(AuditListArgs),
    /// Recompute the hash chain; exit 1 when it is broken.
    Verify,
}

#[derive(Debug, Args)]
pub(crate) struct AuditListArgs {
    #[arg(long)]
    pub actor: Option<String>,
    #[arg(long)]
    pub action: Option<String>,
    /// RFC 3339.
    #[arg(long)]
    pub since: Option<String>,
    #[arg(long, default_value_t = 50)]
    pub limit: u32,
}

#[derive(Debug, Subcommand)]
pub(crate) enum KeyCmd {
    /// Create a key; its secret is shown once.
    Create(KeyCreateArgs),
    /// Every key (never the secret), newest first.
    List,
    Revoke {
        id: i64,
    },
}

#[derive(Debug, Args)]
pub(crate) struct KeyCreateArgs {
    pub name: String,
    #[arg(long)]
    pub role: Role,
    /// Comma-separated contexts, or `*`.
    #[arg(long, default_value = "*", value_parser = scope)]
    pub contexts: ContextScope,
}

#[derive(Debug, Args)]
pub(crate) struct ExportArgs {
    /// Only these contexts (repeat, or comma-separate).
    #[arg(long, value_delimiter = ',')]
    pub context: Vec<String>,
    #[arg(long, value_enum, default_value = "yaml")]
    pub format: FileFormat,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum FileFormat {
    Yaml,
    Json,
}

// The declarative file and how it is taken: what `diff` shows and
// `apply` carries out.
#[derive(Debug, Args)]
pub(crate) struct PlanArgs {
    /// The declarative file (YAML or JSON), e.g. from `nexusctl export`.
    pub file: PathBuf,
    /// Deactivate active aliases the file lacks, in the contexts it names.
    #[arg(long)]
    pub prune: bool,
    /// More contexts to treat as named (with --prune: emptied if the file
    /// has none of their aliases).
    #[arg(long, value_delimiter = ',')]
    pub context: Vec<String>,
}

#[derive(Debug, Args)]
pub(crate) struct ApplyArgs {
    #[command(flatten)]
    pub plan: PlanArgs,
    /// Do not ask.
    #[arg(long)]
    pub yes: bool,
}
