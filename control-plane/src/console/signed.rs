//! A signed-in admin, as every page sees one: what it may do decides which
//! controls a page shows. How a request becomes one (session, origin and
//! form-token checks) is [`super::extract`]'s.

use crate::domain::rbac::{Action, Decision, Scope, decide, role_allows};
use crate::web::caller::Caller;

/// A signed-in admin: the session's credential, authenticated again for
/// this request, as the API's [`Caller`].
#[derive(Debug, Clone)]
pub(crate) struct Signed {
    pub(crate) caller: Caller,
    /// The session's synchronizer token, for the forms this page renders.
    pub(crate) csrf: String,
    pub(crate) session_id: String,
}

impl Signed {
    /// Whether a control for `action` in `scope` is shown (the server
    /// checks again with [`Caller::may`] when the form comes back).
    pub(crate) fn can(&self, action: Action, scope: Scope<'_>) -> bool {
        let p = &self.caller.principal;
        decide(p.role, &p.contexts, action, scope) == Decision::Allow
    }

    /// Whether the role may do `action` somewhere.
    pub(crate) fn can_somewhere(&self, action: Action) -> bool {
        role_allows(self.caller.principal.role, action)
    }
}
