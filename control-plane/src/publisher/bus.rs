//! The Redis side of propagation (see the propagation contract): the
//! snapshot key, the ring of recent deltas, the head key, the channel, and
//! the fleet hash the edges report to.
//!
//! Order matters and every write below keeps it: whatever `P:head` names
//! exists before `P:head` is set, and the channel only announces what the
//! ring or the snapshot already holds. Each group of writes goes out as one
//! pipeline on one connection, so Redis applies it in that order.

use std::collections::HashMap;
use std::time::Duration;

use fred::prelude::*;
use nexus_protocol::Head;
use nexus_protocol::keys::RedisKeys;

use super::batch::SealedDelta;

/// Deltas kept in `P:deltas`.
pub const RING_LEN: i64 = 1024;
/// Bound on a command, so a step (or an admin request) fails fast while
/// Redis is away instead of queueing behind the reconnect.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(3);
/// Bound on writing a snapshot: a million aliases are ~100 MB.
const SNAPSHOT_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Debug, thiserror::Error)]
pub enum BusError {
    #[error("redis: {0}")]
    Redis(#[from] fred::error::Error),
    #[error("{key} holds {value:?}, not \"epoch:version\"")]
    BadHead { key: String, value: String },
    /// Redis no longer holds the head (or the snapshot) the deltas continue:
    /// it was emptied or written by someone else since the step looked.
    #[error("redis moved away from the published head {expected}; deltas not written")]
    HeadMoved { expected: Head },
}

/// Appends deltas to the ring and moves the head only if Redis still holds
/// the head they continue and a snapshot. Checked and written in one script
/// so a Redis emptied between the step's look and this write cannot end up
/// with a head and no snapshot behind it.
/// KEYS: head, deltas, snapshot. ARGV: expected head, new head, ring
/// length, then (score, member) pairs.
const APPEND_DELTAS: &str = r"
if redis.call('GET', KEYS[1]) ~= ARGV[1] or redis.call('EXISTS', KEYS[3]) == 0 then
  return 0
end
for i = 4, #ARGV, 2 do
  redis.call('ZADD', KEYS[2], ARGV[i], ARGV[i + 1])
end
redis.call('ZREMRANGEBYRANK', KEYS[2], 0, -(tonumber(ARGV[3]) + 1))
redis.call('SET', KEYS[1], ARGV[2])
return 1
";

/// A Redis client bound to one registry's keys.
#[derive(Clone)]
pub struct Bus {
    client: Client,
    keys: RedisKeys,
}

impl std::fmt::Debug for Bus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bus").field("prefix", &self.keys.prefix()).finish_non_exhaustive()
    }
}

impl Bus {
    /// Starts a client that reconnects by itself (so a Redis restart is
    /// survived) and returns without waiting for the first connection:
    /// commands fail after their timeout while Redis is away.
    pub fn connect(url: &str, keys: RedisKeys) -> Result<Self, BusError> {
        let mut config = Config::from_url(url)?;
        config.fail_fast = false;
        let client = Builder::from_config(config)
            .with_performance_config(|p| p.default_command_timeout = COMMAND_TIMEOUT)
            .with_connection_config(|c| {
                c.connection_timeout = Duration::from_secs(2);
                c.internal_command_timeout = Duration::from_secs(5);
            })
            .set_policy(ReconnectPolicy::new_exponential(0, 50, 2_000, 2))
            .build()?;
        client.connect();
        Ok(Self { client, keys })
    }

    pub fn keys(&self) -> &RedisKeys {
        &self.keys
    }

    /// `P:head`, or `None` when Redis has lost it (restarted empty) — or
    /// lost the snapshot behind it, which edges would need just the same.
    pub async fn head(&self) -> Result<Option<Head>, BusError> {
        let raw: Option<String> = self.client.get(self.keys.head()).await?;
        let Some(raw) = raw else { return Ok(None) };
        let head =
            raw.parse().map_err(|_| BusError::BadHead { key: self.keys.head(), value: raw })?;
        Ok(self.has_snapshot().await?.then_some(head))
    }

    /// Whether `P:snapshot` exists.
    pub async fn has_snapshot(&self) -> Result<bool, BusError> {
        let n: i64 = self.client.exists(self.keys.snapshot()).await?;
        Ok(n == 1)
    }

