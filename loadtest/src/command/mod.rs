//! What each subcommand does, one module per subcommand, once its
//! arguments are parsed (`crate::cli`): check everything before a runtime
//! starts, run, print (and write) the report. [`load`] is the run the two
//! load modes ([`http`], [`quic`]) share.

pub mod abuse;
pub mod generate;
pub mod http;
pub mod load;
pub mod peer;
pub mod probe;
pub mod quic;
pub mod token;
