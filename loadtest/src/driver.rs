//! Runs a plan against a connector: one task per connection, each with its
//! own recorder and key picker, merged at the end.
//!
//! Three models:
//! - **closed** (`--connections N`): each connection sends its next request
//!   as soon as the previous answer is in; latency is measured from send.
//! - **pipelined** (`quic --pipeline D`): closed, with D requests in flight
//!   per connection: each batch of D goes out at once, the next when the
//!   batch's last answer is in; latency is measured from the batch's send.
//! - **open** (`--rate R`): requests are due at fixed intervals, spread over
//!   the connections, and latency is measured from when a request was *due*,
//!   not when it went out. A stalled server then shows up as the queueing it
//!   causes instead of quietly lowering the send rate (coordinated omission).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use rand::SeedableRng;
use rand::rngs::SmallRng;
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::keyspace::{KeyChoice, KeyspaceError, Picker};
use crate::recorder::Recorder;
use crate::transport::{Connection, Connector};

/// Wait after a failed connect before trying again, so a dead target does
/// not turn the generator into a busy loop.
const RECONNECT_BACKOFF: Duration = Duration::from_millis(10);

/// Closed, pipelined or open load.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Model {
    Closed,
    /// Closed, `depth` requests in flight per connection (see
    /// [`Connection::resolve_pipelined`]).
    Pipelined {
        depth: usize,
    },
    /// Requests per second over all connections.
    Open {
        rate: f64,
    },
}

/// What to run.
#[derive(Debug, Clone)]
pub struct Plan {
    pub model: Model,
    pub connections: usize,
    pub duration: Duration,
    pub keys: usize,
    pub choice: KeyChoice,
    pub seed: u64,
}

/// What a run saw.
#[derive(Debug)]
pub struct Outcome {
    pub recorder: Recorder,
    /// From the first send to the last answer (in-flight requests are
    /// awaited, so every request sent is counted).
    pub elapsed: Duration,
}

/// Live count of finished requests, for a progress display.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }

    fn bump(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
}

/// Runs `plan` and returns the merged observations.
pub async fn run<C: Connector>(
    connector: Arc<C>,
    plan: &Plan,
    counter: Arc<Counter>,
) -> Result<Outcome, KeyspaceError> {
    let picker = Picker::new(plan.choice, plan.keys)?;
    let connections = plan.connections.max(1);
    let start = Instant::now();
    let deadline = start + plan.duration;
    let mut tasks = JoinSet::new();
    for i in 0..connections {
        let task = Task {
            connector: connector.clone(),
            picker: picker.clone(),
            rng: SmallRng::seed_from_u64(plan.seed.wrapping_add(i as u64)),
            counter: counter.clone(),
            recorder: Recorder::new(),
        };
        match plan.model {
            Model::Closed => tasks.spawn(task.closed(deadline)),
            Model::Pipelined { depth } => tasks.spawn(task.pipelined(deadline, depth.max(1))),
            Model::Open { rate } => {
                // Each connection carries rate/N, phase-shifted so the
                // sends interleave evenly instead of arriving in bursts.
                let every =
                    Duration::from_secs_f64(connections as f64 / rate.max(f64::MIN_POSITIVE));
                let first = start + every.mul_f64(i as f64 / connections as f64);
                tasks.spawn(task.open(first, every, deadline))
            }
        };
    }
    let mut recorder = Recorder::new();
    while let Some(done) = tasks.join_next().await {
        // A task that panicked lost its samples; the run still reports the rest.
        if let Ok(r) = done {
            recorder.merge(&r);
        }
    }
    Ok(Outcome { recorder, elapsed: start.elapsed() })
}

struct Task<C: Connector> {
    connector: Arc<C>,
    picker: Picker,
    rng: SmallRng,
    counter: Arc<Counter>,
    recorder: Recorder,
}

