//! Starting propagation with the server: the bus handle for the fleet
//! view, and the publisher task when `NEXUS_PUBLISH` is on.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use nexus_protocol::signing::verify_key_hex;
use nexus_runtime::bus::BusError;
use nexus_runtime::bus::redis::{RedisConfig, TLS_CHECK_TIMEOUT};
use tokio::task::JoinHandle;

use super::bus::Bus;
use super::election::Election;
use super::{Propagation, Publisher, Settings};
use crate::config::{DbConfig, PropagationConfig};
use crate::metrics::PublishMetrics;
use crate::store::leader::LeaderDb;
use crate::store::{Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub(crate) enum StartError {
    #[error("REDIS_URL: {0}")]
    Redis(#[from] BusError),
    #[error(transparent)]
    Db(#[from] StoreError),
}

/// Connects to `REDIS_URL` (refusing a TLS certificate that does not
/// verify) and [`start_on`] it. Does nothing without `REDIS_URL`.
pub(crate) async fn start(
    config: &PropagationConfig,
    db: &DbConfig,
    store: &Store,
    propagation: &Propagation,
    metrics: PublishMetrics,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<Option<JoinHandle<()>>, StartError> {
    let Some(url) = &config.redis_url else {
        return Ok(None);
    };
    let redis = RedisConfig::new(url.expose(), &config.prefix)
        .with_ca_file(config.redis_ca_file.clone())
        .connect()?;
    redis.check_tls(TLS_CHECK_TIMEOUT).await?;
    start_on(Bus::new(Arc::new(redis)), config, db, store, propagation, metrics, shutdown)
}

/// Attaches `bus` to `propagation` (for `/api/admin/edges`) and, when
/// publishing is on, spawns the publisher on it until `shutdown`, reading
/// `store`, electing over `db` and reporting through `propagation` and
/// `metrics`.
pub(crate) fn start_on(
    bus: Bus,
    config: &PropagationConfig,
    db: &DbConfig,
    store: &Store,
    propagation: &Propagation,
    metrics: PublishMetrics,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<Option<JoinHandle<()>>, StartError> {
    propagation.attach(bus.clone());
    if !config.publish {
        tracing::info!(prefix = %config.prefix, "NEXUS_PUBLISH is off: not publishing");
        return Ok(None);
    }
    let public = verify_key_hex(&config.signing_key.verifying_key());
    if config.dev_key {
        tracing::warn!(
            public_key = %public,
            "NEXUS_SIGNING_KEY is not set: signing with the PUBLIC DEVELOPMENT KEY. Anyone can \
             forge updates edges will accept. Set NEXUS_SIGNING_KEY (64 hex digits) or \
             NEXUS_SIGNING_KEY_FILE, and give edges the public key as NEXUS_VERIFY_KEY."
        );
    } else {
        tracing::info!(public_key = %public, "publisher signing key loaded (edges: NEXUS_VERIFY_KEY)");
    }
    let leader_db = LeaderDb::new(db)?;
    let reporter = propagation.reporter();
    reporter.update(|s| s.dev_key = config.dev_key);
    let publisher = Publisher::new(
        store.clone(),
        bus,
        Election::new(leader_db, &config.prefix),
        config.signing_key.clone(),
        metrics,
        reporter,
        Settings {
            outbox_retention: Duration::from_secs(u64::from(config.outbox_retention_days) * 86_400),
            ..Settings::default()
        },
    );
    Ok(Some(tokio::spawn(publisher.run(shutdown))))
}
