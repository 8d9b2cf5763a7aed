//! The resolve decision, as a plain function over a pinned table: no
//! sockets, no clock, no wire. The HTTP and QUIC front ends parse their
//! request, call [`resolve`] and write the [`Outcome`]; every refusal's
//! status, code and message come from the one table in [`Refusal`].
//!
//! Order of checks, the same on both planes (see the design's resolve
//! contract): credentials (401 `unauthorized`) → the edge's optional
//! per-credential limit (429 `rate_limited`, edge only) → name syntax (400
//! `bad_request`) → token scope (403 `forbidden`, so a scoped token learns
//! nothing about other contexts) → context known (400 `unknown_context`)
//! → alias (404 `not_found`, or 200).

use std::borrow::Cow;
use std::net::IpAddr;
use std::time::Duration;

use nexus_protocol::names::{MAX_ALIAS_LEN, MAX_CONTEXT_LEN, normalize};
use nexus_protocol::quic::Status;

use crate::auth::{Access, AuthError, Authenticator};
use crate::table::{Hit, TableRef, key_of};

/// The path prefix of resolve requests; what follows is `{context}/{alias}`.
pub const RESOLVE_PREFIX: &str = "/api/aliases/resolve/";

/// The answer to one resolve request.
#[derive(Debug)]
pub enum Outcome<'t> {
    /// 200: the alias, borrowed from the pinned table.
    Found(Hit<'t>),
    /// 401, with why the credentials were refused.
    Unauthorized(AuthError),
    /// 429: over `EDGE_RATE_LIMIT`, or the client host's budget of refused
    /// credentials is spent; the next request fits after this.
    Limited(Duration),
    /// Any other refusal.
    Refused(Refusal),
}

impl Outcome<'_> {
    /// The refusal, if this is one (401 included).
    pub fn refusal(&self) -> Option<Refusal> {
        match self {
            Outcome::Found(_) => None,
            Outcome::Unauthorized(_) => Some(Refusal::Unauthorized),
            Outcome::Limited(_) => Some(Refusal::RateLimited),
            Outcome::Refused(r) => Some(*r),
        }
    }

    /// What a refusal says: the table's message, or for 401 why the
    /// credentials were refused. Empty when found.
    pub fn message(&self) -> Cow<'static, str> {
        match self {
            Outcome::Found(_) => Cow::Borrowed(""),
            Outcome::Unauthorized(e) => Cow::Owned(e.to_string()),
            Outcome::Limited(_) => Cow::Borrowed(Refusal::RateLimited.message()),
            Outcome::Refused(r) => Cow::Borrowed(r.message()),
        }
    }
}

/// Writes the one table of refusals: each row's status, error code and
/// message, and the HTTP body built from them at compile time.
macro_rules! refusals {
    ($($(#[$doc:meta])* $name:ident => $status:ident, $code:literal, $message:literal;)*) => {
        /// Why a resolve request is refused.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum Refusal {
            $($(#[$doc])* $name,)*
        }

        impl Refusal {
            /// Every refusal, in the order the decision checks them.
            pub const ALL: &[Refusal] = &[$(Refusal::$name,)*];

            /// The status, with HTTP's number on both wires.
            pub const fn status(self) -> Status {
                match self { $(Refusal::$name => Status::$status,)* }
            }

            /// The error code: `{"error": code}` over HTTP, the answer's
            /// text over QUIC.
            pub const fn code(self) -> &'static str {
                match self { $(Refusal::$name => $code,)* }
            }

            /// The fixed message (401 answers carry the credentials' own).
            pub const fn message(self) -> &'static str {
                match self { $(Refusal::$name => $message,)* }
            }

            /// `{"error": code, "message": message}`, written at compile time.
            pub const fn body(self) -> &'static str {
                match self {
                    $(Refusal::$name => concat!(
                        r#"{"error":""#, $code, r#"","message":""#, $message, r#""}"#
                    ),)*
                }
            }
        }
    };
}

