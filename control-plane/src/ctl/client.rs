//! The admin API as `nexusctl` calls it: one base URL, one credential (a
//! JWT or an `nxk_` API key, both sent as a bearer token), JSON in and
//! out, and every failure sorted into what the exit code means.

use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// Bound on one call: an admin command that hangs is worse than one that
/// says the API did not answer.
const TIMEOUT: Duration = Duration::from_secs(30);

/// Why a command failed, and so its exit code.
#[derive(Debug, thiserror::Error)]
pub enum CtlError {
    /// The API could not be reached at all.
    #[error("cannot reach the admin API at {url}: {cause}")]
    Unreachable { url: String, cause: String },
    /// The API answered with an error body.
    #[error("{}", api_message(.status, .code, .message, .rule.as_deref()))]
    Api { status: StatusCode, code: String, message: String, rule: Option<String>, body: Value },
    /// The command itself is wrong (before anything was sent).
    #[error("{0}")]
    Usage(String),
    /// The answer could not be read, or a local file could not.
    #[error("{0}")]
    Other(String),
}

fn api_message(status: &StatusCode, code: &str, message: &str, rule: Option<&str>) -> String {
    match rule {
        Some(rule) => format!("{status}: governance rule {rule}: {message}"),
        None => format!("{status} {code}: {message}"),
    }
}

/// Exit codes, documented in `nexusctl --help` and the README.
pub mod exit {
    pub const OK: u8 = 0;
    /// Anything not listed below (a 5xx, an unreadable answer).
    pub const FAILED: u8 = 1;
    /// Bad arguments (clap uses 2 as well).
    pub const USAGE: u8 = 2;
    pub const UNREACHABLE: u8 = 3;
    pub const NOT_FOUND: u8 = 4;
    /// A conflict: the alias exists with another target, a conflict is
    /// already resolved, an import met conflicts.
    pub const CONFLICT: u8 = 5;
    pub const GOVERNANCE: u8 = 6;
    /// No credential, a bad one, or not allowed.
    pub const DENIED: u8 = 7;
    /// Over the credential's rate limit (429): retry after `Retry-After`.
    pub const RATE_LIMITED: u8 = 8;
    /// `--wait applied`: the write is committed, but not every edge asked
    /// for served it within the timeout (the API's 202).
    pub const NOT_APPLIED: u8 = 9;
}

impl CtlError {
    pub fn exit_code(&self) -> ExitCode {
        ExitCode::from(match self {
            CtlError::Unreachable { .. } => exit::UNREACHABLE,
            CtlError::Usage(_) => exit::USAGE,
            CtlError::Other(_) => exit::FAILED,
            CtlError::Api { status, .. } => match *status {
                StatusCode::NOT_FOUND => exit::NOT_FOUND,
                StatusCode::CONFLICT => exit::CONFLICT,
                StatusCode::UNPROCESSABLE_ENTITY => exit::GOVERNANCE,
                StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => exit::DENIED,
                StatusCode::BAD_REQUEST => exit::USAGE,
                StatusCode::TOO_MANY_REQUESTS => exit::RATE_LIMITED,
                _ => exit::FAILED,
            },
        })
    }
}

/// A client of one admin API.
#[derive(Debug, Clone)]
pub struct Client {
    base: String,
    token: Option<String>,
    http: reqwest::Client,
    /// `wait=applied&...`, added to every write (see [`Client::with_wait`]).
    wait: Option<String>,
    /// The `barrier` object of every write answered so far.
    barriers: Arc<Mutex<Vec<Value>>>,
}

/// An answer: its status, the registry version it names, its body.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub version: Option<u64>,
    pub body: Value,
}

impl Answer {
    /// The body as the API's type `T` for it: what a command decides on
    /// (a verdict, a plan) is read through the type the API wrote it from.
    /// The [`Value`] stays, for `--output json` to print as it came.
    pub fn parse<T: DeserializeOwned>(&self) -> Result<T, CtlError> {
        T::deserialize(&self.body).map_err(|e| CtlError::Other(format!("reading the answer: {e}")))
    }
}

