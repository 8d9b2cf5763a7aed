//! `DATABASE_URL` read for connecting: what tokio-postgres parses itself,
//! and the TLS settings it does not know. tokio-postgres takes `sslmode` as
//! `disable`, `prefer` or `require` only; libpq also has `verify-ca`,
//! `verify-full` and `sslrootcert`, which deployments copy from it. Those
//! are taken out of the URL here, and the rest is handed to
//! `tokio_postgres::Config`.
//!
//! Semantics follow libpq: `prefer` (the default) and `require` encrypt
//! without checking the certificate — except that `require` with an
//! `sslrootcert` verifies the chain, as libpq does; `verify-ca` checks the
//! chain to `sslrootcert` (or the system trust store when it is absent or
//! `system`) but not the host name; `verify-full` checks both.

use std::path::PathBuf;
use std::sync::Arc;

use rustls::RootCertStore;

/// How a connection is encrypted and what of the server is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SslMode {
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl SslMode {
    fn parse(value: &str) -> Option<Self> {
        Some(match value {
            "disable" => Self::Disable,
            "prefer" => Self::Prefer,
            "require" => Self::Require,
            "verify-ca" => Self::VerifyCa,
            "verify-full" => Self::VerifyFull,
            _ => return None,
        })
    }
}

/// The TLS half of `DATABASE_URL`, ready for `store::tls`.
#[derive(Debug, Clone)]
pub(crate) struct DbTls {
    /// What is checked (`require` with a root file is already `VerifyCa`).
    pub mode: SslMode,
    /// The trust anchors, loaded when the chain is checked.
    pub roots: Option<Arc<RootCertStore>>,
}

/// `DATABASE_URL` split into what tokio-postgres reads and the TLS settings.
#[derive(Debug, Clone)]
pub(crate) struct DbConnection {
    /// Redacts the password in `Debug`.
    pub pg: tokio_postgres::Config,
    pub tls: DbTls,
}

/// Why `DATABASE_URL` cannot be used; the caller names the variable.
#[derive(Debug, thiserror::Error)]
pub enum DbUrlError {
    #[error("sslmode={0:?} is not one of disable, prefer, require, verify-ca, verify-full")]
    SslMode(String),
    #[error("sslrootcert {path:?}: {source}")]
    RootCert {
        path: PathBuf,
        #[source]
        source: nexus_runtime::tls::TlsError,
    },
    #[error("{0}")]
    Url(#[source] tokio_postgres::Error),
}

/// Parses `url` (URL or `key=value` form) and loads the root certificates
/// it names.
pub(crate) fn parse(url: &str) -> Result<DbConnection, DbUrlError> {
    let (rest, sslmode, rootcert) = take_tls_params(url);
    let mut pg: tokio_postgres::Config = rest.parse().map_err(DbUrlError::Url)?;
    let mode = match sslmode {
        None => SslMode::Prefer,
        Some(v) => SslMode::parse(&v).ok_or(DbUrlError::SslMode(v))?,
    };
    let mode = match (mode, &rootcert) {
        (SslMode::Require, Some(_)) => SslMode::VerifyCa,
        (mode, _) => mode,
    };
    pg.ssl_mode(match mode {
        SslMode::Disable => tokio_postgres::config::SslMode::Disable,
        SslMode::Prefer => tokio_postgres::config::SslMode::Prefer,
        _ => tokio_postgres::config::SslMode::Require,
    });
    let roots = match mode {
        SslMode::VerifyCa | SslMode::VerifyFull => {
            let file = rootcert.filter(|p| p != "system").map(PathBuf::from);
            let roots = nexus_runtime::tls::client_roots(file.as_deref()).map_err(|source| {
                DbUrlError::RootCert { path: file.unwrap_or_else(|| "system".into()), source }
            })?;
            Some(Arc::new(roots))
        }
        _ => None,
    };
    Ok(DbConnection { pg, tls: DbTls { mode, roots } })
}

/// `url` without `sslmode` and `sslrootcert`, and their values.
fn take_tls_params(url: &str) -> (String, Option<String>, Option<String>) {
    let (mut sslmode, mut rootcert) = (None, None);
    let rest = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        // The query is split off by hand: a multi-host URL
        // (`h1:5432,h2:5432`, for `target_session_attrs`) is no URL to the
        // `url` crate, but its query is like any other.
        match url.split_once('?') {
            None => url.to_owned(),
            Some((base, query)) => {
                let mut kept = url::form_urlencoded::Serializer::new(String::new());
                let mut any = false;
                for (k, v) in url::form_urlencoded::parse(query.as_bytes()) {
                    match &*k {
                        "sslmode" => sslmode = Some(v.into_owned()),
                        "sslrootcert" => rootcert = Some(v.into_owned()),
                        _ => {
                            kept.append_pair(&k, &v);
                            any = true;
                        }
                    }
                }
                if any { format!("{base}?{}", kept.finish()) } else { base.to_owned() }
            }
        }
    } else {
        // key=value form; values with spaces (quoted) are kept as they are.
        url.split_whitespace()
            .filter(|pair| match pair.split_once('=') {
                Some(("sslmode", v)) => {
                    sslmode = Some(v.to_owned());
                    false
                }
                Some(("sslrootcert", v)) => {
                    rootcert = Some(v.to_owned());
                    false
                }
                _ => true,
            })
            .collect::<Vec<_>>()
            .join(" ")
    };
    (rest, sslmode, rootcert)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_multi_host_url_keeps_its_hosts_and_session_attrs() {
        let c = parse(
            "postgres://u@db-a:5432,db-b:5433/nexus?target_session_attrs=read-write&sslmode=verify-full",
        )
        .unwrap();
        assert_eq!(c.tls.mode, SslMode::VerifyFull);
        assert_eq!(c.pg.get_hosts().len(), 2);
        assert_eq!(c.pg.get_ports(), [5432, 5433]);
        assert_eq!(
            c.pg.get_target_session_attrs(),
            tokio_postgres::config::TargetSessionAttrs::ReadWrite
        );
    }

    #[test]
    fn libpq_modes_are_taken_out_of_the_url() {
        let c =
            parse("postgres://u:pw@db:5432/nexus?sslmode=verify-full&application_name=cp").unwrap();
        assert_eq!(c.tls.mode, SslMode::VerifyFull);
        assert!(c.tls.roots.is_some());
        assert_eq!(c.pg.get_application_name(), Some("cp"));
        assert_eq!(c.pg.get_ssl_mode(), tokio_postgres::config::SslMode::Require);
        let c = parse("host=db dbname=nexus sslmode=disable").unwrap();
        assert_eq!(c.tls.mode, SslMode::Disable);
        assert_eq!(parse("postgres://db/nexus").unwrap().tls.mode, SslMode::Prefer);
    }

    #[test]
    fn require_with_a_root_file_checks_the_chain() {
        let c = parse(
            "postgres://db/nexus?sslmode=require&sslrootcert=/etc/ssl/certs/ssl-cert-snakeoil.pem",
        );
        // The snakeoil certificate exists on Debian machines only.
        if let Ok(c) = c {
            assert_eq!(c.tls.mode, SslMode::VerifyCa);
        }
    }

    #[test]
    fn refusals_say_what_is_wrong() {
        let e = parse("postgres://db/nexus?sslmode=verify-everything").unwrap_err();
        assert!(e.to_string().contains("verify-everything"), "{e}");
        let e = parse("postgres://db/nexus?sslmode=verify-ca&sslrootcert=/nonexistent/ca.pem")
            .unwrap_err();
        assert!(e.to_string().contains("/nonexistent/ca.pem"), "{e}");
    }
}
