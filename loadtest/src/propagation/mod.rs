//! The propagation probe: writes aliases through the control plane's admin
//! API at a fixed rate and measures, on each given edge, how long each
//! write takes to become visible to resolves.
//!
//! - [`admin`]: the control-plane calls (check, create, update, deactivate).
//! - [`watch`]: one watcher thread per edge, polling over one keep-alive
//!   HTTP/1.1 connection.
//! - [`report`]: per-edge and overall counts and HDR percentiles.
//!
//! A run: check the credential and every edge, then write on schedule
//! (open model: a write does not wait for earlier ones to propagate); each
//! committed write is handed to every edge's watcher with its deadline;
//! when all are settled, deactivate what the run created.

pub mod admin;
pub mod report;
pub mod watch;

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hyper::Uri;
use nexus_protocol::{Canonical, Context};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinSet;

use crate::recorder::Failure;
use crate::target::Target;
use crate::tls::Trust;
use admin::{Admin, AdminError};
use watch::{Edge, EdgeError, Watch, Watched};

/// Longest a preflight resolve may take before the edge counts as not
/// answering.
const PREFLIGHT_TIMEOUT: Duration = Duration::from_secs(5);

/// What to run, checked (see [`Plan::check`]).
#[derive(Debug, Clone)]
pub struct Plan {
    pub control_plane: Target,
    /// Admin JWT or API key allowed to write aliases in `context`.
    pub token: String,
    pub edges: Vec<Target>,
    pub edge_token: Option<String>,
    pub trust: Option<Trust>,
    pub context: Context,
    pub writes: usize,
    /// Writes per second.
    pub rate: f64,
    /// Distinct aliases: the first `n` writes create them, later writes
    /// update them in turn. `None`: every write creates its own.
    pub aliases: Option<usize>,
    /// How long an edge has to show a write, and the control plane to
    /// answer one.
    pub timeout: Duration,
    pub poll_interval: Duration,
    /// Canonicals are `{canonical_base}/{run}/{write}`.
    pub canonical_base: String,
    /// Leave the aliases active at the end.
    pub keep: bool,
}

/// Why the probe could not run (as opposed to a run whose writes did not
/// show up, which is a report).
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error("{0}")]
    Plan(String),
    #[error(transparent)]
    Admin(#[from] AdminError),
    #[error("edge {edge}: {reason}")]
    Edge { edge: String, reason: String },
    #[error("watcher thread: {0}")]
    Thread(String),
}

impl Plan {
    /// Refuses what cannot work, before anything is sent.
    pub fn check(&self) -> Result<(), ProbeError> {
        let bad = |m: String| Err(ProbeError::Plan(m));
        if self.edges.is_empty() {
            return bad("give at least one --edge".into());
        }
        for (i, e) in self.edges.iter().enumerate() {
            if self.edges[..i].contains(e) {
                return bad(format!("--edge {e} is given twice"));
            }
        }
        if self.writes == 0 {
            return bad("--writes must be at least 1".into());
        }
        if !(self.rate.is_finite() && self.rate > 0.0) {
            return bad(format!("--rate must be a positive number, got {}", self.rate));
        }
        if self.aliases == Some(0) {
            return bad("--aliases must be at least 1".into());
        }
        if self.poll_interval > self.timeout {
            return bad("--poll-interval must be shorter than --timeout".into());
        }
        // Governance has the last word on hosts and schemes; this only
        // catches what no governance could accept.
        let sample = format!("{}/{}/{}", self.canonical_base, "0123abcd", self.writes);
        if let Err(e) = Canonical::parse(&sample) {
            return bad(format!("--canonical-base: {sample:?}: {e}"));
        }
        let web = sample
            .parse::<Uri>()
            .is_ok_and(|u| matches!(u.scheme_str(), Some("http" | "https")) && u.host().is_some());
        if !web {
            return bad(format!("--canonical-base must be an http(s) URL, got {sample:?}"));
        }
        Ok(())
    }
}

