//! `diff` and `apply`: the declarative file as the desired state. `diff`
//! is the API's dry run; `apply` shows that plan, asks, and applies
//! exactly it (`expected_version`: refused if the registry moved since).
//! Both read the plan as the API's [`ApplyReport`].

use serde_json::Value;

use crate::ctl::cli::args::{ApplyArgs, PlanArgs};
use crate::ctl::client::{Answer, Client, CtlError, exit, seg};
use crate::ctl::output::Output;
use crate::ctl::table::{self, Tone, paint};
use crate::domain::apply::{Action, PlanItem};
use crate::store::apply::ApplyReport;

pub(crate) async fn diff(client: &Client, out: Output, args: &PlanArgs) -> Result<u8, CtlError> {
    let plan = dry_run(client, args).await?;
    if out.is_json() {
        out.print(&plan.body, &[]);
    } else {
        print!("{}", show_plan(&plan.parse()?));
    }
    Ok(exit::OK)
}

/// Exit 1 when the plan was not confirmed.
pub(crate) async fn run(client: &Client, out: Output, args: &ApplyArgs) -> Result<u8, CtlError> {
    let answer = dry_run(client, &args.plan).await?;
    let plan: ApplyReport = answer.parse()?;
    let version = plan.from_version;
    let changes = plan.to_version - version;
    if !out.is_json() {
        print!("{}", show_plan(&plan));
    }
    if changes == 0 {
        if out.is_json() {
            out.print(&answer.body, &[]);
        } else {
            println!("nothing to apply");
        }
        return Ok(exit::OK);
    }
    if !args.yes && !confirm(changes)? {
        eprintln!("not applied");
        return Ok(exit::FAILED);
    }
    let done = send(client, &args.plan, false, Some(version)).await?;
    if out.is_json() {
        out.print(&done.body, &[]);
    } else {
        let to = done.parse::<ApplyReport>()?.to_version;
        println!("{}: registry version {version} → {to}", paint("applied", Tone::Good));
    }
    Ok(exit::OK)
}

/// The dry run of applying `args`; it changes nothing the edges could
/// apply, so it never waits for them.
async fn dry_run(client: &Client, args: &PlanArgs) -> Result<Answer, CtlError> {
    send(&client.without_wait(), args, true, None).await
}

/// Posts the file as it is (the API parses YAML or JSON itself), with how
/// to take it in the query.
async fn send(
    client: &Client,
    args: &PlanArgs,
    dry_run: bool,
    expected: Option<i64>,
) -> Result<Answer, CtlError> {
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
    client.post_file(&format!("/api/admin/apply?{}", q.join("&")), file, content_type).await
}

/// A plan for people: one line per change, unchanged ones counted.
fn show_plan(plan: &ApplyReport) -> String {
    let mut out = String::new();
    for item in &plan.items {
        if let Some(line) = change(item) {
            out.push_str(&line);
            out.push('\n');
        }
    }
    let c = &plan.counts;
    out.push_str(&format!(
        "against registry version {}: {} to create, {} to update, {} to deactivate, {} unchanged\n",
        plan.from_version, c.create, c.update, c.deactivate, c.unchanged,
    ));
    if c.refused > 0 {
        out.push_str(&format!(
            "{} refused: owned by someone else; applying this plan will be refused whole\n",
            c.refused
        ));
    }
    out
}

/// One item's line, `None` when it is unchanged.
fn change(item: &PlanItem) -> Option<String> {
    let name = format!("{}/{}", item.context, item.alias);
    let canonical = |v: Option<&Value>| table::cell(v.and_then(|r| r.get("canonical")));
    let (before, after) = (item.before.as_ref(), item.after.as_ref());
    Some(match item.action {
        Action::Create => paint(&format!("+ {name}  {}", canonical(after)), Tone::Good),
        Action::Deactivate => paint(&format!("- {name}  {}", canonical(before)), Tone::Bad),
        Action::Update => {
            let mut what = Vec::new();
            for field in ["canonical", "description", "expires_at"] {
                let (b, a) = (before.and_then(|r| r.get(field)), after.and_then(|r| r.get(field)));
                if b != a {
                    what.push(format!("{field}: {} → {}", table::cell(b), table::cell(a)));
                }
            }
            format!("~ {name}  {}", what.join(", "))
        }
        // Another owner's alias: the apply as a whole will be refused.
        Action::Refused => {
            let owner = item.owner.as_deref().unwrap_or("-");
            paint(&format!("! {name}  owned by {owner}"), Tone::Bad)
        }
        Action::Unchanged => return None,
    })
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
