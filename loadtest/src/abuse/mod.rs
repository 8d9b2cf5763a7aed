//! The `abuse` mode: the edge under protocol attacks while it serves
//! legitimate resolves. Each scenario runs the same legitimate load
//! (the crate's HTTP connector and driver, closed model, fixed
//! connections) twice: alone, then with the attack running; and reports
//! the throughput ratio, the p99s, the edge's RSS and CPU, whether the
//! health check kept answering ([`monitor`]), what the attack did, and
//! which edge counters moved (the signal an operator sees).
//!
//! - [`attack`]: aim, stop signal, counts; [`frames`]: raw HTTP/2;
//! - [`h2`]: rapid reset, CONTINUATION, SETTINGS and PING floods;
//! - [`tcp`]: idle connections, slowloris, connection flood;
//! - [`quic`]: Initial flood, abandoned streams;
//! - [`tokens`]: junk-signature credentials from another host;
//! - [`scenario`]: the attacks by name and the setup they share;
//! - [`report`]: the per-scenario report and its table.
//!
//! The attack runs on a thread and runtime of its own, and the monitor
//! on another, so neither starves the legitimate load's runtime.

pub mod attack;
pub mod frames;
pub mod h2;
pub mod monitor;
pub mod quic;
pub mod report;
pub mod scenario;
pub mod tcp;
pub mod tokens;

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::driver::{self, Counter, Model, Plan};
use crate::keyspace::KeyChoice;

use self::attack::{Aim, Counters, Stop};
use self::monitor::{Monitor, Probe};
use self::report::{Legit, ScenarioReport};
pub use self::scenario::{Scenario, Setup};

/// Why a scenario could not run.
#[derive(Debug, thiserror::Error)]
pub enum AbuseError {
    #[error("runtime or thread: {0}")]
    Io(#[from] std::io::Error),
    #[error("{0} needs --quic-target")]
    NoQuic(Scenario),
    #[error("the edge at {0} does not answer its health check ({path}) before the attack",
            path = monitor::HEALTH_PATH)]
    NotHealthy(std::net::SocketAddr),
    #[error(transparent)]
    Keyspace(#[from] crate::keyspace::KeyspaceError),
}

/// Phases the monitor tells apart (it starts in the first, before).
const DURING: usize = 1;
const AFTER: usize = 2;
/// conn-flood: the legitimate load's head start.
const LEGIT_LEAD: Duration = Duration::from_millis(100);
/// How long the monitor keeps watching once the attack is stopped.
const SETTLE: Duration = Duration::from_millis(500);

