//! `propagation`: writes through the control plane, measures
//! commit→visible on each edge, reports; exits 2 when some write was not
//! visible everywhere in time.

use anyhow::Context as _;
use nexus_loadtest::propagation::{self, Plan};
use nexus_loadtest::target::Target;

use crate::cli::args::PropagationArgs;

pub fn run(args: PropagationArgs) -> anyhow::Result<()> {
    // Everything is parsed and checked before the runtime starts.
    let plan = Plan {
        control_plane: Target::parse(&args.control_plane).context("--control-plane")?,
        token: args.token,
        edges: args
            .edges
            .iter()
            .map(|e| Target::parse(e).with_context(|| format!("--edge {e}")))
            .collect::<anyhow::Result<_>>()?,
        edge_token: args.edge_token,
        trust: args.trust.trust(),
        context: args.context,
        writes: args.writes,
        rate: args.rate,
        aliases: args.aliases,
        timeout: args.timeout,
        poll_interval: args.poll_interval,
        canonical_base: args.canonical_base.trim_end_matches('/').to_owned(),
        keep: args.keep,
    };
    plan.check()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("tokio runtime")?;
    let outcome = runtime.block_on(propagation::run(&plan, async {
        // Ctrl-C stops the writing; what was written is still measured and
        // cleaned up.
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    }))?;
    let report = propagation::report::Report::new(&plan, &outcome);
    println!("{report}");
    if let Some(path) = args.report {
        let json = serde_json::to_string_pretty(&report).context("report")?;
        std::fs::write(&path, json + "\n")
            .with_context(|| format!("writing {}", path.display()))?;
        eprintln!("report {}", path.display());
    }
    if !report.success {
        let expected = report.committed * plan.edges.len() as u64;
        eprintln!(
            "not every write was visible on every edge within {:?}: {} of {} (write, edge) \
             pairs missing, {} write(s) failed",
            plan.timeout,
            report.errors + expected.saturating_sub(report.requests),
            expected,
            report.write_errors
        );
        std::process::exit(2);
    }
    Ok(())
}
