//! Where states come from. A [`Source`] yields updates (a whole snapshot,
//! a delta, or "still current"); [`drive`] applies them to the [`State`]
//! and counts the results. The file source lives in [`file`]; tests can
//! feed versions by hand. Redis sync ([`redis`]) drives its own loop, since
//! what it fetches next depends on how each envelope fitted.

pub mod file;
pub mod redis;

use std::future::Future;
use std::sync::Arc;

use nexus_protocol::{Delta, Snapshot};

use crate::metrics::Metrics;
use crate::service::now_ms;
use crate::state::State;

/// One thing a source has to say.
#[derive(Debug)]
pub enum Update {
    /// A complete state: build it and swap it in.
    Snapshot(Snapshot),
    /// Changes on top of the current version.
    Delta(Delta),
    /// The source still agrees with the state (refreshes its age).
    Unchanged,
    /// The source offered a state and it was refused; the old one stays.
    Rejected,
}

/// A stream of updates. `next` returns `None` when the source is done.
pub trait Source: Send {
    fn next(&mut self) -> impl Future<Output = Option<Update>> + Send;
}

/// Applies one update to `state`.
pub fn apply(state: &State, metrics: &Metrics, update: Update) {
    let now = now_ms();
    match update {
        Update::Snapshot(s) => {
            state.install_snapshot(&s, now);
            metrics.reloads_ok.inc();
        }
        Update::Delta(d) => match state.apply_delta(&d, now) {
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "delta not applied"),
        },
        Update::Unchanged => state.confirm(now),
        Update::Rejected => {
            metrics.reloads_rejected.inc();
        }
    }
}

/// Applies every update of `source` until it ends or `shutdown` completes.
pub async fn drive(
    mut source: impl Source,
    state: Arc<State>,
    metrics: Arc<Metrics>,
    shutdown: impl Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => return,
            update = source.next() => match update {
                Some(u) => apply(&state, &metrics, u),
                None => return,
            },
        }
    }
}