impl<C: Connector> Task<C> {
    async fn closed(mut self, deadline: Instant) -> Recorder {
        let mut conn: Option<C::Conn> = None;
        while Instant::now() < deadline {
            let Some(c) = self.ensure(&mut conn).await else {
                tokio::time::sleep_until(deadline.min(Instant::now() + RECONNECT_BACKOFF)).await;
                continue;
            };
            let key = self.picker.pick(&mut self.rng);
            let sent = Instant::now();
            let result = c.resolve(key).await;
            self.settle(&mut conn, result, sent);
        }
        self.recorder
    }

    async fn pipelined(mut self, deadline: Instant, depth: usize) -> Recorder {
        let mut conn: Option<C::Conn> = None;
        let mut keys = Vec::with_capacity(depth);
        while Instant::now() < deadline {
            let Some(c) = self.ensure(&mut conn).await else {
                tokio::time::sleep_until(deadline.min(Instant::now() + RECONNECT_BACKOFF)).await;
                continue;
            };
            keys.clear();
            keys.extend((0..depth).map(|_| self.picker.pick(&mut self.rng)));
            let sent = Instant::now();
            let mut broken = false;
            let (recorder, counter) = (&mut self.recorder, &self.counter);
            c.resolve_pipelined(&keys, |result| {
                broken |= record(recorder, counter, result, sent);
            })
            .await;
            if broken {
                conn = None;
            }
        }
        self.recorder
    }

    async fn open(mut self, first: Instant, every: Duration, deadline: Instant) -> Recorder {
        let mut conn: Option<C::Conn> = None;
        let mut due = first;
        // Requests due before the deadline are sent, but none after it: a
        // stalled server must not stretch the run without bound. (Those never
        // sent are not counted, as in wrk2; the late ones already show it.)
        while due < deadline && Instant::now() < deadline {
            // Behind schedule (the previous answer came after this request
            // was due): send now and measure from `due`, so the queueing the
            // server caused is counted. Ahead of schedule: wait, and measure
            // from the actual send, since the timer wakes up to a
            // millisecond late and that delay is ours, not the server's.
            let since = if Instant::now() >= due {
                due
            } else {
                match conn.as_mut() {
                    Some(c) => {
                        if !c.idle_until(due).await {
                            // Lost while idle: the next request reconnects.
                            conn = None;
                            tokio::time::sleep_until(due).await;
                        }
                    }
                    None => tokio::time::sleep_until(due).await,
                }
                Instant::now()
            };
            if let Some(c) = self.ensure(&mut conn).await {
                let key = self.picker.pick(&mut self.rng);
                let result = c.resolve(key).await;
                self.settle(&mut conn, result, since);
            }
            due += every;
        }
        self.recorder
    }

    /// The open connection, opening one if needed; `None` (and a recorded
    /// connect failure) when that fails.
    async fn ensure<'a>(&mut self, conn: &'a mut Option<C::Conn>) -> Option<&'a mut C::Conn> {
        if conn.is_none() {
            match self.connector.connect().await {
                Ok(c) => *conn = Some(c),
                Err(failure) => {
                    self.recorder.failure(failure);
                    self.counter.bump();
                    return None;
                }
            }
        }
        conn.as_mut()
    }

    fn settle(
        &mut self,
        conn: &mut Option<C::Conn>,
        result: Result<(), crate::recorder::Failure>,
        since: Instant,
    ) {
        if record(&mut self.recorder, &self.counter, result, since) {
            *conn = None;
        }
    }
}

/// Counts one outcome, its latency measured from `since`; returns whether
/// it broke the connection.
fn record(
    recorder: &mut Recorder,
    counter: &Counter,
    result: Result<(), crate::recorder::Failure>,
    since: Instant,
) -> bool {
    counter.bump();
    match result {
        Ok(()) => {
            recorder.success(since.elapsed());
            false
        }
        Err(failure) => {
            recorder.failure(failure);
            failure.breaks_connection()
        }
    }
}
