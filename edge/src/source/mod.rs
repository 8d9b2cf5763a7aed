//! Where states come from. A [`Source`] yields [`Update`]s (a snapshot, a
//! delta, "still current", ...); [`drive`] hands each one to the
//! [`Applier`], the one apply path, and tells the source what became of it
//! ([`Step`]), so a source that picks what to fetch next from the result
//! (the bus: a gap means "read the ring") is driven exactly like one that
//! does not (the alias file). Tests can implement the trait to feed
//! versions by hand.
//!
//! - [`file`]: the declarative file, polled and reloaded on SIGHUP.
//! - [`bus`]: sync from the control plane through the propagation
//!   transport ([`crate::bus`]: Redis, or in-process).
//! - [`catchup`]: what bus sync fetches to catch up, as a pure core.

pub mod bus;
pub mod catchup;
pub mod file;

use std::future::Future;

pub use crate::sync::apply::Applier;
pub use crate::sync::update::{Step, Update};

/// A stream of updates.
pub trait Source: Send {
    /// Waits for the next update; `None` when the source is done. `applier`
    /// shows where the state stands (version, report fields, clock) and
    /// takes the source's progress notes.
    fn next(&mut self, applier: &Applier) -> impl Future<Output = Option<Update>> + Send;

    /// What became of the update `next` returned last. Only a source that
    /// chooses its next fetch from it needs to look.
    fn outcome(&mut self, step: &Step) {
        let _ = step;
    }
}

/// Feeds every update of `source` to `applier` until the source ends or
/// `shutdown` completes.
pub async fn drive(
    mut source: impl Source,
    mut applier: Applier,
    shutdown: impl Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    loop {
        let update = tokio::select! {
            () = &mut shutdown => return,
            update = source.next(&applier) => update,
        };
        let Some(update) = update else { return };
        let step = applier.apply(update);
        source.outcome(&step);
    }
}
