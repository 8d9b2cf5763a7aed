//! The form of a command's answer on stdout (`--output`): the API's JSON
//! as it came, for scripts, or chosen fields as a table, for people.
//!
//! Both print the answer's `serde_json::Value`, not a typed body parsed
//! from it: `json` must hand scripts every field the API sent (a newer
//! API's included, and the `barrier` a `--wait` write adds), and a table
//! picks its fields by path (see [`table::render`]). Commands that *decide*
//! something from an answer parse it into the API's type first
//! ([`super::client::Answer::parse`]).

use clap::ValueEnum;
use serde_json::Value;

use super::table;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Output {
    Table,
    Json,
}

impl Output {
    pub(crate) fn is_json(self) -> bool {
        self == Output::Json
    }

    /// `v` pretty-printed (json), or its `items` (else `v` itself as one
    /// row) as a table of `columns`.
    pub(crate) fn print(self, v: &Value, columns: &[(&str, &str)]) {
        match self {
            Output::Json => {
                println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
            }
            Output::Table => {
                let rows: Vec<Value> = match v.get("items").and_then(Value::as_array) {
                    Some(items) => items.clone(),
                    None => vec![v.clone()],
                };
                print!("{}", table::render(&rows, columns));
            }
        }
    }
}
