//! Governance: the rules document (YAML file or `PUT /api/admin/governance`)
//! compiled once into a value, and the one decision it makes — does this
//! alias satisfy the rules of its context? A refusal names its rule.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use nexus_protocol::{AliasEntry, AliasName, Canonical, Context, KnownContexts};
use regex::Regex;
use serde::{Deserialize, Serialize};

/// A context's policy on an alias that is also active in another context.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ShadowPolicy {
    Allow,
    #[default]
    Record,
    Reject,
}

/// Schemes no rule can allow: they run code or read local files.
const FORBIDDEN_SCHEMES: &[&str] = &["javascript", "data", "file", "vbscript"];

/// The rules document as written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GovernanceDoc {
    /// When true, only contexts listed under `contexts` exist.
    #[serde(default)]
    pub strict_contexts: bool,
    pub defaults: RuleSet,
    #[serde(default)]
    pub contexts: BTreeMap<Context, RuleOverride>,
}

impl GovernanceDoc {
    /// The contexts these rules configure, as edges are told them: every
    /// context unless `strict_contexts`, else the listed ones.
    pub(crate) fn known_contexts(&self) -> KnownContexts {
        if self.strict_contexts {
            KnownContexts::only(self.contexts.keys().cloned())
        } else {
            KnownContexts::Any
        }
    }
}

/// The rules of one context.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleSet {
    pub alias_pattern: String,
    pub max_alias_length: usize,
    pub max_canonical_length: usize,
    pub allowed_schemes: Vec<String>,
    #[serde(default)]
    pub allowed_hosts: Vec<String>,
    #[serde(default)]
    pub reserved_names: Vec<String>,
    #[serde(default)]
    pub require_description: bool,
    #[serde(default)]
    pub max_ttl_days: Option<u32>,
    #[serde(default)]
    pub shadowing: ShadowPolicy,
    /// true: any editor of the context may change or deactivate any alias in
    /// it; false (the default): only the alias's owner (and admins) may.
    #[serde(default)]
    pub shared_ownership: bool,
}

/// What a context changes from the defaults; absent keys inherit.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleOverride {
    pub alias_pattern: Option<String>,
    pub max_alias_length: Option<usize>,
    pub max_canonical_length: Option<usize>,
    pub allowed_schemes: Option<Vec<String>>,
    pub allowed_hosts: Option<Vec<String>>,
    pub reserved_names: Option<Vec<String>>,
    pub require_description: Option<bool>,
    pub max_ttl_days: Option<u32>,
    pub shadowing: Option<ShadowPolicy>,
    pub shared_ownership: Option<bool>,
}

/// Why a rules document was refused.
#[derive(Debug, thiserror::Error)]
pub enum GovernanceError {
    #[error("invalid YAML: {0}")]
    Yaml(#[from] serde_saphyr::Error),
    #[error("context {context}: alias_pattern: {source}")]
    Pattern {
        context: String,
        #[source]
        source: regex::Error,
    },
    #[error("context {0}: allowed_schemes is empty")]
    NoSchemes(String),
    #[error("context {context}: scheme {scheme:?} can never be allowed")]
    ForbiddenScheme { context: String, scheme: String },
}

/// A rule that an alias broke.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub rule: &'static str,
    pub message: String,
}

fn violation(rule: &'static str, message: impl Into<String>) -> Violation {
    Violation { rule, message: message.into() }
}

/// What is checked: an alias as it would be stored.
#[derive(Debug, Clone, Copy)]
pub struct Candidate<'a> {
    pub context: &'a Context,
    pub alias: &'a AliasName,
    pub canonical: &'a Canonical,
    pub description: Option<&'a str>,
    pub expires_at: Option<DateTime<Utc>>,
}

/// An imported entry, checked like any alias (`NewAlias::candidate` and
/// `StoredAlias::candidate` give the other two sources).
impl<'a> From<&'a AliasEntry> for Candidate<'a> {
    fn from(e: &'a AliasEntry) -> Self {
        Candidate {
            context: &e.context,
            alias: &e.alias,
            canonical: &e.canonical,
            description: e.description.as_deref(),
            expires_at: e.expires_at,
        }
    }
}

#[derive(Debug, Clone)]
struct Compiled {
    rules: RuleSet,
    pattern: Regex,
}

