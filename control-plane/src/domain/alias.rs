//! Aliases as the control plane handles them: a validated create request,
//! a patch, and the stored row.

use chrono::{DateTime, Utc};
use nexus_protocol::record::MAX_DESCRIPTION_LEN;
use nexus_protocol::{AliasKey, AliasName, AliasRecord, Canonical, Context};
use serde::Serialize;
use serde_json::Value;

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

    /// The record as edges see it.
    pub fn to_record(&self) -> AliasRecord {
        AliasRecord {
            id: i64::from(self.id),
            context: self.context.clone(),
            alias: self.alias.clone(),
            canonical: self.canonical.clone(),
            description: self.description.clone(),
            expires_at_ms: self.expires_at.map(|t| t.timestamp_millis()),
            is_active: self.is_active,
            version: u64::try_from(self.version).unwrap_or(0),
            updated_at_ms: self.updated_at.timestamp_millis(),
        }
    }

    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
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

    #[test]
    fn patch_changes_only_what_it_names() {
        let now = Utc::now();
        let row = StoredAlias {
            id: 1,
            context: Context::parse("f").unwrap(),
            alias: AliasName::parse("a").unwrap(),
            canonical: Canonical::parse("https://old").unwrap(),
            description: Some("d".into()),
            expires_at: None,
            is_active: true,
            created_at: now,
            updated_at: now,
            created_by: None,
            version: 3,
        };
        let p = AliasPatch { description: Some(None), ..Default::default() };
        let next = row.patched(&p);
        assert_eq!(next.description, None);
        assert_eq!(next.canonical.as_str(), "https://old");
        assert_eq!(row.to_record().version, 3);
    }
}
