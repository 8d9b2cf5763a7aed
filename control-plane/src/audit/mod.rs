//! The audit trail's own logic: the hash chain (pure) and the retention job.

pub(crate) mod chain;
pub(crate) mod retention;
