//! `nexus-control-plane dev` as a newcomer runs it: the binary as a
//! process on a fresh state directory, its printed URLs and tokens used
//! as printed, a restart that keeps the registry, and no PostgreSQL of its
//! own left behind — after a clean stop and after `kill -9`.

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Bound on dev printing its banner (a cold start runs initdb; debug build).
const START: Duration = Duration::from_secs(120);
/// The bar: an alias written is served by the edge within this.
const VISIBLE: Duration = Duration::from_secs(1);

struct Dev {
    child: Child,
    api: String,
    edge: String,
    admin: String,
    resolver: String,
    banner: String,
    ready_after: Duration,
}

fn start(dir: &Path) -> Dev {
    let started = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_nexus-control-plane"))
        .args(["dev", "--api-port", "0", "--edge-port", "0", "--dir"])
        .arg(dir)
        .env_remove("DATABASE_URL")
        .env_remove("REDIS_URL")
        .env_remove("SECRET_KEY")
        .env("LOG_LEVEL", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn nexus-control-plane dev");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut banner = String::new();
    loop {
        let left = START.saturating_sub(started.elapsed());
        let line = rx.recv_timeout(left).unwrap_or_else(|_| {
            let _ = child.kill();
            panic!("dev printed no banner within {START:?}; so far:\n{banner}")
        });
        banner.push_str(&line);
        banner.push('\n');
        if line.starts_with("Ctrl-C stops everything") {
            break;
        }
    }
    let field = |name: &str| -> String {
        banner
            .lines()
            .find_map(|l| l.trim().strip_prefix(name).map(|v| v.trim().to_owned()))
            .unwrap_or_else(|| panic!("no {name:?} in the banner:\n{banner}"))
    };
    Dev {
        api: field("admin API:"),
        edge: field("edge:"),
        admin: field("admin token:"),
        resolver: field("resolver token:"),
        ready_after: started.elapsed(),
        child,
        banner,
    }
}

/// The postmaster of dev's private cluster, from its pid file.
fn postmaster(dir: &Path) -> u32 {
    let pid_file = dir.join("postgres").join("postmaster.pid");
    let text = std::fs::read_to_string(&pid_file).expect("dev runs its own PostgreSQL");
    text.lines().next().unwrap().trim().parse().unwrap()
}

fn alive(pid: u32) -> bool {
    PathBuf::from(format!("/proc/{pid}")).exists()
}

fn wait_gone(pid: u32, within: Duration, what: &str) {
    let deadline = Instant::now() + within;
    while alive(pid) {
        assert!(Instant::now() < deadline, "{what}: postmaster {pid} still running");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn wait_exit(child: &mut Child, within: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + within;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(Instant::now() < deadline, "dev did not stop within {within:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

async fn resolve(http: &reqwest::Client, dev: &Dev, context: &str, alias: &str) -> (u16, String) {
    let r = http
        .get(format!("{}/api/aliases/resolve/{context}/{alias}", dev.edge))
        .bearer_auth(&dev.resolver)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

#[tokio::test]
async fn dev_runs_the_whole_system_and_keeps_it_between_runs() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("state");
    let http = reqwest::Client::new();

    let mut dev = start(&dir);
    println!("cold start → banner (first resolve possible): {:?}", dev.ready_after);
    assert!(dev.banner.contains("private PostgreSQL"), "{}", dev.banner);
    assert!(dev.banner.contains("sample aliases loaded"), "{}", dev.banner);
    // The sample registry answers at once, with the printed token.
    let (status, body) = resolve(&http, &dev, "frontend", "user-profile").await;
    assert_eq!((status, body.contains("users/profile")), (200, true), "{body}");

    let created = http
        .post(format!("{}/api/admin/aliases", dev.api))
        .bearer_auth(&dev.admin)
        .json(&serde_json::json!({
            "context": "frontend", "alias": "dev-test", "canonical": "https://api.nexus.com/v1/dev"
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201, "{}", created.text().await.unwrap());
    let written = Instant::now();
    loop {
        let (status, body) = resolve(&http, &dev, "frontend", "dev-test").await;
        if status == 200 {
            assert!(body.contains("https://api.nexus.com/v1/dev"), "{body}");
            println!("commit → served by dev's edge: {:?}", written.elapsed());
            break;
        }
        assert!(written.elapsed() < VISIBLE, "not served within {VISIBLE:?}: {status} {body}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }

    // A clean stop (what Ctrl-C sends the process group is SIGINT; an
    // orchestrator sends SIGTERM: both drain) takes PostgreSQL with it.
    let pg = postmaster(&dir);
    assert!(
        Command::new("kill")
            .args(["-TERM", &dev.child.id().to_string()])
            .status()
            .unwrap()
            .success()
    );
    let status = wait_exit(&mut dev.child, Duration::from_secs(60));
    assert!(status.success(), "dev exited with {status}");
    wait_gone(pg, Duration::from_secs(10), "after a clean stop");

    // Warm: the registry, the alias and the secrets are kept.
    let mut dev = start(&dir);
    println!("warm start → banner: {:?}", dev.ready_after);
    assert!(dev.banner.contains("registry kept from the last run"), "{}", dev.banner);
    let (status, body) = resolve(&http, &dev, "frontend", "dev-test").await;
    assert_eq!(status, 200, "{body}");

    // One dev per directory.
    let second = Command::new(env!("CARGO_BIN_EXE_nexus-control-plane"))
        .args(["dev", "--api-port", "0", "--edge-port", "0", "--dir"])
        .arg(&dir)
        .env_remove("DATABASE_URL")
        .output()
        .unwrap();
    assert!(!second.status.success());
    let said = String::from_utf8_lossy(&second.stderr);
    assert!(said.contains("already running"), "{said}");

    // kill -9 leaves no cleanup to dev itself: its watchdog stops PostgreSQL.
    let pg = postmaster(&dir);
    dev.child.kill().unwrap();
    let _ = dev.child.wait();
    wait_gone(pg, Duration::from_secs(30), "after kill -9");
}
