//! A private redis-server: starts, answers PING, stops, and does not outlive
//! an owner killed with SIGKILL.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;

use nexus_local::redis::Redis;
use support::{OWNER_DIR, alive, announce_and_park, spawn_owner, wait_until};

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("nexus-local-it-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn ping(port: u16) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.write_all(b"PING\r\n").unwrap();
    let mut reply = [0u8; 7];
    s.read_exact(&mut reply).unwrap();
    String::from_utf8_lossy(&reply).into_owned()
}

#[test]
fn starts_answers_ping_and_stops() {
    let dir = scratch("redis");
    let redis = Redis::start(&dir).unwrap();
    assert_eq!(redis.url(), format!("redis://127.0.0.1:{}", redis.port()));
    assert_eq!(ping(redis.port()), "+PONG\r\n");
    let (pid, port) = (redis.pid(), redis.port());
    redis.stop().unwrap();
    assert!(!alive(pid), "redis-server {pid} still runs after stop");
    assert!(TcpStream::connect(("127.0.0.1", port)).is_err());
    // `start` keeps its directory (the caller's); only the log is in it.
    assert!(dir.join("redis.log").exists());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_killed_owner_does_not_leave_its_server_behind() {
    let dir = scratch("redis-kill9");
    let (mut owner, payload) = spawn_owner("owner", &dir);
    let pid: u32 = payload.parse().unwrap();
    assert!(alive(pid));
    owner.kill().unwrap();
    owner.wait().unwrap();
    wait_until("the orphaned redis-server is gone", || !alive(pid));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
#[ignore = "helper process for a_killed_owner_does_not_leave_its_server_behind"]
fn owner() {
    let dir = PathBuf::from(std::env::var_os(OWNER_DIR).expect("run by the kill -9 test"));
    let redis = Redis::start(&dir).unwrap();
    announce_and_park(redis.pid());
    drop(redis);
}
