//! `nexusctl`: the admin's command line. It talks to the admin API only,
//! never to the database, so it needs what any client needs: the URL
//! (`--url` / `NEXUS_URL`) and a credential (`--token` / `NEXUS_TOKEN`: a
//! JWT, or an `nxk_` API key). Tables for people, `--output json` for
//! scripts, and exit codes that say what happened ([`client::exit`]).
//!
//! - [`client`]: the HTTP calls and the error → exit code mapping.
//! - [`table`]: the table output.

pub mod client;
pub mod table;

use std::process::ExitCode;

use clap::{CommandFactory as _, Parser, Subcommand, ValueEnum};
use serde_json::{Value, json};

use client::{Client, CtlError, seg};
use table::{Tone, paint, render};

#[derive(Debug, Parser)]
#[command(
    name = "nexusctl",
    version,
    about = "Manage a NEXUS registry through its admin API",
    after_help = "Exit codes: 0 ok, 1 failed (server error), 2 usage or bad request, \
                  3 API unreachable, 4 not found, 5 conflict, 6 governance violation, \
                  7 unauthorized or forbidden, 8 rate-limited (retry later), \
                  9 committed but not served by the edges within --wait-timeout."
)]
pub struct Cli {
    /// The control plane's admin API.
    #[arg(long, env = "NEXUS_URL", default_value = "http://127.0.0.1:8000", global = true)]
    url: String,
    /// A JWT or an `nxk_` API key.
    #[arg(long, env = "NEXUS_TOKEN", hide_env_values = true, global = true)]
    token: Option<String>,
    /// `table` for people, `json` for scripts.
    #[arg(long, short, value_enum, default_value = "table", global = true)]
    output: Output,
    /// Writes return only once the edges serve them (the API's publish
    /// barrier); exit 9 if they did not within the timeout.
    #[arg(long, value_enum, global = true)]
    wait: Option<WaitFor>,
    /// With --wait: only the live edges of this region.
    #[arg(long, global = true, requires = "wait")]
    wait_region: Option<String>,
    /// With --wait: enough when this share of the live edges serve it (0 < F <= 1).
    #[arg(long, global = true, requires = "wait")]
    wait_quorum: Option<f64>,
    /// With --wait: how long to wait, e.g. `500ms`, `5s` (default 10s, at most 60s).
    #[arg(long, global = true, requires = "wait")]
    wait_timeout: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum WaitFor {
    /// Every live edge (or the region's, or the quorum) serves the write.
    Applied,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Output {
    Table,
    Json,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Aliases: list, get, create, update, rm, history.
    #[command(subcommand)]
    Alias(AliasCmd),
    /// Resolve an alias on the control plane (optionally as of a version or time).
    Resolve {
        context: String,
        alias: String,
        /// A registry version, or an RFC 3339 time.
        #[arg(long)]
        as_of: Option<String>,
    },
    /// The conflict queue.
    #[command(subcommand)]
    Conflicts(ConflictCmd),
    /// The audit trail.
    #[command(subcommand)]
    Audit(AuditCmd),
    /// Every edge the control plane has heard from.
    Edges,
    /// API keys.
    #[command(subcommand)]
    Keys(KeyCmd),
    /// The registry (or some contexts) as the declarative file import takes.
    Export {
        /// Only these contexts (repeat, or comma-separate).
        #[arg(long, value_delimiter = ',')]
        context: Vec<String>,
        #[arg(long, value_enum, default_value = "yaml")]
        format: FileFormat,
    },
    /// What applying FILE would change, alias by alias (a dry run).
    Diff(ApplyArgs),
    /// Make the registry what FILE says: shows the plan, asks, then applies
    /// exactly that plan (refused if the registry moved meanwhile).
    Apply {
        #[command(flatten)]
        args: ApplyArgs,
        /// Do not ask.
        #[arg(long)]
        yes: bool,
    },
    /// Shell completions, to source or install.
    Completions { shell: clap_complete::Shell },
}

#[derive(Debug, clap::Args)]
struct ApplyArgs {
    /// The declarative file (YAML or JSON), e.g. from `nexusctl export`.
    file: std::path::PathBuf,
    /// Deactivate active aliases the file lacks, in the contexts it names.
    #[arg(long)]
    prune: bool,
    /// More contexts to treat as named (with --prune: emptied if the file
    /// has none of their aliases).
    #[arg(long, value_delimiter = ',')]
    context: Vec<String>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum FileFormat {
    Yaml,
    Json,
}

#[derive(Debug, Subcommand)]
enum AliasCmd {
    List {
        #[arg(long)]
        context: Option<String>,
        /// Search alias names and canonicals.
        #[arg(long)]
        search: Option<String>,
        /// Inactive ones too.
        #[arg(long)]
        all: bool,
        #[arg(long, default_value_t = 100)]
        limit: u32,
    },
    Get {
        context: String,
        alias: String,
    },
    Create {
        context: String,
        alias: String,
        canonical: String,
        #[arg(long)]
        description: Option<String>,
        /// RFC 3339.
        #[arg(long)]
        expires_at: Option<String>,
    },
    Update {
        context: String,
        alias: String,
        #[arg(long)]
        canonical: Option<String>,
        #[arg(long)]
        description: Option<String>,
        /// RFC 3339, or `none` to clear.
        #[arg(long)]
        expires_at: Option<String>,
        /// Make it active again.
        #[arg(long)]
        activate: bool,
    },
    /// Deactivate (the history keeps it).
    Rm {
        context: String,
        alias: String,
    },
    /// Every version of one alias, newest first.
    History {
        context: String,
        alias: String,
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
}

#[derive(Debug, Subcommand)]
enum ConflictCmd {
    List {
        /// `open` (default) or `resolved`.
        #[arg(long, default_value = "open")]
        status: String,
    },
    Resolve {
        id: i64,
        /// Which side wins.
        #[arg(long = "use", value_enum)]
        side: Side,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Side {
    Existing,
    Incoming,
}

#[derive(Debug, Subcommand)]
enum AuditCmd {
    List {
        #[arg(long)]
        actor: Option<String>,
        #[arg(long)]
        action: Option<String>,
        /// RFC 3339.
        #[arg(long)]
        since: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
    /// Recompute the hash chain; exit 1 when it is broken.
    Verify,
}

#[derive(Debug, Subcommand)]
enum KeyCmd {
    /// Create a key; its secret is shown once.
    Create {
        name: String,
        #[arg(long)]
        role: String,
        /// Comma-separated contexts, or `*`.
        #[arg(long, default_value = "*")]
        contexts: String,
    },
    /// Every key (never the secret), newest first.
    List,
    Revoke {
        id: i64,
    },
}

/// Parses the command line and runs it; the exit code says how it went.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("nexusctl: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("nexusctl: {e}");
            e.exit_code()
        }
    }
}

/// Runs one parsed command, printing to stdout.
pub async fn run(cli: Cli) -> Result<ExitCode, CtlError> {
    let wait = cli.wait.map(|WaitFor::Applied| client::Wait {
        region: cli.wait_region.clone(),
        quorum: cli.wait_quorum,
        timeout: cli.wait_timeout.clone(),
    });
    let client = Client::new(&cli.url, cli.token.clone())?.with_wait(wait);
    let json_out = cli.output == Output::Json;
    let print = |v: &Value, columns: &[(&str, &str)]| {
        if json_out {
            println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
        } else {
            let rows: Vec<Value> = match v.get("items").and_then(Value::as_array) {
                Some(items) => items.clone(),
                None => vec![v.clone()],
            };
            print!("{}", render(&rows, columns));
        }
    };
    const ALIAS: &[(&str, &str)] = &[
        ("context", "context"),
        ("alias", "alias"),
        ("canonical", "canonical"),
        ("active", "is_active"),
        ("version", "version"),
        ("expires", "expires_at"),
    ];
    match cli.command {
        Command::Alias(cmd) => match cmd {
            AliasCmd::List { context, search, all, limit } => {
                let mut q = vec![format!("limit={limit}")];
                if let Some(c) = context {
                    q.push(format!("context={}", seg(&c)));
                }
                if let Some(s) = search {
                    q.push(format!("q={}", seg(&s)));
                }
                if !all {
                    q.push("active=true".into());
                }
                let a = client.get(&format!("/api/admin/aliases?{}", q.join("&"))).await?;
                print(&a.body, ALIAS);
            }
            AliasCmd::Get { context, alias } => {
                let a = client.get(&alias_path(&context, &alias)).await?;
                print(&a.body, ALIAS);
            }
            AliasCmd::Create { context, alias, canonical, description, expires_at } => {
                let body = json!({
                    "context": context, "alias": alias, "canonical": canonical,
                    "description": description, "expires_at": expires_at,
                });
                let a = client.post("/api/admin/aliases", &body).await?;
                if !json_out && a.status == reqwest::StatusCode::OK {
                    eprintln!("already there, unchanged");
                }
                print(&a.body, ALIAS);
            }
            AliasCmd::Update { context, alias, canonical, description, expires_at, activate } => {
                let mut body = serde_json::Map::new();
                if let Some(c) = canonical {
                    body.insert("canonical".into(), c.into());
                }
                if let Some(d) = description {
                    body.insert("description".into(), d.into());
                }
                match expires_at.as_deref() {
                    Some("none") => {
                        body.insert("expires_at".into(), Value::Null);
                    }
                    Some(t) => {
                        body.insert("expires_at".into(), t.into());
                    }
                    None => {}
                }
                if activate {
                    body.insert("is_active".into(), true.into());
                }
                if body.is_empty() {
                    return Err(CtlError::Usage(
                        "nothing to update: give --canonical, \
                        --description, --expires-at or --activate"
                            .into(),
                    ));
                }
                let a = client.put(&alias_path(&context, &alias), &Value::Object(body)).await?;
                print(&a.body, ALIAS);
            }
            AliasCmd::Rm { context, alias } => {
                client.delete(&alias_path(&context, &alias)).await?;
                if !json_out {
                    println!("deactivated {context}/{alias}");
                }
            }
            AliasCmd::History { context, alias, limit } => {
                let path = format!("{}/history?limit={limit}", alias_path(&context, &alias));
                let a = client.get(&path).await?;
                print(
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
            }
        },
        Command::Resolve { context, alias, as_of } => {
            let mut path = format!("/api/aliases/resolve/{}/{}", seg(&context), seg(&alias));
            if let Some(at) = as_of {
                path.push_str(&format!("?as_of={}", seg(&at)));
            }
            let a = client.get(&path).await?;
            if json_out {
                let mut body = a.body.clone();
                if let (Some(o), Some(v)) = (body.as_object_mut(), a.version) {
                    o.insert("version".into(), v.into());
                }
                print(&body, &[]);
            } else {
                let canonical = a.body.get("canonical_name").and_then(Value::as_str).unwrap_or("-");
                match a.version {
                    Some(v) => println!("{canonical}  (registry version {v})"),
                    None => println!("{canonical}"),
                }
            }
        }
        Command::Conflicts(cmd) => match cmd {
            ConflictCmd::List { status } => {
                let a =
                    client.get(&format!("/api/admin/conflicts?status={}", seg(&status))).await?;
                print(
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
            }
            ConflictCmd::Resolve { id, side } => {
                let resolution = match side {
                    Side::Existing => "keep_existing",
                    Side::Incoming => "use_incoming",
                };
                let body = json!({ "resolution": resolution });
                let a = client.post(&format!("/api/admin/conflicts/{id}/resolve"), &body).await?;
                print(
                    &a.body,
                    &[("id", "id"), ("resolution", "resolution"), ("by", "resolved_by")],
                );
            }
        },
        Command::Audit(cmd) => match cmd {
            AuditCmd::List { actor, action, since, limit } => {
                let mut q = vec![format!("limit={limit}")];
                for (k, v) in [("actor", actor), ("action", action), ("since", since)] {
                    if let Some(v) = v {
                        q.push(format!("{k}={}", seg(&v)));
                    }
                }
                let a = client.get(&format!("/api/admin/audit?{}", q.join("&"))).await?;
                print(
                    &a.body,
                    &[
                        ("id", "id"),
                        ("when", "created_at"),
                        ("actor", "user"),
                        ("action", "action"),
                        ("target", "target"),
                    ],
                );
            }
            AuditCmd::Verify => {
                let a = client.get("/api/admin/audit/verify").await?;
                let intact = a.body.get("ok").and_then(Value::as_bool);
                let checked = table::cell(a.body.get("checked"));
                if json_out {
                    print(&a.body, &[]);
                } else if intact == Some(true) {
                    println!("{}: {checked} rows checked", paint("chain intact", Tone::Good));
                } else {
                    let bad = table::cell(a.body.get("first_bad_id"));
                    println!(
                        "{}: first bad row {bad} ({checked} checked)",
                        paint("chain BROKEN", Tone::Bad)
                    );
                }
                if intact != Some(true) {
                    return Ok(ExitCode::from(client::exit::FAILED));
                }
            }
        },
        Command::Edges => {
            let a = client.get("/api/admin/edges").await?;
            print(
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
        }
        Command::Keys(cmd) => match cmd {
            KeyCmd::Create { name, role, contexts } => {
                let contexts: Vec<&str> = contexts.split(',').map(str::trim).collect();
                let body = json!({ "name": name, "role": role, "contexts": contexts });
                let a = client.post("/api/admin/api-keys", &body).await?;
                print(&a.body, &[("id", "id"), ("name", "name"), ("role", "role"), ("key", "key")]);
                if !json_out {
                    eprintln!("the key is shown once: store it now");
                }
            }
            KeyCmd::List => {
                let a = client.get("/api/admin/api-keys").await?;
                print(
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
            }
            KeyCmd::Revoke { id } => {
                let a = client.delete(&format!("/api/admin/api-keys/{id}")).await?;
                if json_out || !a.body.is_null() {
                    print(&a.body, &[("id", "id"), ("revoked", "revoked")]);
                } else {
                    println!("revoked key {id}");
                }
            }
        },
        Command::Export { context, format } => {
            let mut path = "/api/admin/export".to_owned();
            if !context.is_empty() {
                path.push_str(&format!("?context={}", seg(&context.join(","))));
            }
            let accept = match format {
                FileFormat::Yaml => "application/yaml",
                FileFormat::Json => "application/json",
            };
            let text = client.get_text(&path, accept).await?;
            print!("{text}");
        }
        Command::Diff(args) => {
            let plan = plan(&client, &args).await?;
            if json_out {
                print(&plan, &[]);
            } else {
                print!("{}", show_plan(&plan));
            }
        }
        Command::Apply { args, yes } => {
            let plan = plan(&client, &args).await?;
            let version = plan.get("from_version").and_then(Value::as_i64).unwrap_or(0);
            let changes =
                plan.get("to_version").and_then(Value::as_i64).unwrap_or(version) - version;
            if !json_out {
                print!("{}", show_plan(&plan));
            }
            if changes == 0 {
                if json_out {
                    print(&plan, &[]);
                } else {
                    println!("nothing to apply");
                }
                return Ok(ExitCode::SUCCESS);
            }
            if !yes && !confirm(changes)? {
                eprintln!("not applied");
                return Ok(ExitCode::from(client::exit::FAILED));
            }
            let done = send_plan(&client, &args, false, Some(version)).await?;
            if json_out {
                print(&done, &[]);
            } else {
                let to = table::cell(done.get("to_version"));
                println!("{}: registry version {version} → {to}", paint("applied", Tone::Good));
            }
        }
        Command::Completions { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "nexusctl", &mut std::io::stdout());
        }
    }
    Ok(waited(&client))
}

/// What `--wait applied` found for each write, on stderr (stdout stays the
/// command's own answer); exit 9 when a write was not served in time.
fn waited(client: &Client) -> ExitCode {
    let mut code = ExitCode::SUCCESS;
    for b in client.barriers() {
        let n = |k: &str| b.get(k).and_then(Value::as_u64).unwrap_or(0);
        let applied = b.get("applied").and_then(Value::as_array).map_or(0, Vec::len);
        let scope = match b.get("region").and_then(Value::as_str) {
            Some(r) => format!("live edges in {r}"),
            None => "live edges".to_owned(),
        };
        if b.get("reached").and_then(Value::as_bool) == Some(true) {
            eprintln!(
                "{}: version {} on {applied} of {} {scope} in {} ms",
                paint("served", Tone::Good),
                n("version"),
                n("live"),
                n("waited_ms"),
            );
            continue;
        }
        let late: Vec<String> = b
            .get("stragglers")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(|s| {
                format!(
                    "{} ({}, at version {})",
                    table::cell(s.get("id")),
                    table::cell(s.get("region")),
                    table::cell(s.get("version"))
                )
            })
            .collect();
        eprintln!(
            "{}: version {} is committed but served by {applied} of {} {scope} ({} required) \
             after {} ms{}",
            paint("not yet served", Tone::Bad),
            n("version"),
            n("live"),
            n("required"),
            n("waited_ms"),
            if late.is_empty() {
                String::new()
            } else {
                format!("; waiting on {}", late.join(", "))
            },
        );
        code = ExitCode::from(client::exit::NOT_APPLIED);
    }
    code
}

/// The dry run of applying `args`.
async fn plan(client: &Client, args: &ApplyArgs) -> Result<Value, CtlError> {
    send_plan(&client.without_wait(), args, true, None).await
}

async fn send_plan(
    client: &Client,
    args: &ApplyArgs,
    dry_run: bool,
    expected: Option<i64>,
) -> Result<Value, CtlError> {
    let file = std::fs::read(&args.file)
        .map_err(|e| CtlError::Usage(format!("reading {}: {e}", args.file.display())))?;
    let json = file.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{');
    let mut q = vec![format!("dry_run={dry_run}"), format!("prune={}", args.prune)];
    if !args.context.is_empty() {
        q.push(format!("context={}", seg(&args.context.join(","))));
    }
    if let Some(v) = expected {
        q.push(format!("expected_version={v}"));
    }
    let content_type = if json { "application/json" } else { "application/yaml" };
    let a =
        client.post_file(&format!("/api/admin/apply?{}", q.join("&")), file, content_type).await?;
    Ok(a.body)
}

/// A plan for people: one line per change, unchanged ones counted.
fn show_plan(plan: &Value) -> String {
    let mut out = String::new();
    let canonical = |v: Option<&Value>| table::cell(v.and_then(|r| r.get("canonical")));
    for item in plan.get("items").and_then(Value::as_array).into_iter().flatten() {
        let name =
            format!("{}/{}", table::cell(item.get("context")), table::cell(item.get("alias")));
        let line = match item.get("action").and_then(Value::as_str) {
            Some("create") => {
                paint(&format!("+ {name}  {}", canonical(item.get("after"))), Tone::Good)
            }
            Some("deactivate") => {
                paint(&format!("- {name}  {}", canonical(item.get("before"))), Tone::Bad)
            }
            Some("update") => {
                let (before, after) = (item.get("before"), item.get("after"));
                let mut what = Vec::new();
                for field in ["canonical", "description", "expires_at"] {
                    let (b, a) =
                        (before.and_then(|r| r.get(field)), after.and_then(|r| r.get(field)));
                    if b != a {
                        what.push(format!("{field}: {} → {}", table::cell(b), table::cell(a)));
                    }
                }
                format!("~ {name}  {}", what.join(", "))
            }
            // Another owner's alias: the apply as a whole will be refused.
            Some("refused") => {
                paint(&format!("! {name}  owned by {}", table::cell(item.get("owner"))), Tone::Bad)
            }
            _ => continue,
        };
        out.push_str(&line);
        out.push('\n');
    }
    let c = |k: &str| table::cell(plan.pointer(&format!("/counts/{k}")));
    out.push_str(&format!(
        "against registry version {}: {} to create, {} to update, {} to deactivate, {} unchanged\n",
        table::cell(plan.get("from_version")),
        c("create"),
        c("update"),
        c("deactivate"),
        c("unchanged"),
    ));
    if plan.pointer("/counts/refused").and_then(Value::as_u64).is_some_and(|n| n > 0) {
        out.push_str(&format!(
            "{} refused: owned by someone else; applying this plan will be refused whole\n",
            c("refused")
        ));
    }
    out
}

/// Asks on the terminal; refuses without one (scripts pass --yes).
fn confirm(changes: i64) -> Result<bool, CtlError> {
    use std::io::{BufRead as _, IsTerminal as _, Write as _};
    if !std::io::stdin().is_terminal() {
        return Err(CtlError::Usage("not a terminal: pass --yes to apply without asking".into()));
    }
    print!("apply these {changes} changes? [y/N] ");
    let _ = std::io::stdout().flush();
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer).map_err(|e| CtlError::Other(e.to_string()))?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes"))
}

fn alias_path(context: &str, alias: &str) -> String {
    format!("/api/admin/aliases/{}/{}", seg(context), seg(alias))
}