refusals! {
    /// No or bad credentials.
    Unauthorized => Unauthorized, "unauthorized", "missing or bad credentials";
    /// Over the edge's per-credential limit (`EDGE_RATE_LIMIT`), or too
    /// many refused credentials from this host (`EDGE_AUTH_FAILURES`).
    RateLimited => TooManyRequests, "rate_limited",
        "too many requests; retry after the Retry-After seconds";
    /// The context or alias breaks the name rule.
    BadName => BadRequest, "bad_request",
        "context and alias must be a-z 0-9 - _ . starting with a letter or digit";
    /// The token is valid but not for this context.
    Forbidden => Forbidden, "forbidden", "token does not allow this context";
    /// The context is not configured: not in the state's configured
    /// contexts (file mode: no alias of the file is in it).
    UnknownContext => BadRequest, "unknown_context", "unknown context";
    /// Unknown, expired or inactive.
    NotFound => NotFound, "not_found", "no such alias";
    /// No state loaded yet.
    Starting => Unavailable, "starting", "no registry state loaded yet";
    /// The state is `stale` and the context is one the operator wants
    /// refused rather than served old (`EDGE_STALE_REFUSE`); the age is in
    /// `x-nexus-stale`.
    Stale => Unavailable, "stale",
        "the registry state is older than this edge may serve for this context";
}

/// The wait of a 429 in whole seconds, rounded up and at least 1: a
/// client that waits it out finds its next request within the limit. HTTP
/// sends it as `Retry-After`, QUIC in the answer's message.
pub fn retry_after_secs(wait: Duration) -> u64 {
    (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1)
}

