//! `conflicts list|resolve`: the conflict queue.

use crate::api::admin::ResolveBody;
use crate::ctl::cli::args::{ConflictCmd, Side};
use crate::ctl::client::{Client, CtlError, exit, seg};
use crate::ctl::output::Output;

pub(crate) async fn run(client: &Client, out: Output, cmd: ConflictCmd) -> Result<u8, CtlError> {
    match cmd {
        ConflictCmd::List { status } => list(client, out, &status).await?,
        ConflictCmd::Resolve { id, side } => resolve(client, out, id, side).await?,
    }
    Ok(exit::OK)
}

async fn list(client: &Client, out: Output, status: &str) -> Result<(), CtlError> {
    let a = client.get(&format!("/api/admin/conflicts?status={}", seg(status))).await?;
    out.print(
        &a.body,
        &[
            ("id", "id"),
            ("type", "conflict_type"),
            ("context", "context"),
            ("alias", "alias"),
            ("existing", "existing/canonical"),
            ("incoming", "incoming/canonical"),
            ("created", "created_at"),
        ],
    );
    Ok(())
}

async fn resolve(client: &Client, out: Output, id: i64, side: Side) -> Result<(), CtlError> {
    let body = ResolveBody { resolution: side.into() };
    let a = client.post(&format!("/api/admin/conflicts/{id}/resolve"), &body).await?;
    out.print(&a.body, &[("id", "id"), ("resolution", "resolution"), ("by", "resolved_by")]);
    Ok(())
}
