//! `nexusctl`: the admin's command line. It talks to the admin API only,
//! never to the database, so it needs what any client needs: the URL
//! (`--url` / `NEXUS_URL`) and a credential (`--token` / `NEXUS_TOKEN`: a
//! JWT, or an `nxk_` API key). Tables for people, `--output json` for
//! scripts, and exit codes that say what happened ([`client::exit`]).
//!
//! Its request bodies are the API's own types (`api::aliases::CreateBody`,
//! `api::admin::KeyBody`, ...), and the answers it decides on are read
//! through the API's types (`store::apply::ApplyReport`,
//! `audit::chain::Report`, ...), so the two cannot drift apart.
//!
//! - [`cli`]: the command line, parsed (nothing else).
//! - [`command`]: what each subcommand does, one module per family.
//! - [`client`]: the HTTP calls and the error → exit code mapping.
//! - [`output`]: JSON or a table; [`table`]: the table.
//! - [`wait`]: `--wait applied`, asked for and reported.

pub(crate) mod cli;
pub(crate) mod client;
pub(crate) mod command;
pub(crate) mod output;
pub(crate) mod table;
pub(crate) mod wait;

use std::process::ExitCode;

use clap::Parser as _;

use cli::{Cli, Command, WaitFor};
use client::{Client, CtlError, exit};

/// Parses the command line and runs it; the exit code says how it went.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("nexusctl: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("nexusctl: {e}");
            e.exit_code()
        }
    }
}

/// Runs one parsed command, printing to stdout. A command's own verdict
/// (a broken audit chain, an apply not confirmed) is the exit code;
/// otherwise the writes' barriers decide it.
async fn run(cli: Cli) -> Result<ExitCode, CtlError> {
    let wait = cli.wait.map(|WaitFor::Applied| wait::Wait {
        region: cli.wait_region.clone(),
        quorum: cli.wait_quorum,
        timeout: cli.wait_timeout.clone(),
    });
    let client = Client::new(&cli.url, cli.token.clone())?.with_wait(wait.map(|w| w.query()));
    let out = cli.output;
    let verdict = match cli.command {
        Command::Alias(cmd) => command::alias::run(&client, out, cmd).await?,
        Command::Resolve(args) => command::resolve::run(&client, out, args).await?,
        Command::Conflicts(cmd) => command::conflict::run(&client, out, cmd).await?,
        Command::Audit(cmd) => command::audit::run(&client, out, cmd).await?,
        Command::Edges => command::edges::run(&client, out).await?,
        Command::Keys(cmd) => command::key::run(&client, out, cmd).await?,
        Command::Export(args) => command::export::run(&client, args).await?,
        Command::Diff(args) => command::apply::diff(&client, out, &args).await?,
        Command::Apply(args) => command::apply::run(&client, out, &args).await?,
        Command::Completions { shell } => command::completions::run(shell),
    };
    if verdict != exit::OK {
        return Ok(ExitCode::from(verdict));
    }
    Ok(wait::report(&client.barriers()))
}
