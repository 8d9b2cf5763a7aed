//! The command line: the global options and the subcommands ([`Cli`]),
//! each subcommand's arguments ([`args`]) and the values typed there that
//! are more than strings ([`value`]). Only parsing lives here; what a
//! subcommand does is in `super::command`. The doc comments are the
//! `--help` text.

pub(crate) mod args;
pub(crate) mod value;

use clap::{Parser, Subcommand, ValueEnum};

use super::output::Output;
use args::{AliasCmd, ApplyArgs, AuditCmd, ConflictCmd, ExportArgs, KeyCmd, PlanArgs, ResolveArgs};

#[derive(Debug, Parser)]
#[command(
    name = "nexusctl",
    version,
    about = "Manage a NEXUS registry through its admin API",
    after_help = "Exit codes: 0 ok, 1 failed (server error), 2 usage or bad request, \
                  3 API unreachable, 4 not found, 5 conflict, 6 governance violation, \
                  7 unauthorized or forbidden, 8 rate-limited (retry later), \
                  9 committed but not served by the edges within --wait-timeout."
)]
pub(crate) struct Cli {
    /// The control plane's admin API.
    #[arg(long, env = "NEXUS_URL", default_value = "http://127.0.0.1:8000", global = true)]
    pub url: String,
    /// A JWT or an `nxk_` API key.
    #[arg(long, env = "NEXUS_TOKEN", hide_env_values = true, global = true)]
    pub token: Option<String>,
    /// `table` for people, `json` for scripts.
    #[arg(long, short, value_enum, default_value = "table", global = true)]
    pub output: Output,
    /// Writes return only once the edges serve them (the API's publish
    /// barrier); exit 9 if they did not within the timeout.
    #[arg(long, value_enum, global = true)]
    pub wait: Option<WaitFor>,
    /// With --wait: only the live edges of this region.
    #[arg(long, global = true, requires = "wait")]
    pub wait_region: Option<String>,
    /// With --wait: enough when this share of the live edges serve it (0 < F <= 1).
    #[arg(long, global = true, requires = "wait")]
    pub wait_quorum: Option<f64>,
    /// With --wait: how long to wait, e.g. `500ms`, `5s` (default 10s, at most 60s).
    #[arg(long, global = true, requires = "wait")]
    pub wait_timeout: Option<String>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum WaitFor {
    /// Every live edge (or the region's, or the quorum) serves the write.
    Applied,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Aliases: list, get, create, update, rm, history.
    #[command(subcommand)]
    Alias(AliasCmd),
    /// Resolve an alias on the control plane (optionally as of a version or time).
    Resolve(ResolveArgs),
    /// The conflict queue.
    #[command(subcommand)]
    Conflicts(ConflictCmd),
    /// The audit trail.
    #[command(subcommand)]
    Audit(AuditCmd),
    /// Every edge the control plane has heard from.
    Edges,
    /// API keys.
    #[command(subcommand)]
    Keys(KeyCmd),
    /// The registry (or some contexts) as the declarative file import takes.
    Export(ExportArgs),
    /// What applying FILE would change, alias by alias (a dry run).
    Diff(PlanArgs),
    /// Make the registry what FILE says: shows the plan, asks, then applies
    /// exactly that plan (refused if the registry moved meanwhile).
    Apply(ApplyArgs),
    /// Shell completions, to source or install.
    Completions { shell: clap_complete::Shell },
}
