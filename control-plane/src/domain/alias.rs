//! Aliases as the control plane handles them: a validated create request,
//! a patch, the stored row and its owner.

use chrono::{DateTime, Utc};
use nexus_protocol::record::MAX_DESCRIPTION_LEN;
use nexus_protocol::{AliasEntry, AliasKey, AliasName, Canonical, Context};
use serde::Serialize;
use serde_json::Value;

use super::governance::{Candidate, Governance, Violation};
use super::rbac::{Writer, may_change};

/// Why a request's field was refused before any rule was consulted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FieldError {
    #[error("context: {0}")]
    Context(nexus_protocol::NameError),
    #[error("alias: {0}")]
    Alias(nexus_protocol::NameError),
    #[error("canonical: {0}")]
    Canonical(nexus_protocol::CanonicalError),
    #[error("description is {0} bytes; at most {MAX_DESCRIPTION_LEN} are allowed")]
    DescriptionTooLong(usize),
    #[error("description contains a NUL character")]
    DescriptionNul,
}

/// Why an owner name was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("owner {0}")]
pub(crate) struct OwnerError(&'static str);

/// Longest owner name: the column's width, and the longest token subject.
pub(crate) const MAX_OWNER_LEN: usize = 255;

/// Checks an owner name as a transfer gives it: what a principal's name can
/// be (non-empty, at most 255 bytes, no control characters).
pub(crate) fn parse_owner(owner: &str) -> Result<String, OwnerError> {
    if owner.is_empty() {
        return Err(OwnerError("is empty"));
    }
    if owner.len() > MAX_OWNER_LEN {
        return Err(OwnerError("is longer than 255 bytes"));
    }
    if owner.chars().any(char::is_control) {
        return Err(OwnerError("contains a control character"));
    }
    Ok(owner.to_owned())
}

/// A create request, parsed. Keeps the alias as typed, so a name that only
/// matches an existing one after case folding is reported as such.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAlias {
    pub(crate) key: AliasKey,
    pub(crate) typed_alias: String,
    pub(crate) canonical: Canonical,
    pub(crate) description: Option<String>,
    pub(crate) expires_at: Option<DateTime<Utc>>,
}

impl NewAlias {
    pub fn parse(
        context: &str,
        alias: &str,
        canonical: &str,
        description: Option<String>,
        expires_at: Option<DateTime<Utc>>,
    ) -> Result<Self, FieldError> {
        let context = Context::parse(context).map_err(FieldError::Context)?;
        let name = AliasName::parse(alias).map_err(FieldError::Alias)?;
        let canonical = Canonical::parse(canonical).map_err(FieldError::Canonical)?;
        let description = description.map(parse_description).transpose()?;
        Ok(Self {
            key: AliasKey { context, alias: name },
            typed_alias: alias.to_owned(),
            canonical,
            description,
            expires_at,
        })
    }

    /// Whether the alias was typed in its normal form.
    pub(crate) fn typed_normal(&self) -> bool {
        self.typed_alias == self.key.alias.as_str()
    }

    /// The alias this request would store.
    pub(crate) fn entry(&self) -> AliasEntry {
        AliasEntry {
            context: self.key.context.clone(),
            alias: self.key.alias.clone(),
            canonical: self.canonical.clone(),
            description: self.description.clone(),
            expires_at: self.expires_at,
            is_active: true,
        }
    }

    /// What the governance rules check of this request.
    pub(crate) fn candidate(&self) -> Candidate<'_> {
        Candidate {
            context: &self.key.context,
            alias: &self.key.alias,
            canonical: &self.canonical,
            description: self.description.as_deref(),
            expires_at: self.expires_at,
        }
    }

    /// What a conflict row keeps of the incoming side.
    pub(crate) fn to_json(&self) -> Value {
        serde_json::json!({
            "context": self.key.context,
            "alias": self.typed_alias,
            "canonical": self.canonical,
            "description": self.description,
            "expires_at": self.expires_at,
        })
    }
}

