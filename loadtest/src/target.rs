//! The server under test, parsed once from `--target URL`.

use std::fmt;

use hyper::Uri;

/// Why a `--target` was refused.
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    #[error("target is not a URL: {0}")]
    Invalid(#[from] hyper::http::uri::InvalidUri),
    #[error("target scheme must be http or https, found {0:?}")]
    Scheme(String),
    #[error("target has no host")]
    NoHost,
    #[error("target must not carry a path or query (found {0:?}); requests use the resolve path")]
    Path(String),
}

/// `http` or `https`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Http,
    Https,
}

/// Where requests go: scheme, host and port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub scheme: Scheme,
    pub host: String,
    pub port: u16,
}

impl Target {
    pub fn parse(raw: &str) -> Result<Self, TargetError> {
        let uri: Uri = raw.parse()?;
        let scheme = match uri.scheme_str() {
            Some("http") => Scheme::Http,
            Some("https") => Scheme::Https,
            other => return Err(TargetError::Scheme(other.unwrap_or("").to_owned())),
        };
        let host = uri.host().filter(|h| !h.is_empty()).ok_or(TargetError::NoHost)?;
        // IPv6 literals come back bracketed; the socket address wants them bare.
        let host = host.trim_start_matches('[').trim_end_matches(']').to_owned();
        if let Some(pq) = uri.path_and_query()
            && pq.as_str() != "/"
            && !pq.as_str().is_empty()
        {
            return Err(TargetError::Path(pq.as_str().to_owned()));
        }
        let port = uri.port_u16().unwrap_or(match scheme {
            Scheme::Http => 80,
            Scheme::Https => 443,
        });
        Ok(Self { scheme, host, port })
    }

    /// `host:port` as the `Host` header and `:authority` carry it.
    pub fn authority(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    pub fn scheme_str(&self) -> &'static str {
        match self.scheme {
            Scheme::Http => "http",
            Scheme::Https => "https",
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}", self.scheme_str(), self.authority())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_scheme_host_and_default_ports() {
        let t = Target::parse("http://127.0.0.1:8080").unwrap();
        assert_eq!((t.scheme, t.host.as_str(), t.port), (Scheme::Http, "127.0.0.1", 8080));
        assert_eq!(Target::parse("https://edge.local/").unwrap().port, 443);
        let v6 = Target::parse("http://[::1]:9000").unwrap();
        assert_eq!((v6.host.as_str(), v6.authority()), ("::1", "[::1]:9000".to_owned()));
    }

    #[test]
    fn refuses_other_schemes_and_paths() {
        assert!(matches!(Target::parse("ftp://x"), Err(TargetError::Scheme(_))));
        assert!(matches!(Target::parse("http://x/api"), Err(TargetError::Path(_))));
        assert!(Target::parse("not a url").is_err());
    }
}
