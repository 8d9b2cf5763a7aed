//! `audit list|verify`: the audit trail and its hash chain.

use crate::audit::chain::Report;
use crate::ctl::cli::args::{AuditCmd, AuditListArgs};
use crate::ctl::client::{Client, CtlError, exit, seg};
use crate::ctl::output::Output;
use crate::ctl::table::{Tone, paint};

pub(crate) async fn run(client: &Client, out: Output, cmd: AuditCmd) -> Result<u8, CtlError> {
    match cmd {
        AuditCmd::List(args) => list(client, out, args).await,
        AuditCmd::Verify => verify(client, out).await,
    }
}

async fn list(client: &Client, out: Output, args: AuditListArgs) -> Result<u8, CtlError> {
    let mut q = vec![format!("limit={}", args.limit)];
    for (k, v) in [("actor", args.actor), ("action", args.action), ("since", args.since)] {
        if let Some(v) = v {
            q.push(format!("{k}={}", seg(&v)));
        }
    }
    let a = client.get(&format!("/api/admin/audit?{}", q.join("&"))).await?;
    out.print(
        &a.body,
        &[
            ("id", "id"),
            ("when", "created_at"),
            ("actor", "user"),
            ("action", "action"),
            ("target", "target"),
        ],
    );
    Ok(exit::OK)
}

/// Exit 1 when the chain is broken, whatever the output form.
async fn verify(client: &Client, out: Output) -> Result<u8, CtlError> {
    let a = client.get("/api/admin/audit/verify").await?;
    let report: Report = a.parse()?;
    if out.is_json() {
        out.print(&a.body, &[]);
    } else if report.ok {
        println!("{}: {} rows checked", paint("chain intact", Tone::Good), report.checked);
    } else {
        let bad = report.first_bad_id.map_or_else(|| "-".to_owned(), |id| id.to_string());
        println!(
            "{}: first bad row {bad} ({} checked)",
            paint("chain BROKEN", Tone::Bad),
            report.checked
        );
    }
    Ok(if report.ok { exit::OK } else { exit::FAILED })
}
