//! The declarative alias file (YAML or JSON) that the edge serves without a
//! database and the control plane imports:
//!
//! ```yaml
//! aliases:
//!   - context: frontend
//!     alias: user-profile
//!     canonical: https://api.nexus.com/v1/users/profile
//!     description: Profile of the signed-in user   # optional
//!     expires_at: 2027-01-01T00:00:00Z              # optional, RFC 3339
//!     is_active: true                               # optional, default true
//! ```
//!
//! Unknown fields are refused, so a typo (`canonnical:`) is an error rather
//! than a silently missing value.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::names::{AliasName, Context};
use crate::record::{AliasKey, AliasRecord, Canonical, MAX_DESCRIPTION_LEN};

/// Largest file either plane will read, in bytes.
pub const MAX_FILE_BYTES: usize = 512 << 20;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AliasFile {
    pub aliases: Vec<AliasEntry>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AliasEntry {
    pub context: Context,
    pub alias: AliasName,
    pub canonical: Canonical,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<DateTime<Utc>>,
    #[serde(default = "default_active")]
    pub is_active: bool,
}

fn default_active() -> bool {
    true
}

/// Why a declarative file was refused.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("file is {len} bytes; at most {max} are read")]
    TooLarge { len: usize, max: usize },
    #[error("invalid JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("invalid YAML: {0}")]
    Yaml(#[from] serde_saphyr::Error),
    #[error("entry {index}: {context}/{alias} appears twice")]
    Duplicate { index: usize, context: Context, alias: AliasName },
    #[error("entry {index}: description is {len} bytes; at most {MAX_DESCRIPTION_LEN} are allowed")]
    DescriptionTooLong { index: usize, len: usize },
}

impl AliasFile {
    /// Parses a file's text: JSON when it starts with `{`, YAML otherwise.
    /// Checks every name and canonical, and refuses duplicate keys.
    pub fn parse(text: &str) -> Result<Self, FileError> {
        if text.len() > MAX_FILE_BYTES {
            return Err(FileError::TooLarge { len: text.len(), max: MAX_FILE_BYTES });
        }
        let file: AliasFile = if text.trim_start().starts_with('{') {
            serde_json::from_str(text)?
        } else {
            serde_saphyr::from_str_with_options(text, yaml_options(text.len()))?
        };
        file.check()?;
        Ok(file)
    }

    fn check(&self) -> Result<(), FileError> {
        let mut seen = HashSet::with_capacity(self.aliases.len());
        for (index, e) in self.aliases.iter().enumerate() {
            if let Some(len) = e.description.as_ref().map(String::len)
                && len > MAX_DESCRIPTION_LEN
            {
                return Err(FileError::DescriptionTooLong { index, len });
            }
            if !seen.insert((&e.context, &e.alias)) {
                return Err(FileError::Duplicate {
                    index,
                    context: e.context.clone(),
                    alias: e.alias.clone(),
                });
            }
        }
        Ok(())
    }
}

/// YAML parser limits scaled to the input. serde-saphyr's defaults (250k
/// nodes, 1M events, 64 MiB of scalars) stop near 35k aliases, far below
/// what an edge must load; every node, event and scalar byte needs at least
/// one input byte, so allowing as many as the (already bounded) input has
/// bytes keeps the work linear in the input. Alias and anchor limits stay
/// at their defaults: those are what guard against expansion bombs.
fn yaml_options(len: usize) -> serde_saphyr::Options {
    let mut budget = serde_saphyr::Budget::default();
    budget.max_nodes = budget.max_nodes.max(len);
    budget.max_events = budget.max_events.max(len);
    budget.max_total_scalar_bytes = budget.max_total_scalar_bytes.max(len);
    let mut options = serde_saphyr::Options::default();
    options.budget = Some(budget);
    options
}

impl AliasEntry {
    pub fn key(&self) -> AliasKey {
        AliasKey { context: self.context.clone(), alias: self.alias.clone() }
    }

    /// The record this entry describes, as of registry `version`.
    pub fn to_record(&self, id: i64, version: u64, now_ms: i64) -> AliasRecord {
        AliasRecord {
            id,
            context: self.context.clone(),
            alias: self.alias.clone(),
            canonical: self.canonical.clone(),
            description: self.description.clone(),
            expires_at_ms: self.expires_at.map(|t| t.timestamp_millis()),
            is_active: self.is_active,
            version,
            updated_at_ms: now_ms,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const YAML: &str = "aliases:
  - context: frontend
    alias: User-Profile
    canonical: https://api.nexus.com/v1/users/profile
    description: Profile of the signed-in user
    expires_at: 2027-01-01T00:00:00Z
  - context: backend
    alias: billing
    canonical: https://api.nexus.com/v1/billing
    is_active: false
";

    #[test]
    fn yaml_and_json_agree() {
        let y = AliasFile::parse(YAML).unwrap();
        assert_eq!(y.aliases[0].alias.as_str(), "user-profile");
        assert_eq!(y.aliases[0].expires_at.unwrap().timestamp(), 1_798_761_600);
        assert!(y.aliases[0].is_active);
        assert!(!y.aliases[1].is_active);
        let j = AliasFile::parse(&serde_json::to_string(&y).unwrap()).unwrap();
        assert_eq!(j, y);
    }

    #[test]
    fn large_yaml_files_parse() {
        // 40k entries: ~280k YAML nodes, past serde-saphyr's default budget.
        let mut text = String::from("aliases:\n");
        for i in 0..40_000 {
            text.push_str(&format!(
                "  - context: frontend\n    alias: a-{i}\n    canonical: https://x/{i}\n"
            ));
        }
        assert_eq!(AliasFile::parse(&text).unwrap().aliases.len(), 40_000);
    }

    #[test]
    fn refuses_typos_bad_names_and_duplicates() {
        let typo = "aliases:\n  - context: a\n    alias: b\n    canonnical: https://x\n";
        assert!(matches!(AliasFile::parse(typo), Err(FileError::Yaml(_))));
        let bad = "aliases:\n  - context: a\n    alias: b/c\n    canonical: https://x\n";
        assert!(AliasFile::parse(bad).is_err());
        let dup = r#"{"aliases":[{"context":"a","alias":"b","canonical":"x"},
                                 {"context":"a","alias":"B","canonical":"y"}]}"#;
        assert!(matches!(AliasFile::parse(dup), Err(FileError::Duplicate { index: 1, .. })));
    }
}
