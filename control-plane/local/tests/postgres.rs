//! A private PostgreSQL cluster: starts, answers, stops, is reused, and does
//! not outlive an owner killed with SIGKILL.

mod support;

use std::path::{Path, PathBuf};

use nexus_local::postgres::{Postgres, find_bindir};
use support::{OWNER_DIR, alive, announce_and_park, spawn_owner, wait_until};

/// The postmaster's pid, from the first line of postmaster.pid.
fn postmaster_pid(data_dir: &Path) -> u32 {
    let text = std::fs::read_to_string(data_dir.join("postmaster.pid")).unwrap();
    text.lines().next().unwrap().trim().parse().unwrap()
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("nexus-local-it-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

async fn select_one(url: &str) -> i32 {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(conn);
    client.query_one("SELECT 1", &[]).await.unwrap().get(0)
}

#[test]
fn the_binaries_are_found() {
    let dir = find_bindir().unwrap();
    assert!(dir.join("initdb").is_file(), "{}", dir.display());
}

#[tokio::test]
async fn starts_answers_and_stops() {
    let dir = scratch("basic");
    let pg = Postgres::start(&dir, true).unwrap();
    assert_eq!(pg.url(), format!("postgres://postgres@127.0.0.1:{}/postgres", pg.port()));
    assert_eq!(select_one(&pg.url()).await, 1);
    let pid = postmaster_pid(pg.data_dir());
    assert!(alive(pid));
    pg.stop().unwrap();
    assert!(!alive(pid), "postmaster {pid} still runs after stop");
    assert!(!dir.exists(), "{} was not removed", dir.display());
}

#[tokio::test]
async fn dropping_stops_the_server() {
    let dir = scratch("drop");
    let pg = Postgres::start(&dir, true).unwrap();
    let pid = postmaster_pid(pg.data_dir());
    drop(pg);
    assert!(!alive(pid), "postmaster {pid} still runs after drop");
    assert!(!dir.exists());
}

#[tokio::test]
async fn a_kept_data_dir_is_reused_with_its_data() {
    let dir = scratch("reuse");
    let pg = Postgres::start(&dir, false).unwrap();
    let (client, conn) = tokio_postgres::connect(&pg.url(), tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(conn);
    client.batch_execute("CREATE TABLE kept (n int); INSERT INTO kept VALUES (7)").await.unwrap();
    drop(client);
    pg.stop().unwrap();
    assert!(dir.join("PG_VERSION").exists(), "a kept data dir was removed");

    let again = Postgres::start(&dir, true).unwrap();
    let (client, conn) =
        tokio_postgres::connect(&again.url(), tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(conn);
    let n: i32 = client.query_one("SELECT n FROM kept", &[]).await.unwrap().get(0);
    assert_eq!(n, 7);
    drop(client);
    again.stop().unwrap();
    assert!(!dir.exists());
}

#[test]
fn a_second_start_on_a_running_dir_is_refused() {
    let dir = scratch("twice");
    let pg = Postgres::start(&dir, true).unwrap();
    let err = Postgres::start(&dir, false).unwrap_err().to_string();
    assert!(err.contains("already runs"), "{err}");
    // The refused start must not have stopped or removed the running one.
    assert!(alive(postmaster_pid(pg.data_dir())));
    pg.stop().unwrap();
}

#[test]
fn a_killed_owner_does_not_leave_its_server_behind() {
    let dir = scratch("kill9");
    let (mut owner, payload) = spawn_owner("owner", &dir);
    let pid: u32 = payload.parse().unwrap();
    assert!(alive(pid));
    owner.kill().unwrap(); // SIGKILL: no destructor runs in the owner
    owner.wait().unwrap();
    wait_until("the orphaned postmaster is gone", || !alive(pid));
    wait_until("the data dir is removed", || !dir.exists());
}

/// Not a test on its own: `a_killed_owner_does_not_leave_its_server_behind`
/// runs it in a child process.
#[test]
#[ignore = "helper process for a_killed_owner_does_not_leave_its_server_behind"]
fn owner() {
    let dir = PathBuf::from(std::env::var_os(OWNER_DIR).expect("run by the kill -9 test"));
    let pg = Postgres::start(&dir, true).unwrap();
    announce_and_park(postmaster_pid(pg.data_dir()));
    drop(pg);
}
