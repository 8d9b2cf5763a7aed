//! The registry's past as both front-ends show it: one version of an alias
//! ([`HistoryItem`]) and the resolve answer as of a version or an instant
//! ([`resolve_as_of`]).
//!
//! The window is what the outbox keeps: from its oldest change row to the
//! head. `as_of` is a version (digits) or an RFC 3339 instant. A version
//! above the head, or an instant in the future, is 400 (the future is not
//! known, and answering with the head would hide a client's clock or
//! version mix-up); one older than the oldest change kept is 410 `gone`.
//! Expiry is judged at the instant asked for (for a version: when it was
//! committed), as an edge would have judged it then.

use axum::http::HeaderValue;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use nexus_protocol::AliasKey;
use serde::Serialize;
use utoipa::ToSchema;

use super::error::ApiError;
use super::state::Shared;
use crate::store::history::AliasVersion;

/// One version of an alias.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(example = json!({
    "version": 42, "canonical": "https://api.nexus.com/v2/users/profile", "active": true,
    "expires_at": null, "description": "Profile of the signed-in user",
    "who": "alice", "action": "alias.update", "request_id": "5f0c...", "owner": "alice",
    "when": "2026-01-05T14:03:00.123Z", "removed": false
}))]
pub(crate) struct HistoryItem {
    /// The registry version this change took.
    pub version: i64,
    /// `null` only for a removal.
    pub canonical: Option<String>,
    pub active: bool,
    pub expires_at: Option<DateTime<Utc>>,
    pub description: Option<String>,
    /// Who made the change (the audit row's user); `null` once that audit
    /// row is purged.
    pub who: Option<String>,
    /// The audit action (`alias.create`, `alias.update`, `alias.deactivate`,
    /// `alias.transfer`, `alias.import`, `conflict.resolve`, ...).
    pub action: Option<String>,
    pub request_id: Option<String>,
    /// Who owned the alias at this version (`null` for versions written
    /// before ownership was recorded, and for a removal).
    pub owner: Option<String>,
    /// When the change was committed.
    pub when: DateTime<Utc>,
    /// Gone from the registry altogether (not a deactivation).
    pub removed: bool,
}

impl From<AliasVersion> for HistoryItem {
    fn from(v: AliasVersion) -> Self {
        let millis = |ms: i64| DateTime::from_timestamp_millis(ms);
        let r = v.record.as_ref();
        HistoryItem {
            version: v.version,
            canonical: r.map(|r| r.canonical.to_string()),
            active: r.is_some_and(|r| r.is_active),
            expires_at: r.and_then(|r| r.expires_at_ms).and_then(millis),
            description: r.and_then(|r| r.description.clone()),
            who: v.who,
            action: v.action,
            request_id: v.request_id,
            owner: v.owner,
            when: v.committed_at,
            removed: v.record.is_none(),
        }
    }
}

/// What `?as_of=` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AsOf {
    Version(i64),
    Instant(DateTime<Utc>),
}

impl AsOf {
    /// Digits are a version, anything else must be RFC 3339.
    pub(crate) fn parse(s: &str) -> Result<Self, ApiError> {
        if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
            return s
                .parse()
                .map(AsOf::Version)
                .map_err(|_| ApiError::BadRequest(format!("as_of version {s} is out of range")));
        }
        DateTime::parse_from_rfc3339(s).map(|t| AsOf::Instant(t.to_utc())).map_err(|e| {
            ApiError::BadRequest(format!(
                "as_of must be a registry version or an RFC 3339 time \
                 (2026-01-05T14:03:00Z): {e}"
            ))
        })
    }
}

/// The resolve answer at `as_of`: 200 with the canonical and
/// `x-nexus-version` of that state, 404 when the alias did not resolve
/// then, 400 for the future, 410 before the window.
pub(crate) async fn resolve_as_of(
    st: &Shared,
    key: &AliasKey,
    as_of: AsOf,
) -> Result<Response, ApiError> {
    let window = st.store.history_window().await?;
    let gone = |what: String| match window.oldest {
        Some((v, at)) => ApiError::Gone(format!(
            "{what} is older than the history kept, which starts at version {v} ({})",
            at.to_rfc3339()
        )),
        None => ApiError::Gone(format!("{what} is outside the history kept, which is empty")),
    };
    let (version, at) = match as_of {
        AsOf::Version(v) => {
            if v > window.head {
                return Err(ApiError::BadRequest(format!(
                    "as_of version {v} is above the registry head {}",
                    window.head
                )));
            }
            if window.oldest.is_none_or(|(o, _)| v < o) {
                return Err(gone(format!("version {v}")));
            }
            (v, None)
        }
        AsOf::Instant(t) => {
            if t > Utc::now() {
                return Err(ApiError::BadRequest(format!(
                    "as_of {} is in the future",
                    t.to_rfc3339()
                )));
            }
            match st.store.version_at(t).await? {
                Some(v) => (v, Some(t)),
                None => return Err(gone(t.to_rfc3339())),
            }
        }
    };
    let state = st.store.state_at(key, version).await?;
    let at_ms = at.or(state.committed_at).map(|t| t.timestamp_millis());
    let resolves = state
        .record
        .filter(|r| r.is_active && r.expires_at_ms.is_none_or(|e| at_ms.is_none_or(|now| e > now)));
    let Some(record) = resolves else {
        return Err(ApiError::NotFound(format!(
            "no alias {}/{} at version {version}",
            key.context, key.alias
        )));
    };
    let body = serde_json::json!({"canonical_name": record.canonical});
    let mut res = axum::Json(body).into_response();
    res.headers_mut().insert("x-nexus-version", HeaderValue::from(version));
    Ok(res)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn as_of_is_a_version_or_an_rfc3339_time() {
        assert_eq!(AsOf::parse("42").unwrap(), AsOf::Version(42));
        let t = AsOf::parse("2026-01-05T14:03:00+01:00").unwrap();
        assert_eq!(t, AsOf::Instant("2026-01-05T13:03:00Z".parse().unwrap()));
        for bad in ["", "-1", "yesterday", "2026-01-05", "99999999999999999999"] {
            assert!(matches!(AsOf::parse(bad), Err(ApiError::BadRequest(_))), "{bad}");
        }
    }
}
