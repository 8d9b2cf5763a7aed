//! The scenarios (what one attack is, by name) and the setup every
//! scenario shares, so the runner ([`super`]) and the report
//! ([`super::report`]) both read them from here and not from each other.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use crate::http::HttpConnector;

use super::attack::Aim;
use super::quic;

/// One attack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scenario {
    RapidReset,
    Continuation,
    SettingsFlood,
    PingFlood,
    Idle,
    Slowloris,
    ConnFlood,
    QuicInitialFlood,
    QuicAbandonedStreams,
    JunkTokens,
}

impl Scenario {
    pub const ALL: [Scenario; 10] = [
        Scenario::RapidReset,
        Scenario::Continuation,
        Scenario::SettingsFlood,
        Scenario::PingFlood,
        Scenario::Idle,
        Scenario::Slowloris,
        Scenario::ConnFlood,
        Scenario::QuicInitialFlood,
        Scenario::QuicAbandonedStreams,
        Scenario::JunkTokens,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Scenario::RapidReset => "rapid-reset",
            Scenario::Continuation => "continuation",
            Scenario::SettingsFlood => "settings-flood",
            Scenario::PingFlood => "ping-flood",
            Scenario::Idle => "idle",
            Scenario::Slowloris => "slowloris",
            Scenario::ConnFlood => "conn-flood",
            Scenario::QuicInitialFlood => "quic-initial-flood",
            Scenario::QuicAbandonedStreams => "quic-abandoned-streams",
            Scenario::JunkTokens => "junk-tokens",
        }
    }

    pub fn is_quic(self) -> bool {
        matches!(self, Scenario::QuicInitialFlood | Scenario::QuicAbandonedStreams)
    }

    /// What the report's `attack.sent` counts.
    pub(super) fn unit(self) -> &'static str {
        match self {
            Scenario::RapidReset
            | Scenario::Continuation
            | Scenario::SettingsFlood
            | Scenario::PingFlood => "frames",
            Scenario::Idle => "connections",
            Scenario::Slowloris => "bytes",
            Scenario::ConnFlood => "connections",
            Scenario::QuicInitialFlood => "datagrams",
            Scenario::QuicAbandonedStreams => "streams",
            Scenario::JunkTokens => "requests",
        }
    }

    pub(super) fn describe(self, aim: &Aim) -> String {
        match self {
            Scenario::RapidReset => format!(
                "HTTP/2 HEADERS + RST_STREAM(CANCEL) loop (CVE-2023-44487), {} h2c connections",
                aim.connections
            ),
            Scenario::Continuation => format!(
                "HEADERS without END_HEADERS, then endless CONTINUATION (CVE-2024-27316), {} h2c connections",
                aim.connections
            ),
            Scenario::SettingsFlood => {
                format!("SETTINGS frames as fast as possible, {} h2c connections", aim.connections)
            }
            Scenario::PingFlood => {
                format!("PING frames as fast as possible, {} h2c connections", aim.connections)
            }
            Scenario::Idle => format!("{} idle TCP connections", aim.idle),
            Scenario::Slowloris => format!(
                "{} slowloris connections, one header byte every {:?}",
                aim.slowloris, aim.slowloris_every
            ),
            Scenario::ConnFlood => format!(
                "{} connections held + {} tasks opening and resetting connections",
                aim.flood_hold, aim.flood_tasks
            ),
            Scenario::QuicInitialFlood => format!(
                "1200-byte Initial-looking and junk datagrams, {} sockets, new source port every {}",
                aim.quic_sockets,
                quic::DATAGRAMS_PER_PORT
            ),
            Scenario::QuicAbandonedStreams => format!(
                "{} QUIC connections, streams opened with a partial frame and never finished",
                aim.connections
            ),
            Scenario::JunkTokens => format!(
                "resolves with the legitimate token's header and claims and a fresh junk \
                 signature each, {} HTTP/1.1 connections from {}",
                aim.connections,
                super::tokens::attacker_source(aim.http)
                    .map_or_else(|| "the default source".to_owned(), |a| a.to_string())
            ),
        }
    }
}

impl fmt::Display for Scenario {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Scenario {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Scenario::ALL.into_iter().find(|c| c.name() == s).ok_or_else(|| {
            let names: Vec<_> = Scenario::ALL.iter().map(|c| c.name()).collect();
            format!("unknown scenario {s:?}; one of: {}", names.join(", "))
        })
    }
}

/// Everything the scenarios share.
#[derive(Debug)]
pub struct Setup {
    pub aim: Aim,
    /// The edge's process, for RSS and CPU (none: not measured).
    pub pid: Option<u32>,
    pub legit: Arc<HttpConnector>,
    pub keys: usize,
    /// Legitimate connections.
    pub connections: usize,
    /// Legitimate requests/s offered (open model); `None`: closed model.
    pub rate: Option<f64>,
    /// Each phase's legitimate load.
    pub duration: Duration,
    /// Attack alone before the legitimate load starts (the idle and
    /// slowloris connections need it to be all open).
    pub warmup: Duration,
    /// Legitimate load's worker threads.
    pub threads: usize,
    pub seed: u64,
}
