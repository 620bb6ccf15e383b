//! The vocabulary of authorisation: member roles, API key scopes and the
//! protected actions they are checked against. The string forms are stable
//! identifiers stored in the database and shown in the API, so they never
//! change once released.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Longest unknown input echoed back in an error, so a pasted blob cannot
/// flood a log line or a problem+json body.
const MAX_ECHO: usize = 64;

fn echo(input: &str) -> String {
    input.chars().take(MAX_ECHO).collect()
}

/// A workspace member's role. Permissions come from the table in
/// `permissions.rs`, not from the order of roles: `rank` only limits which
/// roles a member may hand out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Owner,
    Admin,
    Developer,
    Agent,
    Analyst,
}

/// The input was not one of the role names.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown role `{0}`; expected one of owner, admin, developer, agent, analyst")]
pub struct UnknownRole(pub String);

impl Role {
    pub const ALL: [Role; 5] = [
        Role::Owner,
        Role::Admin,
        Role::Developer,
        Role::Agent,
        Role::Analyst,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Admin => "admin",
            Role::Developer => "developer",
            Role::Agent => "agent",
            Role::Analyst => "analyst",
        }
    }

    /// Used only to decide who may grant which role (see [`Role::may_grant`]);
    /// a higher rank does not imply every permission of a lower one.
    pub const fn rank(self) -> u8 {
        match self {
            Role::Owner => 4,
            Role::Admin => 3,
            Role::Developer => 2,
            Role::Agent => 1,
            Role::Analyst => 0,
        }
    }

    /// A member may invite someone as, or change someone to, a role of rank
    /// at most their own, so nobody can mint a role above themselves.
    pub const fn may_grant(self, role: Role) -> bool {
        role.rank() <= self.rank()
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = UnknownRole;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| UnknownRole(echo(s)))
    }
}

/// What an API key may be used for. Each scope unlocks exactly one [`Action`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scope {
    MessagesSend,
    MessagesRead,
    ContactsRead,
    ContactsWrite,
    TemplatesRead,
    TemplatesWrite,
    ChannelsManage,
    WebhooksManage,
    ShieldScan,
    AuditRead,
    PrivacyManage,
    CampaignsManage,
    UsageRead,
}

/// The input was not one of the scope names; carries the (truncated) input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown scope `{0}`")]
pub struct UnknownScope(pub String);

