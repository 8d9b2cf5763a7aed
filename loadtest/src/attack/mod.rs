//! The `attack` suite: a process with full read and write access to the
//! registry's Redis keys tries what The Update Framework's threat model
//! names — rollback, freeze, mix-and-match, endless data, a key the edges
//! do not (or no longer) trust — against edges that serve a registry where
//! an alias changed and an API key was revoked since the copy was taken.
//! For each attack it reports what the edges served and whether any
//! accepted the revoked credential (the target is none, every time).
//!
//! - [`mirror`]: the attacker's hands on Redis (copy, write back, forge).
//! - [`probe`]: what the edges answer (the canary alias, the revoked key,
//!   their health).
//!
//! The control plane keeps running between attacks (it refills Redis with
//! the real state), except for the freeze, which cuts it off as an
//! attacker holding Redis would: the caller says when that happens.

pub mod mirror;
pub mod probe;

use std::fmt;
use std::time::Duration;

pub use mirror::{Copy, Mirror};
pub use probe::{Observation, Probe};

/// One attack on the bus.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attack {
    /// The old copy of snapshot, head, ring and statement written back.
    ReplaySnapshot,
    /// The old ring's deltas written back and announced again.
    ReplayDeltas,
    /// The old snapshot beside the current head (mix-and-match).
    MixSnapshotAndHead,
    /// A 32 MiB value as the snapshot and a 1 MiB one as the statement,
    /// under a far-ahead head.
    Oversized,
    /// A later state (the canary moved, the revoked key granted again)
    /// signed with the public development key.
    DevKeySigned,
    /// The same, signed with a key the edges do not trust (a retired one).
    RetiredKeySigned,
    /// The leader cut off and the old copy held in place: a frozen Redis.
    Freeze,
}

impl Attack {
    /// Every attack but the freeze, which ends the control plane's part.
    pub const LIVE: [Attack; 6] = [
        Attack::ReplaySnapshot,
        Attack::ReplayDeltas,
        Attack::MixSnapshotAndHead,
        Attack::Oversized,
        Attack::DevKeySigned,
        Attack::RetiredKeySigned,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Attack::ReplaySnapshot => "replay old snapshot + head + ring",
            Attack::ReplayDeltas => "replay old deltas",
            Attack::MixSnapshotAndHead => "old snapshot, current head",
            Attack::Oversized => "oversized snapshot and statement",
            Attack::DevKeySigned => "state signed with the dev key",
            Attack::RetiredKeySigned => "state signed with a retired key",
            Attack::Freeze => "frozen copy (leader cut off)",
        }
    }
}

/// What one attack came to.
#[derive(Debug, Clone)]
pub struct Row {
    pub attack: Attack,
    /// What the edges served for the canary during the attack.
    pub served: Observation,
    /// Edges that accepted the revoked credential at any probe.
    pub revoked_accepted: usize,
    /// For the freeze: how long until every edge reported `stale`.
    pub to_stale: Option<Duration>,
}

/// The suite's table.
#[derive(Debug, Clone, Default)]
pub struct Table(pub Vec<Row>);

impl Table {
    /// Whether every attack left the edges on the current state with the
    /// revoked credential refused.
    pub fn held(&self) -> bool {
        self.0.iter().all(|r| r.revoked_accepted == 0 && r.served.all_current())
    }
}

impl fmt::Display for Table {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "| attack | edges serving the current canary | revoked credential accepted | edges stale | time to stale |"
        )?;
        writeln!(f, "| --- | --- | --- | --- | --- |")?;
        for r in &self.0 {
            let to_stale = r.to_stale.map_or_else(|| "-".to_owned(), |d| format!("{d:.1?}"));
            writeln!(
                f,
                "| {} | {}/{} | {} | {}/{} | {} |",
                r.attack.name(),
                r.served.current,
                r.served.edges,
                r.revoked_accepted,
                r.served.stale,
                r.served.edges,
                to_stale
            )?;
        }
        Ok(())
    }
}
