//! The catch-up decision of Redis sync, as a pure core: no fred, no clock,
//! no runtime. [`CatchUp::next`] says what to do next ([`Action`]) given
//! where the state stands ([`Position`]); the I/O ([`super::redis`])
//! performs it and hands the result back ([`CatchUp::heard`],
//! [`CatchUp::read`], and [`CatchUp::outcome`] with the [`Step`] of every
//! update it handed out). Tests drive it one action at a time.
//!
//! The order: read `P:head`; take the snapshot when there is no state,
//! another epoch, or the head is behind the edge (the applier installs
//! only a later state and refuses, counts and reports an older one, so a
//! Redis holding an old copy cannot roll the edge back); unless
//! the state is at the head, read the ring after it and hand its deltas
//! out; when the ring does not reach back (empty, or a delta that does not
//! continue the state), take the snapshot once and read the ring after it;
//! then confirm the state if it reached the head. A refused snapshot stops
//! the catch-up: retrying at once would only fetch it again.

use std::collections::VecDeque;

use nexus_protocol::Head;

use crate::sync::update::Step;

/// Where the state stands, read before each decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    /// Whether a state is loaded at all (before the first one, `epoch` and
    /// `version` are only the initial values).
    pub loaded: bool,
    pub epoch: u64,
    pub version: u64,
}

impl Position {
    /// Whether the state is exactly at `head`.
    pub fn is_at(self, head: Head) -> bool {
        self.loaded && self.epoch == head.epoch && self.version == head.version
    }

    /// Whether only the snapshot can bring the state to `head`: no state,
    /// another epoch, or a head behind the state. The snapshot is fetched
    /// even then so the applier judges what is really there (a later epoch
    /// is installed; anything older is refused and reported).
    fn needs_snapshot(self, head: Head) -> bool {
        !self.loaded || head.epoch != self.epoch || head.version < self.version
    }

    /// Whether the state reached `head` (or went past it in its epoch).
    fn reached(self, head: Head) -> bool {
        self.epoch == head.epoch && self.version >= head.version
    }
}

/// What the I/O does next for the catch-up.
#[derive(Debug, PartialEq, Eq)]
pub enum Action {
    /// Read `P:head` and pass it to [`CatchUp::heard`] (a missing head
    /// ends the catch-up as a failure).
    ReadHead,
    /// Read the ring's deltas after `after`, in order, and pass them to
    /// [`CatchUp::read`].
    ReadRing { after: u64 },
    /// Fetch the snapshot and hand it out. The I/O may skip it (it is the
    /// one refused last); then it asks again.
    Snapshot,
    /// Hand out this delta of the ring.
    Delta(Vec<u8>),
    /// Over, the state follows the source again; `reached`: it is at the
    /// head, confirm it.
    Done { reached: bool },
    /// Over at a refused snapshot: do not start again before the next
    /// check.
    Stop,
}

/// A catch-up in progress: bring the state up to `P:head` from the ring
/// when it reaches back, from the snapshot otherwise (and the ring again
/// after an older snapshot).
#[derive(Debug)]
pub struct CatchUp {
    /// `P:head`, once read.
    head: Option<Head>,
    stage: Stage,
    /// Ring deltas read and not handed out yet.
    ring: VecDeque<Vec<u8>>,
    /// What the last action handed out, to read its [`Step`].
    handed: Option<Handed>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// Read the head.
    Head,
    /// The head is known: take the snapshot if the ring cannot help.
    Compare,
    /// Read the ring after the state, unless the state is at the head.
    Ring,
    /// Hand out the ring. `last`: the snapshot was already taken for it.
    Deltas { last: bool },
    /// The ring did not continue the state: take the snapshot.
    Snapshot,
    /// Read the ring after that snapshot.
    RingAgain,
    /// Confirm the state if it reached the head.
    Done,
    /// A snapshot was refused.
    Stopped,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Handed {
    Snapshot,
    Delta,
}

impl Default for CatchUp {
    fn default() -> Self {
        Self::new()
    }
}

impl CatchUp {
    pub fn new() -> Self {
        Self { head: None, stage: Stage::Head, ring: VecDeque::new(), handed: None }
    }

