//! What the operating system decides for us: which user PostgreSQL may run
//! as, which port is free, whether a process still lives, and which line
//! installs a missing server on this OS.

use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;

use crate::LocalError;

/// The OS user a server runs as when we are root (PostgreSQL refuses root).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RunAs {
    uid: u32,
    gid: u32,
}

impl RunAs {
    /// `None` unless we are root; then the `postgres` user, which must exist.
    pub(crate) fn for_postgres() -> Result<Option<RunAs>, LocalError> {
        if effective_uid() != Some(0) {
            return Ok(None);
        }
        user_ids("postgres")
            .map(|(uid, gid)| Some(RunAs { uid, gid }))
            .ok_or(LocalError::NoPostgresUser)
    }

    pub(crate) fn apply(self, cmd: &mut Command) {
        cmd.uid(self.uid).gid(self.gid);
    }

    pub(crate) fn chown(self, path: &Path) -> Result<(), LocalError> {
        std::os::unix::fs::chown(path, Some(self.uid), Some(self.gid))
            .map_err(|e| LocalError::io(format!("give {} to the postgres user", path.display()), e))
    }
}

/// The effective uid: /proc on Linux, `id -u` elsewhere.
fn effective_uid() -> Option<u32> {
    if let Ok(status) = std::fs::read_to_string("/proc/self/status") {
        // "Uid:\treal\teffective\tsaved\tfs"
        let line = status.lines().find(|l| l.starts_with("Uid:"))?;
        return line.split_whitespace().nth(2)?.parse().ok();
    }
    command_number(Command::new("id").arg("-u"))
}

/// (uid, gid) of `name`: /etc/passwd, else `id` (macOS keeps users elsewhere).
fn user_ids(name: &str) -> Option<(u32, u32)> {
    if let Ok(passwd) = std::fs::read_to_string("/etc/passwd") {
        for line in passwd.lines() {
            let fields: Vec<&str> = line.split(':').collect();
            if fields.len() > 3 && fields[0] == name {
                return Some((fields[2].parse().ok()?, fields[3].parse().ok()?));
            }
        }
    }
    let uid = command_number(Command::new("id").args(["-u", name]))?;
    let gid = command_number(Command::new("id").args(["-g", name]))?;
    Some((uid, gid))
}

fn command_number(cmd: &mut Command) -> Option<u32> {
    let out = cmd.output().ok()?;
    if !out.status.success() {
        return None;
    }
    String::from_utf8_lossy(&out.stdout).trim().parse().ok()
}

/// A port free right now on 127.0.0.1. Another process may take it before
/// the server binds it, so starts retry on "address in use".
pub(crate) fn free_port() -> Result<u16, LocalError> {
    let listener = TcpListener::bind("127.0.0.1:0")
        .map_err(|e| LocalError::io("bind a free port on 127.0.0.1", e))?;
    listener.local_addr().map(|a| a.port()).map_err(|e| LocalError::io("read a bound port", e))
}

/// Whether `pid` is a live process. A zombie counts as gone: where PID 1
/// does not reap (containers), an exited server lingers as one.
pub(crate) fn process_alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // "pid (comm) S ...": the state follows the last ')'.
        Ok(stat) => {
            stat.rsplit_once(')').is_some_and(|(_, rest)| !rest.trim_start().starts_with('Z'))
        }
        Err(_) if Path::new("/proc/self").exists() => false,
        Err(_) => Command::new("kill")
            .args(["-0", &pid.to_string()])
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success()),
    }
}

/// The last `n` lines of a log file ("" when it cannot be read).
pub(crate) fn tail(path: &Path, skip_bytes: u64, n: usize) -> String {
    let Ok(bytes) = std::fs::read(path) else { return String::new() };
    let start = usize::try_from(skip_bytes).unwrap_or(0).min(bytes.len());
    let text = String::from_utf8_lossy(&bytes[start..]);
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Which server an install line is for.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Package {
    Postgres,
    Redis,
}

/// The one command that installs `package` on this OS.
pub(crate) fn install_line(package: Package) -> String {
    let exists = |p: &str| Path::new(p).exists();
    let line = if cfg!(target_os = "macos") {
        match package {
            Package::Postgres => "brew install postgresql@17",
            Package::Redis => "brew install redis",
        }
    } else if exists("/usr/bin/apt-get") {
        match package {
            Package::Postgres => "apt-get install postgresql",
            Package::Redis => "apt-get install redis-server",
        }
    } else if exists("/usr/bin/dnf") {
        match package {
            Package::Postgres => "dnf install postgresql-server",
            Package::Redis => "dnf install redis",
        }
    } else if exists("/sbin/apk") {
        match package {
            Package::Postgres => "apk add postgresql",
            Package::Redis => "apk add redis",
        }
    } else if exists("/usr/bin/pacman") {
        match package {
            Package::Postgres => "pacman -S postgresql",
            Package::Redis => "pacman -S redis",
        }
    } else {
        match package {
            Package::Postgres => {
                "install the PostgreSQL server (initdb, pg_ctl, postgres) with your package manager"
            }
            Package::Redis => "install redis-server with your package manager",
        }
    };
    line.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_alive_and_a_reaped_child_is_not() {
        assert!(process_alive(std::process::id()));
        let mut child = Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        assert!(!process_alive(pid));
    }

    #[test]
    fn an_exited_unreaped_child_counts_as_gone() {
        let mut child = Command::new("true").spawn().unwrap();
        let pid = child.id();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while process_alive(pid) {
            assert!(std::time::Instant::now() < deadline, "zombie {pid} still counts as alive");
            std::thread::yield_now();
        }
        child.wait().unwrap();
    }

    #[test]
    fn tail_keeps_the_last_lines_after_the_offset() {
        let dir = std::env::temp_dir().join(format!("nexus-local-tail-{}", std::process::id()));
        std::fs::write(&dir, "old\na\nb\nc\n").unwrap();
        assert_eq!(tail(&dir, 4, 2), "b\nc");
        assert_eq!(tail(&dir, 0, 10), "old\na\nb\nc");
        std::fs::remove_file(&dir).unwrap();
    }
}
