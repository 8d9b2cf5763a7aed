//! Write load for the control plane: N clients each creating unique aliases
//! (`POST /api/admin/aliases`) as fast as they are answered, for a fixed
//! time. Prints one line: writes per second, errors, latency percentiles.
//!
//! `cargo run --release -p nexus-control-plane --example write_load -- \
//!    --url http://127.0.0.1:8000 --token $TOKEN --clients 16 --seconds 10`

use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::Parser;

#[derive(Debug, Parser)]
struct Args {
    #[arg(long)]
    url: String,
    #[arg(long)]
    token: String,
    #[arg(long, default_value_t = 16)]
    clients: usize,
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    #[arg(long, default_value = "backend")]
    context: String,
}

#[derive(Debug, Default)]
struct Tally {
    ok: u64,
    failed: u64,
    latencies_us: Vec<u64>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let http = reqwest::Client::builder().pool_max_idle_per_host(args.clients).build()?;
    let url = format!("{}/api/admin/aliases", args.url.trim_end_matches('/'));
    let run = std::process::id();
    let deadline = Instant::now() + Duration::from_secs(args.seconds);
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for client in 0..args.clients {
        let (http, url, token, context) =
            (http.clone(), url.clone(), args.token.clone(), args.context.clone());
        tasks.spawn(async move {
            let mut t = Tally::default();
            let mut i = 0u64;
            while Instant::now() < deadline {
                let body = serde_json::json!({
                    "context": context,
                    "alias": format!("load-{run}-{client}-{i}"),
                    "canonical": format!("https://api.nexus.com/load/{client}/{i}"),
                });
                i += 1;
                let sent = Instant::now();
                let res = http.post(&url).bearer_auth(&token).json(&body).send().await;
                match res {
                    Ok(r) if r.status() == reqwest::StatusCode::CREATED => {
                        t.ok += 1;
                        t.latencies_us.push(sent.elapsed().as_micros() as u64);
                    }
                    _ => t.failed += 1,
                }
            }
            t
        });
    }
    let mut all = Tally::default();
    while let Some(t) = tasks.join_next().await {
        let t = t.context("client task")?;
        all.ok += t.ok;
        all.failed += t.failed;
        all.latencies_us.extend(t.latencies_us);
    }
    let secs = started.elapsed().as_secs_f64();
    all.latencies_us.sort_unstable();
    let pct = |p: f64| {
        let n = all.latencies_us.len();
        if n == 0 { 0.0 } else { all.latencies_us[((n - 1) as f64 * p) as usize] as f64 / 1e3 }
    };
    println!(
        "writes_per_sec={:.1} ok={} failed={} p50_ms={:.2} p99_ms={:.2} clients={} seconds={:.1}",
        all.ok as f64 / secs,
        all.ok,
        all.failed,
        pct(0.50),
        pct(0.99),
        args.clients,
        secs
    );
    Ok(())
}