/// One write as sent.
#[derive(Debug, Clone)]
pub struct Write {
    pub alias: String,
    pub sent: Instant,
    pub answered: Instant,
    /// The registry version it committed at.
    pub result: Result<u64, Failure>,
}

/// What a run saw; [`report::Report::new`] turns it into figures.
#[derive(Debug)]
pub struct Outcome {
    /// Every alias of the run starts with this.
    pub prefix: String,
    /// Indexed by write number.
    pub writes: Vec<Write>,
    /// Per edge, in `Plan::edges` order.
    pub watched: Vec<Watched>,
    pub elapsed: Duration,
    pub warnings: Vec<String>,
}

/// Runs `plan`. `stop` ends the writing early (Ctrl-C); what was written is
/// still watched, reported and cleaned up.
pub async fn run(plan: &Plan, stop: impl Future<Output = ()>) -> Result<Outcome, ProbeError> {
    plan.check()?;
    let admin = Admin::new(&plan.control_plane, &plan.token, plan.trust.as_ref(), plan.timeout)?;
    admin.check(plan.context.as_str()).await?;
    let prefix = format!("probe-{:08x}-", rand::random::<u32>());
    let mut warnings = Vec::new();
    let mut senders = Vec::new();
    let mut threads = Vec::new();
    for target in &plan.edges {
        let edge = preflight(plan, target, &prefix, &mut warnings).await?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| ProbeError::Thread(e.to_string()))?;
        let (tx, rx) = mpsc::unbounded_channel();
        let thread = edge
            .spawn(runtime, rx, plan.poll_interval)
            .map_err(|e| ProbeError::Thread(e.to_string()))?;
        senders.push(tx);
        threads.push(thread);
    }

    let started = Instant::now();
    let written = write_all(plan, &admin, &prefix, senders, stop).await;
    let mut watched = Vec::with_capacity(threads.len());
    for thread in threads {
        let joined = tokio::task::spawn_blocking(move || thread.join())
            .await
            .map_err(|e| ProbeError::Thread(e.to_string()))?;
        watched.push(joined.map_err(|_| ProbeError::Thread("a watcher panicked".into()))?);
    }
    let elapsed = started.elapsed();

    let created = created(plan, &written.writes);
    if plan.keep {
        warnings.push(format!("--keep: {} aliases {prefix}* left active", created.len()));
    } else {
        let failed = deactivate(&admin, plan.context.as_str(), &created).await;
        if failed > 0 {
            warnings.push(format!(
                "{failed} of {} aliases {prefix}* could not be deactivated",
                created.len()
            ));
        }
    }
    if let Some(fatal) = written.fatal {
        return Err(fatal.into());
    }
    Ok(Outcome { prefix, writes: written.writes, watched, elapsed, warnings })
}

/// Opens a connection to `target` and resolves an alias that cannot exist:
/// a miss means the edge answers and takes the credential.
async fn preflight(
    plan: &Plan,
    target: &Target,
    prefix: &str,
    warnings: &mut Vec<String>,
) -> Result<Edge, ProbeError> {
    let fail = |reason: String| ProbeError::Edge { edge: target.to_string(), reason };
    let mut edge = Edge::new(target, plan.edge_token.as_deref(), plan.trust.as_ref())
        .map_err(|e| fail(e.to_string()))?;
    let path = resolve_path(&plan.context, &format!("{prefix}preflight"));
    let answer = edge.get(&path, PREFLIGHT_TIMEOUT).await.map_err(|e| fail(e.to_string()))?;
    let token = if plan.edge_token.is_some() { "--edge-token" } else { "no --edge-token" };
    match answer.status {
        404 | 400 => {}
        503 => warnings.push(format!("edge {target} has no state loaded yet (503)")),
        401 => return Err(fail(format!("refuses {token} (401)"))),
        403 => return Err(fail(format!("{token} does not allow context {} (403)", plan.context))),
        s => return Err(fail(format!("answered {s} to a resolve of an alias that cannot exist"))),
    }
    // The watcher opens its own connection on its own runtime; this one
    // belongs to the caller's.
    Edge::new(target, plan.edge_token.as_deref(), plan.trust.as_ref())
        .map_err(|e: EdgeError| fail(e.to_string()))
}

