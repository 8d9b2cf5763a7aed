//! rustls client configuration for `nexus-resolve/1`: ring, TLS 1.3 (QUIC
//! needs nothing else), ALPN, and either real roots or `Insecure`.

use std::sync::Arc;

use nexus_protocol::quic::ALPN;
use rustls::crypto::ring;
use rustls::{ClientConfig, RootCertStore};

use super::{ClientError, Trust};
pub use nexus_runtime::tls::AnyCertificate;

pub(super) fn config(trust: &Trust) -> Result<ClientConfig, ClientError> {
    let provider = Arc::new(ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13])?;
    let mut config = match trust {
        Trust::Roots(certs) => {
            let mut roots = RootCertStore::empty();
            for cert in certs {
                roots.add(cert.clone())?;
            }
            builder.with_root_certificates(roots).with_no_client_auth()
        }
        Trust::Insecure => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyCertificate::new(
                provider.signature_verification_algorithms,
            )))
            .with_no_client_auth(),
    };
    config.alpn_protocols = vec![ALPN.to_vec()];
    Ok(config)
}
