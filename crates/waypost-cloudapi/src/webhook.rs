//! The webhook POST body: `object`, `entry[]`, `changes[]`, and the `value`
//! whose shape depends on the sibling `field`. `messages` and
//! `message_template_status_update` are modelled; every other field (and a
//! `value` that doesn't match our model) is kept as raw JSON.

use serde::de::Error as _;
use serde::ser::SerializeMap;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::WebhookError;
use crate::inbound::InboundMessage;
use crate::status::Status;
use crate::wire::open_enum;

/// `{"object":"whatsapp_business_account","entry":[…]}`. Loop over every
/// entry and change: Graph may batch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WebhookPayload {
    pub object: String,
    #[serde(default)]
    pub entry: Vec<Entry>,
}

impl WebhookPayload {
    /// All `messages` change values, in order.
    pub fn message_values(&self) -> impl Iterator<Item = &MessagesValue> {
        self.entry
            .iter()
            .flat_map(|e| &e.changes)
            .filter_map(|c| match c {
                Change::Messages(v) => Some(v),
                _ => None,
            })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    /// The WABA id.
    pub id: String,
    /// Unix seconds as a JSON number (account and template webhooks).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<i64>,
    #[serde(default)]
    pub changes: Vec<Change>,
}

/// One `{"field": …, "value": …}` change.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    Messages(MessagesValue),
    TemplateStatus(TemplateStatusUpdate),
    /// Any other field, or a value we couldn't model, kept verbatim.
    Other {
        field: String,
        value: Value,
    },
}

impl Change {
    pub fn field(&self) -> &str {
        match self {
            Self::Messages(_) => "messages",
            Self::TemplateStatus(_) => "message_template_status_update",
            Self::Other { field, .. } => field,
        }
    }
}

impl Serialize for Change {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(2))?;
        map.serialize_entry("field", self.field())?;
        match self {
            Self::Messages(v) => map.serialize_entry("value", v)?,
            Self::TemplateStatus(v) => map.serialize_entry("value", v)?,
            Self::Other { value, .. } => map.serialize_entry("value", value)?,
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for Change {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct Raw {
            field: String,
            #[serde(default)]
            value: Value,
        }
        let Raw { field, value } = Raw::deserialize(d).map_err(D::Error::custom)?;
        let typed = match field.as_str() {
            "messages" => MessagesValue::deserialize(&value).ok().map(Self::Messages),
            "message_template_status_update" => TemplateStatusUpdate::deserialize(&value)
                .ok()
                .map(Self::TemplateStatus),
            _ => None,
        };
        Ok(typed.unwrap_or(Self::Other { field, value }))
    }
}

/// The `value` of a `messages` change: inbound messages, statuses or errors.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MessagesValue {
    #[serde(default = "crate::send::whatsapp_product")]
    pub messaging_product: String,
    pub metadata: Metadata,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub contacts: Vec<WebhookContact>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub messages: Vec<InboundMessage>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub statuses: Vec<Status>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<WebhookError>,
}

/// Which of our numbers the change is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Metadata {
    /// Digits only, unlike the phone-number endpoint's formatted value.
    pub display_phone_number: String,
    pub phone_number_id: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookContact {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<Profile>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wa_id: Option<String>,
    /// Business-scoped user id (`"US.1349…"`), a 2026 addition; `wa_id` is
    /// optional since then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_user_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Profile {
    #[serde(default)]
    pub name: String,
    /// The user's WhatsApp username (2026), personal data like the phone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
}

/// `message_template_status_update`. `message_template_id` is a JSON
/// number here, unlike ids elsewhere.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TemplateStatusUpdate {
    pub event: TemplateStatus,
    #[serde(with = "crate::wire::u64_or_string")]
    pub message_template_id: u64,
    pub message_template_name: String,
    pub message_template_language: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_template_category: Option<TemplateCategory>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disable_info: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub other_info: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rejection_info: Option<Value>,
}

open_enum! {
    /// Template status, in the webhook `event` and in management responses.
    pub enum TemplateStatus {
        Approved = "APPROVED",
        Pending = "PENDING",
        Rejected = "REJECTED",
        Paused = "PAUSED",
        Disabled = "DISABLED",
        InAppeal = "IN_APPEAL",
        PendingDeletion = "PENDING_DELETION",
        Deleted = "DELETED",
        Flagged = "FLAGGED",
        Reinstated = "REINSTATED",
        LimitExceeded = "LIMIT_EXCEEDED",
        Archived = "ARCHIVED",
        Unarchived = "UNARCHIVED",
        Locked = "LOCKED",
    }
}

open_enum! {
    pub enum TemplateCategory {
        Marketing = "MARKETING",
        Utility = "UTILITY",
        Authentication = "AUTHENTICATION",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn unknown_field_and_bad_value_are_kept() {
        let v = json!({"object":"whatsapp_business_account","entry":[{"id":"1","changes":[
            {"field":"phone_number_quality_update","value":{"event":"FLAGGED"}},
            {"field":"messages","value":{"nonsense":true}}]}]});
        let p: WebhookPayload = serde_json::from_value(v.clone()).unwrap();
        assert!(
            matches!(&p.entry[0].changes[0], Change::Other { field, .. } if field == "phone_number_quality_update")
        );
        assert!(
            matches!(&p.entry[0].changes[1], Change::Other { field, .. } if field == "messages")
        );
        assert_eq!(serde_json::to_value(&p).unwrap(), v);
    }

    #[test]
    fn one_unknown_message_does_not_fail_the_rest() {
        let p: WebhookPayload = serde_json::from_value(json!({"object":"whatsapp_business_account","entry":[{"id":"1",
            "changes":[{"field":"messages","value":{"messaging_product":"whatsapp",
            "metadata":{"display_phone_number":"1","phone_number_id":"2"},
            "messages":[{"from":"1","id":"a","timestamp":"1","type":"poll","poll":{}},
                        {"from":"1","id":"b","timestamp":"1","type":"text","text":{"body":"hi"}}]}}]}]}))
        .unwrap();
        let msgs = &p.message_values().next().unwrap().messages;
        assert_eq!(msgs.len(), 2);
        assert_eq!(msgs[0].content.kind(), "poll");
        assert_eq!(msgs[1].content.kind(), "text");
    }
}
