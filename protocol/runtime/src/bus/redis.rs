//! The transport on Redis: the keys of [`RedisKeys`] under one prefix, one
//! command client that reconnects by itself, and a subscriber client per
//! [`Feed`] (a subscribed connection carries only pub/sub).
//!
//! Order is kept the Redis way: the delta append is one Lua script (check
//! and write cannot be split by another writer or a flush), and each group
//! of writes that must land in order goes out as one pipeline on one
//! connection.
//!
//! On Redis Cluster (`redis-cluster://`) the channel is a shard channel
//! (`SPUBLISH`/`SSUBSCRIBE`, Redis 7): its name carries the registry's hash
//! tag, so a delta goes to the nodes of the registry's one shard, where a
//! plain `PUBLISH` is copied over the cluster bus to every node. Publisher
//! and edges pick the same kind from the same URL; off a cluster it is
//! plain pub/sub, which every Redis has.
//!
//! `rediss://` is TLS on rustls, verified against `REDIS_CA_FILE` (or the
//! system trust store); [`RedisBus::check_tls`] turns a certificate that
//! does not verify into a start-up error rather than an endless retry.

use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use fred::clients::{Pipeline, SubscriberClient};
use fred::cmd;
use fred::prelude::*;
use fred::types::Message;
use fred::types::config::{ServerConfig, TlsConnector};
use nexus_protocol::Head;
use nexus_protocol::keys::RedisKeys;
use tokio::sync::broadcast::{self, error::RecvError};

use super::{BusError, Event, Feed, Fence, RING_LEN, Transport, Written};
use crate::env::Secret;
use crate::tls::{self, TlsError};

/// The Redis transport's settings, read once from the environment.
#[derive(Clone)]
pub struct RedisConfig {
    /// `REDIS_URL`; may hold a password, so it is never printed.
    pub url: Secret,
    /// `NEXUS_REDIS_PREFIX`.
    pub keys: RedisKeys,
    /// Channel messages a feed buffers (see [`super::MESSAGE_BUFFER`]);
    /// tests make it tiny to force drops.
    pub message_buffer: usize,
    /// `REDIS_CA_FILE`: the CA (PEM) a `rediss://` server's certificate must
    /// chain to; the system trust store when `None`.
    pub ca_file: Option<PathBuf>,
}

impl std::fmt::Debug for RedisConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisConfig")
            .field("url", &self.url)
            .field("prefix", &self.keys.prefix())
            .field("ca_file", &self.ca_file)
            .finish_non_exhaustive()
    }
}

impl RedisConfig {
    /// `url` under `prefix`, with the default buffer.
    pub fn new(url: &str, prefix: &str) -> Self {
        Self {
            url: Secret::new(url),
            keys: RedisKeys::new(prefix),
            message_buffer: super::MESSAGE_BUFFER,
            ca_file: None,
        }
    }

    /// The same, trusting the CA in `ca_file` (if any) for `rediss://`.
    pub fn with_ca_file(mut self, ca_file: Option<PathBuf>) -> Self {
        self.ca_file = ca_file;
        self
    }

    /// See [`RedisBus::connect`].
    pub fn connect(&self) -> Result<RedisBus, BusError> {
        RedisBus::connect(self)
    }
}

/// Why TLS to Redis cannot be set up or does not verify.
#[derive(Debug, thiserror::Error)]
pub enum RedisTlsError {
    #[error(
        "REDIS_CA_FILE is set but REDIS_URL is not rediss://: the connection would be plaintext"
    )]
    CaWithoutTls,
    #[error("REDIS_CA_FILE: {0}")]
    Roots(#[source] TlsError),
    #[error(
        "TLS to {server} failed: {source}. REDIS_CA_FILE must hold the CA that signed the \
         server's certificate, and the host in REDIS_URL must be a name that certificate holds"
    )]
    Handshake {
        server: String,
        #[source]
        source: std::io::Error,
    },
}

