//! TLS client configuration: ring only, ALPN chosen by the transport, and
//! either a CA file to trust or `--insecure` (like `curl -k`) for the
//! self-signed certificates edges generate in development.

use std::path::Path;
use std::sync::Arc;

use nexus_edge::quic_client::AnyCertificate;
use rustls::crypto::ring;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, RootCertStore};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

/// How the server's certificate is checked.
#[derive(Debug, Clone)]
pub enum Trust {
    /// Chain to the certificates in this PEM file.
    CaFile(std::path::PathBuf),
    /// Accept any certificate; still check handshake signatures.
    Insecure,
}

/// Why a TLS configuration could not be built.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read CA file {path}: {source}")]
    CaFile { path: String, source: rustls::pki_types::pem::Error },
    #[error("CA file {0} holds no usable certificate")]
    NoCertificate(String),
    #[error("TLS configuration refused: {0}")]
    Rustls(#[from] rustls::Error),
}

/// A client configuration offering `alpn` (e.g. `h2` or `http/1.1`).
pub fn client_config(trust: &Trust, alpn: &[&[u8]]) -> Result<Arc<ClientConfig>, TlsError> {
    let provider = Arc::new(ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?;
    let mut config = match trust {
        Trust::CaFile(path) => builder.with_root_certificates(roots(path)?).with_no_client_auth(),
        Trust::Insecure => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyCertificate::new(
                provider.signature_verification_algorithms,
            )))
            .with_no_client_auth(),
    };
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(Arc::new(config))
}

/// A client configuration bound to the server name it checks: what the
/// HTTP transport and the propagation watcher connect with.
pub struct Connector {
    connector: TlsConnector,
    name: ServerName<'static>,
}

impl std::fmt::Debug for Connector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connector").field("name", &self.name).finish_non_exhaustive()
    }
}

impl Connector {
    pub fn new(config: Arc<ClientConfig>, name: ServerName<'static>) -> Self {
        Self { connector: TlsConnector::from(config), name }
    }

    /// The TLS handshake over `tcp`.
    pub async fn connect(&self, tcp: TcpStream) -> std::io::Result<TlsStream<TcpStream>> {
        self.connector.connect(self.name.clone(), tcp).await
    }
}

fn roots(path: &Path) -> Result<RootCertStore, TlsError> {
    let shown = path.display().to_string();
    let mut store = RootCertStore::empty();
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|source| TlsError::CaFile { path: shown.clone(), source })?;
    for cert in certs {
        let cert = cert.map_err(|source| TlsError::CaFile { path: shown.clone(), source })?;
        // A certificate the store cannot use is skipped; none at all is an error below.
        let _ = store.add(cert);
    }
    if store.is_empty() {
        return Err(TlsError::NoCertificate(shown));
    }
    Ok(store)
}
