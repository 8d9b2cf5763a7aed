//! What each subcommand does once its arguments are parsed
//! (`super::cli`), one module per family: send the request (a body of the
//! API's own request type), print the answer ([`super::output`]). Each
//! family's `run` returns the exit code it decided on: [`exit::OK`] unless
//! the command found something wrong itself, leaving the rest to the
//! writes' barriers.
//!
//! [`exit::OK`]: super::client::exit::OK

pub(crate) mod alias;
pub(crate) mod apply;
pub(crate) mod audit;
pub(crate) mod completions;
pub(crate) mod conflict;
pub(crate) mod edges;
pub(crate) mod export;
pub(crate) mod key;
pub(crate) mod resolve;
