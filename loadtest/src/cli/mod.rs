//! The command line: the subcommands, each one's arguments ([`args`]) and
//! the duration syntax they share ([`duration`]). Only parsing lives here;
//! what a subcommand does is in `crate::command`.

pub mod args;
pub mod duration;

use clap::{Parser, Subcommand};

use args::{AbuseArgs, GenArgs, HttpArgs, PeerArgs, PropagationArgs, QuicArgs, TokenArgs};

#[derive(Debug, Parser)]
#[command(name = "nexus-loadtest", version, about = "Load generator for NEXUS edges")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
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
    /// Run legitimate load on an edge alone, then under each protocol
    /// attack (HTTP/2 floods, idle, slowloris, connection and QUIC
    /// floods): throughput ratio, p99, RSS, health, the metric that moved.
    /// Exit 0: healthy throughout every scenario; 2: not; 1: could not run.
    Abuse(AbuseArgs),
}
