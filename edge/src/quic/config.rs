//! QUIC settings, read with the rest of the configuration at start:
//!
//! - `EDGE_QUIC_ADDR` (default `0.0.0.0:8443`, UDP);
//! - `EDGE_QUIC` = `on` (default) or `off`;
//! - `EDGE_QUIC_SELF_SIGNED` = `true` to serve QUIC with a self-signed
//!   development certificate when `EDGE_TLS_CERT`/`EDGE_TLS_KEY` are not set.
//!
//! QUIC needs TLS: with neither a certificate nor the development switch it
//! stays off (and the edge says so at start).
//!
//! Imports only the shared leaf [`crate::config::env`], never
//! [`crate::config`] itself, which reads these settings through
//! [`QuicConfig::from_env`].

use std::net::SocketAddr;

use crate::config::env::{ConfigError, EnvError, TlsFiles, switch};

use super::{QuicError, cert, server_config};

/// Which certificate QUIC serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuicCert {
    /// `EDGE_TLS_CERT`/`EDGE_TLS_KEY`, shared with HTTPS.
    Files,
    /// Made at start (`EDGE_QUIC_SELF_SIGNED=true`).
    SelfSigned,
}

/// Where and whether QUIC is served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuicConfig {
    pub addr: SocketAddr,
    /// `None`: QUIC is off.
    pub cert: Option<QuicCert>,
}

impl QuicConfig {
    /// Reads the QUIC variables; `tls` tells whether certificate files are set.
    pub fn from_env(
        env: &impl Fn(&str) -> Option<String>,
        tls: Option<&TlsFiles>,
    ) -> Result<Self, ConfigError> {
        let addr = match env("EDGE_QUIC_ADDR") {
            None => ([0, 0, 0, 0], 8443).into(),
            Some(raw) => raw.trim().parse().map_err(|e: std::net::AddrParseError| {
                EnvError::Invalid { name: "EDGE_QUIC_ADDR", reason: e.to_string(), value: raw }
            })?,
        };
        let on = switch(env, "EDGE_QUIC", true)?;
        let self_signed = switch(env, "EDGE_QUIC_SELF_SIGNED", false)?;
        let cert = match (on, tls.is_some(), self_signed) {
            (false, _, _) => None,
            (true, true, _) => Some(QuicCert::Files),
            (true, false, true) => Some(QuicCert::SelfSigned),
            (true, false, false) => None,
        };
        Ok(Self { addr, cert })
    }
}

/// The quinn server configuration `quic` asks for, or `None` when QUIC is
/// off; `tls` are the certificate files shared with HTTPS. Reads them (or
/// makes the development certificate), so call it before binding anything.
pub fn prepare(
    quic: &QuicConfig,
    tls: Option<&TlsFiles>,
) -> Result<Option<quinn::ServerConfig>, QuicError> {
    let tls = match (quic.cert, tls) {
        (None, _) => {
            tracing::info!(
                "QUIC off (needs EDGE_TLS_CERT/EDGE_TLS_KEY or EDGE_QUIC_SELF_SIGNED=true)"
            );
            return Ok(None);
        }
        (Some(QuicCert::Files), Some(files)) => {
            let tls = nexus_runtime::tls::server_config(&files.cert, &files.key)?;
            (*tls).clone()
        }
        (Some(QuicCert::Files), None) | (Some(QuicCert::SelfSigned), _) => {
            let (tls, _pem) = cert::self_signed()?;
            tracing::warn!(
                "QUIC serves a SELF-SIGNED development certificate (EDGE_QUIC_SELF_SIGNED): \
                 clients must connect insecurely; set EDGE_TLS_CERT/EDGE_TLS_KEY in production"
            );
            tls
        }
    };
    server_config(&tls).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn quic(vars: &[(&str, &str)], tls: bool) -> Result<QuicConfig, ConfigError> {
        let vars: HashMap<String, String> =
            vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let files = TlsFiles { cert: "c.pem".into(), key: "k.pem".into() };
        QuicConfig::from_env(&|k| vars.get(k).cloned(), tls.then_some(&files))
    }

    #[test]
    fn off_without_a_certificate_unless_self_signed_is_asked() {
        let c = quic(&[], false).unwrap();
        assert_eq!((c.addr.to_string().as_str(), c.cert), ("0.0.0.0:8443", None));
        assert_eq!(quic(&[], true).unwrap().cert, Some(QuicCert::Files));
        let dev = quic(&[("EDGE_QUIC_SELF_SIGNED", "true")], false).unwrap();
        assert_eq!(dev.cert, Some(QuicCert::SelfSigned));
        // Real files win over the development switch.
        assert_eq!(
            quic(&[("EDGE_QUIC_SELF_SIGNED", "1")], true).unwrap().cert,
            Some(QuicCert::Files)
        );
        assert_eq!(quic(&[("EDGE_QUIC", "off")], true).unwrap().cert, None);
        let addr = quic(&[("EDGE_QUIC_ADDR", "127.0.0.1:9443")], true).unwrap().addr;
        assert_eq!(addr.to_string(), "127.0.0.1:9443");
        assert!(quic(&[("EDGE_QUIC_ADDR", "nope")], true).is_err());
        assert!(quic(&[("EDGE_QUIC_SELF_SIGNED", "maybe")], false).is_err());
    }
}
