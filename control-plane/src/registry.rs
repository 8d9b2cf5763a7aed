//! The registry's use cases, shared by the admin API and the command line:
//! each checks what the governance rules say about a request, then has the
//! store carry out the domain's plan. Parsing the request and authorising
//! the caller (role and context) stay with the caller; status codes and
//! exit codes too. Ownership is decided by the plans, under the registry
//! lock, on the rows as they are: the caller passes its [`Writer`].

use chrono::{DateTime, Utc};
use std::collections::HashSet;

use nexus_protocol::{AliasEntry, AliasKey, Context};

use crate::domain::alias::{AliasPatch, NewAlias};
use crate::domain::governance::{Candidate, Governance, Violation};
use crate::domain::import::{ImportPolicy, ImportReport};
use crate::domain::rbac::Writer;
use crate::store::aliases::{Created, Updated};
use crate::store::apply::{Applied, ApplyBy};
use crate::store::{Actor, Store, StoreError};

/// Why a write was not done.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("governance rule {}: {}", .0.rule, .0.message)]
    Governance(Violation),
    /// An import entry broke a rule; nothing was written.
    #[error("entry {index} ({}/{}): governance rule {}: {}",
            key.context, key.alias, violation.rule, violation.message)]
    EntryGovernance { index: usize, key: AliasKey, violation: Violation },
    /// Under `reject`, the import met conflicts and wrote nothing.
    #[error("{} conflicts; nothing was written", .0.conflicts.len())]
    Refused(ImportReport),
    /// The import would replace aliases others own (`{context, alias,
    /// owner}` each); nothing was written.
    #[error("{} entries would replace aliases owned by others; nothing was written", .0.len())]
    NotOwner(Vec<serde_json::Value>),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Creates an alias the rules allow, under its context's shadowing policy.
pub async fn create(
    store: &Store,
    rules: &Governance,
    new: &NewAlias,
    actor: &Actor,
) -> Result<Created, WriteError> {
    rules.check(&new.candidate(), Utc::now()).map_err(WriteError::Governance)?;
    Ok(store.create_alias(new, rules.shadowing(&new.key.context), actor).await?)
}

/// Applies `patch` to the alias at `key` if `writer` may change it; the
/// result must satisfy the rules unless it is inactive.
pub(crate) async fn update(
    store: &Store,
    rules: &Governance,
    key: &AliasKey,
    patch: &AliasPatch,
    actor: &Actor,
    writer: &Writer,
) -> Result<Updated, StoreError> {
    store.update_alias(key, patch, rules, Utc::now(), actor, writer).await
}

/// Deactivates the active alias at `key` if `writer` may change it.
pub(crate) async fn deactivate(
    store: &Store,
    rules: &Governance,
    key: &AliasKey,
    actor: &Actor,
    writer: &Writer,
) -> Result<Updated, StoreError> {
    store.deactivate_alias(key, rules, actor, writer).await
}

/// Gives the alias at `key` the owner `to` (already parsed with
/// `domain::alias::parse_owner`; the caller checked `TransferOwnership`).
pub(crate) async fn transfer(
    store: &Store,
    key: &AliasKey,
    to: &str,
    actor: &Actor,
) -> Result<Updated, StoreError> {
    store.transfer_alias(key, to, actor).await
}

/// Imports `entries` as the control plane itself (the command line, dev
/// mode): [`import_by`] with a writer that ownership does not narrow.
pub async fn import(
    store: &Store,
    rules: &Governance,
    entries: &[AliasEntry],
    policy: ImportPolicy,
    dry_run: bool,
    actor: &Actor,
) -> Result<ImportReport, WriteError> {
    let writer = Writer::system(&actor.name);
    import_by(store, rules, entries, policy, dry_run, actor, &writer).await
}

/// Imports `entries` (distinct keys, checked by whoever parsed them) in one
/// transaction, once every entry satisfies the rules; `writer` may replace
/// only aliases it may change.
pub(crate) async fn import_by(
    store: &Store,
    rules: &Governance,
    entries: &[AliasEntry],
    policy: ImportPolicy,
    dry_run: bool,
    actor: &Actor,
    writer: &Writer,
) -> Result<ImportReport, WriteError> {
    check_entries(rules, entries, Utc::now())?;
    let report = store.import(entries, policy, dry_run, actor, writer, rules).await?;
    if !report.not_owned.is_empty() {
        return Err(WriteError::NotOwner(report.not_owned));
    }
    if report.refused(policy) {
        return Err(WriteError::Refused(report));
    }
    Ok(report)
}

/// Applies `entries` as the desired state of `contexts` (see
/// [`crate::domain::apply`]) once every active entry satisfies the rules
/// (what is deactivated need not).
pub(crate) async fn apply(
    store: &Store,
    rules: &Governance,
    entries: &[AliasEntry],
    contexts: &HashSet<Context>,
    options: ApplyOptions,
    actor: &Actor,
    writer: &Writer,
) -> Result<Applied, WriteError> {
    let now = Utc::now();
    for (index, e) in entries.iter().enumerate().filter(|(_, e)| e.is_active) {
        check_entries(rules, std::slice::from_ref(e), now).map_err(|err| match err {
            WriteError::EntryGovernance { key, violation, .. } => {
                WriteError::EntryGovernance { index, key, violation }
            }
            other => other,
        })?;
    }
    let ApplyOptions { prune, expected_version, dry_run } = options;
    let by = ApplyBy { actor, writer, rules };
    Ok(store.apply(entries, contexts, prune, expected_version, dry_run, by).await?)
}

/// How to apply: see [`apply`].
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct ApplyOptions {
    /// Deactivate active aliases the file lacks in the contexts named.
    pub prune: bool,
    /// Refuse unless the registry is at this version.
    pub expected_version: Option<i64>,
    pub dry_run: bool,
}

/// The first entry the rules refuse, if any.
pub(crate) fn check_entries(
    rules: &Governance,
    entries: &[AliasEntry],
    now: DateTime<Utc>,
) -> Result<(), WriteError> {
    for (index, e) in entries.iter().enumerate() {
        rules.check(&Candidate::from(e), now).map_err(|violation| WriteError::EntryGovernance {
            index,
            key: AliasKey { context: e.context.clone(), alias: e.alias.clone() },
            violation,
        })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use nexus_protocol::AliasFile;

    use super::*;

    #[test]
    fn the_first_refused_entry_is_named() {
        let rules = Governance::from_yaml(
            "defaults:\n  alias_pattern: '^[a-z-]+$'\n  max_alias_length: 40\n  \
             max_canonical_length: 100\n  allowed_schemes: [https]\n  reserved_names: [admin]\n",
        )
        .unwrap();
        let file = AliasFile::parse(
            "aliases:\n  - {context: f, alias: ok, canonical: 'https://a'}\n  \
             - {context: f, alias: admin, canonical: 'https://b'}\n",
        )
        .unwrap();
        let now = Utc::now();
        assert!(check_entries(&rules, &file.aliases[..1], now).is_ok());
        let err = check_entries(&rules, &file.aliases, now).unwrap_err();
        assert!(matches!(&err, WriteError::EntryGovernance { index: 1, violation, .. }
            if violation.rule == "reserved_names"));
        assert_eq!(
            err.to_string(),
            "entry 1 (f/admin): governance rule reserved_names: alias admin is reserved"
        );
    }
}
