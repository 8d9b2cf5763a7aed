//! Who may do what, where. Deny by default: a pair (role, action) not in
//! the table is refused, and context-bound actions also need the context in
//! the principal's scope. Changing an existing alias also needs ownership
//! ([`may_change`]): an editor changes its own aliases, unless the context
//! shares them; admins change any, and transfer them.

use nexus_protocol::{ContextScope, Role};

/// Everything a caller can ask of the control plane.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Action {
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
    /// Revoke tokens, by id or by subject, on every plane and edge.
    RevokeTokens,
    /// Give an alias another owner.
    TransferOwnership,
}

impl Action {
    #[cfg(test)]
    pub(crate) const ALL: [Action; 10] = [
        Action::Resolve,
        Action::ReadAliases,
        Action::WriteAliases,
        Action::ResolveConflict,
        Action::ReadAudit,
        Action::ReadGovernance,
        Action::WriteGovernance,
        Action::ManageApiKeys,
        Action::RevokeTokens,
        Action::TransferOwnership,
    ];
}

/// Where an action applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scope<'a> {
    /// One context.
    Context(&'a str),
    /// Data that mixes contexts: needs a principal scoped to all of them.
    Global,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Decision {
    Allow,
    /// The role never does this.
    DenyRole,
    /// The role does this, but not in this context.
    DenyContext,
}

/// Whether `role` may perform `action` at all (the table).
pub(crate) fn role_allows(role: Role, action: Action) -> bool {
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

pub(crate) fn decide(
    role: Role,
    contexts: &ContextScope,
    action: Action,
    scope: Scope<'_>,
) -> Decision {
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

/// A writer as ownership sees it: the owner name of the aliases it
/// creates, and whether it may change aliases whatever their owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Writer {
    /// The owner name of what it creates: `team:<team>` when its token
    /// carries a team claim, else the principal's name.
    pub owner: String,
    /// The principal's own name (token subject, or `api_key:<id>:<name>`):
    /// what it created before it had a team stays its own.
    pub name: String,
    pub any_owner: bool,
}

impl Writer {
    /// Admins change any alias; every other role only its own and its
    /// team's.
    pub(crate) fn new(role: Role, name: &str, team: Option<&str>) -> Self {
        Writer {
            owner: nexus_protocol::token::owner_name(name, team),
            name: name.to_owned(),
            any_owner: role == Role::Admin,
        }
    }

    /// The control plane itself (`nexus-control-plane import`, dev mode's
    /// samples): whoever can run it holds the database, so it is not
    /// narrowed.
    pub(crate) fn system(name: &str) -> Self {
        Writer { owner: name.to_owned(), name: name.to_owned(), any_owner: true }
    }
}

/// Whether `writer` may change or deactivate an alias owned by `owner` in a
/// context whose governance sets `shared_ownership` to `shared`. The role
/// and context checks ([`decide`], `WriteAliases`) come first.
pub(crate) fn may_change(writer: &Writer, owner: &str, shared: bool) -> bool {
    writer.any_owner || shared || writer.owner == owner || writer.name == owner
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

    #[test]
    fn ownership_table() {
        // (role, writer name, its team, owner, shared context) -> may change
        let cases = [
            (Role::Editor, "alice", None, "alice", false, true),
            (Role::Editor, "alice", Some("pay"), "team:pay", false, true),
            // What alice made before she had a team is still hers.
            (Role::Editor, "alice", Some("pay"), "alice", false, true),
            (Role::Editor, "alice", Some("pay"), "team:search", false, false),
            (Role::Editor, "alice", None, "team:pay", false, false),
            (Role::Editor, "bob", Some("pay"), "alice", false, false),
            (Role::Editor, "alice", None, "bob", false, false),
            (Role::Editor, "alice", None, "bob", true, true),
            (Role::Editor, "api_key:3:ci", None, "api_key:3:ci", false, true),
            (Role::Editor, "api_key:4:ci", None, "api_key:3:ci", false, false),
            (Role::Editor, "alice", None, "system:unknown", false, false),
            (Role::Admin, "root", None, "bob", false, true),
            (Role::Admin, "root", None, "system:unknown", false, true),
        ];
        for (role, name, team, owner, shared, want) in cases {
            let w = Writer::new(role, name, team);
            assert_eq!(
                may_change(&w, owner, shared),
                want,
                "{role:?} {name} {team:?} on {owner}'s"
            );
        }
        assert!(may_change(&Writer::system("system:cli-import"), "bob", false));
        // Transferring is an admin's alone, whatever the contexts.
        for role in [Role::Editor, Role::Viewer, Role::Resolver] {
            let d =
                decide(role, &ContextScope::All, Action::TransferOwnership, Scope::Context("f"));
            assert_eq!(d, Decision::DenyRole);
        }
    }
}
