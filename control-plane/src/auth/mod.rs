//! Who is calling: a JWT (verified by `nexus_protocol::jwt`, then checked
//! against the revoked ids and subjects) or an API key (`nxk_...`, looked up
//! by digest on every request so revocation and expiry are immediate). Both
//! end as a [`Principal`]; what it may do is `domain::rbac`'s decision.
//! Edges check the same credentials from the signed stream.

pub mod api_key;

use nexus_protocol::{ContextScope, Role, TokenError, TokenVerifier};

use crate::store::{Store, StoreError};

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Principal {
    /// Token subject, or `api_key:<id>:<name>`.
    pub name: String,
    pub role: Role,
    pub contexts: ContextScope,
    /// The token's `team` claim: the aliases it creates are the team's.
    pub team: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum AuthError {
    #[error("missing credentials: send Authorization: Bearer <token or API key>")]
    Missing,
    #[error("Authorization header is not a Bearer credential")]
    NotBearer,
    #[error("invalid token: {0}")]
    Token(#[from] TokenError),
    #[error("token subject is not printable, or is reserved (team:...)")]
    BadSubject,
    #[error("token team is not a valid team name")]
    BadTeam,
    #[error("invalid, revoked or expired API key")]
    BadKey,
    #[error("token has been revoked")]
    Revoked,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Authenticates a raw `Authorization` header value.
pub(crate) async fn authenticate(
    header: Option<&str>,
    verifier: &TokenVerifier,
    store: &Store,
) -> Result<Principal, AuthError> {
    let header = header.ok_or(AuthError::Missing)?;
    let credential = header
        .strip_prefix("Bearer ")
        .or_else(|| header.strip_prefix("bearer "))
        .ok_or(AuthError::NotBearer)?
        .trim();
    if credential.starts_with(api_key::PREFIX) {
        let digest = api_key::digest(credential).ok_or(AuthError::BadKey)?.to_vec();
        let grant = store.api_key_by_digest(&digest).await?.ok_or(AuthError::BadKey)?;
        // The lookup was by digest already; comparing again in constant time
        // keeps the check independent of how the index compares bytes.
        if !api_key::digests_match(&grant.digest, &digest) {
            return Err(AuthError::BadKey);
        }
        return Ok(Principal {
            name: format!("api_key:{}:{}", grant.id, grant.name),
            role: grant.role,
            contexts: grant.contexts,
            team: None,
        });
    }
    let claims = verifier.verify(credential)?;
    if store.token_revoked(&claims).await? {
        return Err(AuthError::Revoked);
    }
    // The subject lands in audit rows and logs: keep it printable.
    if claims.sub.is_empty() || claims.sub.len() > 255 || claims.sub.chars().any(char::is_control) {
        return Err(AuthError::BadSubject);
    }
    // Minted by this plane's own key, but checked as any input: the team
    // becomes an owner name in rows, audit and logs, and no subject may
    // pass for a team.
    if claims.sub.starts_with(nexus_protocol::token::TEAM_OWNER_PREFIX) {
        return Err(AuthError::BadSubject);
    }
    if let Some(t) = &claims.team {
        nexus_protocol::token::check_team(t).map_err(|_| AuthError::BadTeam)?;
    }
    Ok(Principal {
        name: claims.sub,
        role: claims.role,
        contexts: claims.contexts,
        team: claims.team,
    })
}
