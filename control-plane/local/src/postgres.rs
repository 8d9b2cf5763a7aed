//! A private PostgreSQL cluster: `initdb` once, `pg_ctl start` on a free
//! 127.0.0.1 port with its Unix socket inside the data directory, so it
//! never collides with the system's server.

use std::ffi::OsStr;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use crate::LocalError;
use crate::os::{self, Package, RunAs};
use crate::watchdog::Watchdog;

/// How long a start or stop may take before it is an error.
const PATIENCE: Duration = Duration::from_secs(60);
/// Ports picked free can be taken before the server binds them.
const ATTEMPTS: usize = 5;
/// The server's log, inside the data directory (PostgreSQL ignores it).
const LOG_FILE: &str = "nexus-local.log";

/// Run when the owner dies: fast shutdown (SIGINT) of the postmaster named in
/// postmaster.pid, SIGKILL if it is still there after 30 s, then the data
/// directory removed if asked. Signals, not `pg_ctl`, because the watchdog
/// may run as root, which `pg_ctl` refuses.
const ON_OWNER_DEATH: &str = r#"
dir=$1
pid=$(sed -n 1p "$dir/postmaster.pid" 2>/dev/null)
if [ -n "$pid" ]; then
  kill -INT "$pid" 2>/dev/null
  i=0
  while [ -f "$dir/postmaster.pid" ] && [ "$i" -lt 300 ] && kill -0 "$pid" 2>/dev/null; do
    sleep 0.1
    i=$((i + 1))
  done
  if [ -f "$dir/postmaster.pid" ]; then kill -KILL "$pid" 2>/dev/null; fi
fi
if [ "$2" = remove ]; then rm -rf "$dir"; fi
"#;

/// A running private cluster. Dropping it stops the server
/// (`pg_ctl stop -m fast`); when the owning process dies, even by `kill -9`,
/// a watchdog stops it too.
#[derive(Debug)]
pub struct Postgres {
    data_dir: PathBuf,
    port: u16,
    bindir: PathBuf,
    run_as: Option<RunAs>,
    remove_on_exit: bool,
    watchdog: Option<Watchdog>,
    stopped: bool,
}

impl Postgres {
    /// Reuses `data_dir` if it already holds a cluster (dev mode keeps state
    /// between runs), else `initdb`s it (trust auth, user `postgres`, UTF8).
    /// Picks a free 127.0.0.1 port, starts, and waits until the server accepts
    /// connections. `remove_on_exit`: delete `data_dir` when stopped (tests);
    /// such a throw-away cluster also runs with fsync off, for speed.
    pub fn start(data_dir: &Path, remove_on_exit: bool) -> Result<Postgres, LocalError> {
        let bindir = find_bindir()?;
        let run_as = RunAs::for_postgres()?;
        std::fs::create_dir_all(data_dir)
            .map_err(|e| LocalError::io(format!("create {}", data_dir.display()), e))?;
        // Absolute, because the helpers run with "/" as working directory
        // (the postgres user may not be able to enter ours).
        let data_dir = data_dir
            .canonicalize()
            .map_err(|e| LocalError::io(format!("resolve {}", data_dir.display()), e))?;
        let reuse = data_dir.join("PG_VERSION").exists();
        if reuse {
            // Before the watchdog exists: a refused start must leave the
            // running server alone.
            refuse_if_running(&data_dir)?;
        }
        // Spawned before anything is started, so a start that fails half-way
        // or an owner killed during it is cleaned up too.
        let keep = if remove_on_exit { "remove" } else { "keep" };
        let watchdog = Watchdog::spawn(ON_OWNER_DEATH, &[data_dir.as_os_str(), OsStr::new(keep)])?;
        let mut pg = Postgres {
            data_dir,
            port: 0,
            bindir,
            run_as,
            remove_on_exit,
            watchdog: Some(watchdog),
            stopped: false,
        };
        if !reuse {
            pg.initdb()?;
        }
        pg.start_on_free_port()?;
        Ok(pg)
    }

    /// `postgres://postgres@127.0.0.1:PORT/postgres`
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The server's log file (inside the data directory).
    pub fn log_file(&self) -> PathBuf {
        self.data_dir.join(LOG_FILE)
    }

