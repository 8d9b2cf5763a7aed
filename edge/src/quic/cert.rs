//! The development certificate: self-signed for `localhost`, `127.0.0.1`
//! and `::1`, made at start when `EDGE_QUIC_SELF_SIGNED=true` and no
//! `EDGE_TLS_CERT` is given. Nothing can verify it, so clients connect with
//! `insecure` (or trust the PEM this returns); never use it in production.

use std::sync::Arc;

use rustls::ServerConfig;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use super::QuicError;

/// A fresh self-signed TLS configuration and its certificate in PEM.
pub fn self_signed() -> Result<(ServerConfig, String), QuicError> {
    let names = vec!["localhost".to_owned(), "127.0.0.1".to_owned(), "::1".to_owned()];
    let certified = rcgen::generate_simple_self_signed(names)?;
    let pem = certified.cert.pem();
    let cert = CertificateDer::from(certified.cert.der().to_vec());
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(certified.signing_key.serialize_der()));
    let config =
        ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_protocol_versions(&[&rustls::version::TLS13])?
            .with_no_client_auth()
            .with_single_cert(vec![cert], key)?;
    Ok((config, pem))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn makes_a_usable_quic_config() {
        let (tls, pem) = self_signed().unwrap();
        assert!(pem.starts_with("-----BEGIN CERTIFICATE-----"));
        assert!(super::super::server_config(&tls).is_ok());
    }
}