    /// What to do next, the state standing at `at`.
    pub fn next(&mut self, at: Position) -> Action {
        // Whatever was handed out before has had its step read by now.
        self.handed = None;
        loop {
            match self.stage {
                Stage::Head => return Action::ReadHead,
                Stage::Compare => {
                    self.stage = Stage::Ring;
                    if self.head.is_some_and(|h| at.needs_snapshot(h)) {
                        self.handed = Some(Handed::Snapshot);
                        return Action::Snapshot;
                    }
                }
                Stage::Ring if self.head.is_some_and(|h| at.is_at(h)) => self.stage = Stage::Done,
                Stage::Ring | Stage::RingAgain => return Action::ReadRing { after: at.version },
                Stage::Deltas { .. } => match self.ring.pop_front() {
                    Some(delta) => {
                        self.handed = Some(Handed::Delta);
                        return Action::Delta(delta);
                    }
                    None => self.stage = Stage::Done,
                },
                Stage::Snapshot => {
                    self.stage = Stage::RingAgain;
                    self.handed = Some(Handed::Snapshot);
                    return Action::Snapshot;
                }
                Stage::Done => {
                    let reached = self.head.is_some_and(|h| at.reached(h));
                    return Action::Done { reached };
                }
                Stage::Stopped => return Action::Stop,
            }
        }
    }

    /// `P:head`, as [`Action::ReadHead`] asked.
    pub fn heard(&mut self, head: Head) {
        if self.stage == Stage::Head {
            self.head = Some(head);
            self.stage = Stage::Compare;
        }
    }

    /// The ring's deltas, as [`Action::ReadRing`] asked.
    pub fn read(&mut self, ring: VecDeque<Vec<u8>>) {
        let last = match self.stage {
            Stage::Ring => false,
            Stage::RingAgain => true,
            _ => return,
        };
        self.stage = match (ring.is_empty(), last) {
            // The ring does not reach back to the state.
            (true, false) => Stage::Snapshot,
            // Nothing after the snapshot either: as far as the source goes.
            (true, true) => Stage::Done,
            (false, _) => Stage::Deltas { last },
        };
        self.ring = ring;
    }

