//! Redis key and channel names. Everything lives under one prefix
//! (`NEXUS_REDIS_PREFIX`), so several registries — and parallel tests — can
//! share one Redis.
//!
//! The prefix is a Redis Cluster hash tag: `{P}:head`, `{P}:snapshot`, ...
//! All of one registry's keys hash to one slot, so the publisher's scripts,
//! which touch several at once, run on a cluster (across slots it would
//! refuse them with CROSSSLOT). Whatever the prefix holds, every key starts
//! with the same `{P`, so they share the tag even if `P` has braces.

/// The names of one registry's Redis keys and channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisKeys {
    prefix: String,
}

impl RedisKeys {
    pub fn new(prefix: &str) -> Self {
        Self { prefix: prefix.trim_end_matches(':').to_owned() }
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    fn key(&self, name: &str) -> String {
        format!("{{{}}}:{name}", self.prefix)
    }

    /// The full signed snapshot envelope.
    pub fn snapshot(&self) -> String {
        self.key("snapshot")
    }

    /// `epoch:version` of the newest published state, for cheap checks.
    pub fn head(&self) -> String {
        self.key("head")
    }

    /// Ring of recent signed delta envelopes (a sorted set scored by
    /// `to_version`).
    pub fn deltas(&self) -> String {
        self.key("deltas")
    }

    /// Pub/sub channel carrying each new delta envelope.
    pub fn channel(&self) -> String {
        self.key("changes")
    }

    /// Hash of edge id → last report (JSON).
    pub fn edges(&self) -> String {
        self.key("edges")
    }

    /// `epoch:term` of the newest leader that wrote: every write of
    /// snapshot, head and ring is refused below it (a deposed leader).
    pub fn fence(&self) -> String {
        self.key("fence")
    }

    /// Where a leader of `term` uploads a snapshot before the fenced script
    /// moves it in place (a rename: the large value never passes through
    /// the script).
    pub fn staging(&self, term: u64) -> String {
        self.key(&format!("snapshot:staging:{term}"))
    }

    /// Every key of the registry's published state (not the fleet hash):
    /// what a Redis restarted empty has lost.
    pub fn published(&self) -> Vec<String> {
        vec![self.snapshot(), self.head(), self.deltas(), self.fence(), self.statement()]
    }

    /// The leader's signed, timestamped statement of the head, renewed
    /// every few seconds even when nothing changes, so an edge can tell a
    /// frozen Redis from a quiet registry.
    pub fn statement(&self) -> String {
        self.key("statement")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_share_the_prefix() {
        let k = RedisKeys::new("nexus:");
        assert_eq!(k.snapshot(), "{nexus}:snapshot");
        assert_eq!(k.channel(), "{nexus}:changes");
        assert_eq!(k.head(), "{nexus}:head");
    }
}
