//! The attacker's hands on Redis: everything an attacker with full read and
//! write access to the registry's keys can do without the control plane's
//! signing key — copy the keys, write them back later, announce, forge.

use fred::prelude::*;
use nexus_protocol::envelope::{self, Limits, encode_snapshot};
use nexus_protocol::keys::RedisKeys;
use nexus_protocol::signing::SigningKey;
use nexus_protocol::{Canonical, Head, KeyGrant, Role, Snapshot};

/// A copy of the registry's keys, taken at one moment.
#[derive(Debug, Clone)]
pub struct Copy {
    pub snapshot: Vec<u8>,
    pub head: String,
    /// `(score, member)` of the ring.
    pub ring: Vec<(f64, Vec<u8>)>,
    pub statement: Option<Vec<u8>>,
}

/// The registry's keys, as the attacker reaches them.
#[derive(Debug, Clone)]
pub struct Mirror {
    pub redis: Client,
    pub keys: RedisKeys,
}

impl Mirror {
    pub async fn connect(url: &str, prefix: &str) -> Result<Self, Error> {
        let redis = Builder::from_config(Config::from_url(url)?).build()?;
        redis.init().await?;
        Ok(Self { redis, keys: RedisKeys::new(prefix) })
    }

    /// Reads snapshot, head, ring and statement as they are now.
    pub async fn copy(&self) -> Result<Copy, Error> {
        let snapshot: Value = self.redis.get(self.keys.snapshot()).await?;
        let head: Option<String> = self.redis.get(self.keys.head()).await?;
        let ring: Vec<(Value, f64)> =
            self.redis.zrange(self.keys.deltas(), 0, -1, None, false, None, true).await?;
        let statement: Value = self.redis.get(self.keys.statement()).await?;
        Ok(Copy {
            snapshot: snapshot.into_owned_bytes().unwrap_or_default(),
            head: head.unwrap_or_default(),
            ring: ring.into_iter().filter_map(|(m, s)| Some((s, m.into_owned_bytes()?))).collect(),
            statement: statement.into_owned_bytes(),
        })
    }

    /// Writes `copy` back over every key and announces its head.
    pub async fn write_back(&self, copy: &Copy) -> Result<(), Error> {
        self.set(self.keys.snapshot(), copy.snapshot.clone()).await?;
        let () = self.redis.set(self.keys.head(), copy.head.as_str(), None, None, false).await?;
        let _: i64 = self.redis.del(self.keys.deltas()).await?;
        self.add_ring(&copy.ring).await?;
        if let Some(s) = &copy.statement {
            self.set(self.keys.statement(), s.clone()).await?;
        }
        self.announce(copy.head.as_bytes().to_vec()).await
    }

    /// Adds the copy's ring back and announces each delta again.
    pub async fn replay_deltas(&self, copy: &Copy) -> Result<(), Error> {
        self.add_ring(&copy.ring).await?;
        for (_, delta) in &copy.ring {
            self.announce(delta.clone()).await?;
        }
        Ok(())
    }

    /// The copy's snapshot beside whatever head is there now, ring cleared.
    pub async fn mix(&self, copy: &Copy) -> Result<(), Error> {
        self.set(self.keys.snapshot(), copy.snapshot.clone()).await?;
        let _: i64 = self.redis.del(self.keys.deltas()).await?;
        let head: Option<String> = self.redis.get(self.keys.head()).await?;
        self.announce(head.unwrap_or_default().into_bytes()).await
    }

    /// Endless data: a 32 MiB snapshot of junk (with the envelope's magic,
    /// so it is read as one), a 1 MiB statement, and a far-ahead head.
    pub async fn oversize(&self) -> Result<(), Error> {
        let mut junk = vec![0x5a; 32 << 20];
        junk[..4].copy_from_slice(&envelope::MAGIC);
        self.set(self.keys.snapshot(), junk).await?;
        self.set(self.keys.statement(), vec![0x5a; 1 << 20]).await?;
        let head = Head { epoch: u64::MAX / 2, version: u64::MAX / 2 }.to_string();
        let () = self.redis.set(self.keys.head(), head.as_str(), None, None, false).await?;
        self.announce(head.into_bytes()).await
    }

    /// A later state than the current one — `canary` pointing at
    /// `canonical`, the key whose digest is `grant` granted again — signed
    /// with `key`, written with its head and announced.
    pub async fn forge(
        &self,
        key: &SigningKey,
        canary: &str,
        canonical: &str,
        grant: Option<nexus_protocol::KeyDigest>,
    ) -> Result<(), Error> {
        let bytes: Value = self.redis.get(self.keys.snapshot()).await?;
        let bytes = bytes.into_owned_bytes().unwrap_or_default();
        // The attacker reads the current snapshot without any key.
        let Ok((_, mut snapshot)) = envelope::decode_snapshot(&bytes, &Limits::SNAPSHOT, None)
        else {
            return Ok(());
        };
        forge_state(&mut snapshot, canary, canonical, grant);
        let head = Head { epoch: snapshot.epoch, version: snapshot.version };
        self.set(self.keys.snapshot(), encode_snapshot(&snapshot, Some(key))).await?;
        let _: i64 = self.redis.del(self.keys.deltas()).await?;
        let () = self.redis.set(self.keys.head(), head.to_string(), None, None, false).await?;
        self.announce(head.to_string().into_bytes()).await
    }

    /// Deletes every key of the registry (the suite's own prefix, after it).
    pub async fn clear(&self) -> Result<(), Error> {
        let k = &self.keys;
        let all = vec![k.snapshot(), k.head(), k.deltas(), k.statement(), k.fence(), k.edges()];
        let _: i64 = self.redis.del(all).await?;
        Ok(())
    }

    async fn set(&self, key: String, bytes: Vec<u8>) -> Result<(), Error> {
        self.redis.set(key, Value::Bytes(bytes.into()), None, None, false).await
    }

    async fn add_ring(&self, ring: &[(f64, Vec<u8>)]) -> Result<(), Error> {
        for (score, member) in ring {
            let _: i64 = self
                .redis
                .zadd(
                    self.keys.deltas(),
                    None,
                    None,
                    false,
                    false,
                    (*score, Value::Bytes(member.clone().into())),
                )
                .await?;
        }
        Ok(())
    }

    /// Publishes on the registry's channel (plain pub/sub: the suite runs
    /// on a single Redis).
    async fn announce(&self, message: Vec<u8>) -> Result<(), Error> {
        let _: i64 = self.redis.publish(self.keys.channel(), Value::Bytes(message.into())).await?;
        Ok(())
    }
}

/// The forgery: one version later, the canary moved, the key granted.
fn forge_state(
    snapshot: &mut Snapshot,
    canary: &str,
    canonical: &str,
    grant: Option<nexus_protocol::KeyDigest>,
) {
    snapshot.version += 1;
    let target = Canonical::parse(canonical).ok();
    for r in &mut snapshot.records {
        if format!("{}/{}", r.context, r.alias) == canary
            && let Some(c) = &target
        {
            r.canonical = c.clone();
            r.version = snapshot.version;
        }
    }
    if let Some(digest) = grant {
        snapshot.credentials.api_keys.push(KeyGrant {
            digest,
            name: "api_key:0:forged".into(),
            role: Role::Resolver,
            contexts: nexus_protocol::ContextScope::All,
            expires_at: None,
        });
    }
}
