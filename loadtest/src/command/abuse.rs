//! `abuse`: legitimate load on an edge alone, then under each protocol
//! attack; prints a table per scenario, writes them all as JSON, and exits
//! 2 when the edge stopped answering its health check in some scenario.

use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;

use anyhow::{Context as _, bail};
use nexus_loadtest::abuse::attack::Aim;
use nexus_loadtest::abuse::{self, Scenario, Setup};
use nexus_loadtest::http::{HttpConnector, HttpOptions, Version};
use nexus_loadtest::keyspace::Keyspace;
use nexus_loadtest::target::{Scheme, Target};

use crate::cli::args::AbuseArgs;

pub fn run(args: AbuseArgs) -> anyhow::Result<()> {
    // Everything is parsed and checked before anything is sent.
    let target = Target::parse(&args.target).context("--target")?;
    if target.scheme != Scheme::Http {
        bail!("--target must be http:// (the HTTP/2 attacks speak h2c)");
    }
    let http = lookup(&target.authority()).context("--target")?;
    let quic = args.quic_target.as_deref().map(lookup).transpose().context("--quic-target")?;
    let scenarios = scenarios(&args.scenario)?;
    if let Some(s) = scenarios.iter().find(|s| s.is_quic() && quic.is_none()) {
        bail!("scenario {s} needs --quic-target host:port");
    }
    if args.connections == 0 {
        bail!("--connections must be at least 1");
    }
    if args.rate.is_some_and(|r| !(r.is_finite() && r > 0.0)) {
        bail!("--rate must be a positive number of requests per second");
    }
    let keys = Keyspace::load(&args.aliases_file).context("--aliases-file")?;
    let options = HttpOptions {
        target: target.clone(),
        version: Version::Http1,
        token: args.token.clone(),
        trust: None,
        timeout: args.timeout,
    };
    let legit = Arc::new(HttpConnector::new(&options, &keys).context("legitimate load")?);
    let setup = Setup {
        aim: Aim {
            http,
            quic,
            authority: target.authority(),
            path: keys.paths()[0].clone(),
            token: args.token,
            connections: args.attack_connections.max(1),
            idle: args.idle_connections,
            slowloris: args.slowloris_connections,
            slowloris_every: args.slowloris_every,
            flood_hold: args.flood_hold,
            flood_tasks: args.flood_tasks,
            quic_sockets: args.quic_sockets,
        },
        pid: args.pid,
        legit,
        keys: keys.len(),
        connections: args.connections,
        rate: args.rate,
        duration: args.duration,
        warmup: args.warmup,
        threads: args.threads,
        seed: args.seed.unwrap_or_else(rand::random),
    };
    let mut reports = Vec::with_capacity(scenarios.len());
    for scenario in scenarios {
        let report =
            abuse::run(&setup, scenario).with_context(|| format!("scenario {scenario}"))?;
        println!("{report}\n");
        reports.push(report);
    }
    if let Some(path) = &args.report {
        let json = serde_json::to_string_pretty(&reports).context("report")?;
        std::fs::write(path, json + "\n").with_context(|| format!("writing {}", path.display()))?;
        eprintln!("report {}", path.display());
    }
    let unhealthy: Vec<&str> =
        reports.iter().filter(|r| !r.healthy_throughout).map(|r| r.scenario.as_str()).collect();
    if !unhealthy.is_empty() {
        eprintln!("the edge missed health checks during: {}", unhealthy.join(", "));
        std::process::exit(2);
    }
    Ok(())
}

fn lookup(raw: &str) -> anyhow::Result<SocketAddr> {
    raw.to_socket_addrs()
        .with_context(|| format!("cannot resolve {raw:?} (expected host:port)"))?
        .next()
        .with_context(|| format!("{raw:?} resolves to no address"))
}

fn scenarios(names: &[String]) -> anyhow::Result<Vec<Scenario>> {
    if names.iter().any(|n| n == "all") {
        return Ok(Scenario::ALL.to_vec());
    }
    names.iter().map(|n| n.parse::<Scenario>().map_err(anyhow::Error::msg)).collect()
}
