//! The control plane's admin API, as far as the probe needs it: check the
//! credential, create or update an alias and learn the registry version the
//! write committed at, deactivate what the run created.

use std::time::Duration;

use reqwest::{Client, Response, StatusCode};
use serde::Deserialize;
use serde_json::json;

use crate::recorder::Failure;
use crate::target::Target;
use crate::tls::{self, Trust};

/// Why an admin call did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("control plane unreachable at {url}: {source}")]
    Unreachable {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("control plane did not answer within {0:?}")]
    Timeout(Duration),
    #[error("control plane refused the token (401): {0}")]
    Unauthorized(String),
    #[error("control plane: the token may not do this (403): {0}")]
    Forbidden(String),
    #[error("control plane answered {status}: {message}")]
    Status { status: u16, message: String },
    #[error("control plane answer unreadable: {0}")]
    Body(#[source] reqwest::Error),
    #[error("control plane TLS setup: {0}")]
    Tls(#[from] tls::TlsError),
    #[error("HTTP client setup: {0}")]
    Client(#[source] reqwest::Error),
}

impl AdminError {
    /// A refusal the next write would get as well (bad token, governance,
    /// bad name): the run stops instead of repeating it `--writes` times.
    pub fn is_client_fault(&self) -> bool {
        match self {
            AdminError::Unauthorized(_) | AdminError::Forbidden(_) => true,
            AdminError::Status { status, .. } => (400..500).contains(status),
            _ => false,
        }
    }

    /// The kind the report counts it under.
    pub fn failure(&self) -> Failure {
        match self {
            AdminError::Unreachable { .. } | AdminError::Tls(_) | AdminError::Client(_) => {
                Failure::Connect
            }
            AdminError::Timeout(_) => Failure::Timeout,
            AdminError::Unauthorized(_) => Failure::Status(401),
            AdminError::Forbidden(_) => Failure::Status(403),
            AdminError::Status { status, .. } => Failure::Status(*status),
            AdminError::Body(_) => Failure::Protocol,
        }
    }
}

/// The part of an alias record the probe reads.
#[derive(Debug, Deserialize)]
struct Record {
    /// Registry version the write committed at.
    version: u64,
}

/// A client of one control plane, with one credential.
#[derive(Debug, Clone)]
pub struct Admin {
    http: Client,
    base: String,
    bearer: String,
    timeout: Duration,
}

impl Admin {
    pub fn new(
        target: &Target,
        token: &str,
        trust: Option<&Trust>,
        timeout: Duration,
    ) -> Result<Self, AdminError> {
        let mut builder = Client::builder().timeout(timeout).connect_timeout(timeout);
        if let Some(trust) = trust {
            let config = tls::client_config(trust, &[b"http/1.1"])?;
            builder = builder.use_preconfigured_tls((*config).clone());
        }
        Ok(Self {
            http: builder.build().map_err(AdminError::Client)?,
            base: target.to_string(),
            bearer: format!("Bearer {token}"),
            timeout,
        })
    }

    /// Lists at most one alias of `context`: proves the control plane
    /// answers and takes the credential before anything is written.
    pub async fn check(&self, context: &str) -> Result<(), AdminError> {
        let url = format!("{}/api/admin/aliases?context={context}&limit=1", self.base);
        self.send(self.http.get(url)).await.map(drop)
    }

    /// Creates `context/alias`; the version it committed at.
    pub async fn create(
        &self,
        context: &str,
        alias: &str,
        canonical: &str,
    ) -> Result<u64, AdminError> {
        let body = json!({"context": context, "alias": alias, "canonical": canonical});
        let url = format!("{}/api/admin/aliases", self.base);
        self.record(self.http.post(url).json(&body)).await
    }

    /// Points `context/alias` at `canonical`; the version it committed at.
    pub async fn update(
        &self,
        context: &str,
        alias: &str,
        canonical: &str,
    ) -> Result<u64, AdminError> {
        let url = format!("{}/api/admin/aliases/{context}/{alias}", self.base);
        self.record(self.http.put(url).json(&json!({"canonical": canonical}))).await
    }

    /// Deactivates `context/alias` (the API's DELETE).
    pub async fn deactivate(&self, context: &str, alias: &str) -> Result<(), AdminError> {
        let url = format!("{}/api/admin/aliases/{context}/{alias}", self.base);
        self.send(self.http.delete(url)).await.map(drop)
    }

    async fn record(&self, request: reqwest::RequestBuilder) -> Result<u64, AdminError> {
        let response = self.send(request).await?;
        let record: Record = response.json().await.map_err(AdminError::Body)?;
        Ok(record.version)
    }

    /// Sends with the credential; a non-2xx answer becomes its error.
    async fn send(&self, request: reqwest::RequestBuilder) -> Result<Response, AdminError> {
        let response =
            request.header(reqwest::header::AUTHORIZATION, &self.bearer).send().await.map_err(
                |e| {
                    if e.is_timeout() {
                        AdminError::Timeout(self.timeout)
                    } else {
                        AdminError::Unreachable { url: self.base.clone(), source: e }
                    }
                },
            )?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let message = message(response.text().await.unwrap_or_default());
        Err(match status {
            StatusCode::UNAUTHORIZED => AdminError::Unauthorized(message),
            StatusCode::FORBIDDEN => AdminError::Forbidden(message),
            _ => AdminError::Status { status: status.as_u16(), message },
        })
    }
}

/// The `message` of the API's `{"error","message"}` body, else the body
/// itself (cut short: a proxy's HTML page helps nobody in full).
fn message(body: String) -> String {
    #[derive(Deserialize)]
    struct ErrorBody {
        error: String,
        message: String,
    }
    match serde_json::from_str::<ErrorBody>(&body) {
        Ok(e) => format!("{}: {}", e.error, e.message),
        Err(_) => body.chars().take(200).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_bodies_become_short_messages() {
        assert_eq!(
            message(
                r#"{"error":"governance_violation","message":"host not allowed","rule":"x"}"#
                    .to_owned()
            ),
            "governance_violation: host not allowed"
        );
        assert_eq!(message("x".repeat(500)).len(), 200);
    }

    #[test]
    fn client_faults_stop_the_run_and_server_faults_are_counted() {
        let status = |status| AdminError::Status { status, message: String::new() };
        assert!(status(422).is_client_fault());
        assert!(AdminError::Unauthorized(String::new()).is_client_fault());
        assert!(!status(503).is_client_fault());
        assert!(!AdminError::Timeout(Duration::from_secs(1)).is_client_fault());
        assert_eq!(status(503).failure(), Failure::Status(503));
    }
}