    /// Stops the server (fast: open sessions are ended) and removes the data
    /// directory if asked at start.
    pub fn stop(mut self) -> Result<(), LocalError> {
        self.shutdown()
    }

    fn initdb(&self) -> Result<(), LocalError> {
        if let Some(user) = self.run_as {
            user.chown(&self.data_dir)?;
        }
        // PostgreSQL insists on 0700 (or 0750) for the data directory.
        std::fs::set_permissions(&self.data_dir, std::fs::Permissions::from_mode(0o700))
            .map_err(|e| LocalError::io(format!("restrict {}", self.data_dir.display()), e))?;
        let mut cmd = self.command("initdb");
        cmd.arg("-D").arg(&self.data_dir);
        cmd.args(["--auth=trust", "--username=postgres", "--encoding=UTF8", "--no-locale"]);
        if self.remove_on_exit {
            cmd.arg("--no-sync");
        }
        expect_success("initdb", run(&mut cmd, "initdb")?)?;
        self.write_certificate()
    }

    /// A private CA and a `localhost` certificate it signed, so the cluster
    /// speaks TLS like a production server (`ssl=on`) and the TLS tests
    /// (`sslmode=verify-ca` against `ssl_cert_file`, `verify-full` by
    /// name) behave as they do against a packaged server.
    fn write_certificate(&self) -> Result<(), LocalError> {
        let tls =
            |e: rcgen::Error| LocalError::io("make the TLS certificate", std::io::Error::other(e));
        let ca_key = rcgen::KeyPair::generate().map_err(tls)?;
        let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).map_err(tls)?;
        ca.distinguished_name.push(rcgen::DnType::CommonName, "nexus-local CA");
        ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca = rcgen::CertifiedIssuer::self_signed(ca, ca_key).map_err(tls)?;
        let key = rcgen::KeyPair::generate().map_err(tls)?;
        let cert = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
            .map_err(tls)?
            .signed_by(&key, &ca)
            .map_err(tls)?;
        // The chain the server sends: its certificate, then the CA.
        let chain = format!("{}{}", cert.pem(), ca.pem());
        for (name, text, mode) in
            [("server.crt", chain, 0o644), ("server.key", key.serialize_pem(), 0o600)]
        {
            let path = self.data_dir.join(name);
            std::fs::write(&path, text)
                .and_then(|()| {
                    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode))
                })
                .map_err(|e| LocalError::io(format!("write {}", path.display()), e))?;
            if let Some(user) = self.run_as {
                user.chown(&path)?;
            }
        }
        Ok(())
    }

    fn start_on_free_port(&mut self) -> Result<(), LocalError> {
        let log = self.log_file();
        let started = Instant::now();
        for attempt in 1..=ATTEMPTS {
            let port = os::free_port()?;
            let log_offset = std::fs::metadata(&log).map(|m| m.len()).unwrap_or(0);
            let mut cmd = self.command("pg_ctl");
            cmd.arg("start").arg("-D").arg(&self.data_dir).arg("-l").arg(&log);
            cmd.args(["-w", "-t", &PATIENCE.as_secs().to_string(), "-s", "-o"]);
            cmd.arg(self.server_options(port));
            let out = run(&mut cmd, "pg_ctl start")?;
            if out.status.success() && wait_until_answers(port, PATIENCE) {
                self.port = port;
                return Ok(());
            }
            let log_tail = os::tail(&log, log_offset, 20);
            if log_tail.contains("Address already in use") && attempt < ATTEMPTS {
                continue;
            }
            let log_tail = if log_tail.is_empty() { output_text(&out) } else { log_tail };
            return Err(LocalError::NotReady {
                what: "PostgreSQL",
                port,
                waited: started.elapsed(),
                log,
                log_tail,
            });
        }
        unreachable!("the last attempt returns")
    }

    /// `pg_ctl -o` is pasted into a shell command line, hence the quoting.
    fn server_options(&self, port: u16) -> String {
        let mut opts = format!("-p {port} -c listen_addresses=127.0.0.1");
        // TLS with the certificate made at initdb (absolute paths, so
        // `SHOW ssl_cert_file` names a file a client can read).
        let dir = self.data_dir.to_string_lossy();
        if self.data_dir.join("server.key").is_file() && !dir.contains('\'') {
            opts.push_str(&format!(
                " -c ssl=on -c ssl_cert_file='{dir}/server.crt' -c ssl_key_file='{dir}/server.key'"
            ));
        }
        // A socket path must fit sun_path (104 bytes on macOS, 108 on Linux);
        // a long or odd data-dir path gets no socket at all rather than one
        // in a shared directory. Clients here connect over TCP.
        let socket_len = dir.len() + "/.s.PGSQL.65535".len();
        if socket_len < 100 && !dir.contains('\'') && self.data_dir.to_str().is_some() {
            opts.push_str(&format!(" -k '{dir}'"));
        } else {
            opts.push_str(" -k ''");
        }
        if self.remove_on_exit {
            // Throw-away test clusters: durability buys nothing, and tests
            // create and drop a database each.
            opts.push_str(" -c fsync=off -c synchronous_commit=off -c full_page_writes=off");
        }
        opts
    }

    fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new(self.bindir.join(program));
        cmd.current_dir("/")
            // Log lines are matched ("Address already in use"): no translations.
            .env("LC_ALL", "C")
            .env_remove("PGDATA")
            .env_remove("PGPORT")
            .env_remove("PGHOST");
        if let Some(user) = self.run_as {
            user.apply(&mut cmd);
        }
        cmd
    }

    fn shutdown(&mut self) -> Result<(), LocalError> {
        if self.stopped {
            return Ok(());
        }
        self.stopped = true;
        let mut result = self.pg_ctl_stop();
        if self.remove_on_exit {
            match std::fs::remove_dir_all(&self.data_dir) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound && result.is_ok() => {
                    result = Err(LocalError::io(format!("remove {}", self.data_dir.display()), e));
                }
                _ => {}
            }
        }
        match (self.watchdog.take(), &result) {
            (Some(watchdog), Ok(())) => watchdog.dismiss(),
            // Dropped undismissed: it signals whatever pg_ctl could not stop.
            (watchdog, _) => drop(watchdog),
        }
        result
    }

    fn pg_ctl_stop(&self) -> Result<(), LocalError> {
        let mut cmd = self.command("pg_ctl");
        cmd.arg("stop").arg("-D").arg(&self.data_dir);
        cmd.args(["-m", "fast", "-w", "-t", &PATIENCE.as_secs().to_string(), "-s"]);
        let out = run(&mut cmd, "pg_ctl stop")?;
        // No pid file: the server is not running, which is what we want.
        if out.status.success() || !self.data_dir.join("postmaster.pid").exists() {
            Ok(())
        } else {
            expect_success("pg_ctl stop", out)
        }
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let _ = self.shutdown();
    }
}

