//! Pure, synchronous rules: no I/O, no clock (times are passed in), so all
//! of it is unit-tested without a database. Every write is decided here
//! first, as a plan over what the store read; the store only carries it out.
//!
//! - [`alias`]: validated requests, the stored alias, update plans.
//! - [`governance`]: the rules document and the decisions it makes.
//! - [`conflict`]: what a create meets, and how a conflict is settled.
//! - [`import`]: what a batch of entries does under an import policy.
//! - [`apply`]: what a desired state does: the per-alias plan (the file
//!   wins; `prune` deactivates what it lacks).
//! - [`rbac`]: who may do what, where — a decision table.

pub mod alias;
pub(crate) mod apply;
pub(crate) mod conflict;
pub mod governance;
pub mod import;
pub(crate) mod rbac;

/// What the domain's unit tests share: a small rule set and an editor.
#[cfg(test)]
pub(crate) mod fixtures {
    use super::governance::Governance;
    use super::rbac::Writer;

    /// Lower-case names up to 40, https canonicals up to 100.
    pub fn rules() -> Governance {
        Governance::from_yaml(
            "defaults:\n  alias_pattern: '^[a-z]+$'\n  max_alias_length: 40\n  \
             max_canonical_length: 100\n  allowed_schemes: [https]\n",
        )
        .unwrap()
    }

    /// An editor named alice.
    pub fn alice() -> Writer {
        Writer::new(nexus_protocol::Role::Editor, "alice", None)
    }
}
