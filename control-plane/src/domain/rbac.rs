//! Who may do what, where. Deny by default: a pair (role, action) not in
//! the table is refused, and context-bound actions also need the context in
//! the principal's scope.

use nexus_protocol::{ContextScope, Role};

/// Everything a caller can ask of the control plane.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// Resolve an alias.
    Resolve,
    /// Read aliases and conflicts of a context.
    ReadAliases,
    /// Create, change, deactivate, import aliases of a context.
    WriteAliases,
    /// Settle a conflict in a context.
    ResolveConflict,
    /// Read the audit trail and verify its chain (all contexts mixed).
    ReadAudit,
    ReadGovernance,
    WriteGovernance,
    ManageApiKeys,
}

impl Action {
    pub const ALL: [Action; 8] = [
        Action::Resolve,
        Action::ReadAliases,
        Action::WriteAliases,
        Action::ResolveConflict,
        Action::ReadAudit,
        Action::ReadGovernance,
        Action::WriteGovernance,
        Action::ManageApiKeys,
    ];
}

/// Where an action applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope<'a> {
    /// One context.
    Context(&'a str),
    /// Data that mixes contexts: needs a principal scoped to all of them.
    Global,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Allow,
    /// The role never does this.
    DenyRole,
    /// The role does this, but not in this context.
    DenyContext,
}

/// Whether `role` may perform `action` at all (the table).
pub fn role_allows(role: Role, action: Action) -> bool {
    use Action::*;
    match role {
        Role::Admin => true,
        Role::Editor => matches!(
            action,
            Resolve | ReadAliases | WriteAliases | ResolveConflict | ReadAudit | ReadGovernance
        ),
        Role::Viewer => matches!(action, Resolve | ReadAliases | ReadAudit | ReadGovernance),
        Role::Resolver => matches!(action, Resolve),
    }
}

pub fn decide(role: Role, contexts: &ContextScope, action: Action, scope: Scope<'_>) -> Decision {
    if !role_allows(role, action) {
        return Decision::DenyRole;
    }
    // "admin: everything" — its contexts claim does not narrow it.
    if role == Role::Admin {
        return Decision::Allow;
    }
    let in_scope = match scope {
        Scope::Context(c) => contexts.allows(c),
        Scope::Global => *contexts == ContextScope::All,
    };
    if in_scope { Decision::Allow } else { Decision::DenyContext }
}

#[cfg(test)]
mod tests {
    use nexus_protocol::Context;

    use super::*;

    #[test]
    fn table() {
        use Action::*;
        let allowed: [(Role, &[Action]); 4] = [
            (Role::Admin, &Action::ALL),
            (
                Role::Editor,
                &[Resolve, ReadAliases, WriteAliases, ResolveConflict, ReadAudit, ReadGovernance],
            ),
            (Role::Viewer, &[Resolve, ReadAliases, ReadAudit, ReadGovernance]),
            (Role::Resolver, &[Resolve]),
        ];
        for (role, yes) in allowed {
            for action in Action::ALL {
                let want = if yes.contains(&action) { Decision::Allow } else { Decision::DenyRole };
                let got = decide(role, &ContextScope::All, action, Scope::Context("frontend"));
                assert_eq!(got, want, "{role:?} {action:?}");
            }
        }
    }

    #[test]
    fn contexts_bound_every_role() {
        let only = ContextScope::Only(vec![Context::parse("frontend").unwrap()]);
        let d = |role, action, scope| decide(role, &only, action, scope);
        assert_eq!(
            d(Role::Editor, Action::WriteAliases, Scope::Context("frontend")),
            Decision::Allow
        );
        assert_eq!(
            d(Role::Editor, Action::WriteAliases, Scope::Context("backend")),
            Decision::DenyContext
        );
        assert_eq!(d(Role::Admin, Action::ReadAudit, Scope::Global), Decision::Allow);
        assert_eq!(d(Role::Viewer, Action::ReadAudit, Scope::Global), Decision::DenyContext);
        assert_eq!(
            d(Role::Resolver, Action::Resolve, Scope::Context("backend")),
            Decision::DenyContext
        );
    }
}