impl From<RedisTlsError> for BusError {
    fn from(e: RedisTlsError) -> Self {
        BusError::Unavailable { transport: "redis", source: Box::new(e) }
    }
}

/// The rustls client for a `rediss://` URL: roots from `ca_file` or the
/// system. Refuses a CA file on a plaintext URL, which would otherwise be
/// a silent downgrade.
pub fn tls_config(
    url: &str,
    ca_file: Option<&Path>,
) -> Result<Option<Arc<rustls::ClientConfig>>, RedisTlsError> {
    // Only the scheme matters here (rediss, rediss-cluster, ...; any case,
    // as fred reads it); a malformed URL is reported by fred.
    let scheme = url.split_once("://").map_or(String::new(), |(s, _)| s.to_ascii_lowercase());
    let tls = scheme.starts_with("rediss") || scheme.starts_with("valkeys");
    match (tls, ca_file) {
        (false, Some(_)) => Err(RedisTlsError::CaWithoutTls),
        (false, None) => Ok(None),
        (true, ca_file) => {
            let roots = tls::client_roots(ca_file).map_err(RedisTlsError::Roots)?;
            Ok(Some(Arc::new(tls::client_config(roots).map_err(RedisTlsError::Roots)?)))
        }
    }
}

/// Bound on a command, so a check (or an admin request) fails fast while
/// Redis is away instead of queueing behind the reconnect.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(3);
/// How long [`RedisBus::check_tls`] waits for the TLS handshake at start.
pub const TLS_CHECK_TIMEOUT: Duration = Duration::from_secs(5);
/// The most of `P:statement` read: an envelope header and a few numbers.
const MAX_STATEMENT_LEN: usize = 512;
/// Bound on moving a snapshot: a million aliases are ~100 MB.
const SNAPSHOT_TIMEOUT: Duration = Duration::from_secs(60);

/// What every write script starts with: the fence (`epoch:term` of the
/// newest leader that wrote) and the head, compared as numbers (exact below
/// 2^53, where epochs and versions stay). `admit` takes the fence for this
/// write, or refuses a writer below it: a leader that lost its lock.
const FENCE_LUA: &str = r"
local function pair(key)
  local v = redis.call('GET', key)
  if not v then return nil end
  local a, b = string.match(v, '^(%d+):(%d+)$')
  if not a then return nil end
  return tonumber(a), tonumber(b)
end
local function admit(fence_key, epoch, term)
  local e, t = pair(fence_key)
  local fe, ft = tonumber(epoch), tonumber(term)
  if e and (fe < e or (fe == e and ft < t)) then return false end
  redis.call('SET', fence_key, epoch .. ':' .. term)
  return true
end
";

/// Script results: written, fenced off; 0 is "the head moved (or is
/// ahead)", -2 "the upload vanished".
const DONE: i64 = 1;
const FENCED: i64 = -1;

fn written(code: i64) -> Written {
    match code {
        DONE => Written::Done,
        FENCED => Written::Fenced,
        _ => Written::HeadMoved,
    }
}

/// Appends deltas to the ring and moves the head only if Redis still holds
/// the head they continue and a snapshot, and the writer is not fenced off.
/// Checked and written in one script so a Redis emptied between the
/// publisher's look and this write cannot end up with a head and no
/// snapshot behind it.
/// KEYS: head, deltas, snapshot, fence. ARGV: expected head, new head, ring
/// length, fence epoch, fence term, then (score, member) pairs.
const APPEND_DELTAS: &str = r"
if redis.call('GET', KEYS[1]) ~= ARGV[1] or redis.call('EXISTS', KEYS[3]) == 0 then
  return 0
end
if not admit(KEYS[4], ARGV[4], ARGV[5]) then return -1 end
for i = 6, #ARGV, 2 do
  redis.call('ZADD', KEYS[2], ARGV[i], ARGV[i + 1])
end
redis.call('ZREMRANGEBYRANK', KEYS[2], 0, -(tonumber(ARGV[3]) + 1))
redis.call('SET', KEYS[1], ARGV[2])
return 1
";

