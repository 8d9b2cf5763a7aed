//! Pure, synchronous rules: no I/O, no clock (times are passed in), so all
//! of it is unit-tested without a database.
//!
//! - [`alias`]: validated requests and the stored alias record.
//! - [`governance`]: the rules document and the decisions it makes.
//! - [`conflict`]: what a create or an import meets, and what to do.
//! - [`rbac`]: who may do what, where — a decision table.

pub mod alias;
pub mod conflict;
pub mod governance;
pub mod rbac;
