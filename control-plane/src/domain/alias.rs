//! Aliases as the control plane handles them: a validated create request,
//! a patch, and the stored row.

use chrono::{DateTime, Utc};
use nexus_protocol::record::MAX_DESCRIPTION_LEN;
use nexus_protocol::{AliasEntry, AliasKey, AliasName, Canonical, Context};
use serde::Serialize;
use serde_json::Value;

use super::governance::{Candidate, Governance, Violation};

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

/// A create request, parsed. Keeps the alias as typed, so a name that only
/// matches an existing one after case folding is reported as such.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAlias {
    pub key: AliasKey,
    pub typed_alias: String,
    pub canonical: Canonical,
    pub description: Option<String>,
    pub expires_at: Option<DateTime<Utc>>,
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
    pub fn typed_normal(&self) -> bool {
        self.typed_alias == self.key.alias.as_str()
    }

    /// The alias this request would store.
    pub fn entry(&self) -> AliasEntry {
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
    pub fn candidate(&self) -> Candidate<'_> {
        Candidate {
            context: &self.key.context,
            alias: &self.key.alias,
            canonical: &self.canonical,
            description: self.description.as_deref(),
            expires_at: self.expires_at,
        }
    }

    /// What a conflict row keeps of the incoming side.
    pub fn to_json(&self) -> Value {
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
pub fn parse_description(d: String) -> Result<String, FieldError> {
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
pub struct AliasPatch {
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
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub created_by: Option<String>,
    pub version: i64,
}

impl StoredAlias {
    /// The row with `patch` applied; the caller stamps version and time.
    pub fn patched(&self, patch: &AliasPatch) -> StoredAlias {
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

    pub fn key(&self) -> AliasKey {
        AliasKey { context: self.context.clone(), alias: self.alias.clone() }
    }

    /// The row's content, as the declarative file writes it.
    pub fn entry(&self) -> AliasEntry {
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
    pub fn candidate(&self) -> Candidate<'_> {
        Candidate {
            context: &self.context,
            alias: &self.alias,
            canonical: &self.canonical,
            description: self.description.as_deref(),
            expires_at: self.expires_at,
        }
    }

    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
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
}

/// One alias row a plan writes; the ledger gives it the next version, the
/// write's time and, when new, an id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AliasWrite {
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
pub enum UpdatePlan {
    Write(AliasWrite),
    NotFound,
    Violation(Violation),
}

/// Plans `patch` over `current`, the row at its key (the active one, else
/// the newest inactive one). A deactivation is never blocked by rules;
/// anything that stays or becomes active must satisfy them. Reactivating
/// cannot meet another active alias: `current` would be that one.
pub fn plan_update(
    current: Option<&StoredAlias>,
    patch: &AliasPatch,
    rules: &Governance,
    now: DateTime<Utc>,
) -> UpdatePlan {
    let Some(current) = current else {
        return UpdatePlan::NotFound;
    };
    let next = current.patched(patch);
    if next.is_active
        && let Err(v) = rules.check(&next.candidate(), now)
    {
        return UpdatePlan::Violation(v);
    }
    UpdatePlan::Write(AliasWrite::Change {
        current: Box::new(current.clone()),
        next: Box::new(next),
    })
}

/// Plans the deactivation of `active`, the active row at its key.
pub fn plan_deactivate(active: Option<&StoredAlias>) -> UpdatePlan {
    match active {
        None => UpdatePlan::NotFound,
        Some(a) => {
            let next = a.patched(&AliasPatch { is_active: Some(false), ..Default::default() });
            UpdatePlan::Write(AliasWrite::Change {
                current: Box::new(a.clone()),
                next: Box::new(next),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

    fn rules() -> Governance {
        Governance::from_yaml(
            "defaults:\n  alias_pattern: '^[a-z]+$'\n  max_alias_length: 40\n  \
             max_canonical_length: 100\n  allowed_schemes: [https]\n",
        )
        .unwrap()
    }

    #[test]
    fn update_plans() {
        let (g, now, row) = (rules(), Utc::now(), row());
        let to = |c: &str| AliasPatch {
            canonical: Some(Canonical::parse(c).unwrap()),
            ..Default::default()
        };
        assert_eq!(plan_update(None, &to("https://new"), &g, now), UpdatePlan::NotFound);
        let UpdatePlan::Write(AliasWrite::Change { current, next }) =
            plan_update(Some(&row), &to("https://new"), &g, now)
        else {
            panic!("an allowed update is written");
        };
        assert_eq!(
            (current.canonical.as_str(), next.canonical.as_str()),
            ("https://old", "https://new")
        );
        let refused = plan_update(Some(&row), &to("http://plain"), &g, now);
        assert!(matches!(refused, UpdatePlan::Violation(v) if v.rule == "allowed_schemes"));
        // Deactivating is never blocked by the rules.
        let off = AliasPatch { is_active: Some(false), ..to("http://plain") };
        assert!(matches!(plan_update(Some(&row), &off, &g, now), UpdatePlan::Write(_)));
    }

    #[test]
    fn deactivate_plans() {
        assert_eq!(plan_deactivate(None), UpdatePlan::NotFound);
        let UpdatePlan::Write(AliasWrite::Change { next, .. }) = plan_deactivate(Some(&row()))
        else {
            panic!("an active alias is deactivated");
        };
        assert!(!next.is_active);
    }
}