/// Where the PostgreSQL server binaries are, first match wins:
/// `NEXUS_PG_BIN`, `pg_config --bindir`, `/usr/lib/postgresql/*/bin`
/// (newest), Homebrew (`/opt/homebrew/opt/postgresql*/bin`,
/// `/usr/local/opt/postgresql*/bin`), `PATH`. The error carries the one line
/// that installs them on this OS.
pub fn find_bindir() -> Result<PathBuf, LocalError> {
    if let Some(dir) = std::env::var_os("NEXUS_PG_BIN") {
        let dir = PathBuf::from(dir);
        return if has_server(&dir) {
            Ok(dir)
        } else {
            Err(LocalError::BadOverride {
                var: "NEXUS_PG_BIN",
                path: dir,
                needs: "initdb, pg_ctl and postgres",
            })
        };
    }
    let mut candidates: Vec<PathBuf> = Vec::new();
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output()
        && out.status.success()
    {
        candidates.push(PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()));
    }
    candidates.extend(newest_first(Path::new("/usr/lib/postgresql"), ""));
    candidates.extend(newest_first(Path::new("/opt/homebrew/opt"), "postgresql"));
    candidates.extend(newest_first(Path::new("/usr/local/opt"), "postgresql"));
    if let Some(path) = std::env::var_os("PATH") {
        candidates.extend(std::env::split_paths(&path));
    }
    candidates.into_iter().find(|dir| has_server(dir)).ok_or_else(|| LocalError::NotInstalled {
        what: "PostgreSQL server binaries (initdb, pg_ctl, postgres)",
        looked: "NEXUS_PG_BIN, pg_config --bindir, /usr/lib/postgresql/*/bin, \
                 /opt/homebrew/opt/postgresql*/bin, /usr/local/opt/postgresql*/bin, PATH"
            .to_owned(),
        install: os::install_line(Package::Postgres),
    })
}