/// Checks a description: bounded, and storable (PostgreSQL text holds no NUL).
pub(crate) fn parse_description(d: String) -> Result<String, FieldError> {
    if d.len() > MAX_DESCRIPTION_LEN {
        return Err(FieldError::DescriptionTooLong(d.len()));
    }
    if d.contains('\0') {
        return Err(FieldError::DescriptionNul);
    }
    Ok(d)
}

/// A partial update. `Some(None)` clears an optional field.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct AliasPatch {
    pub canonical: Option<Canonical>,
    pub description: Option<Option<String>>,
    pub expires_at: Option<Option<DateTime<Utc>>>,
    pub is_active: Option<bool>,
}

/// An alias row as stored, and as the admin API returns it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StoredAlias {
    pub id: i32,
    pub context: Context,
    pub alias: AliasName,
    pub canonical: Canonical,
    pub description: Option<String>,
    pub expires_at: Option<DateTime<Utc>>,
    pub is_active: bool,
    pub(crate) created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub created_by: Option<String>,
    pub version: i64,
}

impl StoredAlias {
    /// The row with `patch` applied; the caller stamps version and time.
    pub(crate) fn patched(&self, patch: &AliasPatch) -> StoredAlias {
        let mut next = self.clone();
        if let Some(c) = &patch.canonical {
            next.canonical = c.clone();
        }
        if let Some(d) = &patch.description {
            next.description = d.clone();
        }
        if let Some(e) = patch.expires_at {
            next.expires_at = e;
        }
        if let Some(a) = patch.is_active {
            next.is_active = a;
        }
        next
    }

    pub(crate) fn key(&self) -> AliasKey {
        AliasKey { context: self.context.clone(), alias: self.alias.clone() }
    }

    /// The row's content, as the declarative file writes it.
    pub(crate) fn entry(&self) -> AliasEntry {
        AliasEntry {
            context: self.context.clone(),
            alias: self.alias.clone(),
            canonical: self.canonical.clone(),
            description: self.description.clone(),
            expires_at: self.expires_at,
            is_active: self.is_active,
        }
    }

    /// What the governance rules check of this row.
    pub(crate) fn candidate(&self) -> Candidate<'_> {
        Candidate {
            context: &self.context,
            alias: &self.alias,
            canonical: &self.canonical,
            description: self.description.as_deref(),
            expires_at: self.expires_at,
        }
    }

    pub(crate) fn to_json(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }
}

/// An alias row with its owner (column `owner`, migration 0006): what the
/// admin API shows and what ownership decides on. The ledger stages
/// [`StoredAlias`] rows and sets the owner only on a new row (the actor's
/// team, else its creator in SQL; a change keeps it), so the owner sits
/// beside the row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OwnedAlias {
    #[serde(flatten)]
    pub row: StoredAlias,
    pub owner: String,
}

/// An owned alias reads as its row (`a.context`, `&a` where a
/// `&StoredAlias` is wanted): the owner is the only thing it adds.
impl std::ops::Deref for OwnedAlias {
    type Target = StoredAlias;

    fn deref(&self) -> &StoredAlias {
        &self.row
    }
}

impl OwnedAlias {
    pub(crate) fn to_json(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }

    /// Whether `writer` may change this alias under `rules`.
    pub(crate) fn changeable_by(&self, writer: &Writer, rules: &Governance) -> bool {
        may_change(writer, &self.owner, rules.shared_ownership(&self.row.context))
    }
}

#[cfg(test)]
impl StoredAlias {
    /// An active row, version 1, for the domain's unit tests.
    pub(crate) fn fixture(id: i32, context: &str, alias: &str, canonical: &str) -> Self {
        let now = Utc::now();
        StoredAlias {
            id,
            context: Context::parse(context).unwrap(),
            alias: AliasName::parse(alias).unwrap(),
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

    /// This row owned by `owner`.
    pub(crate) fn owned(self, owner: &str) -> OwnedAlias {
        OwnedAlias { row: self, owner: owner.to_owned() }
    }
}

/// One alias row a plan writes; the ledger gives it the next version, the
/// write's time and, when new, an id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum AliasWrite {
    Create(AliasEntry),
    /// `next` (same id and key) replaces `current`. Boxed: the two rows
    /// dwarf every other variant of the plans that carry a write.
    Change {
        current: Box<StoredAlias>,
        next: Box<StoredAlias>,
    },
}

/// What an update or a deactivation does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum UpdatePlan {
    Write(AliasWrite),
    NotFound,
    Violation(Violation),
    /// The writer may not change an alias this owner owns.
    NotOwner(String),
}

