//! The resolve decision, as a plain function over the current state: no
//! sockets, no clock, no HTTP. The HTTP handler (and later the QUIC one)
//! parse their request, call [`resolve`] and write the answer.
//!
//! Order of checks: credentials (401), name rule (400), token scope (403),
//! known context (400), then the table (404 or 200).

use std::borrow::Cow;

use bytes::Bytes;
use http::HeaderValue;
use nexus_protocol::names::{MAX_ALIAS_LEN, MAX_CONTEXT_LEN, normalize};

use crate::auth::{AuthError, Authenticator};
use crate::state::State;
use crate::table::key_of;

/// The path prefix of resolve requests; what follows is `{context}/{alias}`.
pub const RESOLVE_PREFIX: &str = "/api/aliases/resolve/";

/// The answer to one resolve request.
#[derive(Debug)]
pub enum Outcome {
    /// 200 with the pre-rendered body and version header (both are
    /// reference-counted: cloning them does not allocate).
    Found { body: Bytes, version: HeaderValue },
    /// 404: unknown, expired or inactive.
    NotFound,
    /// 400: the context or alias breaks the name rule.
    BadName,
    /// 400: no alias was ever loaded in this context.
    UnknownContext,
    /// 401: no or bad credentials.
    Unauthorized(AuthError),
    /// 403: the token is valid but not for this context.
    Forbidden,
    /// 503: no state loaded yet.
    Starting,
}

/// Decides the answer for `target` (`"{context}/{alias}"`, as it ends the
/// request path). `auth` is `None` when authentication is switched off;
/// `credentials` is the raw `Authorization` header value; `now_ms` is the
/// wall clock in Unix ms, used for expiry and token lifetimes.
pub fn resolve(
    state: &State,
    auth: Option<&Authenticator>,
    target: &str,
    credentials: Option<&[u8]>,
    now_ms: i64,
) -> Outcome {
    let guard = state.table();
    let Some(table) = guard.as_ref() else {
        return Outcome::Starting;
    };
    let names = target.split_once('/').and_then(|(c, a)| {
        Some((normalize(c, MAX_CONTEXT_LEN).ok()?, normalize(a, MAX_ALIAS_LEN).ok()?))
    });
    let allowed = match auth {
        None => true,
        Some(auth) => {
            let context = names.as_ref().map(|(c, _)| &**c);
            match auth.allows(credentials, context, now_ms.div_euclid(1000)) {
                Ok(allowed) => allowed,
                Err(e) => return Outcome::Unauthorized(e),
            }
        }
    };
    let Some((context, alias)) = names else {
        return Outcome::BadName;
    };
    if !allowed {
        return Outcome::Forbidden;
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
    let table = table.pin();
    match table.lookup(key) {
        Some(e) if e.is_live_at(now_ms) => {
            Outcome::Found { body: e.body.clone(), version: e.version.clone() }
        }
        Some(_) => Outcome::NotFound,
        None if table.has_context(&context) => Outcome::NotFound,
        None => Outcome::UnknownContext,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::SourceKind;
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
            },
            0,
        );
        s
    }

    #[test]
    fn outcomes_without_auth() {
        let s = state();
        let r = |t: &str| resolve(&s, None, t, None, NOW);
        assert!(matches!(r("frontend/live"), Outcome::Found { .. }));
        assert!(matches!(r("Frontend/LIVE"), Outcome::Found { .. }));
        assert!(matches!(r("frontend/old"), Outcome::NotFound));
        assert!(matches!(resolve(&s, None, "frontend/old", None, NOW - 1), Outcome::Found { .. }));
        assert!(matches!(r("frontend/off"), Outcome::NotFound));
        assert!(matches!(r("frontend/none"), Outcome::NotFound));
        assert!(matches!(r("system/live"), Outcome::UnknownContext));
        assert!(matches!(r("frontend/a%20b"), Outcome::BadName));
        assert!(matches!(r("frontend"), Outcome::BadName));
        assert!(matches!(r("frontend/a/b"), Outcome::BadName));
        assert!(matches!(
            resolve(&State::new(SourceKind::File), None, "frontend/live", None, NOW),
            Outcome::Starting
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
        let r = |target: &str, cred: Option<&[u8]>| resolve(&s, Some(&a), target, cred, now);
        assert!(matches!(r("bad name/x", None), Outcome::Unauthorized(_)));
        assert!(matches!(r("bad name/x", Some(t.as_bytes())), Outcome::BadName));
        assert!(matches!(r("frontend/live", Some(t.as_bytes())), Outcome::Forbidden));
        assert!(matches!(r("backend/live", Some(t.as_bytes())), Outcome::UnknownContext));
    }
}
