//! A `sh` child that stops a server when its owner dies.
//!
//! Its stdin is a pipe whose only write end the owner holds (std opens pipes
//! close-on-exec, so processes the owner spawns later do not inherit it).
//! The script blocks in `read`: when the owner exits, however it exits —
//! `kill -9`, a panic, or a test binary's normal exit where statics are never
//! dropped — the kernel closes the pipe, `read` fails on end of file, and the
//! script runs its action. An owner that stopped the server itself sends one
//! newline first, so `read` succeeds and the script exits doing nothing.
//!
//! The watchdog gets its own process group so a terminal's Ctrl-C, which
//! kills the owner, does not also kill the one process meant to clean up.

use std::ffi::OsStr;
use std::io::Write;
use std::os::unix::process::CommandExt;
use std::process::{Child, ChildStdin, Command, Stdio};

use crate::LocalError;

#[derive(Debug)]
pub(crate) struct Watchdog {
    child: Child,
    stdin: Option<ChildStdin>,
}

impl Watchdog {
    /// Runs `action` (a POSIX sh script reading `$1`, `$2`, ...) once the
    /// owner is gone.
    pub(crate) fn spawn(action: &str, args: &[&OsStr]) -> Result<Watchdog, LocalError> {
        let script = format!("if read -r _; then exit 0; fi\n{action}");
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(script)
            .arg("nexus-local-watchdog")
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .current_dir("/")
            .process_group(0)
            .spawn()
            .map_err(|e| LocalError::io("spawn the cleanup watchdog (sh)", e))?;
        let stdin = child.stdin.take();
        Ok(Watchdog { child, stdin })
    }

    /// The owner stopped the server itself: let the watchdog exit idle.
    pub(crate) fn dismiss(mut self) {
        if let Some(mut stdin) = self.stdin.take() {
            // If the write fails the script sees end of file and runs its
            // action on a stopped server, which is harmless.
            let _ = stdin.write_all(b"\n");
        }
        let _ = self.child.wait();
    }
}

impl Drop for Watchdog {
    /// Not dismissed: close the pipe so the action runs now, and wait for it
    /// so the server is gone when the owner's drop returns.
    fn drop(&mut self) {
        if self.stdin.take().is_some() {
            let _ = self.child.wait();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn marker(name: &str) -> std::path::PathBuf {
        std::env::temp_dir().join(format!("nexus-local-wd-{name}-{}", std::process::id()))
    }

    #[test]
    fn dropping_runs_the_action() {
        let path = marker("drop");
        let _ = std::fs::remove_file(&path);
        drop(Watchdog::spawn(r#"echo fired > "$1""#, &[path.as_os_str()]).unwrap());
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "fired\n");
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn dismissing_skips_the_action() {
        let path = marker("dismiss");
        let _ = std::fs::remove_file(&path);
        Watchdog::spawn(r#"echo fired > "$1""#, &[path.as_os_str()]).unwrap().dismiss();
        assert!(!path.exists());
    }
}
