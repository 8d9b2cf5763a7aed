//! The retention job: every `interval`, archive audit rows older than N days
//! and purge those older than M days (see `Store::retain_audit`, which keeps
//! the chain verifiable and audits the pass itself).

use std::time::Duration;

use chrono::Utc;

use crate::store::Store;

#[derive(Debug, Clone, Copy)]
pub struct Retention {
    pub(crate) archive_after_days: u32,
    pub(crate) purge_after_days: u32,
    pub(crate) interval: Duration,
}

impl Retention {
    /// Runs until `shutdown` resolves. A failed pass is logged and retried
    /// at the next tick.
    pub(crate) async fn run(self, store: Store, shutdown: impl Future<Output = ()>) {
        let mut tick = tokio::time::interval(self.interval);
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                () = &mut shutdown => return,
                _ = tick.tick() => {}
            }
            match store
                .retain_audit(Utc::now(), self.archive_after_days, self.purge_after_days)
                .await
            {
                Ok(r) if r.archived > 0 || r.purged > 0 => {
                    tracing::info!(archived = r.archived, purged = r.purged, "audit retention");
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "audit retention failed"),
            }
        }
    }
}
