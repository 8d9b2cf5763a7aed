//! The `nexus-edge` binary as a child process, for the tests that run it:
//! a clean environment plus each test's variables, the log read line by
//! line on a thread, signals sent with `kill`, and the process killed when
//! the test ends, whatever happens.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

/// How long the edge has to log a line a test waits for, or to exit.
const PATIENCE: Duration = Duration::from_secs(20);

/// `nexus-edge` with an empty environment but for what every test wants:
/// HTTP on a port the kernel picks, one worker, plain info logs.
/// The edge package's tests only: cargo builds `nexus-edge` for them.
pub fn command() -> Command {
    let mut c = Command::new(crate::cargo_bin("nexus-edge"));
    c.env_clear()
        .env("EDGE_HTTP_ADDR", "127.0.0.1:0")
        .env("EDGE_WORKERS", "1")
        .env("NO_COLOR", "1")
        .env("LOG_LEVEL", "info");
    c
}

/// A running edge; killed when dropped.
#[derive(Debug)]
pub struct EdgeProcess {
    child: Child,
    lines: Receiver<String>,
}

impl EdgeProcess {
    pub fn start(command: &mut Command) -> Self {
        let mut child = command.stdout(Stdio::piped()).stderr(Stdio::null()).spawn().unwrap();
        let out = child.stdout.take().unwrap();
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Self { child, lines }
    }

    /// Reads the log until a line containing `marker` has a `field=value`;
    /// returns the value and the lines logged before it.
    pub fn wait_for(&self, marker: &str, field: &str) -> (String, Vec<String>) {
        let key = format!("{field}=");
        let mut before = Vec::new();
        loop {
            let line = self
                .lines
                .recv_timeout(PATIENCE)
                .unwrap_or_else(|_| panic!("edge did not log {marker:?} with {key}"));
            if line.contains(marker)
                && let Some(rest) = line.split(&key).nth(1)
            {
                let value = rest.split_whitespace().next().unwrap_or("");
                return (value.trim_matches('"').to_owned(), before);
            }
            before.push(line);
        }
    }

    /// Sends `sig` (`-HUP`, `-TERM`, ...).
    pub fn signal(&self, sig: &str) {
        let ok = Command::new("kill").arg(sig).arg(self.child.id().to_string()).status().unwrap();
        assert!(ok.success(), "kill {sig} failed");
    }

    /// Waits for the edge to exit on its own, and for that to be a success.
    pub fn exits_cleanly(&mut self) {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                assert!(status.success(), "edge exited with {status}");
                return;
            }
            assert!(Instant::now() < deadline, "edge did not exit");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for EdgeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