impl Compiled {
    fn new(name: &str, rules: RuleSet) -> Result<Self, GovernanceError> {
        let pattern = Regex::new(&rules.alias_pattern)
            .map_err(|source| GovernanceError::Pattern { context: name.to_owned(), source })?;
        if rules.allowed_schemes.is_empty() {
            return Err(GovernanceError::NoSchemes(name.to_owned()));
        }
        if let Some(s) = rules.allowed_schemes.iter().find(|s| forbidden(s)) {
            return Err(GovernanceError::ForbiddenScheme {
                context: name.to_owned(),
                scheme: s.clone(),
            });
        }
        Ok(Self { rules, pattern })
    }
}

fn forbidden(scheme: &str) -> bool {
    FORBIDDEN_SCHEMES.iter().any(|f| f.eq_ignore_ascii_case(scheme))
}

/// The rules in force, compiled.
#[derive(Debug, Clone)]
pub struct Governance {
    doc: GovernanceDoc,
    defaults: Compiled,
    contexts: BTreeMap<Context, Compiled>,
}

impl Governance {
    pub fn from_yaml(text: &str) -> Result<Self, GovernanceError> {
        Self::compile(serde_saphyr::from_str(text)?)
    }

    pub fn compile(doc: GovernanceDoc) -> Result<Self, GovernanceError> {
        let defaults = Compiled::new("defaults", doc.defaults.clone())?;
        let mut contexts = BTreeMap::new();
        for (ctx, o) in &doc.contexts {
            let d = &doc.defaults;
            let rules = RuleSet {
                alias_pattern: o.alias_pattern.clone().unwrap_or_else(|| d.alias_pattern.clone()),
                max_alias_length: o.max_alias_length.unwrap_or(d.max_alias_length),
                max_canonical_length: o.max_canonical_length.unwrap_or(d.max_canonical_length),
                allowed_schemes: o
                    .allowed_schemes
                    .clone()
                    .unwrap_or_else(|| d.allowed_schemes.clone()),
                allowed_hosts: o.allowed_hosts.clone().unwrap_or_else(|| d.allowed_hosts.clone()),
                reserved_names: o
                    .reserved_names
                    .clone()
                    .unwrap_or_else(|| d.reserved_names.clone()),
                require_description: o.require_description.unwrap_or(d.require_description),
                max_ttl_days: o.max_ttl_days.or(d.max_ttl_days),
                shadowing: o.shadowing.unwrap_or(d.shadowing),
                shared_ownership: o.shared_ownership.unwrap_or(d.shared_ownership),
            };
            contexts.insert(ctx.clone(), Compiled::new(ctx.as_str(), rules)?);
        }
        Ok(Self { doc, defaults, contexts })
    }

    pub fn document(&self) -> &GovernanceDoc {
        &self.doc
    }

    /// Whether `context` exists under these rules.
    pub fn knows(&self, context: &Context) -> bool {
        !self.doc.strict_contexts || self.contexts.contains_key(context)
    }

    fn rules_for(&self, context: &Context) -> &Compiled {
        self.contexts.get(context).unwrap_or(&self.defaults)
    }

    pub fn shadowing(&self, context: &Context) -> ShadowPolicy {
        self.rules_for(context).rules.shadowing
    }

    /// Whether any editor of `context` may change any alias in it, whoever
    /// owns it (see `domain::rbac::may_change`).
    pub(crate) fn shared_ownership(&self, context: &Context) -> bool {
        self.rules_for(context).rules.shared_ownership
    }

    /// Checks every rule, in the order a user would fix them.
    pub fn check(&self, c: &Candidate<'_>, now: DateTime<Utc>) -> Result<(), Violation> {
        if !self.knows(c.context) {
            return Err(violation(
                "known_context",
                format!("context {} is not configured", c.context),
            ));
        }
        let compiled = self.rules_for(c.context);
        let r = &compiled.rules;
        let alias = c.alias.as_str();
        if alias.len() > r.max_alias_length {
            return Err(violation(
                "max_alias_length",
                format!(
                    "alias is {} bytes; at most {} are allowed",
                    alias.len(),
                    r.max_alias_length
                ),
            ));
        }
        if !compiled.pattern.is_match(alias) {
            return Err(violation(
                "alias_pattern",
                format!("alias {alias} does not match {}", r.alias_pattern),
            ));
        }
        if r.reserved_names.iter().any(|n| n.eq_ignore_ascii_case(alias)) {
            return Err(violation("reserved_names", format!("alias {alias} is reserved")));
        }
        check_canonical(r, c.canonical)?;
        let described = c.description.is_some_and(|d| !d.trim().is_empty());
        if r.require_description && !described {
            return Err(violation(
                "require_description",
                format!("context {} requires a description", c.context),
            ));
        }
        if let Some(exp) = c.expires_at {
            if exp <= now {
                return Err(violation("expires_at_future", "expires_at is in the past"));
            }
            // A limit past the end of representable time is no limit: `now +
            // days` would overflow (and panic) for max_ttl_days near u32::MAX.
            if let Some(days) = r.max_ttl_days
                && now
                    .checked_add_signed(Duration::days(i64::from(days)))
                    .is_some_and(|max| exp > max)
            {
                return Err(violation(
                    "max_ttl_days",
                    format!("expires_at is more than {days} days away"),
                ));
            }
        }
        Ok(())
    }
}