fn resolve_path(context: &Context, alias: &str) -> String {
    format!("/api/aliases/resolve/{context}/{alias}")
}

fn alias_of(plan: &Plan, prefix: &str, n: usize) -> String {
    format!("{prefix}{}", plan.aliases.map_or(n, |k| n % k))
}

/// Aliases the run created (they are what cleanup deactivates).
fn created(plan: &Plan, writes: &[Write]) -> Vec<String> {
    writes
        .iter()
        .enumerate()
        .filter(|(n, w)| plan.aliases.is_none_or(|k| *n < k) && w.result.is_ok())
        .map(|(_, w)| w.alias.clone())
        .collect()
}

struct Written {
    writes: Vec<Write>,
    /// A refusal that stopped the run.
    fatal: Option<AdminError>,
}

/// Sends write `n` at `n / rate` seconds (with `--aliases`, not before the
/// previous write to the same alias is answered), each in its own task, and
/// hands every committed one to every edge's watcher. Returns once all
/// writes are answered; dropping `senders` then lets the watchers finish.
async fn write_all(
    plan: &Plan,
    admin: &Admin,
    prefix: &str,
    senders: Vec<mpsc::UnboundedSender<Watch>>,
    stop: impl Future<Output = ()>,
) -> Written {
    let senders = Arc::new(senders);
    let fatal: Arc<Mutex<Option<AdminError>>> = Arc::default();
    let mut tasks = JoinSet::new();
    let run = &prefix[..prefix.len() - 1];
    let mut chains: Vec<Option<oneshot::Receiver<()>>> =
        (0..plan.aliases.unwrap_or(0)).map(|_| None).collect();
    let start = tokio::time::Instant::now();
    tokio::pin!(stop);
    for n in 0..plan.writes {
        let due = start + Duration::from_secs_f64(n as f64 / plan.rate);
        tokio::select! {
            () = tokio::time::sleep_until(due) => {}
            () = &mut stop => break,
        }
        if fatal.lock().is_ok_and(|f| f.is_some()) {
            break;
        }
        let alias = alias_of(plan, prefix, n);
        let canonical: Arc<str> = format!("{}/{run}/{n}", plan.canonical_base).into();
        let create = plan.aliases.is_none_or(|k| n < k);
        // Writes to one alias go out one after the other: two in flight
        // could commit in either order (an update before its create is a
        // 404; the last canonical sent might not be the last one written).
        let (done, after) = match plan.aliases {
            None => (None, None),
            Some(k) => {
                let (tx, rx) = oneshot::channel::<()>();
                (Some(tx), chains[n % k].replace(rx))
            }
        };
        let (admin, senders, fatal) = (admin.clone(), senders.clone(), fatal.clone());
        let context = plan.context.clone();
        let timeout = plan.timeout;
        tasks.spawn(async move {
            if let Some(previous) = after {
                // Answered or failed: either way the alias is free again.
                let _ = previous.await;
            }
            let sent = Instant::now();
            let result = if create {
                admin.create(context.as_str(), &alias, &canonical).await
            } else {
                admin.update(context.as_str(), &alias, &canonical).await
            };
            let answered = Instant::now();
            let result = match result {
                Ok(version) => {
                    let watch = Watch {
                        write: n,
                        path: resolve_path(&context, &alias).into(),
                        canonical,
                        version,
                        deadline: answered + timeout,
                    };
                    for tx in senders.iter() {
                        // A watcher that is gone has panicked; the join says so.
                        let _ = tx.send(watch.clone());
                    }
                    Ok(version)
                }
                Err(e) => {
                    let failure = e.failure();
                    if e.is_client_fault()
                        && let Ok(mut f) = fatal.lock()
                    {
                        f.get_or_insert(e);
                    }
                    Err(failure)
                }
            };
            if let Some(done) = done {
                let _ = done.send(());
            }
            (n, Write { alias, sent, answered, result })
        });
    }
    let mut writes: Vec<Option<Write>> = Vec::new();
    while let Some(done) = tasks.join_next().await {
        if let Ok((n, write)) = done {
            if writes.len() <= n {
                writes.resize_with(n + 1, || None);
            }
            writes[n] = Some(write);
        }
    }
    drop(senders);
    let fatal = fatal.lock().ok().and_then(|mut f| f.take());
    // A task that died (it cannot, short of a panic) keeps its number, so
    // write numbers stay indices.
    let lost = || {
        let now = Instant::now();
        Write { alias: String::new(), sent: now, answered: now, result: Err(Failure::Protocol) }
    };
    Written { writes: writes.into_iter().map(|w| w.unwrap_or_else(lost)).collect(), fatal }
}