fn refuse_if_running(data_dir: &Path) -> Result<(), LocalError> {
    let pid = std::fs::read_to_string(data_dir.join("postmaster.pid"))
        .ok()
        .and_then(|s| s.lines().next()?.trim().parse::<u32>().ok());
    match pid {
        Some(pid) if os::process_alive(pid) => {
            Err(LocalError::AlreadyRunning { data_dir: data_dir.to_owned(), pid })
        }
        _ => Ok(()),
    }
}

fn has_server(dir: &Path) -> bool {
    ["initdb", "pg_ctl", "postgres"].iter().all(|b| dir.join(b).is_file())
}

/// `<parent>/<prefix><version>/bin`, highest version first ("17" > "9.6";
/// Homebrew's `postgresql@16` reads as 16, a bare `postgresql` as lowest).
fn newest_first(parent: &Path, prefix: &str) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(parent) else { return Vec::new() };
    let mut found: Vec<(Vec<u32>, PathBuf)> = entries
        .filter_map(|e| {
            let name = e.ok()?.file_name().into_string().ok()?;
            let rest = name.strip_prefix(prefix)?;
            let version = rest.trim_start_matches('@');
            let key: Vec<u32> = version.split('.').filter_map(|p| p.parse().ok()).collect();
            (rest.is_empty() || rest.starts_with('@') || prefix.is_empty())
                .then(|| (key, parent.join(&name).join("bin")))
        })
        .collect();
    found.sort_by(|a, b| b.0.cmp(&a.0));
    found.into_iter().map(|(_, dir)| dir).collect()
}

/// Whether a PostgreSQL server answers on `addr`: it replies to an
/// SSLRequest with one byte, 'S' or 'N', before any authentication.
pub(crate) fn answers(addr: SocketAddr, timeout: Duration) -> bool {
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, timeout) else { return false };
    let _ = stream.set_read_timeout(Some(timeout));
    let _ = stream.set_write_timeout(Some(timeout));
    const SSL_REQUEST: [u8; 8] = [0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f];
    let mut reply = [0u8; 1];
    stream.write_all(&SSL_REQUEST).is_ok()
        && stream.read_exact(&mut reply).is_ok()
        && matches!(reply[0], b'S' | b'N')
}

fn wait_until_answers(port: u16, patience: Duration) -> bool {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let deadline = Instant::now() + patience;
    loop {
        if answers(addr, Duration::from_secs(1)) {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn run(cmd: &mut Command, what: &str) -> Result<Output, LocalError> {
    cmd.output().map_err(|e| LocalError::io(format!("run {what}"), e))
}

fn expect_success(program: &str, out: Output) -> Result<(), LocalError> {
    if out.status.success() {
        return Ok(());
    }
    Err(LocalError::Command {
        program: program.to_owned(),
        status: out.status.to_string(),
        output: output_text(&out),
    })
}

fn output_text(out: &Output) -> String {
    let mut text = String::from_utf8_lossy(&out.stderr).trim().to_owned();
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !stdout.trim().is_empty() {
        text.push('\n');
        text.push_str(stdout.trim());
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_sort_numerically_newest_first() {
        let root =
            std::env::temp_dir().join(format!("nexus-local-versions-{}", std::process::id()));
        for v in ["9.6", "17", "15", "postgresql@16", "postgresql", "other"] {
            std::fs::create_dir_all(root.join(v)).unwrap();
        }
        let plain = newest_first(&root, "");
        let names: Vec<String> = plain
            .iter()
            .map(|p| p.parent().unwrap().file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(&names[..3], ["17", "15", "9.6"]);
        let brew = newest_first(&root, "postgresql");
        assert_eq!(brew, [root.join("postgresql@16/bin"), root.join("postgresql/bin")]);
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn nothing_listening_does_not_answer() {
        let port = os::free_port().unwrap();
        assert!(!answers(SocketAddr::from(([127, 0, 0, 1], port)), Duration::from_millis(200)));
    }
}
