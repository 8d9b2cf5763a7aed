//! `nexus-loadtest hyper-peer`: the floor under the edge, for
//! `compare-nginx.sh --with-hyper`.
//!
//! hyper's HTTP/1.1 server on the caller's (one-thread) runtime, answering
//! each live alias of an aliases file with the body the edge sends for it,
//! rendered at start and found in a std `HashMap`: no token check, no
//! metrics, no state that can be swapped. Whatever the edge costs above
//! this is what NEXUS adds to hyper; nginx answers the same paths from its
//! `map` for the other side of the comparison.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

use crate::synthetic::resolve_body;

/// What nginx answers for a path its map lacks (see compare-nginx.sh).
const NOT_FOUND: &str = r#"{"error":"not_found","message":"no such alias"}"#;
/// Pause after a failed accept (out of descriptors, say) before the next.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(10);

/// Resolve path → pre-rendered body.
#[derive(Debug, Default)]
pub struct Bodies(HashMap<String, Bytes>);

impl Bodies {
    /// Bodies for `(resolve path, canonical)` pairs, as
    /// [`crate::keyspace::live_aliases`] gives them.
    pub fn new(aliases: Vec<(String, String)>) -> Self {
        Self(
            aliases
                .into_iter()
                .map(|(path, canonical)| (path, Bytes::from(resolve_body(&canonical))))
                .collect(),
        )
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn answer(&self, path: &str) -> Response<Full<Bytes>> {
        let (status, body) = match self.0.get(path) {
            Some(body) => (StatusCode::OK, body.clone()),
            None => (StatusCode::NOT_FOUND, Bytes::from_static(NOT_FOUND.as_bytes())),
        };
        let mut response = Response::new(Full::new(body));
        *response.status_mut() = status;
        response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        response
    }
}

/// Accepts on `listener` and answers every request, until dropped.
pub async fn serve(listener: TcpListener, bodies: Arc<Bodies>) {
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                // The loadtest has no logger.
                eprintln!("hyper-peer: accept failed: {e}");
                tokio::time::sleep(ACCEPT_BACKOFF).await;
                continue;
            }
        };
        // As the edge does: answers are one small write each.
        let _ = stream.set_nodelay(true);
        let bodies = bodies.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request: Request<Incoming>| {
                let response = bodies.answer(request.uri().path());
                async move { Ok::<_, Infallible>(response) }
            });
            // A client that goes away mid-request is no concern of a peer.
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn answers_known_paths_with_the_edge_body_and_others_with_404() {
        let bodies = Bodies::new(vec![(
            "/api/aliases/resolve/frontend/a".into(),
            "https://api.nexus.com/v1/a".into(),
        )]);
        assert_eq!(bodies.len(), 1);
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(serve(listener, Arc::new(bodies)));

        let get = |path: &'static str| async move {
            let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
            let (mut send, conn) =
                hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.unwrap();
            tokio::spawn(conn);
            let request = Request::get(path)
                .header("host", "peer")
                .body(http_body_util::Empty::<Bytes>::new())
                .unwrap();
            let response = send.send_request(request).await.unwrap();
            let status = response.status();
            let kind = response.headers().get(CONTENT_TYPE).cloned();
            let body =
                http_body_util::BodyExt::collect(response.into_body()).await.unwrap().to_bytes();
            (status, kind, String::from_utf8(body.to_vec()).unwrap())
        };
        let (status, kind, body) = get("/api/aliases/resolve/frontend/a").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(kind.unwrap(), "application/json");
        assert_eq!(body, resolve_body("https://api.nexus.com/v1/a"));
        let (status, _, body) = get("/api/aliases/resolve/frontend/b").await;
        assert_eq!((status, body.as_str()), (StatusCode::NOT_FOUND, NOT_FOUND));
    }
}