    /// What became of the update the last action handed out.
    pub fn outcome(&mut self, step: &Step) {
        match self.handed.take() {
            Some(Handed::Delta) if !step.continues() => {
                // The ring does not continue the state: the snapshot, once.
                self.ring.clear();
                self.stage = match self.stage {
                    Stage::Deltas { last: false } => Stage::Snapshot,
                    _ => Stage::Done,
                };
            }
            Some(Handed::Snapshot) if matches!(step, Step::Refused(_)) => {
                self.stage = Stage::Stopped;
            }
            Some(Handed::Delta | Handed::Snapshot) | None => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::DeltaRefused;
    use crate::sync::update::Refusal;

    fn at(epoch: u64, version: u64) -> Position {
        Position { loaded: true, epoch, version }
    }

    const EMPTY: Position = Position { loaded: false, epoch: 0, version: 0 };

    fn head(epoch: u64, version: u64) -> Head {
        Head { epoch, version }
    }

    fn ring(versions: &[u8]) -> VecDeque<Vec<u8>> {
        versions.iter().map(|v| vec![*v]).collect()
    }

    fn applied(version: u64) -> Step {
        Step::Applied { version }
    }

    fn gap() -> Step {
        Step::Missed(DeltaRefused::Gap)
    }

    fn refused() -> Step {
        Step::Refused(Refusal::NoKey)
    }

    /// A catch-up that has read `h`.
    fn after_head(h: Head) -> CatchUp {
        let mut c = CatchUp::new();
        assert_eq!(c.next(at(1, 1)), Action::ReadHead);
        c.heard(h);
        c
    }

    #[test]
    fn a_state_behind_the_head_catches_up_from_the_ring() {
        let mut c = after_head(head(1, 7));
        assert_eq!(c.next(at(1, 5)), Action::ReadRing { after: 5 });
        c.read(ring(&[6, 7]));
        assert_eq!(c.next(at(1, 5)), Action::Delta(vec![6]));
        c.outcome(&applied(6));
        assert_eq!(c.next(at(1, 6)), Action::Delta(vec![7]));
        c.outcome(&applied(7));
        assert_eq!(c.next(at(1, 7)), Action::Done { reached: true });
    }

    #[test]
    fn a_ring_that_does_not_fit_is_replaced_by_the_snapshot_once() {
        let mut c = after_head(head(1, 9));
        assert_eq!(c.next(at(1, 2)), Action::ReadRing { after: 2 });
        c.read(ring(&[5, 6]));
        assert_eq!(c.next(at(1, 2)), Action::Delta(vec![5]));
        c.outcome(&gap());
        // The rest of that ring is dropped; the snapshot.
        assert_eq!(c.next(at(1, 2)), Action::Snapshot);
        c.outcome(&applied(7));
        assert_eq!(c.next(at(1, 7)), Action::ReadRing { after: 7 });
        c.read(ring(&[9]));
        assert_eq!(c.next(at(1, 7)), Action::Delta(vec![9]));
        // A second miss does not take the snapshot again.
        c.outcome(&gap());
        assert_eq!(c.next(at(1, 7)), Action::Done { reached: false });
    }

    #[test]
    fn an_empty_ring_means_the_snapshot_then_the_ring_after_it() {
        let mut c = after_head(head(1, 9));
        assert_eq!(c.next(at(1, 2)), Action::ReadRing { after: 2 });
        c.read(VecDeque::new());
        assert_eq!(c.next(at(1, 2)), Action::Snapshot);
        c.outcome(&applied(8));
        assert_eq!(c.next(at(1, 8)), Action::ReadRing { after: 8 });
        c.read(ring(&[9]));
        assert_eq!(c.next(at(1, 8)), Action::Delta(vec![9]));
        c.outcome(&applied(9));
        assert_eq!(c.next(at(1, 9)), Action::Done { reached: true });
    }

    #[test]
    fn nothing_after_an_older_snapshot_ends_short_of_the_head() {
        let mut c = after_head(head(1, 9));
        assert_eq!(c.next(at(1, 2)), Action::ReadRing { after: 2 });
        c.read(VecDeque::new());
        assert_eq!(c.next(at(1, 2)), Action::Snapshot);
        c.outcome(&Step::Unchanged);
        assert_eq!(c.next(at(1, 2)), Action::ReadRing { after: 2 });
        c.read(VecDeque::new());
        assert_eq!(c.next(at(1, 2)), Action::Done { reached: false });
    }

    #[test]
    fn a_refused_snapshot_stops_the_catch_up() {
        let mut c = after_head(head(1, 9));
        assert_eq!(c.next(at(1, 2)), Action::ReadRing { after: 2 });
        c.read(VecDeque::new());
        assert_eq!(c.next(at(1, 2)), Action::Snapshot);
        c.outcome(&refused());
        assert_eq!(c.next(at(1, 2)), Action::Stop);
        // And stays stopped until the I/O starts a new one.
        assert_eq!(c.next(at(1, 2)), Action::Stop);
    }

    #[test]
    fn a_refused_first_snapshot_stops_the_catch_up_too() {
        let mut c = after_head(head(2, 1));
        assert_eq!(c.next(at(1, 5)), Action::Snapshot);
        c.outcome(&refused());
        assert_eq!(c.next(at(1, 5)), Action::Stop);
    }

    #[test]
    fn a_refused_ring_delta_is_a_miss_not_a_stop() {
        let mut c = after_head(head(1, 3));
        assert_eq!(c.next(at(1, 2)), Action::ReadRing { after: 2 });
        c.read(ring(&[3]));
        assert_eq!(c.next(at(1, 2)), Action::Delta(vec![3]));
        c.outcome(&refused());
        assert_eq!(c.next(at(1, 2)), Action::Snapshot);
    }

    #[test]
    fn a_new_epoch_an_edge_ahead_or_no_state_take_the_snapshot_first() {
        for (state, h) in [(at(1, 5), head(2, 1)), (at(1, 5), head(1, 3)), (EMPTY, head(1, 3))] {
            let mut c = after_head(h);
            assert_eq!(c.next(state), Action::Snapshot, "{state:?} {h:?}");
            c.outcome(&applied(h.version));
            let now = at(h.epoch, h.version);
            assert_eq!(c.next(now), Action::Done { reached: true }, "{state:?} {h:?}");
        }
    }

    #[test]
    fn a_skipped_snapshot_goes_on_to_the_ring() {
        // The I/O did not hand the snapshot out (Redis still holds the one
        // refused last): no step comes, the catch-up asks for the ring.
        let mut c = after_head(head(2, 4));
        assert_eq!(c.next(EMPTY), Action::Snapshot);
        assert_eq!(c.next(EMPTY), Action::ReadRing { after: 0 });
        c.read(VecDeque::new());
        assert_eq!(c.next(EMPTY), Action::Snapshot);
        assert_eq!(c.next(EMPTY), Action::ReadRing { after: 0 });
        c.read(VecDeque::new());
        assert_eq!(c.next(EMPTY), Action::Done { reached: false });
    }

    #[test]
    fn nothing_published_since_the_state_is_done_at_once() {
        let mut c = after_head(head(1, 4));
        assert_eq!(c.next(at(1, 4)), Action::Done { reached: true });
    }

    #[test]
    fn a_step_for_nothing_handed_changes_nothing() {
        let mut c = after_head(head(1, 9));
        assert_eq!(c.next(at(1, 2)), Action::ReadRing { after: 2 });
        c.outcome(&gap());
        c.read(ring(&[3]));
        assert_eq!(c.next(at(1, 2)), Action::Delta(vec![3]));
    }
}
