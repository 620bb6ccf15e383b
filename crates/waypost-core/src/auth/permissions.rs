//! The permission table: for every [`Action`], the roles that may perform it
//! and the API key scope (if any) that unlocks it. Role checks, scope checks,
//! the README table and the tests all read [`roles_for`] and [`scope_for`], so
//! a permission cannot be granted in one place and forgotten in another.

use super::roles::{Action, Role, Scope};

use Role::{Admin, Agent, Analyst, Developer, Owner};

/// The single source of truth for member permissions. Least privilege: each
/// role lists only what its job needs; owner and admin differ only in rank.
const fn roles_for(action: Action) -> &'static [Role] {
    match action {
        Action::MessagesSend => &[Owner, Admin, Developer, Agent],
        Action::MessagesRead => &[Owner, Admin, Developer, Agent, Analyst],
        Action::ContactsRead => &[Owner, Admin, Developer, Agent, Analyst],
        Action::ContactsWrite => &[Owner, Admin, Developer, Agent],
        Action::TemplatesRead => &[Owner, Admin, Developer, Agent, Analyst],
        Action::TemplatesWrite => &[Owner, Admin, Developer],
        Action::ChannelsManage => &[Owner, Admin, Developer],
        Action::WebhooksManage => &[Owner, Admin, Developer],
        Action::ShieldScan => &[Owner, Admin, Developer, Agent],
        // Audit logs and privacy requests expose every contact's data and
        // every member's activity, so they stay with the workspace's stewards.
        Action::AuditRead => &[Owner, Admin],
        Action::PrivacyManage => &[Owner, Admin],
        // A broadcast speaks for the business to thousands at once.
        Action::CampaignsManage => &[Owner, Admin],
        // What the workspace used and what it costs: a report, like the analytics.
        Action::UsageRead => &[Owner, Admin, Analyst],
        Action::ApiKeysManage => &[Owner, Admin, Developer],
        Action::MembersManage => &[Owner, Admin],
        Action::MembersRead => &[Owner, Admin, Developer, Agent, Analyst],
        Action::WorkspaceManage => &[Owner, Admin],
        Action::ElevationGrant => &[Owner, Admin],
        // Irreversible for everyone in it: the owners alone decide.
        Action::WorkspaceDelete => &[Owner],
        // Commits the business to payments: the owners alone.
        Action::BillingManage => &[Owner],
    }
}

/// Whether a member with `role` may perform `action`.
pub fn role_allows(role: Role, action: Action) -> bool {
    roles_for(action).contains(&role)
}

/// The scope an API key needs for `action`; `None` means API keys can never
/// perform it (member management, key management, settings, elevation), so a
/// leaked key cannot be used to entrench itself.
pub fn scope_for(action: Action) -> Option<Scope> {
    Scope::ALL
        .into_iter()
        .find(|scope| scope.action() == action)
}

/// One row of the permission table, for documentation and admin UIs.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PermissionRow {
    pub action: Action,
    pub roles: Vec<Role>,
    pub scope: Option<Scope>,
}

/// The whole table, one row per [`Action`] in declaration order.
pub fn permission_table() -> Vec<PermissionRow> {
    Action::ALL
        .into_iter()
        .map(|action| PermissionRow {
            action,
            roles: roles_for(action).to_vec(),
            scope: scope_for(action),
        })
        .collect()
}