/// Plans `patch` over `current`, the row at its key (the active one, else
/// the newest inactive one), for `writer`: only an owner (or an admin, or
/// anyone in a shared context) changes an alias. A deactivation is never
/// blocked by rules; anything that stays or becomes active must satisfy
/// them. Reactivating cannot meet another active alias: `current` would be
/// that one.
pub(crate) fn plan_update(
    current: Option<&OwnedAlias>,
    patch: &AliasPatch,
    rules: &Governance,
    now: DateTime<Utc>,
    writer: &Writer,
) -> UpdatePlan {
    let Some(current) = current else {
        return UpdatePlan::NotFound;
    };
    if !current.changeable_by(writer, rules) {
        return UpdatePlan::NotOwner(current.owner.clone());
    }
    let next = current.row.patched(patch);
    if next.is_active
        && let Err(v) = rules.check(&next.candidate(), now)
    {
        return UpdatePlan::Violation(v);
    }
    UpdatePlan::Write(AliasWrite::Change {
        current: Box::new(current.row.clone()),
        next: Box::new(next),
    })
}

/// Plans the deactivation of `active`, the active row at its key, for
/// `writer` (ownership as for [`plan_update`]).
pub(crate) fn plan_deactivate(
    active: Option<&OwnedAlias>,
    rules: &Governance,
    writer: &Writer,
) -> UpdatePlan {
    match active {
        None => UpdatePlan::NotFound,
        Some(a) if !a.changeable_by(writer, rules) => UpdatePlan::NotOwner(a.owner.clone()),
        Some(a) => {
            let next = a.row.patched(&AliasPatch { is_active: Some(false), ..Default::default() });
            UpdatePlan::Write(AliasWrite::Change {
                current: Box::new(a.row.clone()),
                next: Box::new(next),
            })
        }
    }
}

/// What giving an alias another owner does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TransferPlan {
    NotFound,
    /// It is already owned by that name: nothing to write.
    Unchanged(OwnedAlias),
    /// Rewrite `current` (same content, so a new version edges ignore) with
    /// owner `to`.
    Write {
        current: OwnedAlias,
        to: String,
    },
}

