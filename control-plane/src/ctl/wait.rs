//! `--wait applied`: the API's publish barrier, asked for on every write
//! ([`Wait`]) and reported once the command is done ([`report`]).
//!
//! The barrier's result is read as a `serde_json::Value`: the API builds it
//! in its middleware (`api::barrier`) without a Rust type of its own to
//! share, and merges it into whatever the write answered.

use std::process::ExitCode;

use serde_json::Value;

use super::client::{exit, seg};
use super::table::{self, Tone, paint};

/// `--wait applied`'s parameters, as the API's publish barrier takes them.
#[derive(Debug, Clone, Default)]
pub(crate) struct Wait {
    pub region: Option<String>,
    pub quorum: Option<f64>,
    /// `500ms`, `5s` (the API's format; at most 60 s).
    pub timeout: Option<String>,
}

impl Wait {
    /// The query parameters added to a write's URL.
    pub(crate) fn query(&self) -> String {
        let mut q = vec![("wait", "applied".to_owned())];
        if let Some(r) = &self.region {
            q.push(("region", r.clone()));
        }
        if let Some(f) = self.quorum {
            q.push(("quorum", f.to_string()));
        }
        if let Some(t) = &self.timeout {
            q.push(("timeout", t.clone()));
        }
        q.iter().map(|(k, v)| format!("{k}={}", seg(v))).collect::<Vec<_>>().join("&")
    }
}

/// What the barrier found for each write, on stderr (stdout stays the
/// command's own answer); exit 9 when a write was not served in time.
pub(crate) fn report(barriers: &[Value]) -> ExitCode {
    let mut code = ExitCode::SUCCESS;
    for b in barriers {
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
        code = ExitCode::from(exit::NOT_APPLIED);
    }
    code
}
