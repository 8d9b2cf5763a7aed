//! One module per console page. Each handler parses, authorises with the
//! API's [`crate::web::caller::Caller`], calls the function the API
//! handler calls, and renders.

pub mod alias;
pub mod aliases;
pub mod audit;
pub mod conflicts;
pub mod fleet;
pub mod governance;
pub mod import;
pub mod keys;
pub mod overview;
pub mod sign_in;
