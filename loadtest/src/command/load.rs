//! The run both load modes share once their connector is built: the plan
//! (model, connections, duration, key choice, seed), a multi-threaded
//! runtime, a progress bar on a terminal, the report and its plot.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, bail};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use nexus_loadtest::driver::{self, Counter, Model, Plan};
use nexus_loadtest::keyspace::{KeyChoice, Keyspace};
use nexus_loadtest::plot;
use nexus_loadtest::report::Report;
use nexus_loadtest::tls::Trust;
use nexus_loadtest::transport::Connector;

use crate::cli::args::LoadArgs;

/// [`LoadArgs`] checked, with the keys loaded.
pub struct Load {
    pub keys: Keyspace,
    model: Model,
    pub token: Option<String>,
    pub args: LoadArgs,
}

impl Load {
    pub fn checked(mut args: LoadArgs) -> anyhow::Result<Self> {
        let keys = Keyspace::load(&args.aliases_file).context("--aliases-file")?;
        if args.connections == 0 {
            bail!("--connections must be at least 1");
        }
        let model = model(args.rate)?;
        Ok(Self { keys, model, token: args.token.take(), args })
    }

    /// `--pipeline`: more than one request in flight per connection makes
    /// the (closed) model pipelined; clap keeps it away from `--rate`.
    pub fn pipeline(&mut self, depth: u16) {
        if depth > 1 {
            self.model = Model::Pipelined { depth: usize::from(depth) };
        }
    }

    pub fn trust(&self) -> Option<Trust> {
        self.args.trust.trust()
    }

    pub fn execute<C: Connector>(self, connector: Arc<C>, target: String) -> anyhow::Result<()> {
        let a = self.args;
        let choice = a.zipf.map_or(KeyChoice::Uniform, KeyChoice::Zipf);
        let plan = plan(self.model, a.connections, a.duration, &self.keys, choice, a.seed);
        execute(connector, target, &plan, a.threads, a.report)
    }
}

fn model(rate: Option<f64>) -> anyhow::Result<Model> {
    match rate {
        None => Ok(Model::Closed),
        Some(rate) if rate.is_finite() && rate > 0.0 => Ok(Model::Open { rate }),
        Some(rate) => bail!("--rate must be a positive number, got {rate}"),
    }
}

fn plan(
    model: Model,
    connections: usize,
    duration: Duration,
    keys: &Keyspace,
    choice: KeyChoice,
    seed: Option<u64>,
) -> Plan {
    Plan {
        model,
        connections,
        duration,
        keys: keys.len(),
        choice,
        seed: seed.unwrap_or_else(rand::random),
    }
}

/// Runs `plan` against `connector`, prints the report and writes it (with
/// its plot) when asked: the same for every mode.
fn execute<C: Connector>(
    connector: Arc<C>,
    target: String,
    plan: &Plan,
    threads: Option<usize>,
    report_path: Option<PathBuf>,
) -> anyhow::Result<()> {
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    if let Some(threads) = threads {
        runtime.worker_threads(threads.max(1));
    }
    let runtime = runtime.enable_all().build().context("tokio runtime")?;
    let name = connector.name();
    let outcome = runtime.block_on(async {
        let counter = Arc::new(Counter::default());
        let progress = progress(plan.duration, counter.clone());
        let outcome = driver::run(connector, plan, counter).await;
        progress.abort();
        outcome
    })?;
    let report = Report::new(target, name, plan, &outcome);
    println!("{report}");
    if let Some(path) = report_path {
        let json = serde_json::to_string_pretty(&report).context("report")?;
        std::fs::write(&path, json + "\n")
            .with_context(|| format!("writing {}", path.display()))?;
        let svg_path = path.with_extension("svg");
        let title =
            format!("{} {} ({}, {} conns)", report.target, name, report.model, plan.connections);
        std::fs::write(&svg_path, plot::percentile_svg(outcome.recorder.histogram(), &title))
            .with_context(|| format!("writing {}", svg_path.display()))?;
        eprintln!("report {} plot {}", path.display(), svg_path.display());
    }
    Ok(())
}

/// A progress bar over the run's duration, drawn only on a terminal.
fn progress(duration: Duration, counter: Arc<Counter>) -> tokio::task::JoinHandle<()> {
    let tenths = (duration.as_millis() / 100).max(1) as u64;
    let bar = ProgressBar::new(tenths);
    if std::io::stdout().is_terminal() {
        bar.set_style(
            ProgressStyle::with_template("{bar:40} {elapsed}/{duration} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
    } else {
        bar.set_draw_target(ProgressDrawTarget::hidden());
    }
    tokio::spawn(async move {
        let start = tokio::time::Instant::now();
        let mut tick = tokio::time::interval(Duration::from_millis(200));
        loop {
            tick.tick().await;
            let secs = start.elapsed().as_secs_f64().max(1e-3);
            let done = counter.get();
            bar.set_position(((secs * 10.0) as u64).min(tenths));
            bar.set_message(format!("{done} requests, {:.0} req/s", done as f64 / secs));
            if bar.position() >= tenths {
                bar.finish_and_clear();
                return;
            }
        }
    })
}