/// Moves an uploaded snapshot in place and the head to it, unless the head
/// is no longer the one the writer read or the writer is fenced off (then
/// the upload is dropped). A rename: the snapshot itself never passes
/// through Lua.
/// KEYS: staging, snapshot, deltas, head, fence. ARGV: new head, expected
/// head ('' for none), reset the ring (0/1), fence epoch, fence term.
const PUBLISH_SNAPSHOT: &str = r"
if redis.call('EXISTS', KEYS[1]) == 0 then return -2 end
if (redis.call('GET', KEYS[4]) or '') ~= ARGV[2] then
  redis.call('DEL', KEYS[1])
  return 0
end
if not admit(KEYS[5], ARGV[4], ARGV[5]) then
  redis.call('DEL', KEYS[1])
  return -1
end
redis.call('RENAME', KEYS[1], KEYS[2])
if ARGV[3] == '1' then redis.call('DEL', KEYS[3]) end
redis.call('SET', KEYS[4], ARGV[1])
return 1
";

/// Replaces the leader's statement of the head, unless the writer is
/// fenced off. KEYS: statement, fence. ARGV: envelope, fence epoch, term.
const PUBLISH_STATEMENT: &str = r"
if not admit(KEYS[2], ARGV[2], ARGV[3]) then return -1 end
redis.call('SET', KEYS[1], ARGV[1])
return 1
";

/// Moves an uploaded snapshot built at `at` in place, only if the head is
/// in `at`'s epoch, at or after it (the ring leads on from it), and the
/// writer is not fenced off.
/// KEYS: staging, snapshot, head, fence. ARGV: at's epoch, at's version,
/// fence epoch, fence term.
const REFRESH_SNAPSHOT: &str = r"
if redis.call('EXISTS', KEYS[1]) == 0 then return -2 end
local e, v = pair(KEYS[3])
if not e or e ~= tonumber(ARGV[1]) or v < tonumber(ARGV[2]) then
  redis.call('DEL', KEYS[1])
  return 0
end
if not admit(KEYS[4], ARGV[3], ARGV[4]) then
  redis.call('DEL', KEYS[1])
  return -1
end
redis.call('RENAME', KEYS[1], KEYS[2])
return 1
";

/// A write script with the fence functions in front.
fn script(body: &str) -> String {
    format!("{FENCE_LUA}{body}")
}

impl From<fred::error::Error> for BusError {
    fn from(e: fred::error::Error) -> Self {
        BusError::Unavailable { transport: "redis", source: Box::new(e) }
    }
}

/// Why a server's data cannot confirm a state, from its `INFO replication`:
/// a replica whose link to its primary is down (Redis notices after its
/// `repl-timeout`). A primary, or a replica in sync, is `None`.
fn replica_cut_off(info: &str) -> Option<String> {
    let field =
        |name: &str| info.lines().find_map(|l| l.trim_end().strip_prefix(name)?.strip_prefix(':'));
    if field("role") != Some("slave") || field("master_link_status") == Some("up") {
        return None;
    }
    Some(match field("master_link_down_since_seconds") {
        Some(s) => format!("replica has lost its primary for {s} s; its head may be old"),
        None => "replica is not (yet) in sync with its primary; its head may be old".into(),
    })
}

/// The server a TLS check probes: the only one, or the first listed.
fn first_server(server: &ServerConfig) -> Option<fred::types::config::Server> {
    match server {
        ServerConfig::Centralized { server } => Some(server.clone()),
        ServerConfig::Clustered { hosts, .. } => hosts.first().cloned(),
        ServerConfig::Sentinel { hosts, .. } => hosts.first().cloned(),
        #[allow(unreachable_patterns)]
        _ => None,
    }
}

