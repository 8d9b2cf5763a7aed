//! Redis key and channel names. Everything lives under one prefix
//! (`NEXUS_REDIS_PREFIX`), so several registries — and parallel tests — can
//! share one Redis.

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

    /// The full signed snapshot envelope.
    pub fn snapshot(&self) -> String {
        format!("{}:snapshot", self.prefix)
    }

    /// `epoch:version` of the newest published state, for cheap checks.
    pub fn head(&self) -> String {
        format!("{}:head", self.prefix)
    }

    /// Ring of recent signed delta envelopes (a sorted set scored by
    /// `to_version`).
    pub fn deltas(&self) -> String {
        format!("{}:deltas", self.prefix)
    }

    /// Pub/sub channel carrying each new delta envelope.
    pub fn channel(&self) -> String {
        format!("{}:changes", self.prefix)
    }

    /// Hash of edge id → last report (JSON).
    pub fn edges(&self) -> String {
        format!("{}:edges", self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_share_the_prefix() {
        let k = RedisKeys::new("nexus:");
        assert_eq!(k.snapshot(), "nexus:snapshot");
        assert_eq!(k.channel(), "nexus:changes");
    }
}
