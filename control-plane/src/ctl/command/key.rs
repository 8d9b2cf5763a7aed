//! `keys create|list|revoke`: API keys.

use crate::api::admin::KeyBody;
use crate::ctl::cli::args::{KeyCmd, KeyCreateArgs};
use crate::ctl::client::{Client, CtlError, exit};
use crate::ctl::output::Output;

pub(crate) async fn run(client: &Client, out: Output, cmd: KeyCmd) -> Result<u8, CtlError> {
    match cmd {
        KeyCmd::Create(args) => create(client, out, args).await?,
        KeyCmd::List => list(client, out).await?,
        KeyCmd::Revoke { id } => revoke(client, out, id).await?,
    }
    Ok(exit::OK)
}

async fn create(client: &Client, out: Output, args: KeyCreateArgs) -> Result<(), CtlError> {
    // No expiry from the command line: the key lasts until revoked
    // (`expires_at` is left out of the body).
    let body =
        KeyBody { name: args.name, role: args.role, contexts: args.contexts, expires_at: None };
    let a = client.post("/api/admin/api-keys", &body).await?;
    out.print(&a.body, &[("id", "id"), ("name", "name"), ("role", "role"), ("key", "key")]);
    if !out.is_json() {
        eprintln!("the key is shown once: store it now");
    }
    Ok(())
}

async fn list(client: &Client, out: Output) -> Result<(), CtlError> {
    let a = client.get("/api/admin/api-keys").await?;
    out.print(
        &a.body,
        &[
            ("id", "id"),
            ("name", "name"),
            ("role", "role"),
            ("contexts", "contexts"),
            ("created", "created_at"),
            ("by", "created_by"),
            ("revoked", "revoked_at"),
        ],
    );
    Ok(())
}

async fn revoke(client: &Client, out: Output, id: i64) -> Result<(), CtlError> {
    let a = client.delete(&format!("/api/admin/api-keys/{id}")).await?;
    // A 204 has no body; with `--wait`, the barrier's result is one.
    if out.is_json() || !a.body.is_null() {
        out.print(&a.body, &[("id", "id"), ("revoked", "revoked")]);
    } else {
        println!("revoked key {id}");
    }
    Ok(())
}