/// One registry's keys on one Redis.
#[derive(Clone)]
pub struct RedisBus {
    /// Kept to build a subscriber client per feed with the same settings.
    builder: Builder,
    client: Client,
    keys: RedisKeys,
    /// Shard channel (on a cluster) or plain channel; see the module doc.
    sharded: bool,
    /// For [`RedisBus::check_tls`]: the client configuration and the first
    /// server, when the URL asks for TLS.
    tls: Option<(Arc<rustls::ClientConfig>, fred::types::config::Server)>,
}

impl std::fmt::Debug for RedisBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisBus").field("prefix", &self.keys.prefix()).finish_non_exhaustive()
    }
}

impl RedisBus {
    /// Starts a command client that reconnects by itself (so a Redis
    /// restart is survived) and returns without waiting for the first
    /// connection: commands fail after their timeout while Redis is away.
    /// A feed buffers up to `message_buffer` messages before it reports
    /// [`Event::Lagged`].
    pub fn connect(settings: &RedisConfig) -> Result<Self, BusError> {
        let (url, message_buffer) = (settings.url.expose(), settings.message_buffer);
        let mut config = Config::from_url(url)?;
        config.fail_fast = false;
        let tls = tls_config(url, settings.ca_file.as_deref())?;
        if tls.is_some() != config.uses_tls() {
            // Never replace fred's TLS with plaintext on a reading mismatch.
            return Err(BusError::Unavailable {
                transport: "redis",
                source: format!(
                    "cannot tell whether REDIS_URL asks for TLS ({})",
                    config.uses_tls()
                )
                .into(),
            });
        }
        // fred's own default for rediss:// would load the system roots
        // again; ours are the ones `check_tls` probes with.
        config.tls = tls.clone().map(|c| TlsConnector::Rustls(c.into()).into());
        let tls = tls.zip(first_server(&config.server));
        let sharded = config.server.is_clustered();
        let mut builder = Builder::from_config(config);
        builder
            .with_performance_config(|p| {
                p.default_command_timeout = COMMAND_TIMEOUT;
                p.broadcast_channel_capacity = message_buffer.max(1);
            })
            .with_connection_config(|c| {
                // Named connections, so operators (and tests) can find an
                // edge's subscriber in CLIENT LIST.
                c.auto_client_setname = true;
                // Deltas are small single messages: no Nagle delay on them.
                c.tcp.nodelay = Some(true);
                c.connection_timeout = Duration::from_secs(2);
                c.internal_command_timeout = Duration::from_secs(5);
            })
            .set_policy(ReconnectPolicy::new_exponential(0, 50, 2_000, 2));
        let client = builder.build()?;
        client.connect();
        Ok(Self { builder, client, keys: settings.keys.clone(), sharded, tls })
    }

    /// With a `rediss://` URL, opens one TLS connection to the (first)
    /// server within `within` and fails if its certificate does not verify.
    /// fred would retry such a connection forever in the background; this
    /// makes it a start-up error. A Redis that cannot be reached at all is
    /// no reason not to start (edges serve what they hold): that is logged
    /// and passes.
    pub async fn check_tls(&self, within: Duration) -> Result<(), BusError> {
        let Some((config, server)) = &self.tls else { return Ok(()) };
        let name = server.tls_server_name.as_ref().unwrap_or(&server.host).to_string();
        let addr = format!("{}:{}", server.host, server.port);
        let probe = async {
            let tcp = tokio::net::TcpStream::connect(&addr).await?;
            let name = rustls_pki_types::ServerName::try_from(name.clone())
                .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
            tokio_rustls::TlsConnector::from(config.clone()).connect(name, tcp).await.map(drop)
        };
        match tokio::time::timeout(within, probe).await {
            Ok(Ok(())) => Ok(()),
            // A refusal by rustls (certificate, name, protocol) is data, not
            // a network failure.
            Ok(Err(e))
                if e.get_ref().is_some_and(|inner| inner.is::<rustls::Error>())
                    || e.kind() == std::io::ErrorKind::InvalidInput =>
            {
                Err(RedisTlsError::Handshake { server: addr, source: e }.into())
            }
            Ok(Err(e)) => {
                tracing::warn!(server = %addr, error = %e, "Redis unreachable at start; TLS not checked yet");
                Ok(())
            }
            Err(_) => {
                tracing::warn!(server = %addr, "Redis did not answer the TLS check in time");
                Ok(())
            }
        }
    }

