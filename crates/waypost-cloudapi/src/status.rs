//! Outbound message status updates (`value.statuses[]`): sent, delivered,
//! read, failed, played, with conversation and pricing details. Order is not
//! guaranteed and `delivered` may be skipped, so consumers must not assume a
//! sequence.

use serde::{Deserialize, Serialize};

use crate::error::WebhookError;
use crate::wire::open_enum;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    /// The wamid we got back from the send.
    pub id: String,
    pub status: StatusKind,
    /// Unix seconds as a string.
    pub timestamp: String,
    /// The phone (or group id); omitted since 2026 when the message went to a
    /// BSUID and the phone may not be shared.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recipient_id: Option<String>,
    /// The recipient's business-scoped user id (2026); absent on `failed`
    /// statuses of messages sent to a phone, and on older webhooks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recipient_user_id: Option<String>,
    /// Named `parent_recipient_user_id` until May 2026.
    #[serde(
        default,
        alias = "parent_recipient_user_id",
        skip_serializing_if = "Option::is_none"
    )]
    pub recipient_parent_user_id: Option<String>,
    /// Our tracker from the send request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub biz_opaque_callback_data: Option<String>,
    /// Absent on failures and possibly under per-message pricing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversation: Option<Conversation>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pricing: Option<Pricing>,
    /// Set when `status` is `failed`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<WebhookError>,
    /// Group sends: `"group"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recipient_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recipient_participant_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recipient_participant_user_id: Option<String>,
}

open_enum! {
    pub enum StatusKind {
        Sent = "sent",
        Delivered = "delivered",
        Read = "read",
        Failed = "failed",
        /// First play of a voice message.
        Played = "played",
    }
}

/// The CBP conversation a message was billed to. `id` is opaque; don't
/// assume its length.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conversation {
    pub id: String,
    /// Unix seconds as a string; usually only on the first `sent`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expiration_timestamp: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<ConversationOrigin>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConversationOrigin {
    #[serde(rename = "type")]
    pub kind: PricingCategory,
}

/// Both shapes parse: CBP (before July 2025: `billable` and a conversation)
/// and PMP (`type` plus `category`; `billable` is being deprecated).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pricing {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub billable: Option<bool>,
    pub pricing_model: PricingModel,
    pub category: PricingCategory,
    /// Per-message pricing only: `regular`, `free_customer_service`,
    /// `free_entry_point`.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
}

open_enum! {
    pub enum PricingModel {
        /// Conversation-based (before 2025-07-01).
        Cbp = "CBP",
        /// Per-message.
        Pmp = "PMP",
    }
}

open_enum! {
    /// `conversation.origin.type` and `pricing.category`.
    pub enum PricingCategory {
        Authentication = "authentication",
        AuthenticationInternational = "authentication_international",
        Marketing = "marketing",
        MarketingLite = "marketing_lite",
        Utility = "utility",
        Service = "service",
        ReferralConversion = "referral_conversion",
        GroupMarketing = "group_marketing",
        GroupUtility = "group_utility",
        GroupService = "group_service",
        GeneralPurposeAi = "general_purpose_ai",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn sent_with_conversation_and_pricing() {
        let v = json!({"id":"wamid.X","status":"sent","timestamp":"1698266945","recipient_id":"16505551234",
            "conversation":{"id":"c","expiration_timestamp":"1698339900","origin":{"type":"service"}},
            "pricing":{"billable":true,"pricing_model":"CBP","category":"service"}});
        let s: Status = serde_json::from_value(v.clone()).unwrap();
        assert_eq!(s.status, StatusKind::Sent);
        assert_eq!(
            s.pricing.as_ref().unwrap().category,
            PricingCategory::Service
        );
        assert_eq!(serde_json::to_value(&s).unwrap(), v);
    }

    #[test]
    fn bsuid_status_without_phone_in_pmp_shape() {
        let v = json!({"id":"wamid.X","status":"delivered","timestamp":"1750030073",
            "recipient_user_id":"US.13491208655302741918","recipient_parent_user_id":"US.ENT.1181",
            "pricing":{"billable":false,"pricing_model":"PMP","type":"free_customer_service","category":"service"}});
        let s: Status = serde_json::from_value(v.clone()).unwrap();
        assert_eq!(s.recipient_id, None);
        assert_eq!(
            s.recipient_user_id.as_deref(),
            Some("US.13491208655302741918")
        );
        let p = s.pricing.as_ref().unwrap();
        assert_eq!(
            (p.pricing_model.clone(), p.kind.as_deref()),
            (PricingModel::Pmp, Some("free_customer_service"))
        );
        assert_eq!(serde_json::to_value(&s).unwrap(), v);
        // The pre-May-2026 name of the parent field still parses.
        let old: Status = serde_json::from_value(json!({"id":"w","status":"sent","timestamp":"1",
            "recipient_user_id":"US.1","parent_recipient_user_id":"US.ENT.2"}))
        .unwrap();
        assert_eq!(old.recipient_parent_user_id.as_deref(), Some("US.ENT.2"));
    }

    #[test]
    fn unknown_status_and_category_are_kept() {
        let s: Status = serde_json::from_value(json!({"id":"w","status":"deleted","timestamp":"1","recipient_id":"1",
            "pricing":{"billable":false,"pricing_model":"XYZ","category":"new_thing","type":"free_entry_point"}}))
        .unwrap();
        assert_eq!(s.status, StatusKind::Other("deleted".into()));
        assert_eq!(s.pricing.unwrap().pricing_model.as_str(), "XYZ");
    }
}
