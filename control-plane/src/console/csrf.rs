//! Cross-site request forgery: every state-changing request is a POST whose
//! form carries the session's synchronizer token (checked in
//! [`super::extract::Posted`]), and whose `Origin` (or, without one,
//! `Sec-Fetch-Site`) says it came from the console's own pages. The
//! SameSite=Strict cookie already keeps a cross-site POST from carrying the
//! session; these checks do not rely on it.

use axum::http::HeaderMap;
use axum::http::header::{HOST, ORIGIN};

/// Why a POST was refused before anything was read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("this form was posted from another site (Origin {0})")]
    ForeignOrigin(String),
    #[error("this form was posted from another site (Sec-Fetch-Site {0})")]
    CrossSite(String),
    #[error("the form's anti-forgery token is missing or is not this session's; reload the page")]
    Token,
}

/// The host (and port) the request was addressed to: `Host`, or the URI's
/// authority (HTTP/2).
fn target(headers: &HeaderMap, authority: Option<&str>) -> Option<String> {
    headers
        .get(HOST)
        .and_then(|h| h.to_str().ok())
        .or(authority)
        .map(|h| h.trim().to_ascii_lowercase())
}

/// Checks that a POST comes from a page of this console. A browser always
/// sends `Origin` on a POST; a client without `Origin` and `Sec-Fetch-Site`
/// is not a browser, and the form token alone guards it.
pub fn same_origin(headers: &HeaderMap, authority: Option<&str>) -> Result<(), Refused> {
    if let Some(origin) = headers.get(ORIGIN) {
        let text = origin.to_str().unwrap_or("(not text)");
        let host = text
            .strip_prefix("https://")
            .or_else(|| text.strip_prefix("http://"))
            .map(str::to_ascii_lowercase);
        return match (host, target(headers, authority)) {
            (Some(h), Some(t)) if h == t => Ok(()),
            _ => Err(Refused::ForeignOrigin(text.chars().take(200).collect())),
        };
    }
    match headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
        None | Some("same-origin") => Ok(()),
        Some(other) => Err(Refused::CrossSite(other.chars().take(40).collect())),
    }
}

/// Whether the browser reached the console over TLS, as its `Origin` says
/// (the sign-in POST always has one): the cookie is then `Secure`. This
/// also holds behind a proxy that terminates TLS.
pub fn over_tls(headers: &HeaderMap, scheme_https: bool) -> bool {
    scheme_https
        || headers
            .get(ORIGIN)
            .and_then(|o| o.to_str().ok())
            .is_some_and(|o| o.starts_with("https://"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn only_the_consoles_own_origin_may_post() {
        let ok = headers(&[("host", "cp:8000"), ("origin", "http://cp:8000")]);
        assert_eq!(same_origin(&ok, None), Ok(()));
        let h2 = headers(&[("origin", "https://CP:8000")]);
        assert_eq!(same_origin(&h2, Some("cp:8000")), Ok(()));
        for bad in ["http://evil.example", "null", "http://cp:8001"] {
            let h = headers(&[("host", "cp:8000"), ("origin", bad)]);
            assert!(matches!(same_origin(&h, None), Err(Refused::ForeignOrigin(_))), "{bad}");
        }
        let cross = headers(&[("host", "cp:8000"), ("sec-fetch-site", "cross-site")]);
        assert!(matches!(same_origin(&cross, None), Err(Refused::CrossSite(_))));
        let same = headers(&[("host", "cp:8000"), ("sec-fetch-site", "same-origin")]);
        assert_eq!(same_origin(&same, None), Ok(()));
        assert_eq!(same_origin(&headers(&[("host", "cp")]), None), Ok(()), "not a browser");
    }

    #[test]
    fn tls_is_read_from_the_origin() {
        assert!(over_tls(&headers(&[("origin", "https://cp")]), false));
        assert!(!over_tls(&headers(&[("origin", "http://cp")]), false));
        assert!(over_tls(&HeaderMap::new(), true));
    }
}
