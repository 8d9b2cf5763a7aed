//! `alias list|get|create|update|rm|history`.

use crate::api::aliases::{CreateBody, UpdateBody};
use crate::ctl::cli::args::{
    AliasArgs, AliasCmd, AliasCreateArgs, AliasHistoryArgs, AliasListArgs, AliasUpdateArgs,
};
use crate::ctl::cli::value::Expiry;
use crate::ctl::client::{Client, CtlError, exit, seg};
use crate::ctl::output::Output;

/// The columns of an alias (`AliasSchema`) in a table.
const ALIAS: &[(&str, &str)] = &[
    ("context", "context"),
    ("alias", "alias"),
    ("canonical", "canonical"),
    ("active", "is_active"),
    ("version", "version"),
    ("expires", "expires_at"),
];

pub(crate) async fn run(client: &Client, out: Output, cmd: AliasCmd) -> Result<u8, CtlError> {
    match cmd {
        AliasCmd::List(args) => list(client, out, args).await?,
        AliasCmd::Get(args) => get(client, out, &args).await?,
        AliasCmd::Create(args) => create(client, out, args).await?,
        AliasCmd::Update(args) => update(client, out, args).await?,
        AliasCmd::Rm(args) => rm(client, out, &args).await?,
        AliasCmd::History(args) => history(client, out, &args).await?,
    }
    Ok(exit::OK)
}

async fn list(client: &Client, out: Output, args: AliasListArgs) -> Result<(), CtlError> {
    let mut q = vec![format!("limit={}", args.limit)];
    if let Some(c) = args.context {
        q.push(format!("context={}", seg(&c)));
    }
    if let Some(s) = args.search {
        q.push(format!("q={}", seg(&s)));
    }
    if !args.all {
        q.push("active=true".into());
    }
    let a = client.get(&format!("/api/admin/aliases?{}", q.join("&"))).await?;
    out.print(&a.body, ALIAS);
    Ok(())
}

async fn get(client: &Client, out: Output, args: &AliasArgs) -> Result<(), CtlError> {
    let a = client.get(&alias_path(&args.context, &args.alias)).await?;
    out.print(&a.body, ALIAS);
    Ok(())
}

async fn create(client: &Client, out: Output, args: AliasCreateArgs) -> Result<(), CtlError> {
    // Every field is sent, `null` when not given: the body the API reads.
    let body = CreateBody {
        context: args.context,
        alias: args.alias,
        canonical: args.canonical,
        description: args.description,
        expires_at: args.expires_at,
    };
    let a = client.post("/api/admin/aliases", &body).await?;
    if !out.is_json() && a.status == reqwest::StatusCode::OK {
        eprintln!("already there, unchanged");
    }
    out.print(&a.body, ALIAS);
    Ok(())
}

async fn update(client: &Client, out: Output, args: AliasUpdateArgs) -> Result<(), CtlError> {
    // Only what was given is sent (`UpdateBody` leaves out what is `None`);
    // `--expires-at none` is sent as `null`, which clears it.
    let body = UpdateBody {
        canonical: args.canonical,
        description: args.description.map(Some),
        expires_at: args.expires_at.map(Expiry::at),
        is_active: args.activate.then_some(true),
    };
    if body.canonical.is_none()
        && body.description.is_none()
        && body.expires_at.is_none()
        && body.is_active.is_none()
    {
        return Err(CtlError::Usage(
            "nothing to update: give --canonical, \
            --description, --expires-at or --activate"
                .into(),
        ));
    }
    let a = client.put(&alias_path(&args.context, &args.alias), &body).await?;
    out.print(&a.body, ALIAS);
    Ok(())
}

async fn rm(client: &Client, out: Output, args: &AliasArgs) -> Result<(), CtlError> {
    client.delete(&alias_path(&args.context, &args.alias)).await?;
    if !out.is_json() {
        println!("deactivated {}/{}", args.context, args.alias);
    }
    Ok(())
}

async fn history(client: &Client, out: Output, args: &AliasHistoryArgs) -> Result<(), CtlError> {
    let path = format!("{}/history?limit={}", alias_path(&args.context, &args.alias), args.limit);
    let a = client.get(&path).await?;
    out.print(
        &a.body,
        &[
            ("version", "version"),
            ("when", "when"),
            ("who", "who"),
            ("canonical", "canonical"),
            ("active", "active"),
            ("expires", "expires_at"),
        ],
    );
    Ok(())
}

fn alias_path(context: &str, alias: &str) -> String {
    format!("/api/admin/aliases/{}/{}", seg(context), seg(alias))
}