    pub fn keys(&self) -> &RedisKeys {
        &self.keys
    }

    /// Queues one channel message on `pipe`, the kind the feeds listen to.
    /// Uploads a snapshot to this term's staging key (a plain write: only
    /// the fenced script that follows makes it the snapshot) and names it.
    async fn upload(&self, fence: Fence, envelope: Vec<u8>) -> Result<String, BusError> {
        let staging = self.keys.staging(fence.term);
        let () = self
            .client
            .with_options(&Self::slow())
            .set(&staging, Value::Bytes(envelope.into()), None, None, false)
            .await?;
        Ok(staging)
    }

    /// A snapshot script's result; the upload vanishing between the write
    /// and the script (a flush) is a failure to retry.
    fn moved_in(&self, code: i64) -> Result<Written, BusError> {
        if code == -2 {
            return Err(BusError::Unavailable {
                transport: "redis",
                source: "the uploaded snapshot vanished before it was moved in".into(),
            });
        }
        Ok(written(code))
    }

    async fn queue_message(&self, pipe: &Pipeline<Client>, message: Value) -> Result<(), BusError> {
        let channel = self.keys.channel();
        let () = if self.sharded {
            pipe.spublish(channel, message).await?
        } else {
            pipe.publish(channel, message).await?
        };
        Ok(())
    }

    fn slow() -> Options {
        Options { timeout: Some(SNAPSHOT_TIMEOUT), ..Options::default() }
    }
}

#[async_trait]
impl Transport for RedisBus {
    async fn head(&self) -> Result<Option<Head>, BusError> {
        // One round trip: the head, and whether this server's copy is live.
        // A regional replica cut off from its primary still answers with
        // the last head it had; taken as a confirmation, that would keep
        // the edge `healthy` through a partition of any length.
        let pipe = self.client.pipeline();
        let () = pipe.get(self.keys.head()).await?;
        let () = pipe.custom(cmd!("INFO"), vec!["replication"]).await?;
        let (raw, info): (Option<String>, String) = pipe.all().await?;
        if let Some(reason) = replica_cut_off(&info) {
            return Err(BusError::Stale { transport: "redis", reason });
        }
        raw.map(|v| {
            Head::parse(v.as_bytes())
                .map_err(|_| BusError::BadHead { key: self.keys.head(), value: v })
        })
        .transpose()
    }

    async fn has_snapshot(&self) -> Result<bool, BusError> {
        let n: i64 = self.client.exists(self.keys.snapshot()).await?;
        Ok(n == 1)
    }

    async fn snapshot(&self) -> Result<Option<Vec<u8>>, BusError> {
        let v: Value = self.client.with_options(&Self::slow()).get(self.keys.snapshot()).await?;
        Ok(v.into_owned_bytes())
    }

    async fn snapshot_prefix(&self, len: usize) -> Result<Option<Vec<u8>>, BusError> {
        if len == 0 {
            return Ok(Some(Vec::new()));
        }
        let v: Value = self.client.getrange(self.keys.snapshot(), 0, len - 1).await?;
        // GETRANGE of a missing key is the empty string.
        Ok(v.into_owned_bytes().filter(|b| !b.is_empty()))
    }

    async fn ring_after(&self, version: u64) -> Result<VecDeque<Vec<u8>>, BusError> {
        let min = format!("({version}");
        let members: Vec<Value> =
            self.client.zrangebyscore(self.keys.deltas(), min, "+inf", false, None).await?;
        // A member that is not bytes ends the ring there: what follows it
        // cannot be applied in order anyway.
        Ok(members.into_iter().map_while(Value::into_owned_bytes).collect())
    }

