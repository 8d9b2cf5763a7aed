//! Shared by the crate's integration tests (each uses all of it): process
//! liveness, deadlines, and a child process (this test binary again) that
//! owns a server and gets `kill -9`ed.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const PATIENCE: Duration = Duration::from_secs(30);

/// Whether `pid` lives; a zombie counts as gone (PID 1 may not reap here).
pub fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat.rsplit_once(')').is_some_and(|(_, r)| !r.trim_start().starts_with('Z')),
        Err(_) if Path::new("/proc/self").exists() => false,
        Err(_) => Command::new("kill")
            .args(["-0", &pid.to_string()])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success()),
    }
}

pub fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out after {PATIENCE:?} waiting until {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The env var that turns the `owner` helper test into a server owner.
pub const OWNER_DIR: &str = "NEXUS_LOCAL_OWNER_DIR";
/// The line the owner prints once its server runs.
pub const READY: &str = "NEXUS_LOCAL_OWNER_READY";

/// Runs test `name` of this binary as a child owning a server in `dir`;
/// returns the child and the READY line's payload.
pub fn spawn_owner(name: &str, dir: &Path) -> (Child, String) {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([name, "--exact", "--ignored", "--nocapture", "--test-threads=1"])
        .env(OWNER_DIR, dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut seen = String::new();
    let mut line = String::new();
    // Ends at the READY line, or at end of file if the owner failed.
    while stdout.read_line(&mut line).unwrap() > 0 {
        // libtest may have printed "test owner ... " on the same line.
        if let Some((_, payload)) = line.split_once(READY) {
            return (child, payload.trim().to_owned());
        }
        seen.push_str(&line);
        line.clear();
    }
    let mut stderr = String::new();
    let _ = child.stderr.take().unwrap().read_to_string(&mut stderr);
    let _ = child.kill();
    let _ = child.wait();
    panic!("the owner child never got its server up:\n{seen}\n{stderr}");
}

/// In the owner child: say READY (flushed: stdout to a pipe may be block
/// buffered), then block until the parent closes our stdin or kills us.
pub fn announce_and_park(payload: impl std::fmt::Display) {
    use std::io::Write;
    let mut out = std::io::stdout();
    writeln!(out, "{READY} {payload}").unwrap();
    out.flush().unwrap();
    let mut sink = Vec::new();
    let _ = std::io::stdin().read_to_end(&mut sink);
}