/// Plans moving `current` (the row at its key, active or the newest
/// inactive one) to owner `to`. Who may is RBAC's `TransferOwnership`.
pub(crate) fn plan_transfer(current: Option<&OwnedAlias>, to: &str) -> TransferPlan {
    match current {
        None => TransferPlan::NotFound,
        Some(c) if c.owner == to => TransferPlan::Unchanged(c.clone()),
        Some(c) => TransferPlan::Write { current: c.clone(), to: to.to_owned() },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::fixtures::{alice, rules};

    #[test]
    fn parse_keeps_what_was_typed_and_normalises_the_key() {
        let a = NewAlias::parse("Frontend", "User-Profile", "https://x/y", None, None).unwrap();
        assert_eq!(a.key.context.as_str(), "frontend");
        assert_eq!(a.key.alias.as_str(), "user-profile");
        assert!(!a.typed_normal());
        assert!(NewAlias::parse("f", "a b", "https://x", None, None).is_err());
        assert_eq!(
            NewAlias::parse("f", "a", "https://x", Some("a\0b".into()), None).unwrap_err(),
            FieldError::DescriptionNul
        );
    }

    fn row() -> StoredAlias {
        let row = StoredAlias::fixture(1, "f", "a", "https://old");
        StoredAlias { description: Some("d".into()), version: 3, ..row }
    }

    #[test]
    fn patch_changes_only_what_it_names() {
        let row = row();
        let p = AliasPatch { description: Some(None), ..Default::default() };
        let next = row.patched(&p);
        assert_eq!(next.description, None);
        assert_eq!(next.canonical.as_str(), "https://old");
        assert_eq!(next.version, 3);
    }

    #[test]
    fn update_plans() {
        let (g, now, row, w) = (rules(), Utc::now(), row().owned("alice"), alice());
        let to = |c: &str| AliasPatch {
            canonical: Some(Canonical::parse(c).unwrap()),
            ..Default::default()
        };
        assert_eq!(plan_update(None, &to("https://new"), &g, now, &w), UpdatePlan::NotFound);
        let UpdatePlan::Write(AliasWrite::Change { current, next }) =
            plan_update(Some(&row), &to("https://new"), &g, now, &w)
        else {
            panic!("an allowed update is written");
        };
        assert_eq!(
            (current.canonical.as_str(), next.canonical.as_str()),
            ("https://old", "https://new")
        );
        let refused = plan_update(Some(&row), &to("http://plain"), &g, now, &w);
        assert!(matches!(refused, UpdatePlan::Violation(v) if v.rule == "allowed_schemes"));
        // Deactivating is never blocked by the rules.
        let off = AliasPatch { is_active: Some(false), ..to("http://plain") };
        assert!(matches!(plan_update(Some(&row), &off, &g, now, &w), UpdatePlan::Write(_)));
    }

    #[test]
    fn deactivate_plans() {
        let (g, w) = (rules(), alice());
        assert_eq!(plan_deactivate(None, &g, &w), UpdatePlan::NotFound);
        let UpdatePlan::Write(AliasWrite::Change { next, .. }) =
            plan_deactivate(Some(&row().owned("alice")), &g, &w)
        else {
            panic!("an active alias is deactivated");
        };
        assert!(!next.is_active);
    }

    #[test]
    fn only_the_owner_changes_an_alias_unless_the_context_shares() {
        let (g, now) = (rules(), Utc::now());
        let bobs = row().owned("bob");
        let patch = AliasPatch { description: Some(None), ..Default::default() };
        let refused = UpdatePlan::NotOwner("bob".into());
        // Ownership is checked before the rules: a refusal tells nothing
        // about the alias's content.
        let bad =
            AliasPatch { canonical: Some(Canonical::parse("http://x").unwrap()), ..patch.clone() };
        assert_eq!(plan_update(Some(&bobs), &bad, &g, now, &alice()), refused);
        assert_eq!(plan_update(Some(&bobs), &patch, &g, now, &alice()), refused);
        assert_eq!(plan_deactivate(Some(&bobs), &g, &alice()), refused);
        let admin = Writer::new(nexus_protocol::Role::Admin, "root", None);
        assert!(matches!(plan_update(Some(&bobs), &patch, &g, now, &admin), UpdatePlan::Write(_)));
        let shared = Governance::from_yaml(
            "defaults:\n  alias_pattern: '^[a-z]+$'\n  max_alias_length: 40\n  \
             max_canonical_length: 100\n  allowed_schemes: [https]\n  shared_ownership: true\n",
        )
        .unwrap();
        assert!(matches!(plan_deactivate(Some(&bobs), &shared, &alice()), UpdatePlan::Write(_)));
    }

    #[test]
    fn transfer_plans() {
        let bobs = row().owned("bob");
        assert_eq!(plan_transfer(None, "alice"), TransferPlan::NotFound);
        assert_eq!(plan_transfer(Some(&bobs), "bob"), TransferPlan::Unchanged(bobs.clone()));
        assert_eq!(
            plan_transfer(Some(&bobs), "alice"),
            TransferPlan::Write { current: bobs, to: "alice".into() }
        );
        assert!(parse_owner("").is_err());
        assert!(parse_owner(&"x".repeat(256)).is_err());
        assert!(parse_owner("a\nb").is_err());
        assert_eq!(parse_owner("team:payments").unwrap(), "team:payments");
    }
}
