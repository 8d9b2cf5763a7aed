//! The `nexus-edge` binary's log as a log file or shipper sees it: stdout
//! piped (not a terminal) gets no escape codes, even with `NO_COLOR` unset;
//! with `LOG_FORMAT=json` every line is a JSON object with level, target
//! and fields; a bad `LOG_FORMAT` stops the start naming the variable.

use std::io::{BufRead as _, BufReader};
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_nexus-edge");
const PATIENCE: Duration = Duration::from_secs(20);
const YAML: &str =
    "aliases:\n  - context: frontend\n    alias: home\n    canonical: https://nexus.com/\n";

/// A database-less edge on port 0 with a clean environment, NO_COLOR unset.
fn edge(dir: &tempfile::TempDir, vars: &[(&str, &str)]) -> Command {
    let file = dir.path().join("aliases.yaml");
    std::fs::write(&file, YAML).unwrap();
    let mut c = Command::new(BIN);
    c.env_clear()
        .env("EDGE_HTTP_ADDR", "127.0.0.1:0")
        .env("EDGE_WORKERS", "1")
        .env("EDGE_AUTH", "off")
        .env("EDGE_QUIC", "off")
        .env("LOG_LEVEL", "info")
        .envs(vars.iter().copied())
        .arg("--aliases-file")
        .arg(file);
    c
}

/// Runs the edge until it logs "listening", kills it, and returns everything
/// it wrote to stdout (raw bytes). Killed, not sent SIGTERM: the edge logs
/// "listening" before it installs its signal handler, so an early SIGTERM
/// would be a race, and the shutdown path is not what is tested here.
fn log_of(mut command: Command) -> Vec<u8> {
    let mut child = command.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let out = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut all = Vec::new();
        let mut r = BufReader::new(out);
        loop {
            let mut line = Vec::new();
            match r.read_until(b'\n', &mut line) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    if String::from_utf8_lossy(&line).contains("listening") {
                        let _ = tx.send(());
                    }
                    all.extend_from_slice(&line);
                }
            }
        }
        all
    });
    let listening = rx.recv_timeout(PATIENCE);
    let _ = child.kill();
    let _ = child.wait();
    let log = reader.join().unwrap();
    assert!(listening.is_ok(), "edge did not log 'listening': {}", String::from_utf8_lossy(&log));
    log
}

fn assert_no_escape(log: &[u8]) {
    assert!(!log.is_empty());
    let esc = log.iter().filter(|&&b| b == 0x1b).count();
    assert_eq!(esc, 0, "{esc} ESC bytes in a piped log: {:?}", String::from_utf8_lossy(log));
}

#[test]
fn a_piped_text_log_has_no_colour() {
    let dir = tempfile::tempdir().unwrap();
    let log = log_of(edge(&dir, &[]));
    assert_no_escape(&log);
    let text = String::from_utf8(log).unwrap();
    assert!(text.contains(" INFO ") && text.contains("listening"), "{text}");
}

#[test]
fn json_log_lines_are_objects_with_level_target_and_fields() {
    let dir = tempfile::tempdir().unwrap();
    let log = log_of(edge(&dir, &[("LOG_FORMAT", "json")]));
    assert_no_escape(&log);
    let text = String::from_utf8(log).unwrap();
    let mut messages = Vec::new();
    for line in text.lines() {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        for key in ["timestamp", "level", "target"] {
            assert!(v[key].is_string(), "no {key}: {line}");
        }
        assert!(v["fields"].is_object(), "no fields: {line}");
        messages.push(v["fields"]["message"].as_str().unwrap_or_default().to_owned());
    }
    // The start was logged, as JSON, with its fields.
    assert!(messages.iter().any(|x| x == "listening"), "no 'listening' in {messages:?}");
    assert!(text.contains(r#""addr":"127.0.0.1:"#), "{text}");
}

#[test]
fn a_bad_log_format_is_refused_at_start_naming_the_variable() {
    let dir = tempfile::tempdir().unwrap();
    let Output { status, stderr, .. } =
        edge(&dir, &[("LOG_FORMAT", "pretty")]).stdin(Stdio::null()).output().unwrap();
    assert!(!status.success());
    let stderr = String::from_utf8_lossy(&stderr);
    assert!(stderr.contains("LOG_FORMAT") && stderr.contains("pretty"), "{stderr}");
}
