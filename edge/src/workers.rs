//! Worker threads: with `EDGE_WORKERS=N`, N single-threaded tokio runtimes,
//! each accepting on its own `SO_REUSEPORT` listener bound to the same
//! address, so the kernel spreads connections and a request never crosses
//! threads: no work stealing, no cross-thread wakeups, for requests that
//! are a few hundred nanoseconds of work. (Not yet compared against one
//! multi-threaded runtime on a quiet machine; with `EDGE_WORKERS=1`, the
//! benchmarked setting, the two are the same thing.)

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::JoinHandle;

use tokio::net::{TcpListener, TcpSocket};
use tokio::runtime::Runtime;
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;

use crate::app::App;
use crate::server::serve;

/// Accept backlog of each listener.
const BACKLOG: u32 = 4096;

/// A runtime and the listener registered with it, not started yet.
#[derive(Debug)]
pub struct Worker {
    runtime: Runtime,
    listener: TcpListener,
}

impl Worker {
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }
}

/// Binds `n` listeners on `addr` (port 0 picks one port for all), each
/// registered with its own runtime. Fails before anything is served.
pub fn bind(addr: SocketAddr, n: usize) -> io::Result<Vec<Worker>> {
    let mut addr = addr;
    let mut workers = Vec::with_capacity(n);
    for _ in 0..n {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        let listener = {
            let _entered = runtime.enter();
            let socket = if addr.is_ipv4() { TcpSocket::new_v4()? } else { TcpSocket::new_v6()? };
            socket.set_reuseaddr(true)?;
            socket.set_reuseport(true)?;
            socket.set_nodelay(true)?;
            socket.bind(addr)?;
            socket.listen(BACKLOG)?
        };
        addr = listener.local_addr()?;
        workers.push(Worker { runtime, listener });
    }
    Ok(workers)
}

/// Starts each worker on its own thread; they stop when `shutdown` turns
/// true and their connections have drained.
pub fn spawn(
    workers: Vec<Worker>,
    app: Arc<App>,
    tls: Option<TlsAcceptor>,
    shutdown: watch::Receiver<bool>,
) -> io::Result<Vec<JoinHandle<()>>> {
    workers
        .into_iter()
        .enumerate()
        .map(|(i, w)| {
            let app = app.clone();
            let tls = tls.clone();
            let mut shutdown = shutdown.clone();
            std::thread::Builder::new().name(format!("edge-worker-{i}")).spawn(move || {
                let stop = async move {
                    let _ = shutdown.wait_for(|s| *s).await;
                };
                w.runtime.block_on(serve(w.listener, app, tls, stop));
            })
        })
        .collect()
}