/// The table as GitHub-flavoured Markdown, generated so the README cannot
/// drift from the code.
pub fn permission_table_markdown() -> String {
    let mut out = String::from("| Action |");
    for role in Role::ALL {
        out.push_str(&format!(" {role} |"));
    }
    out.push_str(" API key scope |\n|---|");
    for _ in Role::ALL {
        out.push_str(":-:|");
    }
    out.push_str("---|\n");
    for row in permission_table() {
        out.push_str(&format!("| `{}` |", row.action));
        for role in Role::ALL {
            out.push_str(if row.roles.contains(&role) {
                " ✓ |"
            } else {
                " |"
            });
        }
        match row.scope {
            Some(scope) => out.push_str(&format!(" `{scope}` |\n")),
            None => out.push_str(" — (members only) |\n"),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The full matrix, spelled out independently of `roles_for` so that any
    /// change to the table must be made twice, deliberately.
    /// Columns: owner, admin, developer, agent, analyst.
    const EXPECTED: [(Action, [bool; 5]); 20] = [
        (Action::MessagesSend, [true, true, true, true, false]),
        (Action::MessagesRead, [true, true, true, true, true]),
        (Action::ContactsRead, [true, true, true, true, true]),
        (Action::ContactsWrite, [true, true, true, true, false]),
        (Action::TemplatesRead, [true, true, true, true, true]),
        (Action::TemplatesWrite, [true, true, true, false, false]),
        (Action::ChannelsManage, [true, true, true, false, false]),
        (Action::WebhooksManage, [true, true, true, false, false]),
        (Action::ShieldScan, [true, true, true, true, false]),
        (Action::AuditRead, [true, true, false, false, false]),
        (Action::PrivacyManage, [true, true, false, false, false]),
        (Action::CampaignsManage, [true, true, false, false, false]),
        (Action::UsageRead, [true, true, false, false, true]),
        (Action::ApiKeysManage, [true, true, true, false, false]),
        (Action::MembersManage, [true, true, false, false, false]),
        (Action::MembersRead, [true, true, true, true, true]),
        (Action::WorkspaceManage, [true, true, false, false, false]),
        (Action::ElevationGrant, [true, true, false, false, false]),
        (Action::WorkspaceDelete, [true, false, false, false, false]),
        (Action::BillingManage, [true, false, false, false, false]),
    ];

    #[test]
    fn the_matrix_is_exactly_as_documented() {
        assert_eq!(
            EXPECTED.map(|(a, _)| a),
            Action::ALL,
            "every action is covered"
        );
        for (action, allowed) in EXPECTED {
            for (role, expected) in Role::ALL.into_iter().zip(allowed) {
                assert_eq!(role_allows(role, action), expected, "{role} / {action}");
            }
        }
    }

    #[test]
    fn owner_may_do_everything() {
        assert!(Action::ALL.into_iter().all(|a| role_allows(Owner, a)));
    }

    #[test]
    fn analyst_is_read_only() {
        let allowed: Vec<Action> = Action::ALL
            .into_iter()
            .filter(|a| role_allows(Analyst, *a))
            .collect();
        assert_eq!(
            allowed,
            vec![
                Action::MessagesRead,
                Action::ContactsRead,
                Action::TemplatesRead,
                Action::UsageRead,
                Action::MembersRead
            ]
        );
    }

    #[test]
    fn every_scope_maps_from_exactly_one_action() {
        for scope in Scope::ALL {
            let actions: Vec<Action> = Action::ALL
                .into_iter()
                .filter(|a| scope_for(*a) == Some(scope))
                .collect();
            assert_eq!(actions, vec![scope.action()], "{scope}");
        }
    }

    #[test]
    fn member_only_actions_have_no_scope() {
        for action in [
            Action::ApiKeysManage,
            Action::MembersManage,
            Action::MembersRead,
            Action::WorkspaceManage,
            Action::ElevationGrant,
            Action::WorkspaceDelete,
            Action::BillingManage,
        ] {
            assert_eq!(scope_for(action), None, "{action}");
        }
        assert_eq!(
            Action::ALL
                .iter()
                .filter(|a| scope_for(**a).is_some())
                .count(),
            Scope::ALL.len()
        );
    }

    #[test]
    fn table_rows_match_the_functions() {
        let table = permission_table();
        assert_eq!(table.len(), Action::ALL.len());
        for row in table {
            for role in Role::ALL {
                assert_eq!(row.roles.contains(&role), role_allows(role, row.action));
            }
            assert_eq!(row.scope, scope_for(row.action));
        }
    }

    #[test]
    fn markdown_has_a_header_and_one_line_per_action() {
        let md = permission_table_markdown();
        let lines: Vec<&str> = md.lines().collect();
        assert_eq!(lines.len(), 2 + Action::ALL.len());
        assert_eq!(
            lines[0],
            "| Action | owner | admin | developer | agent | analyst | API key scope |"
        );
        assert_eq!(lines[1], "|---|:-:|:-:|:-:|:-:|:-:|---|");
        assert_eq!(
            lines[2],
            "| `messages:send` | ✓ | ✓ | ✓ | ✓ | | `messages:send` |"
        );
        assert!(md.contains("| `audit:read` | ✓ | ✓ | | | | `audit:read` |"));
        assert!(md.contains("| `members:manage` | ✓ | ✓ | | | | — (members only) |"));
        for line in &lines {
            assert_eq!(line.matches('|').count(), 8, "{line}");
        }
    }
}
