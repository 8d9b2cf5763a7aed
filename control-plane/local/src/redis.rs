//! A private `redis-server`: a child process on a free 127.0.0.1 port with
//! no persistence, working in its own directory.

use std::ffi::OsStr;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::LocalError;
use crate::os::{self, Package};
use crate::watchdog::Watchdog;

const PATIENCE: Duration = Duration::from_secs(30);
const ATTEMPTS: usize = 5;
const LOG_FILE: &str = "redis.log";

/// Run when the owner dies: the server is the owner's child, orphaned now.
const ON_OWNER_DEATH: &str = r#"
kill -KILL "$1" 2>/dev/null
if [ "$2" = remove ]; then rm -rf "$3"; fi
"#;

/// A running private Redis. Dropping it kills the server; when the owning
/// process dies, even by `kill -9`, a watchdog kills it too.
#[derive(Debug)]
pub struct Redis {
    child: Child,
    port: u16,
    dir: PathBuf,
    remove_on_exit: bool,
    watchdog: Option<Watchdog>,
    stopped: bool,
}

impl Redis {
    /// Starts `redis-server` in `dir` (created if missing; it holds the log)
    /// and waits until it answers PING.
    pub fn start(dir: &Path) -> Result<Redis, LocalError> {
        Self::start_in(dir, false)
    }

    /// As [`Redis::start`]; `remove_on_exit` deletes `dir` when stopped.
    pub(crate) fn start_in(dir: &Path, remove_on_exit: bool) -> Result<Redis, LocalError> {
        let program = find_redis_server()?;
        std::fs::create_dir_all(dir)
            .map_err(|e| LocalError::io(format!("create {}", dir.display()), e))?;
        let dir = dir
            .canonicalize()
            .map_err(|e| LocalError::io(format!("resolve {}", dir.display()), e))?;
        let log = dir.join(LOG_FILE);
        let started = Instant::now();
        for attempt in 1..=ATTEMPTS {
            let port = os::free_port()?;
            let log_offset = std::fs::metadata(&log).map(|m| m.len()).unwrap_or(0);
            let child = Command::new(&program)
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
                .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
                // Relative to the working directory: config arguments do not
                // survive paths with spaces.
                .args(["--dir", ".", "--logfile", LOG_FILE])
                .current_dir(&dir)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                // Out of the terminal's group: Ctrl-C is handled by the
                // owner's exit and the watchdog, in that order.
                .process_group(0)
                .spawn()
                .map_err(|e| LocalError::io(format!("run {}", program.display()), e))?;
            let pid = child.id().to_string();
            let keep = if remove_on_exit { "remove" } else { "keep" };
            let watchdog = Watchdog::spawn(
                ON_OWNER_DEATH,
                &[OsStr::new(&pid), OsStr::new(keep), dir.as_os_str()],
            )?;
            let mut redis = Redis {
                child,
                port,
                dir: dir.clone(),
                remove_on_exit,
                watchdog: Some(watchdog),
                stopped: false,
            };
            if redis.wait_until_ready() {
                return Ok(redis);
            }
            // A failed attempt must not remove the directory the next one uses.
            redis.remove_on_exit = false;
            drop(redis);
            let log_tail = os::tail(&log, log_offset, 20);
            if log_tail.contains("Address already in use") && attempt < ATTEMPTS {
                continue;
            }
            if remove_on_exit {
                let _ = std::fs::remove_dir_all(&dir);
            }
            return Err(LocalError::NotReady {
                what: "Redis",
                port,
                waited: started.elapsed(),
                log,
                log_tail,
            });
        }
        unreachable!("the last attempt returns")
    }

    /// `redis://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn stop(mut self) -> Result<(), LocalError> {
        self.shutdown()
    }

    /// PING answered before the deadline; false as soon as the server exits.
    fn wait_until_ready(&mut self) -> bool {
        let addr = SocketAddr::from(([127, 0, 0, 1], self.port));
        let deadline = Instant::now() + PATIENCE;
        loop {
            if answers(addr, Duration::from_secs(1)) {
                return true;
            }
            if !matches!(self.child.try_wait(), Ok(None)) || Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn shutdown(&mut self) -> Result<(), LocalError> {
        if self.stopped {
            return Ok(());
        }
        self.stopped = true;
        // No data to lose (no persistence): SIGKILL, then reap.
        let _ = self.child.kill();
        let mut result = self
            .child
            .wait()
            .map(drop)
            .map_err(|e| LocalError::io("wait for redis-server to exit", e));
        if let Some(watchdog) = self.watchdog.take() {
            // Reaped, so its pid may be reused: the watchdog must not signal it.
            watchdog.dismiss();
        }
        if self.remove_on_exit
            && let Err(e) = std::fs::remove_dir_all(&self.dir)
            && e.kind() != std::io::ErrorKind::NotFound
            && result.is_ok()
        {
            result = Err(LocalError::io(format!("remove {}", self.dir.display()), e));
        }
        result
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.shutdown();
    }
}

/// `redis-server`: `NEXUS_REDIS_BIN` (the file), else `PATH`, else Homebrew.
pub fn find_redis_server() -> Result<PathBuf, LocalError> {
    if let Some(file) = std::env::var_os("NEXUS_REDIS_BIN") {
        let file = PathBuf::from(file);
        return if file.is_file() {
            Ok(file)
        } else {
            Err(LocalError::BadOverride {
                var: "NEXUS_REDIS_BIN",
                path: file,
                needs: "a redis-server executable",
            })
        };
    }
    let mut dirs: Vec<PathBuf> =
        std::env::var_os("PATH").map(|p| std::env::split_paths(&p).collect()).unwrap_or_default();
    dirs.extend(
        ["/opt/homebrew/bin", "/usr/local/bin", "/usr/bin", "/usr/sbin"].map(PathBuf::from),
    );
    dirs.into_iter().map(|d| d.join("redis-server")).find(|f| f.is_file()).ok_or_else(|| {
        LocalError::NotInstalled {
            what: "redis-server",
            looked: "NEXUS_REDIS_BIN, PATH, /opt/homebrew/bin, /usr/local/bin".to_owned(),
            install: os::install_line(Package::Redis),
        }
    })
}

/// Whether a Redis server answers PING on `addr` without authentication.
pub(crate) fn answers(addr: SocketAddr, timeout: Duration) -> bool {
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, timeout) else { return false };
    let _ = stream.set_read_timeout(Some(timeout));
    let _ = stream.set_write_timeout(Some(timeout));
    let mut reply = [0u8; 5];
    stream.write_all(b"PING\r\n").is_ok()
        && stream.read_exact(&mut reply).is_ok()
        && &reply == b"+PONG"
}