impl Client {
    pub fn new(base: &str, token: Option<String>) -> Result<Self, CtlError> {
        let http = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .user_agent(concat!("nexusctl/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| CtlError::Other(format!("HTTP client: {e}")))?;
        Ok(Self {
            base: base.trim_end_matches('/').to_owned(),
            token,
            http,
            wait: None,
            barriers: Arc::default(),
        })
    }

    /// Every write through this client waits until the edges serve it:
    /// `query` is the barrier's parameters (`wait::Wait::query`), taken as
    /// text so the client stays a leaf that `wait` builds on.
    pub fn with_wait(mut self, query: Option<String>) -> Self {
        self.wait = query;
        self
    }

    /// The same client, its writes not waiting (a dry run changes nothing
    /// the edges could apply).
    pub fn without_wait(&self) -> Self {
        Self { wait: None, ..self.clone() }
    }

    /// The barrier results of the writes sent so far.
    pub fn barriers(&self) -> Vec<Value> {
        self.barriers.lock().map(|b| b.clone()).unwrap_or_default()
    }

    pub async fn get(&self, path: &str) -> Result<Answer, CtlError> {
        self.call(Method::GET, path, None::<&()>).await
    }

    /// A GET whose answer is a file, not JSON (`accept` picks its format).
    pub async fn get_text(&self, path: &str, accept: &str) -> Result<String, CtlError> {
        let req = self.http.get(self.url(path)).header(reqwest::header::ACCEPT, accept);
        let resp = self.send(req).await?;
        if resp.status().is_success() {
            return resp
                .text()
                .await
                .map_err(|e| CtlError::Other(format!("reading the answer: {e}")));
        }
        let status = resp.status();
        Err(api_error(status, resp.json().await.unwrap_or(Value::Null)))
    }

    /// A POST of a file (`content_type` names its format), JSON back.
    pub async fn post_file(
        &self,
        path: &str,
        file: Vec<u8>,
        content_type: &str,
    ) -> Result<Answer, CtlError> {
        let req = self
            .http
            .post(self.write_url(path))
            .header(reqwest::header::CONTENT_TYPE, content_type);
        self.answer(self.send(req.body(file)).await?).await
    }

    /// A POST of `body`: one of the API's own request types.
    pub async fn post(&self, path: &str, body: &impl Serialize) -> Result<Answer, CtlError> {
        self.call(Method::POST, path, Some(body)).await
    }

    /// A PUT of `body`: one of the API's own request types.
    pub async fn put(&self, path: &str, body: &impl Serialize) -> Result<Answer, CtlError> {
        self.call(Method::PUT, path, Some(body)).await
    }

    pub async fn delete(&self, path: &str) -> Result<Answer, CtlError> {
        self.call(Method::DELETE, path, None::<&()>).await
    }

    /// Sends one JSON request; see [`Client::answer`].
    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&impl Serialize>,
    ) -> Result<Answer, CtlError> {
        let url = if method == Method::GET { self.url(path) } else { self.write_url(path) };
        let mut req = self.http.request(method, url);
        if let Some(b) = body {
            req = req.json(b);
        }
        self.answer(self.send(req).await?).await
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A write's URL, with the barrier's parameters when asked for.
    fn write_url(&self, path: &str) -> String {
        match &self.wait {
            None => self.url(path),
            Some(q) => {
                let join = if path.contains('?') { '&' } else { '?' };
                format!("{}{path}{join}{q}", self.base)
            }
        }
    }

    /// Sends `req` with the credential; only a transport failure is an
    /// error here.
    async fn send(&self, mut req: reqwest::RequestBuilder) -> Result<reqwest::Response, CtlError> {
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        req.send()
            .await
            .map_err(|e| CtlError::Unreachable { url: self.base.clone(), cause: report(&e) })
    }

    /// A JSON answer; a non-2xx one becomes [`CtlError::Api`] with the
    /// API's own error code, message and governance rule.
    async fn answer(&self, resp: reqwest::Response) -> Result<Answer, CtlError> {
        let status = resp.status();
        let version = resp
            .headers()
            .get("x-nexus-version")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok());
        let text =
            resp.text().await.map_err(|e| CtlError::Other(format!("reading the answer: {e}")))?;
        let body: Value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        if status.is_success() {
            if let Some(b) = body.get("barrier")
                && let Ok(mut seen) = self.barriers.lock()
            {
                seen.push(b.clone());
            }
            return Ok(Answer { status, version, body });
        }
        Err(api_error(status, body))
    }
}

/// The API's error body as a [`CtlError::Api`].
fn api_error(status: StatusCode, body: Value) -> CtlError {
    let field = |k: &str| body.get(k).and_then(Value::as_str).map(str::to_owned);
    CtlError::Api {
        status,
        code: field("error").unwrap_or_else(|| "error".into()),
        message: field("message").unwrap_or_else(|| body.to_string()),
        rule: field("rule"),
        body,
    }
}

/// An error and its causes on one line (reqwest's top level alone says
/// only "error sending request").
fn report(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        out.push_str(": ");
        out.push_str(&c.to_string());
        cause = c.source();
    }
    out
}

/// One path segment, percent-encoded (alias names are restricted, but a
/// user may type anything).
pub fn seg(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>().replace('+', "%20")
}
