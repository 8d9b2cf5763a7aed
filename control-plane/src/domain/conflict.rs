//! Conflicts: what a new alias meets in the registry, and what happens.
//!
//! - `duplicate`: the alias is already active in the context with another
//!   target. Refused (409) and recorded.
//! - `normalization`: the alias was typed in another form (`User-Profile`)
//!   that folds onto an existing active alias. Refused and recorded, even
//!   when the targets agree: the writer meant a name that does not exist.
//! - `shadowing`: the same alias is active in another context. The
//!   context's policy allows it, records it (the write goes through), or
//!   refuses it.
//!
//! Creating exactly what is already there (same target, description and
//! expiry, typed in normal form) is an idempotent success (200) so that a
//! client may retry a create whose answer it lost.

use chrono::{DateTime, Utc};
use nexus_protocol::{AliasEntry, AliasKey, AliasName, Canonical, Context};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::alias::{AliasPatch, AliasWrite, NewAlias, StoredAlias};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConflictType {
    Duplicate,
    Normalization,
    Shadowing,
}

impl ConflictType {
    pub fn as_str(self) -> &'static str {
        match self {
            ConflictType::Duplicate => "duplicate",
            ConflictType::Normalization => "normalization",
            ConflictType::Shadowing => "shadowing",
        }
    }
}

// The policy is a governance rule (per context); conflicts only apply it.
pub(crate) use super::governance::ShadowPolicy;

/// A conflict to record: what a write met at `key`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ConflictRecord {
    pub kind: ConflictType,
    pub key: AliasKey,
    pub existing: Value,
    pub existing_id: Option<i32>,
    pub incoming: Value,
}

/// What a create does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum CreatePlan {
    /// Write the alias, and record `shadowing` alongside if set.
    Write { shadowing: Option<ConflictRecord> },
    /// Already there, identical: answer with the existing row.
    Existing(StoredAlias),
    /// Refused, and recorded as this conflict.
    Refuse(ConflictRecord),
}

/// Plans a create from what the registry holds: `existing`, the active
/// alias at its key, and `shadows`, the same alias active in other contexts,
/// under `policy`, the context's shadowing policy.
pub(crate) fn plan_create(
    new: &NewAlias,
    existing: Option<&StoredAlias>,
    shadows: &[StoredAlias],
    policy: ShadowPolicy,
) -> CreatePlan {
    let record = |kind, existing, existing_id| ConflictRecord {
        kind,
        key: new.key.clone(),
        existing,
        existing_id,
        incoming: new.to_json(),
    };
    if let Some(x) = existing {
        return match on_existing(new, x) {
            None => CreatePlan::Existing(x.clone()),
            Some(kind) => CreatePlan::Refuse(record(kind, x.to_json(), Some(x.id))),
        };
    }
    let shadowed = || Value::Array(shadows.iter().map(StoredAlias::to_json).collect());
    match (shadows.is_empty(), policy) {
        (true, _) | (false, ShadowPolicy::Allow) => CreatePlan::Write { shadowing: None },
        (false, ShadowPolicy::Record) => {
            CreatePlan::Write { shadowing: Some(record(ConflictType::Shadowing, shadowed(), None)) }
        }
        (false, ShadowPolicy::Reject) => {
            CreatePlan::Refuse(record(ConflictType::Shadowing, shadowed(), None))
        }
    }
}

/// The conflict a create meets at an active alias, or `None` when it asks
/// for exactly what is there (an idempotent retry).
fn on_existing(incoming: &NewAlias, existing: &StoredAlias) -> Option<ConflictType> {
    if !incoming.typed_normal() {
        return Some(ConflictType::Normalization);
    }
    let same = existing.canonical == incoming.canonical
        && existing.description == incoming.description
        && existing.expires_at == incoming.expires_at;
    (!same).then_some(ConflictType::Duplicate)
}

/// How an open conflict is settled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Resolution {
    KeepExisting,
    UseIncoming,
}

impl Resolution {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Resolution::KeepExisting => "keep_existing",
            Resolution::UseIncoming => "use_incoming",
        }
    }
}

/// A recorded conflict, as stored and as the API shows it.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Conflict {
    pub id: i32,
    pub context: String,
    pub alias: String,
    pub conflict_type: String,
    pub existing: Option<Value>,
    pub incoming: Option<Value>,
    pub resolution: Option<String>,
    pub resolved_at: Option<DateTime<Utc>>,
    pub resolved_by: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// A stored conflict that cannot be acted on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("conflict {id}: {what}")]
pub(crate) struct BadConflict {
    pub id: i32,
    pub what: String,
}

/// The incoming side of a conflict, as stored.
#[derive(Debug, Deserialize)]
struct Incoming {
    canonical: Canonical,
    description: Option<String>,
    expires_at: Option<DateTime<Utc>>,
}

impl Conflict {
    /// Where the conflict happened.
    pub(crate) fn key(&self) -> Result<AliasKey, BadConflict> {
        let bad = |e: &dyn std::fmt::Display| BadConflict { id: self.id, what: e.to_string() };
        Ok(AliasKey {
            context: Context::parse(&self.context).map_err(|e| bad(&e))?,
            alias: AliasName::parse(&self.alias).map_err(|e| bad(&e))?,
        })
    }
}

/// What settling a conflict does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ResolutionPlan {
    AlreadyResolved,
    /// Mark the conflict resolved, writing `write` first if set.
    Settle(Option<AliasWrite>),
}