impl Scope {
    pub const ALL: [Scope; 13] = [
        Scope::MessagesSend,
        Scope::MessagesRead,
        Scope::ContactsRead,
        Scope::ContactsWrite,
        Scope::TemplatesRead,
        Scope::TemplatesWrite,
        Scope::ChannelsManage,
        Scope::WebhooksManage,
        Scope::ShieldScan,
        Scope::AuditRead,
        Scope::PrivacyManage,
        Scope::CampaignsManage,
        Scope::UsageRead,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            Scope::MessagesSend => "messages:send",
            Scope::MessagesRead => "messages:read",
            Scope::ContactsRead => "contacts:read",
            Scope::ContactsWrite => "contacts:write",
            Scope::TemplatesRead => "templates:read",
            Scope::TemplatesWrite => "templates:write",
            Scope::ChannelsManage => "channels:manage",
            Scope::WebhooksManage => "webhooks:manage",
            Scope::ShieldScan => "shield:scan",
            Scope::AuditRead => "audit:read",
            Scope::PrivacyManage => "privacy:manage",
            Scope::CampaignsManage => "campaigns:manage",
            Scope::UsageRead => "usage:read",
        }
    }

    /// The one action this scope unlocks.
    pub const fn action(self) -> Action {
        match self {
            Scope::MessagesSend => Action::MessagesSend,
            Scope::MessagesRead => Action::MessagesRead,
            Scope::ContactsRead => Action::ContactsRead,
            Scope::ContactsWrite => Action::ContactsWrite,
            Scope::TemplatesRead => Action::TemplatesRead,
            Scope::TemplatesWrite => Action::TemplatesWrite,
            Scope::ChannelsManage => Action::ChannelsManage,
            Scope::WebhooksManage => Action::WebhooksManage,
            Scope::ShieldScan => Action::ShieldScan,
            Scope::AuditRead => Action::AuditRead,
            Scope::PrivacyManage => Action::PrivacyManage,
            Scope::CampaignsManage => Action::CampaignsManage,
            Scope::UsageRead => Action::UsageRead,
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Scope {
    type Err = UnknownScope;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Scope::ALL
            .into_iter()
            .find(|scope| scope.as_str() == s)
            .ok_or_else(|| UnknownScope(echo(s)))
    }
}

impl Serialize for Scope {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Scope {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Every protected operation. The first thirteen mirror the scopes; the rest are
/// only ever performed by a signed-in member, never by an API key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Action {
    MessagesSend,
    MessagesRead,
    ContactsRead,
    ContactsWrite,
    TemplatesRead,
    TemplatesWrite,
    ChannelsManage,
    WebhooksManage,
    ShieldScan,
    AuditRead,
    PrivacyManage,
    /// Create campaigns, check them before start, start them.
    CampaignsManage,
    /// Read the workspace's metered usage and its estimated cost.
    UsageRead,
    /// Create, list and revoke API keys.
    ApiKeysManage,
    /// Invite, remove and change the role of members.
    MembersManage,
    /// See who is in the workspace.
    MembersRead,
    /// Workspace settings such as requiring MFA.
    WorkspaceManage,
    /// Grant a member temporary elevated access.
    ElevationGrant,
    /// Delete the whole workspace (after a grace period).
    WorkspaceDelete,
    /// Start a subscription and manage it (Stripe Checkout and Billing Portal).
    BillingManage,
}

/// The input was not one of the action names.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown action `{0}`")]
pub struct UnknownAction(pub String);

impl Action {
    pub const ALL: [Action; 20] = [
        Action::MessagesSend,
        Action::MessagesRead,
        Action::ContactsRead,
        Action::ContactsWrite,
        Action::TemplatesRead,
        Action::TemplatesWrite,
        Action::ChannelsManage,
        Action::WebhooksManage,
        Action::ShieldScan,
        Action::AuditRead,
        Action::PrivacyManage,
        Action::CampaignsManage,
        Action::UsageRead,
        Action::ApiKeysManage,
        Action::MembersManage,
        Action::MembersRead,
        Action::WorkspaceManage,
        Action::ElevationGrant,
        Action::WorkspaceDelete,
        Action::BillingManage,
    ];

    /// Stable name for audit events and error messages; scope actions share
    /// the scope's spelling so an audit line reads the same for keys and members.
    pub const fn as_str(self) -> &'static str {
        match self {
            Action::MessagesSend => "messages:send",
            Action::MessagesRead => "messages:read",
            Action::ContactsRead => "contacts:read",
            Action::ContactsWrite => "contacts:write",
            Action::TemplatesRead => "templates:read",
            Action::TemplatesWrite => "templates:write",
            Action::ChannelsManage => "channels:manage",
            Action::WebhooksManage => "webhooks:manage",
            Action::ShieldScan => "shield:scan",
            Action::AuditRead => "audit:read",
            Action::PrivacyManage => "privacy:manage",
            Action::CampaignsManage => "campaigns:manage",
            Action::UsageRead => "usage:read",
            Action::ApiKeysManage => "api_keys:manage",
            Action::MembersManage => "members:manage",
            Action::MembersRead => "members:read",
            Action::WorkspaceManage => "workspace:manage",
            Action::ElevationGrant => "elevation:grant",
            Action::WorkspaceDelete => "workspace:delete",
            Action::BillingManage => "billing:manage",
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Action {
    type Err = UnknownAction;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Action::ALL
            .into_iter()
            .find(|a| a.as_str() == s)
            .ok_or_else(|| UnknownAction(echo(s)))
    }
}

impl Serialize for Action {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Action {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn role_strings_round_trip_and_serde_is_snake_case() {
        for role in Role::ALL {
            assert_eq!(role.as_str().parse::<Role>().unwrap(), role);
            assert_eq!(role.to_string(), role.as_str());
            let json = serde_json::to_string(&role).unwrap();
            assert_eq!(json, format!("\"{}\"", role.as_str()));
            assert_eq!(serde_json::from_str::<Role>(&json).unwrap(), role);
        }
        assert_eq!(
            "Owner".parse::<Role>().unwrap_err(),
            UnknownRole("Owner".into())
        );
        assert!(serde_json::from_str::<Role>("\"superuser\"").is_err());
    }

    #[test]
    fn ranks_are_ordered_and_limit_granting() {
        let ranks: Vec<u8> = Role::ALL.iter().map(|r| r.rank()).collect();
        assert_eq!(ranks, vec![4, 3, 2, 1, 0]);
        assert!(Role::Owner.may_grant(Role::Owner));
        assert!(Role::Admin.may_grant(Role::Admin));
        assert!(!Role::Admin.may_grant(Role::Owner));
        assert!(Role::Developer.may_grant(Role::Agent));
        assert!(!Role::Developer.may_grant(Role::Admin));
        assert!(Role::Analyst.may_grant(Role::Analyst));
        assert!(!Role::Analyst.may_grant(Role::Agent));
    }

    #[test]
    fn scope_strings_are_exactly_the_documented_set() {
        let names: Vec<&str> = Scope::ALL.iter().map(|s| s.as_str()).collect();
        assert_eq!(
            names,
            vec![
                "messages:send",
                "messages:read",
                "contacts:read",
                "contacts:write",
                "templates:read",
                "templates:write",
                "channels:manage",
                "webhooks:manage",
                "shield:scan",
                "audit:read",
                "privacy:manage",
                "campaigns:manage",
                "usage:read",
            ]
        );
        for scope in Scope::ALL {
            assert_eq!(scope.as_str().parse::<Scope>().unwrap(), scope);
            let json = serde_json::to_string(&scope).unwrap();
            assert_eq!(json, format!("\"{}\"", scope.as_str()));
            assert_eq!(serde_json::from_str::<Scope>(&json).unwrap(), scope);
        }
    }

    #[test]
    fn unknown_scope_error_names_the_scope() {
        let err = "messages:delete".parse::<Scope>().unwrap_err();
        assert_eq!(err.to_string(), "unknown scope `messages:delete`");
        let err = serde_json::from_str::<Scope>("\"contacts:*\"").unwrap_err();
        assert!(
            err.to_string().contains("unknown scope `contacts:*`"),
            "{err}"
        );
        let long = "x".repeat(1000);
        assert_eq!(long.parse::<Scope>().unwrap_err().0.len(), MAX_ECHO);
    }

    #[test]
    fn action_names_are_unique_and_round_trip() {
        let names: HashSet<&str> = Action::ALL.iter().map(|a| a.as_str()).collect();
        assert_eq!(names.len(), Action::ALL.len());
        for action in Action::ALL {
            assert_eq!(action.as_str().parse::<Action>().unwrap(), action);
            let json = serde_json::to_string(&action).unwrap();
            assert_eq!(serde_json::from_str::<Action>(&json).unwrap(), action);
        }
        assert!("members:delete".parse::<Action>().is_err());
    }

    #[test]
    fn scope_actions_share_the_scope_spelling() {
        for scope in Scope::ALL {
            assert_eq!(scope.action().as_str(), scope.as_str());
        }
    }
}
