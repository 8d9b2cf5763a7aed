//! Output for people: a plain table of chosen fields, widths fitted to
//! the content, no colour unless stdout is a terminal.

use std::io::IsTerminal as _;

use serde_json::Value;

/// A field of a JSON object as a cell: strings bare, `null` as `-`.
pub fn cell(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => "-".to_owned(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

/// `rows` (JSON objects) as a table of `columns` (header, field path with
/// `/` between nested keys).
pub fn render(rows: &[Value], columns: &[(&str, &str)]) -> String {
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| columns.iter().map(|(_, path)| cell(r.pointer(&format!("/{path}")))).collect())
        .collect();
    let mut widths: Vec<usize> = columns.iter().map(|(h, _)| h.len()).collect();
    for row in &cells {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |values: Vec<String>| {
        let mut out = String::new();
        for (i, (v, w)) in values.iter().zip(&widths).enumerate() {
            if i + 1 == values.len() {
                out.push_str(v);
            } else {
                out.push_str(&format!("{v:<w$}  "));
            }
        }
        out.trim_end().to_owned()
    };
    let header = line(columns.iter().map(|(h, _)| h.to_ascii_uppercase()).collect());
    let mut out = String::new();
    out.push_str(&bold(&header));
    out.push('\n');
    for row in cells {
        out.push_str(&line(row));
        out.push('\n');
    }
    out
}

/// Green, red or plain, for plans and verdicts.
#[derive(Debug, Clone, Copy)]
pub enum Tone {
    Good,
    Bad,
}

pub fn paint(s: &str, tone: Tone) -> String {
    if !colour() {
        return s.to_owned();
    }
    let code = match tone {
        Tone::Good => "32",
        Tone::Bad => "31",
    };
    format!("\x1b[{code}m{s}\x1b[0m")
}

fn bold(s: &str) -> String {
    if colour() { format!("\x1b[1m{s}\x1b[0m") } else { s.to_owned() }
}

fn colour() -> bool {
    std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn columns_fit_their_widest_cell() {
        let rows = [json!({"a": "x", "b": {"c": 1}}), json!({"a": "longer", "b": null})];
        let t = render(&rows, &[("a", "a"), ("deep", "b/c")]);
        assert_eq!(t, "A       DEEP\nx       1\nlonger  -\n");
    }
}