/// Plans `resolution` of `c`, given `active`, the active alias at its key.
/// `use_incoming` writes the incoming side over the active alias, or
/// creates it when none is active.
pub(crate) fn plan_resolution(
    c: &Conflict,
    resolution: Resolution,
    active: Option<&StoredAlias>,
) -> Result<ResolutionPlan, BadConflict> {
    if c.resolution.is_some() {
        return Ok(ResolutionPlan::AlreadyResolved);
    }
    if resolution == Resolution::KeepExisting {
        return Ok(ResolutionPlan::Settle(None));
    }
    let bad = |what: String| BadConflict { id: c.id, what };
    let incoming: Incoming =
        serde_json::from_value(c.incoming.clone().ok_or_else(|| bad("no incoming side".into()))?)
            .map_err(|e| bad(format!("incoming: {e}")))?;
    let write = match active {
        Some(current) => {
            let patch = AliasPatch {
                canonical: Some(incoming.canonical),
                description: Some(incoming.description),
                expires_at: Some(incoming.expires_at),
                is_active: Some(true),
            };
            let next = Box::new(current.patched(&patch));
            AliasWrite::Change { current: Box::new(current.clone()), next }
        }
        None => {
            let key = c.key()?;
            AliasWrite::Create(AliasEntry {
                context: key.context,
                alias: key.alias,
                canonical: incoming.canonical,
                description: incoming.description,
                expires_at: incoming.expires_at,
                is_active: true,
            })
        }
    };
    Ok(ResolutionPlan::Settle(Some(write)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(canonical: &str) -> StoredAlias {
        StoredAlias::fixture(1, "frontend", "user-profile", canonical)
    }

    fn new(alias: &str, canonical: &str) -> NewAlias {
        NewAlias::parse("frontend", alias, canonical, None, None).unwrap()
    }

    #[test]
    fn create_against_an_existing_alias() {
        let row = stored("https://a");
        let plan = |n: &NewAlias| plan_create(n, Some(&row), &[], ShadowPolicy::Reject);
        assert_eq!(plan(&new("user-profile", "https://a")), CreatePlan::Existing(row.clone()));
        let CreatePlan::Refuse(c) = plan(&new("user-profile", "https://b")) else {
            panic!("another target is refused");
        };
        assert_eq!((c.kind, c.existing_id), (ConflictType::Duplicate, Some(1)));
        assert_eq!(c.existing["canonical"], "https://a");
        let CreatePlan::Refuse(c) = plan(&new("User-Profile", "https://a")) else {
            panic!("another spelling is refused");
        };
        assert_eq!(
            (c.kind, c.incoming["alias"].as_str()),
            (ConflictType::Normalization, Some("User-Profile"))
        );
    }

    #[test]
    fn create_against_shadows_follows_the_policy() {
        let n = new("user-profile", "https://a");
        let other =
            StoredAlias { context: Context::parse("backend").unwrap(), ..stored("https://a") };
        let shadows = [other];
        let plan = |policy| plan_create(&n, None, &shadows, policy);
        assert_eq!(
            plan_create(&n, None, &[], ShadowPolicy::Reject),
            CreatePlan::Write { shadowing: None }
        );
        assert_eq!(plan(ShadowPolicy::Allow), CreatePlan::Write { shadowing: None });
        let CreatePlan::Write { shadowing: Some(c) } = plan(ShadowPolicy::Record) else {
            panic!("record writes and records");
        };
        assert_eq!((c.kind, c.existing_id), (ConflictType::Shadowing, None));
        assert_eq!(c.existing[0]["context"], "backend");
        assert!(
            matches!(plan(ShadowPolicy::Reject), CreatePlan::Refuse(c) if c.kind == ConflictType::Shadowing)
        );
    }

    fn conflict(incoming: Option<Value>) -> Conflict {
        Conflict {
            id: 7,
            context: "frontend".into(),
            alias: "user-profile".into(),
            conflict_type: "duplicate".into(),
            existing: None,
            incoming,
            resolution: None,
            resolved_at: None,
            resolved_by: None,
            created_at: Utc::now(),
        }
    }

    #[test]
    fn resolution_plans() {
        let incoming = Some(serde_json::json!({"canonical": "https://b", "alias": "User-Profile"}));
        let c = conflict(incoming);
        let row = stored("https://a");
        let keep = plan_resolution(&c, Resolution::KeepExisting, Some(&row)).unwrap();
        assert_eq!(keep, ResolutionPlan::Settle(None));
        let over = plan_resolution(&c, Resolution::UseIncoming, Some(&row)).unwrap();
        let ResolutionPlan::Settle(Some(AliasWrite::Change { next, .. })) = over else {
            panic!("the incoming side replaces the active alias");
        };
        assert_eq!((next.id, next.canonical.as_str()), (1, "https://b"));
        let fresh = plan_resolution(&c, Resolution::UseIncoming, None).unwrap();
        let ResolutionPlan::Settle(Some(AliasWrite::Create(e))) = fresh else {
            panic!("the incoming side is created when nothing is active");
        };
        assert_eq!((e.alias.as_str(), e.canonical.as_str()), ("user-profile", "https://b"));
        let done = Conflict { resolution: Some("keep_existing".into()), ..c };
        assert_eq!(
            plan_resolution(&done, Resolution::UseIncoming, None),
            Ok(ResolutionPlan::AlreadyResolved)
        );
        assert!(plan_resolution(&conflict(None), Resolution::UseIncoming, None).is_err());
    }
}
