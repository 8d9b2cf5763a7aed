//! Token claims, as both planes read them. Signing and verification live in
//! the planes (they own the keys); this is only the shape and its meaning.
//!
//! `{"sub": "...", "role": "admin|editor|viewer|resolver",
//!   "contexts": ["frontend", ...] or ["*"], "aud": "nexus-ssot",
//!   "iat": ..., "exp": ..., "nbf"?: ..., "jti": "..."}`
//!
//! `aud` may also be an array that contains `nexus-ssot` (RFC 7519
//! §4.1.3). `jti` is optional on the way in (tokens minted before it
//! existed still verify; only a revocation by subject reaches them) and
//! always written by [`crate::jwt::TokenSigner`].

use serde::{Deserialize, Serialize};

use crate::names::{Context, NameError};

/// The audience every NEXUS token must carry.
pub const AUDIENCE: &str = "nexus-ssot";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Everything.
    Admin,
    /// Writes aliases in its contexts.
    Editor,
    /// Reads admin data in its contexts.
    Viewer,
    /// Only resolves, in its contexts.
    Resolver,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Editor => "editor",
            Role::Viewer => "viewer",
            Role::Resolver => "resolver",
        }
    }
}

impl std::str::FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "admin" => Ok(Role::Admin),
            "editor" => Ok(Role::Editor),
            "viewer" => Ok(Role::Viewer),
            "resolver" => Ok(Role::Resolver),
            other => {
                Err(format!("unknown role {other:?}; expected admin, editor, viewer or resolver"))
            }
        }
    }
}

/// Which contexts a token or API key may act in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "Vec<String>", into = "Vec<String>")]
pub enum ContextScope {
    /// `["*"]`
    All,
    Only(Vec<Context>),
}

impl ContextScope {
    pub fn allows(&self, context: &str) -> bool {
        match self {
            ContextScope::All => true,
            ContextScope::Only(list) => list.iter().any(|c| c.as_str() == context),
        }
    }
}

impl TryFrom<Vec<String>> for ContextScope {
    type Error = NameError;
    fn try_from(raw: Vec<String>) -> Result<Self, NameError> {
        if raw.iter().any(|c| c == "*") {
            return Ok(ContextScope::All);
        }
        raw.into_iter().map(Context::try_from).collect::<Result<_, _>>().map(ContextScope::Only)
    }
}

impl From<ContextScope> for Vec<String> {
    fn from(s: ContextScope) -> Vec<String> {
        match s {
            ContextScope::All => vec!["*".to_owned()],
            ContextScope::Only(list) => list.into_iter().map(String::from).collect(),
        }
    }
}

/// Longest `jti` accepted, in bytes: revoked ids travel to every edge.
pub const MAX_JTI_LEN: usize = 128;

/// The `aud` claim: one string or an array of them (RFC 7519 §4.1.3). The
/// token is for NEXUS when [`Audience::contains`] [`AUDIENCE`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Audience {
    One(String),
    Many(Vec<String>),
}

impl Audience {
    pub fn contains(&self, audience: &str) -> bool {
        match self {
            Audience::One(a) => a == audience,
            Audience::Many(list) => list.iter().any(|a| a == audience),
        }
    }
}

impl From<&str> for Audience {
    fn from(a: &str) -> Self {
        Audience::One(a.to_owned())
    }
}

impl From<String> for Audience {
    fn from(a: String) -> Self {
        Audience::One(a)
    }
}

/// `claims.aud == AUDIENCE`: a single audience equal to it.
impl PartialEq<&str> for Audience {
    fn eq(&self, other: &&str) -> bool {
        matches!(self, Audience::One(a) if a == other)
    }
}

/// The claims of a NEXUS token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub role: Role,
    pub contexts: ContextScope,
    pub aud: Audience,
    pub iat: i64,
    pub exp: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
    /// The token's id, what `POST /api/admin/tokens/revoke` names.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
    /// The team the subject writes for (see [`check_team`]): the control
    /// plane gives the aliases it creates the owner `team:<team>`, which
    /// every member of the team may change. Edges ignore it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub team: Option<String>,
}

/// The prefix of a team's owner name; no token subject may start with it,
/// so a subject cannot pass for a team.
pub const TEAM_OWNER_PREFIX: &str = "team:";

/// Longest team name.
pub const MAX_TEAM_LEN: usize = 64;

/// A team name that breaks the rule of [`check_team`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("team {0:?}: want 1 to 64 of a-z 0-9 - _ . starting with a letter or digit")]
pub struct BadTeam(pub String);

/// A team name is written like a context name: lower-case letters, digits,
/// `-`, `_` and `.`, starting with a letter or digit, at most 64 bytes.
pub fn check_team(team: &str) -> Result<(), BadTeam> {
    let ok = (1..=MAX_TEAM_LEN).contains(&team.len())
        && team.bytes().next().is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        && team.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'-' | b'_' | b'.')
        });
    if ok { Ok(()) } else { Err(BadTeam(team.to_owned())) }
}

/// The owner name of the aliases a subject creates: its team's when it has
/// one, else its own.
pub fn owner_name(sub: &str, team: Option<&str>) -> String {
    match team {
        Some(t) => format!("{TEAM_OWNER_PREFIX}{t}"),
        None => sub.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn team_names_and_owner_names() {
        for good in ["payments", "a", "team-1.x_y", &"t".repeat(64)] {
            assert_eq!(check_team(good), Ok(()), "{good}");
        }
        for bad in ["", "Payments", "-x", "a b", "a/b", &"t".repeat(65), "é"] {
            assert!(check_team(bad).is_err(), "{bad:?}");
        }
        assert_eq!(owner_name("alice", Some("payments")), "team:payments");
        assert_eq!(owner_name("alice", None), "alice");
    }

    #[test]
    fn claims_round_trip_and_scope() {
        let json = r#"{"sub":"svc","role":"resolver","contexts":["frontend"],"aud":"nexus-ssot","iat":1,"exp":2}"#;
        let c: Claims = serde_json::from_str(json).unwrap();
        assert_eq!(c.role, Role::Resolver);
        assert!(c.contexts.allows("frontend"));
        assert!(!c.contexts.allows("backend"));
        let all: ContextScope = serde_json::from_str(r#"["*"]"#).unwrap();
        assert!(all.allows("anything"));
        assert!(serde_json::from_str::<Claims>(&json.replace("resolver", "root")).is_err());
        assert_eq!(c.aud, AUDIENCE);
        let many: Claims =
            serde_json::from_str(&json.replace(r#""nexus-ssot""#, r#"["other","nexus-ssot"]"#))
                .unwrap();
        assert!(many.aud.contains(AUDIENCE) && !many.aud.contains("x"));
        assert_eq!(many.jti, None);
    }
}