/// Decides the answer for `target` (`"{context}/{alias}"`, as it ends the
/// request path). `table` is the pinned current table, `None` before the
/// first state; `auth` is `None` when authentication is switched off;
/// `credentials` is the raw `Authorization` header value and `peer` the
/// client's address (refusals are charged to it); `now_ms` is the wall
/// clock in Unix ms, used for expiry and token lifetimes.
pub fn resolve<'t>(
    table: Option<&'t TableRef<'_>>,
    auth: Option<&Authenticator>,
    target: &str,
    credentials: Option<&[u8]>,
    peer: Option<IpAddr>,
    now_ms: i64,
) -> Outcome<'t> {
    let Some(table) = table else {
        return Outcome::Refused(Refusal::Starting);
    };
    let names = target.split_once('/').and_then(|(c, a)| {
        Some((normalize(c, MAX_CONTEXT_LEN).ok()?, normalize(a, MAX_ALIAS_LEN).ok()?))
    });
    let allowed = match auth {
        None => true,
        Some(auth) => {
            let context = names.as_ref().map(|(c, _)| &**c);
            match auth.allows(credentials, context, now_ms.div_euclid(1000), peer) {
                Ok(Access::Allowed) => true,
                Ok(Access::OutOfScope) => false,
                Ok(Access::Limited(wait)) => return Outcome::Limited(wait),
                Err(e) => return Outcome::Unauthorized(e),
            }
        }
    };
    let Some((context, alias)) = names else {
        return Outcome::Refused(Refusal::BadName);
    };
    if !allowed {
        return Outcome::Refused(Refusal::Forbidden);
    }
    // Well-formed names borrow from `target`, which then is the key itself.
    let owned;
    let key = match (&context, &alias) {
        (Cow::Borrowed(_), Cow::Borrowed(_)) => target,
        _ => {
            owned = key_of(&context, &alias);
            &*owned
        }
    };
    // The context first, even for a hit: a context dropped from governance
    // answers 400 while its aliases are still in the table, as on the
    // control plane.
    if !table.has_context(&context) {
        return Outcome::Refused(Refusal::UnknownContext);
    }
    match table.lookup(key) {
        Some(hit) if hit.is_live_at(now_ms) => Outcome::Found(hit),
        _ => Outcome::Refused(Refusal::NotFound),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::{SourceKind, State};
    use nexus_protocol::{
        AliasName, AliasRecord, Canonical, Context, ContextScope, Role, Snapshot, TokenSigner,
        TokenVerifier,
    };

    const NOW: i64 = 1_800_000_000_000;

    fn state() -> State {
        let rec = |alias: &str, expires: Option<i64>, active: bool| AliasRecord {
            id: 1,
            context: Context::parse("frontend").unwrap(),
            alias: AliasName::parse(alias).unwrap(),
            canonical: Canonical::parse("https://x").unwrap(),
            description: None,
            expires_at_ms: expires,
            is_active: active,
            version: 3,
            updated_at_ms: 0,
        };
        let s = State::new(SourceKind::File);
        s.install_snapshot(
            &Snapshot {
                epoch: 0,
                version: 3,
                created_at_ms: 0,
                intended_shrink: false,
                records: vec![
                    rec("live", None, true),
                    rec("old", Some(NOW), true),
                    rec("off", None, false),
                ],
                contexts: nexus_protocol::KnownContexts::only(
                    [Context::parse("frontend").unwrap()],
                ),
                credentials: Default::default(),
            },
            0,
        );
        s
    }

    #[test]
    fn outcomes_without_auth() {
        let s = state();
        let guard = s.table();
        let pinned = guard.as_ref().map(|t| t.pin());
        let r = |t: &str| resolve(pinned.as_ref(), None, t, None, None, NOW);
        assert!(matches!(r("frontend/live"), Outcome::Found { .. }));
        assert!(matches!(r("Frontend/LIVE"), Outcome::Found { .. }));
        assert!(matches!(r("frontend/old"), Outcome::Refused(Refusal::NotFound)));
        assert!(matches!(
            resolve(pinned.as_ref(), None, "frontend/old", None, None, NOW - 1),
            Outcome::Found { .. }
        ));
        assert!(matches!(r("frontend/off"), Outcome::Refused(Refusal::NotFound)));
        assert!(matches!(r("frontend/none"), Outcome::Refused(Refusal::NotFound)));
        assert!(matches!(r("system/live"), Outcome::Refused(Refusal::UnknownContext)));
        assert!(matches!(r("frontend/a%20b"), Outcome::Refused(Refusal::BadName)));
        assert!(matches!(r("frontend"), Outcome::Refused(Refusal::BadName)));
        assert!(matches!(r("frontend/a/b"), Outcome::Refused(Refusal::BadName)));
        assert!(matches!(
            resolve(None, None, "frontend/live", None, None, NOW),
            Outcome::Refused(Refusal::Starting)
        ));
    }

    #[test]
    fn auth_comes_first_then_names_then_scope() {
        let s = state();
        let a = Authenticator::new(TokenVerifier::hs256(b"k"));
        let scope = ContextScope::Only(vec![Context::parse("backend").unwrap()]);
        let now_s = chrono::Utc::now().timestamp();
        let t = format!(
            "Bearer {}",
            TokenSigner::hs256(b"k").mint("s", Role::Resolver, scope, now_s, 60)
        );
        let now = now_s * 1000;
        let guard = s.table();
        let pinned = guard.as_ref().map(|t| t.pin());
        let r = |target: &str, cred: Option<&[u8]>| {
            resolve(pinned.as_ref(), Some(&a), target, cred, None, now)
        };
        assert!(matches!(r("bad name/x", None), Outcome::Unauthorized(_)));
        assert!(matches!(r("bad name/x", Some(t.as_bytes())), Outcome::Refused(Refusal::BadName)));
        assert!(matches!(
            r("frontend/live", Some(t.as_bytes())),
            Outcome::Refused(Refusal::Forbidden)
        ));
        assert!(matches!(
            r("backend/live", Some(t.as_bytes())),
            Outcome::Refused(Refusal::UnknownContext)
        ));
    }

    #[test]
    fn a_limited_credential_is_refused_before_the_names_are_read() {
        use std::num::NonZeroU32;
        let s = state();
        let limit = crate::config::rate_limit::RateLimit {
            rate: nexus_protocol::rate::Rate {
                count: NonZeroU32::MIN,
                per: Duration::from_secs(3600),
            },
            burst: NonZeroU32::MIN,
        };
        let a = Authenticator::new(TokenVerifier::hs256(b"k")).with_rate_limit(Some(limit));
        let now_s = chrono::Utc::now().timestamp();
        let t = TokenSigner::hs256(b"k").mint("s", Role::Resolver, ContextScope::All, now_s, 60);
        let t = format!("Bearer {t}");
        let guard = s.table();
        let pinned = guard.as_ref().map(|t| t.pin());
        let r = |target: &str| {
            resolve(pinned.as_ref(), Some(&a), target, Some(t.as_bytes()), None, now_s * 1000)
        };
        assert!(matches!(r("frontend/live"), Outcome::Found(_)));
        let limited = r("bad name/x");
        assert!(matches!(limited, Outcome::Limited(w) if w > Duration::from_secs(3500)));
        assert_eq!(limited.refusal(), Some(Refusal::RateLimited));
        assert_eq!(Refusal::RateLimited.status().code(), 429);
        assert!(matches!(r("frontend/live"), Outcome::Limited(_)));
    }

    #[test]
    fn the_refusal_table_is_json_and_says_what_each_wire_sends() {
        for r in Refusal::ALL {
            let v: serde_json::Value = serde_json::from_str(r.body()).unwrap();
            assert_eq!(
                (v["error"].as_str(), v["message"].as_str()),
                (Some(r.code()), Some(r.message()))
            );
        }
        assert_eq!(Refusal::UnknownContext.code(), "unknown_context");
        assert_eq!(Refusal::UnknownContext.status().code(), 400);
        assert_eq!(Refusal::Forbidden.status().code(), 403);
    }
}
