//! Customer events: what happened to a workspace's messages, contacts,
//! templates and the security incidents affecting it, written in the same
//! transaction as the change itself and later delivered to the workspace's
//! webhook endpoints.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::auth::Action;

/// Every kind of customer event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EventType {
    MessageQueued,
    MessageSent,
    MessageDelivered,
    MessageRead,
    MessageFailed,
    MessageReceived,
    MessageFlagged,
    ContactOptedOut,
    ContactOptedIn,
    /// A contact's phone, BSUID, parent BSUID or username changed: linked by a
    /// webhook, merged with another contact, or a number or BSUID change.
    ContactIdentifiersChanged,
    TemplateStatusChanged,
    EndpointDisabled,
    WebhookTest,
    IncidentOpened,
    IncidentUpdated,
    IncidentClosed,
    ConversationAssigned,
    ConversationUnassigned,
    ConversationClosed,
    ConversationReopened,
    ConversationPending,
    ConversationLabelled,
    ConversationNoteAdded,
    ConversationRead,
    /// A campaign paused itself (quality signals) or was paused; `reason` says which.
    CampaignPaused,
    /// A trust and safety detector's finding about the workspace.
    SecurityAlert,
    /// A quota of the workspace's plan reached 80 % or 100 % in its period.
    QuotaWarning,
    /// The workspace's plan or billing status changed.
    BillingUpdated,
}

/// The input was not one of the event type names.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown event type `{0}`")]
pub struct UnknownEventType(pub String);

impl EventType {
    pub const ALL: [EventType; 28] = [
        EventType::MessageQueued,
        EventType::MessageSent,
        EventType::MessageDelivered,
        EventType::MessageRead,
        EventType::MessageFailed,
        EventType::MessageReceived,
        EventType::MessageFlagged,
        EventType::ContactOptedOut,
        EventType::ContactOptedIn,
        EventType::ContactIdentifiersChanged,
        EventType::TemplateStatusChanged,
        EventType::EndpointDisabled,
        EventType::WebhookTest,
        EventType::IncidentOpened,
        EventType::IncidentUpdated,
        EventType::IncidentClosed,
        EventType::ConversationAssigned,
        EventType::ConversationUnassigned,
        EventType::ConversationClosed,
        EventType::ConversationReopened,
        EventType::ConversationPending,
        EventType::ConversationLabelled,
        EventType::ConversationNoteAdded,
        EventType::ConversationRead,
        EventType::CampaignPaused,
        EventType::SecurityAlert,
        EventType::QuotaWarning,
        EventType::BillingUpdated,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            EventType::MessageQueued => "message.queued",
            EventType::MessageSent => "message.sent",
            EventType::MessageDelivered => "message.delivered",
            EventType::MessageRead => "message.read",
            EventType::MessageFailed => "message.failed",
            EventType::MessageReceived => "message.received",
            EventType::MessageFlagged => "message.flagged",
            EventType::ContactOptedOut => "contact.opted_out",
            EventType::ContactOptedIn => "contact.opted_in",
            EventType::ContactIdentifiersChanged => "contact.identifiers_changed",
            EventType::TemplateStatusChanged => "template.status_changed",
            EventType::EndpointDisabled => "endpoint.disabled",
            EventType::WebhookTest => "webhook.test",
            EventType::IncidentOpened => "incident.opened",
            EventType::IncidentUpdated => "incident.updated",
            EventType::IncidentClosed => "incident.closed",
            EventType::ConversationAssigned => "conversation.assigned",
            EventType::ConversationUnassigned => "conversation.unassigned",
            EventType::ConversationClosed => "conversation.closed",
            EventType::ConversationReopened => "conversation.reopened",
            EventType::ConversationPending => "conversation.pending",
            EventType::ConversationLabelled => "conversation.labelled",
            EventType::ConversationNoteAdded => "conversation.note_added",
            EventType::ConversationRead => "conversation.read",
            EventType::CampaignPaused => "campaign.paused",
            EventType::SecurityAlert => "security.alert",
            EventType::QuotaWarning => "usage.quota_warning",
            EventType::BillingUpdated => "usage.billing_updated",
        }
    }
}

impl EventType {
    /// The action whose permission lets a caller read events of this type, on
    /// the live stream as through the API: an event is as sensitive as the
    /// thing it is about. Webhook endpoint events belong to whoever manages
    /// webhooks; incidents to those who read the audit log, as the incident
    /// pages require.
    pub const fn read_action(self) -> Action {
        match self {
            EventType::MessageQueued
            | EventType::MessageSent
            | EventType::MessageDelivered
            | EventType::MessageRead
            | EventType::MessageFailed
            | EventType::MessageReceived
            | EventType::MessageFlagged
            | EventType::ConversationAssigned
            | EventType::ConversationUnassigned
            | EventType::ConversationClosed
            | EventType::ConversationReopened
            | EventType::ConversationPending
            | EventType::ConversationLabelled
            | EventType::ConversationNoteAdded
            | EventType::ConversationRead => Action::MessagesRead,
            EventType::ContactOptedOut
            | EventType::ContactOptedIn
            | EventType::ContactIdentifiersChanged => Action::ContactsRead,
            EventType::TemplateStatusChanged => Action::TemplatesRead,
            EventType::EndpointDisabled | EventType::WebhookTest => Action::WebhooksManage,
            EventType::IncidentOpened | EventType::IncidentUpdated | EventType::IncidentClosed => {
                Action::AuditRead
            }
            EventType::CampaignPaused => Action::CampaignsManage,
            EventType::SecurityAlert => Action::AuditRead,
            EventType::QuotaWarning | EventType::BillingUpdated => Action::UsageRead,
        }
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for EventType {
    type Err = UnknownEventType;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        EventType::ALL
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| UnknownEventType(s.chars().take(64).collect()))
    }
}

impl Serialize for EventType {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for EventType {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_are_unique() {
        let mut seen = std::collections::HashSet::new();
        for t in EventType::ALL {
            assert!(seen.insert(t.as_str()), "{t} twice");
            assert_eq!(t.as_str().parse::<EventType>().unwrap(), t);
        }
        assert_eq!(
            "message.lost".parse::<EventType>(),
            Err(UnknownEventType("message.lost".into()))
        );
    }

    #[test]
    fn each_type_is_read_by_the_action_of_its_subject() {
        for t in EventType::ALL {
            let want = match t.as_str().split('.').next().unwrap() {
                "message" | "conversation" => Action::MessagesRead,
                "contact" => Action::ContactsRead,
                "template" => Action::TemplatesRead,
                "endpoint" | "webhook" => Action::WebhooksManage,
                "incident" | "security" => Action::AuditRead,
                "campaign" => Action::CampaignsManage,
                "usage" => Action::UsageRead,
                other => panic!("no read action decided for `{other}` events"),
            };
            assert_eq!(t.read_action(), want, "{t}");
        }
    }
}