/// Runs one scenario: legitimate load alone, then under attack.
pub fn run(setup: &Setup, scenario: Scenario) -> Result<ScenarioReport, AbuseError> {
    let quic_target = match (scenario.is_quic(), setup.aim.quic) {
        (true, None) => return Err(AbuseError::NoQuic(scenario)),
        (_, q) => q,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(setup.threads.max(1))
        .enable_all()
        .build()?;
    let http = setup.aim.http;
    let healthy = runtime.block_on(async {
        let mut probe = Probe::new(http);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if probe.get(monitor::HEALTH_PATH).await.is_ok() {
                return true;
            }
            if Instant::now() > deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
    if !healthy {
        return Err(AbuseError::NotHealthy(http));
    }
    let metrics_before = runtime.block_on(scrape(http));
    let monitor = Monitor::start(http, setup.pid, 3)?;
    let plan = Plan {
        model: setup.rate.map_or(Model::Closed, |rate| Model::Open { rate }),
        connections: setup.connections,
        duration: setup.duration,
        keys: setup.keys,
        choice: KeyChoice::Uniform,
        seed: setup.seed,
    };

    let cpu = || setup.pid.and_then(monitor::cpu_time);
    let (cpu0, started) = (cpu(), Instant::now());
    let alone =
        runtime.block_on(driver::run(setup.legit.clone(), &plan, Arc::new(Counter::default())))?;
    let baseline = Legit::new(&alone, cpu_share(cpu0, cpu(), started.elapsed()));

    monitor.phase(DURING);
    let (stop_tx, stop) = Stop::new();
    let counters = Arc::new(Counters::default());
    // The connection flood fills the cap: legitimate connections opened
    // after it would only measure the refusals (the fresh-connection
    // health check shows those), so there the legitimate load connects
    // first and the flood starts [`LEGIT_LEAD`] later, and the question is
    // whether connections already open keep being served.
    let legit_first = scenario == Scenario::ConnFlood;
    let aim = setup.aim.clone();
    let mut attack = None;
    if !legit_first {
        attack =
            Some(spawn_attack(scenario, aim.clone(), quic_target, stop.clone(), counters.clone())?);
        std::thread::sleep(setup.warmup);
    }
    let (cpu1, started) = (cpu(), Instant::now());
    let legit = runtime.spawn({
        let (legit, plan) = (setup.legit.clone(), plan.clone());
        async move { driver::run(legit, &plan, Arc::new(Counter::default())).await }
    });
    if legit_first {
        std::thread::sleep(LEGIT_LEAD);
        attack = Some(spawn_attack(scenario, aim, quic_target, stop, counters.clone())?);
    }
    let attacked = runtime.block_on(legit).map_err(|e| AbuseError::Io(e.into()))??;
    let under = Legit::new(&attacked, cpu_share(cpu1, cpu(), started.elapsed()));
    let stats = counters.snapshot(scenario.unit());
    let _ = stop_tx.send(true);
    if let Some(attack) = attack {
        let _ = attack.join();
    }
    monitor.phase(AFTER);
    std::thread::sleep(SETTLE);
    let watches = monitor.finish();
    let metrics_after = runtime.block_on(scrape(http));

    Ok(ScenarioReport::new(
        scenario,
        scenario.describe(&setup.aim),
        setup,
        baseline,
        under,
        stats,
        watches,
        report::counter_deltas(&metrics_before, &metrics_after),
    ))
}

/// Starts `scenario`'s attack on a thread with its own runtime.
fn spawn_attack(
    scenario: Scenario,
    aim: Aim,
    quic: Option<std::net::SocketAddr>,
    stop: Stop,
    counters: Arc<Counters>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    std::thread::Builder::new().name(format!("abuse-{scenario}")).spawn(move || {
        runtime.block_on(async move {
            let addr = aim.http;
            let c = counters;
            match (scenario, quic) {
                (Scenario::RapidReset, _) => h2::run(h2::Flood::RapidReset, aim, stop, c).await,
                (Scenario::Continuation, _) => h2::run(h2::Flood::Continuation, aim, stop, c).await,
                (Scenario::SettingsFlood, _) => h2::run(h2::Flood::Settings, aim, stop, c).await,
                (Scenario::PingFlood, _) => h2::run(h2::Flood::Ping, aim, stop, c).await,
                (Scenario::Idle, _) => tcp::idle(addr, aim.idle, stop, c).await,
                (Scenario::Slowloris, _) => {
                    tcp::slowloris(addr, aim.slowloris, aim.slowloris_every, stop, c).await;
                }
                (Scenario::ConnFlood, _) => {
                    tcp::flood(addr, aim.flood_hold, aim.flood_tasks, stop, c).await;
                }
                (Scenario::QuicInitialFlood, Some(q)) => {
                    quic::initial_flood(q, aim.quic_sockets, stop, c).await;
                }
                (Scenario::JunkTokens, _) => tokens::junk_tokens(aim, stop, c).await,
                (Scenario::QuicAbandonedStreams, Some(q)) => {
                    quic::abandoned_streams(q, aim.connections, aim.token.clone(), stop, c).await;
                }
                // Refused before the attack starts (`AbuseError::NoQuic`).
                (Scenario::QuicInitialFlood | Scenario::QuicAbandonedStreams, None) => {}
            }
        });
    })
}

/// `/metrics` as name → value (empty if it could not be read: the
/// report then has no counter deltas, and says so by their absence).
async fn scrape(addr: std::net::SocketAddr) -> std::collections::BTreeMap<String, f64> {
    let deadline = Instant::now() + Duration::from_secs(3);
    let mut probe = Probe::new(addr);
    loop {
        if let Ok((status, body)) = probe.get(monitor::METRICS_PATH).await
            && status.is_success()
        {
            return monitor::parse_metrics(&String::from_utf8_lossy(&body));
        }
        if Instant::now() > deadline {
            return Default::default();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Share of one core the edge used between two CPU readings.
fn cpu_share(from: Option<Duration>, to: Option<Duration>, wall: Duration) -> Option<f64> {
    let used = to?.checked_sub(from?)?;
    Some(100.0 * used.as_secs_f64() / wall.as_secs_f64().max(1e-9))
}