    /// Appends `deltas` to the ring (trimmed to [`RING_LEN`]) and moves the
    /// head from `from` to `head` — only if Redis still holds `from` and a
    /// snapshot ([`BusError::HeadMoved`] otherwise) — then announces each
    /// delta on the channel, or, for one larger than `max_message`, the head
    /// notice.
    pub async fn publish_deltas(
        &self,
        deltas: &[SealedDelta],
        from: Head,
        head: Head,
        max_message: usize,
    ) -> Result<(), BusError> {
        let mut args: Vec<Value> = Vec::with_capacity(3 + 2 * deltas.len());
        args.push(from.to_string().into());
        args.push(head.to_string().into());
        args.push(RING_LEN.into());
        for d in deltas {
            args.push(d.to_version.to_string().into());
            args.push(Value::Bytes(d.bytes.clone().into()));
        }
        let keys = vec![self.keys.head(), self.keys.deltas(), self.keys.snapshot()];
        let written: i64 = self.client.eval(APPEND_DELTAS, keys, args).await?;
        if written != 1 {
            return Err(BusError::HeadMoved { expected: from });
        }
        let pipe = self.client.pipeline();
        for d in deltas {
            let () = pipe.publish(self.keys.channel(), announcement(d, head, max_message)).await?;
        }
        let _: Vec<Value> = pipe.all().await?;
        Ok(())
    }

    /// Writes the snapshot, then (one pipeline) drops the ring when it
    /// would no longer continue into the snapshot (`reset_ring`), moves the
    /// head, and sends the head notice so subscribed edges catch up now
    /// rather than at their next check.
    pub async fn publish_snapshot(
        &self,
        envelope: Vec<u8>,
        head: Head,
        reset_ring: bool,
    ) -> Result<(), BusError> {
        self.refresh_snapshot(envelope).await?;
        let pipe = self.client.pipeline();
        if reset_ring {
            let () = pipe.del(self.keys.deltas()).await?;
        }
        let () = pipe.set(self.keys.head(), head.to_string(), None, None, false).await?;
        let () = pipe.publish(self.keys.channel(), head.to_string()).await?;
        let _: Vec<Value> = pipe.all().await?;
        Ok(())
    }

    /// Replaces only the snapshot key (alone, it is what a periodic rebuild
    /// at the published version writes: head and ring stay as they are).
    pub async fn refresh_snapshot(&self, envelope: Vec<u8>) -> Result<(), BusError> {
        let slow = Options { timeout: Some(SNAPSHOT_TIMEOUT), ..Options::default() };
        let () = self
            .client
            .with_options(&slow)
            .set(self.keys.snapshot(), Value::Bytes(envelope.into()), None, None, false)
            .await?;
        Ok(())
    }

    /// Removes edge reports whose `heartbeat_ms` is before `cutoff_ms`.
    /// Reports that do not parse are left for the fleet view to show.
    /// Returns how many were removed.
    pub async fn prune_edges(&self, cutoff_ms: i64) -> Result<usize, BusError> {
        let all: HashMap<String, String> = self.client.hgetall(self.keys.edges()).await?;
        let old: Vec<String> = all
            .into_iter()
            .filter(|(_, report)| heartbeat_ms(report).is_some_and(|at| at < cutoff_ms))
            .map(|(id, _)| id)
            .collect();
        if old.is_empty() {
            return Ok(0);
        }
        let n = old.len();
        let _: i64 = self.client.hdel(self.keys.edges(), old).await?;
        Ok(n)
    }

    /// The raw edge reports in `P:edges`, at most `max` of them.
    pub async fn edge_reports(&self, max: usize) -> Result<Vec<(String, String)>, BusError> {
        let all: HashMap<String, String> = self.client.hgetall(self.keys.edges()).await?;
        let mut out: Vec<(String, String)> = all.into_iter().collect();
        out.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        out.truncate(max);
        Ok(out)
    }
}

/// The `heartbeat_ms` of a JSON edge report, if it has one.
fn heartbeat_ms(report: &str) -> Option<i64> {
    serde_json::from_str::<serde_json::Value>(report).ok()?.get("heartbeat_ms")?.as_i64()
}

/// What the channel carries for `delta`: the envelope itself, or — when it
/// is larger than a pub/sub message may be — the head notice, which sends
/// edges to the ring for it.
pub fn announcement(delta: &SealedDelta, head: Head, max_message: usize) -> Value {
    if delta.bytes.len() <= max_message {
        Value::Bytes(delta.bytes.clone().into())
    } else {
        Value::from(head.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oversized_deltas_are_announced_by_the_head_notice() {
        let head = Head { epoch: 3, version: 9 };
        let delta = SealedDelta { from_version: 8, to_version: 9, bytes: vec![7; 100] };
        assert_eq!(announcement(&delta, head, 100).as_bytes(), Some(&[7u8; 100][..]));
        let notice = announcement(&delta, head, 99);
        assert_eq!(Head::parse(notice.as_bytes().unwrap()), Ok(head));
    }

    #[test]
    fn heartbeats_are_read_from_reports() {
        assert_eq!(heartbeat_ms(r#"{"id":"e","heartbeat_ms":42}"#), Some(42));
        assert_eq!(heartbeat_ms(r#"{"id":"e"}"#), None);
        assert_eq!(heartbeat_ms("not json"), None);
    }
}