    async fn append_deltas(
        &self,
        fence: Fence,
        from: Head,
        head: Head,
        deltas: &[(u64, Vec<u8>)],
    ) -> Result<Written, BusError> {
        let mut args: Vec<Value> = Vec::with_capacity(5 + 2 * deltas.len());
        args.push(from.to_string().into());
        args.push(head.to_string().into());
        args.push((RING_LEN as i64).into());
        args.push(fence.epoch.to_string().into());
        args.push(fence.term.to_string().into());
        for (to_version, envelope) in deltas {
            args.push(to_version.to_string().into());
            args.push(Value::Bytes(envelope.clone().into()));
        }
        let keys =
            vec![self.keys.head(), self.keys.deltas(), self.keys.snapshot(), self.keys.fence()];
        let code: i64 = self.client.eval(script(APPEND_DELTAS), keys, args).await?;
        Ok(written(code))
    }

    async fn announce(&self, messages: Vec<Vec<u8>>) -> Result<(), BusError> {
        let pipe = self.client.pipeline();
        for m in messages {
            self.queue_message(&pipe, Value::Bytes(m.into())).await?;
        }
        let _: Vec<Value> = pipe.all().await?;
        Ok(())
    }

    async fn publish_snapshot(
        &self,
        fence: Fence,
        expected: Option<Head>,
        envelope: Vec<u8>,
        head: Head,
        reset_ring: bool,
    ) -> Result<Written, BusError> {
        let staging = self.upload(fence, envelope).await?;
        let keys = vec![
            staging,
            self.keys.snapshot(),
            self.keys.deltas(),
            self.keys.head(),
            self.keys.fence(),
        ];
        let args: Vec<Value> = vec![
            head.to_string().into(),
            expected.map_or_else(String::new, |h| h.to_string()).into(),
            if reset_ring { "1" } else { "0" }.into(),
            fence.epoch.to_string().into(),
            fence.term.to_string().into(),
        ];
        let code: i64 = self.client.eval(script(PUBLISH_SNAPSHOT), keys, args).await?;
        let result = self.moved_in(code)?;
        if result == Written::Done {
            // The notice only points at what is already there.
            let pipe = self.client.pipeline();
            self.queue_message(&pipe, head.to_string().into()).await?;
            let _: Vec<Value> = pipe.all().await?;
        }
        Ok(result)
    }

    async fn refresh_snapshot(
        &self,
        fence: Fence,
        envelope: Vec<u8>,
        at: Head,
    ) -> Result<Written, BusError> {
        let staging = self.upload(fence, envelope).await?;
        let keys = vec![staging, self.keys.snapshot(), self.keys.head(), self.keys.fence()];
        let args: Vec<Value> = vec![
            at.epoch.to_string().into(),
            at.version.to_string().into(),
            fence.epoch.to_string().into(),
            fence.term.to_string().into(),
        ];
        let code: i64 = self.client.eval(script(REFRESH_SNAPSHOT), keys, args).await?;
        self.moved_in(code)
    }

    async fn statement(&self) -> Result<Option<Vec<u8>>, BusError> {
        // Read at most what a statement can be: a value grown endless in
        // Redis costs one small read, and the envelope's length check
        // refuses the cut.
        let v: Value =
            self.client.getrange(self.keys.statement(), 0, MAX_STATEMENT_LEN - 1).await?;
        Ok(v.into_owned_bytes().filter(|b| !b.is_empty()))
    }

    async fn publish_statement(
        &self,
        fence: Fence,
        envelope: Vec<u8>,
    ) -> Result<Written, BusError> {
        let keys = vec![self.keys.statement(), self.keys.fence()];
        let args: Vec<Value> = vec![
            Value::Bytes(envelope.into()),
            fence.epoch.to_string().into(),
            fence.term.to_string().into(),
        ];
        let code: i64 = self.client.eval(script(PUBLISH_STATEMENT), keys, args).await?;
        Ok(written(code))
    }

    async fn report(&self, edge: &str, report: String) -> Result<(), BusError> {
        let _: i64 = self.client.hset(self.keys.edges(), (edge, report)).await?;
        Ok(())
    }

