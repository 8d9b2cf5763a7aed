//! Where the governance rules come from at start: the shipped rules, built
//! into the binary, unless `NEXUS_GOVERNANCE_FILE` names a file. Either way
//! the text is parsed the same way, before any port is bound, so the binary
//! works from any directory and a configured file is never silently ignored.
//!
//! Imports only [`crate::domain::governance`], itself a leaf, so the config
//! module stays importable from everywhere.

use std::borrow::Cow;
use std::fmt;
use std::path::PathBuf;

use crate::domain::governance::{Governance, GovernanceError};

/// The rules shipped in `deploy/config/alias_governance.yaml`, compiled in.
pub(crate) const BUILTIN: &str = include_str!("../../../deploy/config/alias_governance.yaml");

/// The variable that replaces the built-in rules with a file.
pub(crate) const VARIABLE: &str = "NEXUS_GOVERNANCE_FILE";

/// Where the rules come from.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) enum GovernanceSource {
    /// [`BUILTIN`]: `NEXUS_GOVERNANCE_FILE` unset or empty.
    #[default]
    Builtin,
    /// `NEXUS_GOVERNANCE_FILE=PATH`.
    File(PathBuf),
}

impl GovernanceSource {
    /// From the value of `NEXUS_GOVERNANCE_FILE`; empty means unset, so
    /// `NEXUS_GOVERNANCE_FILE=${X:-}` in compose keeps the default.
    pub(crate) fn from_value(value: Option<String>) -> Self {
        match value.filter(|v| !v.trim().is_empty()) {
            Some(path) => Self::File(path.into()),
            None => Self::Builtin,
        }
    }

    /// The rules document's text.
    pub(crate) fn text(&self) -> Result<Cow<'static, str>, LoadError> {
        match self {
            Self::Builtin => Ok(Cow::Borrowed(BUILTIN)),
            Self::File(path) => std::fs::read_to_string(path)
                .map(Cow::Owned)
                .map_err(|source| LoadError::Read { path: path.clone(), source }),
        }
    }

    /// Reads and compiles the rules.
    pub(crate) fn load(&self) -> Result<Governance, LoadError> {
        Governance::from_yaml(&self.text()?)
            .map_err(|e| LoadError::Invalid { origin: self.to_string(), source: Box::new(e) })
    }
}

impl fmt::Display for GovernanceSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Builtin => {
                f.write_str("the built-in rules (deploy/config/alias_governance.yaml)")
            }
            Self::File(path) => write!(f, "{VARIABLE}={}", path.display()),
        }
    }
}

/// Why the rules could not be loaded at start.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error(
        "{VARIABLE}={}: {source}; point it at a readable rules file, or unset it to use the \
         built-in rules",
        path.display()
    )]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("governance rules from {origin}: {source}")]
    Invalid {
        origin: String,
        // Boxed: a YAML error is large, and this is the rare path.
        #[source]
        source: Box<GovernanceError>,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHIPPED: &str =
        concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/config/alias_governance.yaml");

    #[test]
    fn the_builtin_rules_parse_and_are_the_shipped_file() {
        let builtin = GovernanceSource::from_value(None).load().unwrap();
        let file = GovernanceSource::File(SHIPPED.into()).load().unwrap();
        assert_eq!(builtin.document(), file.document());
        // What the file says, not merely something that parses.
        let doc = builtin.document();
        assert!(doc.strict_contexts);
        let contexts: Vec<&str> = doc.contexts.keys().map(|c| c.as_str()).collect();
        assert_eq!(contexts, ["backend", "frontend", "system"]);
        assert_eq!(GovernanceSource::from_value(Some(" ".into())), GovernanceSource::Builtin);
    }

    #[test]
    fn a_missing_file_names_the_variable_and_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("absent.yaml");
        let source = GovernanceSource::from_value(Some(path.display().to_string()));
        let e = source.load().unwrap_err().to_string();
        assert!(e.starts_with("NEXUS_GOVERNANCE_FILE="), "{e}");
        assert!(e.contains(&path.display().to_string()), "{e}");
    }

    #[test]
    fn a_bad_file_says_where_it_came_from() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.yaml");
        std::fs::write(&path, "strict_contexts: true\nno_such_rule: 1\n").unwrap();
        let e = GovernanceSource::File(path.clone()).load().unwrap_err().to_string();
        assert!(e.contains("NEXUS_GOVERNANCE_FILE=") && e.contains("bad.yaml"), "{e}");
    }
}