fn check_canonical(r: &RuleSet, canonical: &Canonical) -> Result<(), Violation> {
    let raw = canonical.as_str();
    if raw.len() > r.max_canonical_length {
        return Err(violation(
            "max_canonical_length",
            format!(
                "canonical is {} bytes; at most {} are allowed",
                raw.len(),
                r.max_canonical_length
            ),
        ));
    }
    let url = url::Url::parse(raw).map_err(|e| {
        violation("canonical_url", format!("canonical is not an absolute URL: {e}"))
    })?;
    let scheme = url.scheme();
    if forbidden(scheme) || !r.allowed_schemes.iter().any(|s| s.eq_ignore_ascii_case(scheme)) {
        return Err(violation("allowed_schemes", format!("scheme {scheme:?} is not allowed")));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(violation("no_credentials", "canonical must not carry user:password@"));
    }
    let Some(host) = url.host_str() else {
        return Err(violation("canonical_url", "canonical has no host"));
    };
    if !r.allowed_hosts.is_empty() && !r.allowed_hosts.iter().any(|p| host_matches(p, host)) {
        return Err(violation("allowed_hosts", format!("host {host} is not allowed")));
    }
    Ok(())
}

/// `api.nexus.com` matches itself; `*.nexus.com` matches any subdomain.
fn host_matches(pattern: &str, host: &str) -> bool {
    match pattern.strip_prefix("*.") {
        Some(suffix) => host.len().checked_sub(suffix.len() + 1).is_some_and(|cut| {
            host.as_bytes()[cut] == b'.' && host[cut + 1..].eq_ignore_ascii_case(suffix)
        }),
        None => pattern.eq_ignore_ascii_case(host),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = "
strict_contexts: true
defaults:
  alias_pattern: '^[a-z][a-z0-9._-]*$'
  max_alias_length: 40
  max_canonical_length: 100
  allowed_schemes: [https]
  allowed_hosts: ['*.nexus.com', 'nexus.com']
  reserved_names: [admin]
  max_ttl_days: 30
contexts:
  frontend:
    require_description: true
  backend: {}
";

    fn check(
        ctx: &str,
        alias: &str,
        canonical: &str,
        desc: Option<&str>,
        ttl: Option<i64>,
    ) -> Result<(), &'static str> {
        let g = Governance::from_yaml(DOC).unwrap();
        let now = Utc::now();
        let entry = AliasEntry {
            context: Context::parse(ctx).unwrap(),
            alias: AliasName::parse(alias).unwrap(),
            canonical: Canonical::parse(canonical).unwrap(),
            description: desc.map(str::to_owned),
            expires_at: ttl.map(|d| now + Duration::days(d)),
            is_active: true,
        };
        let cand = Candidate::from(&entry);
        g.check(&cand, now).map_err(|v| v.rule)
    }

    #[test]
    fn each_rule_refuses_with_its_name() {
        let ok = "https://api.nexus.com/v1";
        assert_eq!(check("backend", "users", ok, None, Some(10)), Ok(()));
        assert_eq!(check("frontend", "users", ok, Some("d"), None), Ok(()));
        assert_eq!(check("system", "users", ok, None, None), Err("known_context"));
        assert_eq!(check("backend", &"a".repeat(41), ok, None, None), Err("max_alias_length"));
        assert_eq!(check("backend", "1x", ok, None, None), Err("alias_pattern"));
        assert_eq!(check("backend", "Admin", ok, None, None), Err("reserved_names"));
        assert_eq!(check("backend", "a", "not-a-url", None, None), Err("canonical_url"));
        assert_eq!(
            check("backend", "a", "javascript:alert(1)", None, None),
            Err("allowed_schemes")
        );
        assert_eq!(
            check("backend", "a", "http://api.nexus.com", None, None),
            Err("allowed_schemes")
        );
        assert_eq!(
            check("backend", "a", "https://u:p@api.nexus.com", None, None),
            Err("no_credentials")
        );
        assert_eq!(check("backend", "a", "https://evil.com/x", None, None), Err("allowed_hosts"));
        assert_eq!(
            check("backend", "a", "https://nexus.com.evil.com", None, None),
            Err("allowed_hosts")
        );
        let long = format!("https://api.nexus.com/{}", "x".repeat(100));
        assert_eq!(check("backend", "a", &long, None, None), Err("max_canonical_length"));
        assert_eq!(check("frontend", "a", ok, None, None), Err("require_description"));
        assert_eq!(check("frontend", "a", ok, Some("  "), None), Err("require_description"));
        assert_eq!(check("backend", "a", ok, None, Some(31)), Err("max_ttl_days"));
        assert_eq!(check("backend", "a", ok, None, Some(-1)), Err("expires_at_future"));
    }

    #[test]
    fn bad_documents_are_refused() {
        assert!(Governance::from_yaml("defaults: {}").is_err());
        let bad_re = DOC.replace("'^[a-z][a-z0-9._-]*$'", "'('");
        assert!(matches!(Governance::from_yaml(&bad_re), Err(GovernanceError::Pattern { .. })));
        let js = DOC.replace("[https]", "[https, javascript]");
        assert!(matches!(Governance::from_yaml(&js), Err(GovernanceError::ForbiddenScheme { .. })));
        assert!(Governance::from_yaml(&DOC.replace("backend: {}", "backend: {typo: 1}")).is_err());
    }

    #[test]
    fn a_ttl_limit_past_the_end_of_time_does_not_overflow() {
        // Found with the governance fuzz target (control-plane/fuzz): `now +
        // Duration::days(u32::MAX)` panicked inside `check`.
        let doc = DOC.replace("max_ttl_days: 30", "max_ttl_days: 4294967295");
        let g = Governance::from_yaml(&doc).unwrap();
        let entry = AliasEntry {
            context: Context::parse("backend").unwrap(),
            alias: AliasName::parse("users").unwrap(),
            canonical: Canonical::parse("https://api.nexus.com/v1").unwrap(),
            description: None,
            expires_at: Some(DateTime::<Utc>::MAX_UTC),
            is_active: true,
        };
        assert_eq!(g.check(&Candidate::from(&entry), Utc::now()), Ok(()));
    }

    #[test]
    fn host_patterns() {
        assert!(host_matches("*.nexus.com", "api.nexus.com"));
        assert!(!host_matches("*.nexus.com", "nexus.com"));
        assert!(!host_matches("*.nexus.com", "apinexus.com"));
        assert!(host_matches("nexus.com", "NEXUS.com"));
    }

    #[test]
    fn the_shipped_file_compiles() {
        let text = include_str!("../../../deploy/config/alias_governance.yaml");
        let g = Governance::from_yaml(text).unwrap();
        assert!(g.knows(&Context::parse("frontend").unwrap()));
        assert!(!g.shared_ownership(&Context::parse("frontend").unwrap()));
    }

    #[test]
    fn shared_ownership_defaults_off_and_a_context_may_turn_it_on() {
        // A document written before the rule existed still compiles: owned.
        let g = Governance::from_yaml(DOC).unwrap();
        assert!(!g.shared_ownership(&Context::parse("backend").unwrap()));
        let doc = DOC.replace("backend: {}", "backend: {shared_ownership: true}");
        let g = Governance::from_yaml(&doc).unwrap();
        assert!(g.shared_ownership(&Context::parse("backend").unwrap()));
        assert!(!g.shared_ownership(&Context::parse("frontend").unwrap()));
        // Other contexts take the defaults.
        let all =
            DOC.replace("  max_ttl_days: 30\n", "  max_ttl_days: 30\n  shared_ownership: true\n");
        let g = Governance::from_yaml(&all).unwrap();
        assert!(g.shared_ownership(&Context::parse("frontend").unwrap()));
    }
}
