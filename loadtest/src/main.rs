//! `nexus-loadtest`: `gen` synthetic registries, mint a `token`, load a
//! target over `http` (HTTP/1.1, h2c, HTTP/2 over TLS) or `quic`
//! (`nexus-resolve/1`), probe `propagation` (control plane → edges), or
//! serve a `hyper-peer` to compare the edge with.
//!
//! The binary's own modules: [`cli`] parses the command line (nothing
//! else); [`command`] holds what each subcommand does, one module each.
//! The load generation itself is the library (`nexus_loadtest`).

mod cli;
mod command;

use clap::Parser;

use cli::{Cli, Command};

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Gen(args) => command::generate::run(args),
        Command::Token(args) => command::token::run(&args),
        Command::Http(args) => command::http::run(args),
        Command::Quic(args) => command::quic::run(args),
        Command::HyperPeer(args) => command::peer::run(args),
        Command::Propagation(args) => command::probe::run(args),
        Command::Abuse(args) => command::abuse::run(args),
    }
}
