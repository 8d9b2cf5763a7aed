//! Tokens: the public keys verifiers need (`GET /.well-known/jwks.json`)
//! and revocation (`POST /api/admin/tokens/revoke`).

use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use nexus_protocol::jwt::LEEWAY_SECS;
use nexus_protocol::token::MAX_JTI_LEN;
use serde::Deserialize;
use serde_json::json;
use utoipa::ToSchema;

use crate::domain::rbac::{Action, Scope};
use crate::web::Shared;
use crate::web::caller::Caller;
use crate::web::error::ApiError;
use crate::web::extract::Json;

/// The public keys this instance accepts tokens from (its own signing
/// key's, then `NEXUS_TOKEN_VERIFY_KEYS`), as a JWKS (RFC 7517). Public:
/// public keys are what edges and other instances need before they hold
/// anything. Empty under HS256, whose secret is never published.
#[utoipa::path(
    get,
    path = "/.well-known/jwks.json",
    tag = "service",
    security(()),
    responses((status = 200, description = "`{\"keys\": [{kty: OKP, crv: Ed25519, x, kid, alg: \
        EdDSA, use: sig}]}`", content_type = "application/json", body = Object)),
)]
pub(crate) async fn jwks(State(st): State<Shared>) -> Response {
    let doc = nexus_protocol::jwk::jwks(&st.verifier.public_keys());
    let mut res = axum::Json(doc).into_response();
    // Verifiers may cache it; a rotation publishes the next key well ahead.
    res.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("max-age=300"));
    res
}

/// `{"jti": "..."}`, or `{"sub": "...", "before"?: RFC 3339}`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"sub": "ci-deployer"}))]
pub(crate) struct RevokeBody {
    /// The token id (`jti` claim) to refuse, 1 to 128 bytes.
    jti: Option<String>,
    /// Refuse every token of this subject issued before `before`.
    sub: Option<String>,
    /// RFC 3339, not in the future; default now. Only with `sub`.
    before: Option<DateTime<Utc>>,
}

fn printable(what: &str, v: &str, max: usize) -> Result<(), ApiError> {
    if v.is_empty() || v.len() > max || v.chars().any(char::is_control) {
        return Err(ApiError::BadRequest(format!("{what} must be 1 to {max} printable bytes")));
    }
    Ok(())
}

/// Revokes a token by id, or every token of a subject issued before now:
/// audited (`token.revoke`), refused by this control plane at once and by
/// every edge as soon as it applies the version (it travels in the signed
/// stream like an alias change). Kept until every token it can name has
/// expired (`TOKEN_MAX_TTL` after it).
#[utoipa::path(
    post,
    path = "/api/admin/tokens/revoke",
    tag = "admin",
    request_body = RevokeBody,
    responses(
        (status = 200, description = "`{\"revoked\": {jti, until} or {sub, before, until}, \
            \"version\": N}`: the registry version that carries it", body = Object),
    )
)]
pub(crate) async fn revoke(
    State(st): State<Shared>,
    caller: Caller,
    Json(b): Json<RevokeBody>,
) -> Result<Response, ApiError> {
    caller.may(Action::RevokeTokens, Scope::Global)?;
    let now = Utc::now();
    let leeway = chrono::Duration::seconds(LEEWAY_SECS as i64);
    // Every token this service accepts lives at most this long (the
    // verifier refuses longer ones), so the entry can go after it.
    let max_ttl = st.verifier.max_ttl().unwrap_or(crate::config::tokens::DEFAULT_MAX_TTL);
    let lifetime = chrono::Duration::seconds(max_ttl) + leeway;
    let actor = caller.actor();
    let (revoked, version) = match (b.jti, b.sub, b.before) {
        (Some(jti), None, None) => {
            printable("jti", &jti, MAX_JTI_LEN)?;
            st.store.revoke_token(&jti, now + lifetime + leeway, &actor).await?
        }
        (None, Some(sub), before) => {
            printable("sub", &sub, 255)?;
            let before = before.unwrap_or(now);
            if before > now + leeway {
                return Err(ApiError::BadRequest("before must not be in the future".into()));
            }
            st.store.revoke_subject(&sub, before, before + lifetime + leeway, &actor).await?
        }
        (Some(_), Some(_), _) => {
            return Err(ApiError::BadRequest("give jti or sub, not both".into()));
        }
        (Some(_), None, Some(_)) => {
            return Err(ApiError::BadRequest("before goes with sub, not jti".into()));
        }
        (None, None, _) => return Err(ApiError::BadRequest("give jti or sub".into())),
    };
    Ok(axum::Json(json!({ "revoked": revoked, "version": version })).into_response())
}
