//! Who is calling: the one place a request's credential becomes a
//! principal ([`principal_of`]), the [`Caller`] extractor, and the RBAC
//! answers a handler (of the API or the console) asks of it.

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use nexus_protocol::AliasKey;

use super::error::ApiError;
use super::observe::RequestId;
use super::state::Shared;
use crate::auth::{Principal, authenticate};
use crate::domain::rbac::{Action, Decision, Scope, Writer, decide};
use crate::store::Actor;

/// An authenticated caller and the request it makes.
#[derive(Debug, Clone)]
pub(crate) struct Caller {
    pub(crate) principal: Principal,
    pub(crate) request_id: Option<String>,
}

impl Caller {
    /// Deny by default: `Ok` only when the decision table allows.
    pub(crate) fn may(&self, action: Action, scope: Scope<'_>) -> Result<(), ApiError> {
        let p = &self.principal;
        match decide(p.role, &p.contexts, action, scope) {
            Decision::Allow => Ok(()),
            Decision::DenyRole => {
                Err(ApiError::Forbidden(format!("role {} may not {action:?}", p.role.as_str())))
            }
            Decision::DenyContext => Err(ApiError::Forbidden(match scope {
                Scope::Context(c) => format!("context {c} is not in this credential's contexts"),
                Scope::Global => "this needs a credential for all contexts".to_owned(),
            })),
        }
    }

    /// [`Caller::may`] for an action on one alias: its context decides.
    pub(crate) fn may_on(&self, action: Action, key: &AliasKey) -> Result<(), ApiError> {
        self.may(action, Scope::Context(key.context.as_str()))
    }

    /// For a listing across contexts: refuses a role that may not `action`
    /// at all, else narrows to the caller's contexts (`None`: all).
    pub(crate) fn may_list(&self, action: Action) -> Result<Option<Vec<String>>, ApiError> {
        if !crate::domain::rbac::role_allows(self.principal.role, action) {
            return Err(ApiError::Forbidden(format!(
                "role {} may not {action:?}",
                self.principal.role.as_str()
            )));
        }
        Ok(self.visible())
    }

    /// The contexts a listing is narrowed to; `None` when all are visible.
    pub(crate) fn visible(&self) -> Option<Vec<String>> {
        if self.principal.role == nexus_protocol::Role::Admin {
            return None;
        }
        match &self.principal.contexts {
            nexus_protocol::ContextScope::All => None,
            nexus_protocol::ContextScope::Only(list) => {
                Some(list.iter().map(ToString::to_string).collect())
            }
        }
    }

    pub(crate) fn actor(&self) -> Actor {
        let p = &self.principal;
        let owner = p.team.as_deref().map(|t| nexus_protocol::token::owner_name(&p.name, Some(t)));
        Actor { name: p.name.clone(), request_id: self.request_id.clone(), owner }
    }

    /// The caller as ownership sees it: it owns what it creates, under its
    /// team's name when its token names one, else its own.
    pub(crate) fn writer(&self) -> Writer {
        Writer::new(self.principal.role, &self.principal.name, self.principal.team.as_deref())
    }
}

/// The rate limiter's authentication of this request ([`super::throttle`]),
/// kept so the credential is checked once: the principal, or the message
/// of the 401 it earned.
#[derive(Debug, Clone)]
pub(crate) struct Authenticated(pub(crate) Result<Principal, String>);

/// Authenticates the request's `Authorization` header: the one place the
/// API turns a credential into a principal.
pub(crate) async fn principal_of(parts: &Parts, state: &Shared) -> Result<Principal, ApiError> {
    let header = match parts.headers.get(AUTHORIZATION) {
        Some(v) => Some(
            v.to_str().map_err(|_| ApiError::Unauthorized("bad Authorization header".into()))?,
        ),
        None => None,
    };
    Ok(authenticate(header, &state.verifier, &state.store).await?)
}

impl FromRequestParts<Shared> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &Shared) -> Result<Self, ApiError> {
        let principal = match parts.extensions.get::<Authenticated>().cloned() {
            Some(Authenticated(Ok(p))) => p,
            Some(Authenticated(Err(why))) => return Err(ApiError::Unauthorized(why)),
            None => principal_of(parts, state).await?,
        };
        let request_id = parts.extensions.get::<RequestId>().map(|r| r.0.clone());
        Ok(Caller { principal, request_id })
    }
}
