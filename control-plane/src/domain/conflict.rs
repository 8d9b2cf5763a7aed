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

use serde::{Deserialize, Serialize};

use super::alias::{NewAlias, StoredAlias};

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

/// A context's policy on an alias that is also active in another context.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ShadowPolicy {
    Allow,
    #[default]
    Record,
    Reject,
}

/// What to do with a create, given the active alias at its key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CreateDecision {
    /// Already there, identical: answer with the existing row.
    Idempotent,
    Conflict(ConflictType),
}

/// Decides a create that found `existing` active at its key.
pub fn on_existing(incoming: &NewAlias, existing: &StoredAlias) -> CreateDecision {
    if !incoming.typed_normal() {
        return CreateDecision::Conflict(ConflictType::Normalization);
    }
    let same = existing.canonical == incoming.canonical
        && existing.description == incoming.description
        && existing.expires_at == incoming.expires_at;
    if same {
        CreateDecision::Idempotent
    } else {
        CreateDecision::Conflict(ConflictType::Duplicate)
    }
}

/// What a create does about the same alias active in other contexts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShadowDecision {
    Ignore,
    /// Write, and record an open `shadowing` conflict.
    Record,
    Refuse,
}

pub fn on_shadow(policy: ShadowPolicy, shadowed_elsewhere: bool) -> ShadowDecision {
    match (shadowed_elsewhere, policy) {
        (false, _) | (true, ShadowPolicy::Allow) => ShadowDecision::Ignore,
        (true, ShadowPolicy::Record) => ShadowDecision::Record,
        (true, ShadowPolicy::Reject) => ShadowDecision::Refuse,
    }
}

/// An import's policy for entries that meet an active alias with other content.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ImportPolicy {
    /// Any conflict refuses the whole import; nothing is written.
    #[default]
    Reject,
    /// Conflicting entries are left out; the rest is written.
    Skip,
    /// Conflicting entries overwrite the active alias.
    Replace,
}

/// What an import does with one entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportStep {
    Create,
    Unchanged,
    Replace,
    Skip,
    Conflict,
}

/// `same`: the entry equals the active alias. `exists`: there is one.
pub fn import_step(policy: ImportPolicy, exists: bool, same: bool) -> ImportStep {
    match (exists, same, policy) {
        (false, _, _) => ImportStep::Create,
        (true, true, _) => ImportStep::Unchanged,
        (true, false, ImportPolicy::Reject) => ImportStep::Conflict,
        (true, false, ImportPolicy::Skip) => ImportStep::Skip,
        (true, false, ImportPolicy::Replace) => ImportStep::Replace,
    }
}

/// How an open conflict is settled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Resolution {
    KeepExisting,
    UseIncoming,
}

impl Resolution {
    pub fn as_str(self) -> &'static str {
        match self {
            Resolution::KeepExisting => "keep_existing",
            Resolution::UseIncoming => "use_incoming",
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::Utc;
    use nexus_protocol::{AliasName, Canonical, Context};

    use super::*;

    fn stored(canonical: &str) -> StoredAlias {
        let now = Utc::now();
        StoredAlias {
            id: 1,
            context: Context::parse("frontend").unwrap(),
            alias: AliasName::parse("user-profile").unwrap(),
            canonical: Canonical::parse(canonical).unwrap(),
            description: None,
            expires_at: None,
            is_active: true,
            created_at: now,
            updated_at: now,
            created_by: None,
            version: 1,
        }
    }

    #[test]
    fn create_against_an_existing_alias() {
        let same = NewAlias::parse("frontend", "user-profile", "https://a", None, None).unwrap();
        let other = NewAlias::parse("frontend", "user-profile", "https://b", None, None).unwrap();
        let folded = NewAlias::parse("frontend", "User-Profile", "https://a", None, None).unwrap();
        let row = stored("https://a");
        assert_eq!(on_existing(&same, &row), CreateDecision::Idempotent);
        assert_eq!(on_existing(&other, &row), CreateDecision::Conflict(ConflictType::Duplicate));
        assert_eq!(
            on_existing(&folded, &row),
            CreateDecision::Conflict(ConflictType::Normalization)
        );
    }

    #[test]
    fn shadow_and_import_tables() {
        assert_eq!(on_shadow(ShadowPolicy::Reject, false), ShadowDecision::Ignore);
        assert_eq!(on_shadow(ShadowPolicy::Allow, true), ShadowDecision::Ignore);
        assert_eq!(on_shadow(ShadowPolicy::Record, true), ShadowDecision::Record);
        assert_eq!(on_shadow(ShadowPolicy::Reject, true), ShadowDecision::Refuse);
        assert_eq!(import_step(ImportPolicy::Reject, false, false), ImportStep::Create);
        assert_eq!(import_step(ImportPolicy::Reject, true, true), ImportStep::Unchanged);
        assert_eq!(import_step(ImportPolicy::Reject, true, false), ImportStep::Conflict);
        assert_eq!(import_step(ImportPolicy::Skip, true, false), ImportStep::Skip);
        assert_eq!(import_step(ImportPolicy::Replace, true, false), ImportStep::Replace);
    }
}
