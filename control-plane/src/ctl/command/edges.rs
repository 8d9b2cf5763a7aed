//! `edges`: every edge the control plane has heard from.

use crate::ctl::client::{Client, CtlError, exit};
use crate::ctl::output::Output;

pub(crate) async fn run(client: &Client, out: Output) -> Result<u8, CtlError> {
    let a = client.get("/api/admin/edges").await?;
    out.print(
        &a.body,
        &[
            ("id", "id"),
            ("region", "region"),
            ("version", "version"),
            ("behind", "versions_behind"),
            ("lag p99 (ms)", "lag_ms_p99"),
            ("state age (s)", "state_age_seconds"),
            ("seen (s ago)", "seen_seconds_ago"),
            ("source", "source"),
            ("stale", "stale"),
        ],
    );
    Ok(exit::OK)
}