/// Deactivates `aliases` one after the other; how many failed.
async fn deactivate(admin: &Admin, context: &str, aliases: &[String]) -> usize {
    let mut failed = 0;
    for alias in aliases {
        if admin.deactivate(context, alias).await.is_err() {
            failed += 1;
        }
    }
    failed
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan() -> Plan {
        Plan {
            control_plane: Target::parse("http://127.0.0.1:8081").unwrap(),
            token: "t".into(),
            edges: vec![Target::parse("http://127.0.0.1:8080").unwrap()],
            edge_token: None,
            trust: None,
            context: Context::parse("frontend").unwrap(),
            writes: 10,
            rate: 20.0,
            aliases: None,
            timeout: Duration::from_secs(5),
            poll_interval: Duration::from_micros(500),
            canonical_base: "https://api.nexus.com/probe".into(),
            keep: false,
        }
    }

    #[test]
    fn plans_that_cannot_work_are_refused() {
        assert!(plan().check().is_ok());
        let mut twice = plan();
        twice.edges.push(twice.edges[0].clone());
        assert!(twice.check().unwrap_err().to_string().contains("given twice"));
        for broken in [
            Plan { edges: vec![], ..plan() },
            Plan { writes: 0, ..plan() },
            Plan { rate: 0.0, ..plan() },
            Plan { rate: f64::NAN, ..plan() },
            Plan { aliases: Some(0), ..plan() },
            Plan { canonical_base: "javascript:alert(1)".into(), ..plan() },
            Plan { canonical_base: "https://api.nexus.com/a b".into(), ..plan() },
            Plan { poll_interval: Duration::from_secs(9), ..plan() },
        ] {
            assert!(broken.check().is_err(), "{broken:?}");
        }
    }

    #[test]
    fn aliases_are_reused_in_turn_and_only_creations_are_cleaned_up() {
        let p = Plan { aliases: Some(2), ..plan() };
        let names: Vec<_> = (0..5).map(|n| alias_of(&p, "probe-x-", n)).collect();
        assert_eq!(names, ["probe-x-0", "probe-x-1", "probe-x-0", "probe-x-1", "probe-x-0"]);
        let now = Instant::now();
        let write = |alias: &str, ok: bool| Write {
            alias: alias.into(),
            sent: now,
            answered: now,
            result: if ok { Ok(1) } else { Err(Failure::Timeout) },
        };
        let writes =
            [write("probe-x-0", true), write("probe-x-1", false), write("probe-x-0", true)];
        assert_eq!(created(&p, &writes), ["probe-x-0"]);
        assert_eq!(created(&plan(), &writes), ["probe-x-0", "probe-x-0"]);
    }
}
