//! The console's state: the API's, plus the sessions.

use std::sync::Arc;
use std::time::Instant;

use super::session::{self, Credential, Sessions};
use crate::web::Shared;

/// The console's state: the API's, plus the sessions.
#[derive(Debug)]
pub(crate) struct Console {
    pub(crate) app: Shared,
    pub(crate) sessions: Sessions,
}

pub(crate) type ConsoleState = Arc<Console>;

/// Opens a session for a credential that authenticated; returns the
/// cookie.
pub(crate) fn open_session(st: &Console, credential: String, owner: &str, secure: bool) -> String {
    let opened = st.sessions.open(Credential::new(credential), owner, Instant::now());
    session::set_cookie(&opened.id, opened.max_age, secure)
}
