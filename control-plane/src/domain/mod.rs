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
pub mod apply;
pub mod conflict;
pub mod governance;
pub mod import;
pub mod rbac;