    async fn reports(&self) -> Result<HashMap<String, String>, BusError> {
        Ok(self.client.hgetall(self.keys.edges()).await?)
    }

    async fn forget(&self, edges: Vec<String>) -> Result<(), BusError> {
        if !edges.is_empty() {
            let _: i64 = self.client.hdel(self.keys.edges(), edges).await?;
        }
        Ok(())
    }

    fn is_connected(&self) -> bool {
        self.client.is_connected()
    }

    fn feed(&self) -> Result<Box<dyn Feed>, BusError> {
        let subscriber = self.builder.build_subscriber_client()?;
        // Listen before connecting, so the first connection is not missed.
        let (messages, reconnects) = (subscriber.message_rx(), subscriber.reconnect_rx());
        let errors = subscriber.error_rx();
        subscriber.connect();
        Ok(Box::new(RedisFeed {
            channel: self.keys.channel(),
            sharded: self.sharded,
            subscriber,
            messages,
            reconnects,
            errors,
        }))
    }
}

/// A subscriber connection and fred's broadcast channels for it. fred
/// hands messages over a broadcast channel that drops the oldest when the
/// reader lags; that is reported as [`Event::Lagged`].
struct RedisFeed {
    channel: String,
    sharded: bool,
    subscriber: SubscriberClient,
    messages: broadcast::Receiver<Message>,
    reconnects: broadcast::Receiver<Server>,
    errors: broadcast::Receiver<(fred::error::Error, Option<Server>)>,
}

impl std::fmt::Debug for RedisFeed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisFeed")
            .field("channel", &self.channel)
            .field("sharded", &self.sharded)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl Feed for RedisFeed {
    async fn subscribe(&mut self) -> Result<(), BusError> {
        // fred routes SSUBSCRIBE to the node that owns the channel's slot.
        let channel = self.channel.as_str();
        if self.sharded {
            self.subscriber.ssubscribe(channel).await?;
        } else {
            self.subscriber.subscribe(channel).await?;
        }
        Ok(())
    }

    async fn next(&mut self) -> Event {
        loop {
            tokio::select! {
                m = self.messages.recv() => match m {
                    Ok(m) if *m.channel == *self.channel => {
                        // A value that is not bytes (cannot happen with
                        // our publisher) is treated as a gap.
                        return match m.value.into_owned_bytes() {
                            Some(bytes) => Event::Message(bytes),
                            None => Event::Lagged(1),
                        };
                    }
                    Ok(_) => {}
                    Err(RecvError::Lagged(n)) => return Event::Lagged(n),
                    Err(RecvError::Closed) => {
                        self.messages = self.subscriber.message_rx();
                        return Event::Lagged(0);
                    }
                },
                r = self.reconnects.recv() => {
                    if matches!(r, Err(RecvError::Closed)) {
                        self.reconnects = self.subscriber.reconnect_rx();
                    }
                    return Event::Connected;
                }
                e = self.errors.recv() => match e {
                    Ok((e, _)) => return Event::Failed(e.into()),
                    Err(RecvError::Lagged(_)) => {}
                    Err(RecvError::Closed) => self.errors = self.subscriber.error_rx(),
                },
            }
        }
    }

    fn name(&self) -> Option<String> {
        Some(self.subscriber.id().to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::replica_cut_off;

    #[test]
    fn replica_link() {
        assert_eq!(replica_cut_off("# Replication\r\nrole:master\r\nconnected_slaves:1\r\n"), None);
        let up = "role:slave\r\nmaster_host:10.0.0.1\r\nmaster_link_status:up\r\n";
        assert_eq!(replica_cut_off(up), None);
        let down = "role:slave\r\nmaster_link_status:down\r\nmaster_link_down_since_seconds:12\r\n";
        assert!(replica_cut_off(down).unwrap().contains("12 s"));
        // Never synced yet: no down-since field, still not a confirmation.
        assert!(replica_cut_off("role:slave\r\nmaster_link_status:down\r\n").is_some());
    }
}
