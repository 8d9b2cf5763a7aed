//! The audit trail's own logic: the hash chain (pure) and the retention job.

pub mod chain;
pub mod retention;
