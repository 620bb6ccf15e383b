//! Inbound messages (`value.messages[]` of a `messages` webhook). Parsing is
//! lenient by design: a message type we don't know, or a known type whose
//! payload doesn't match our model, becomes `InboundContent::Unsupported`
//! with its fields kept, so one odd message never fails a whole webhook.

use serde::{Deserialize, Serialize};

use crate::error::WebhookError;
use crate::send::{Contact, Location, Reaction};
use crate::wire::type_tagged;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InboundMessage {
    /// The user's wa_id (digits only); withheld since 2026 for users with a
    /// username and no recent contact with this number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// The user's business-scoped user id (2026: on every message).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_user_id: Option<String>,
    /// Parent BSUID, only for businesses enrolled in parent accounts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_parent_user_id: Option<String>,
    /// `wamid.…`; deduplicate deliveries on it.
    pub id: String,
    /// Unix seconds as a string, as Meta sends it.
    pub timestamp: String,
    #[serde(
        default,
        deserialize_with = "crate::wire::lenient",
        skip_serializing_if = "Option::is_none"
    )]
    pub context: Option<InboundContext>,
    #[serde(
        default,
        deserialize_with = "crate::wire::lenient",
        skip_serializing_if = "Option::is_none"
    )]
    pub referral: Option<Referral>,
    /// Set on `unsupported` messages (code 131051).
    #[serde(
        default,
        deserialize_with = "crate::wire::lenient",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub errors: Vec<WebhookError>,
    /// `identity` of a `customer_identity_changed` system message.
    #[serde(
        default,
        deserialize_with = "crate::wire::lenient",
        skip_serializing_if = "Option::is_none"
    )]
    pub identity: Option<Identity>,
    #[serde(flatten)]
    pub content: InboundContent,
}

impl InboundMessage {
    /// `timestamp` as unix seconds, if it is numeric.
    pub fn unix_time(&self) -> Option<i64> {
        self.timestamp.parse().ok()
    }
}

type_tagged! {
    /// The message by `type`; anything else is `Unsupported`, including
    /// Meta's own `"unsupported"` type.
    pub enum InboundContent (lenient = true, default = None) {
        Text(InboundText) = "text",
        Image(InboundMedia) = "image",
        Video(InboundMedia) = "video",
        Audio(InboundMedia) = "audio",
        Document(InboundMedia) = "document",
        Sticker(InboundMedia) = "sticker",
        Location(Location) = "location",
        Contacts(Vec<Contact>) = "contacts",
        Interactive(InteractiveReply) = "interactive",
        Button(ButtonReplyTemplate) = "button",
        Reaction(Reaction) = "reaction",
        Order(Order) = "order",
        System(SystemMessage) = "system",
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InboundText {
    pub body: String,
}

/// Media the user sent. `sha256` is base64 here (hex in media retrieval).
/// Download it by `id` within 7 days.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InboundMedia {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mime_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caption: Option<String>,
    /// Documents only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filename: Option<String>,
    /// Audio only: true for push-to-talk voice notes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub voice: Option<bool>,
    /// Stickers only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub animated: Option<bool>,
    /// Newer payloads carry a lookaside URL directly.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Bytes, in payloads that say it.
    #[serde(
        default,
        deserialize_with = "crate::wire::lenient",
        skip_serializing_if = "Option::is_none"
    )]
    pub file_size: Option<u64>,
}

type_tagged! {
    /// A tap on an interactive message we sent.
    pub enum InteractiveReply (lenient = true, default = None) {
        ButtonReply(ReplyChoice) = "button_reply",
        ListReply(ReplyChoice) = "list_reply",
        /// A completed WhatsApp Flow ([uncertain] shape).
        NfmReply(FlowReply) = "nfm_reply",
    }
}

/// `description` only for list rows that had one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplyChoice {
    pub id: String,
    pub title: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// `response_json` is a JSON document encoded as a string.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlowReply {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    pub response_json: String,
}

/// A quick-reply tap on a template button.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ButtonReplyTemplate {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload: Option<String>,
    pub text: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Order {
    pub catalog_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    #[serde(default)]
    pub product_items: Vec<ProductItem>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProductItem {
    pub product_retailer_id: String,
    pub quantity: u32,
    pub item_price: f64,
    pub currency: String,
}

/// `user_changed_number` (with the new `wa_id` when it may be shared),
/// `user_changed_user_id` (BSUIDs only) or `customer_identity_changed`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SystemMessage {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wa_id: Option<String>,
    /// The new BSUID.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_user_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_user_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_parent_user_id: Option<String>,
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Older payloads name the new id `new_wa_id` ([uncertain]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub new_wa_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acknowledged: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_timestamp: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hash: Option<String>,
}

/// Reply, forward and product-enquiry context; every field is optional
/// because each form uses a different subset.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InboundContext {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// The quoted wamid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forwarded: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frequently_forwarded: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub referred_product: Option<ReferredProduct>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReferredProduct {
    pub catalog_id: String,
    pub product_retailer_id: String,
}

/// Click-to-WhatsApp ad or post that started the chat.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Referral {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_id: Option<String>,
    /// `ad` or `post`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub headline: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub video_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thumbnail_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ctwa_clid: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: serde_json::Value) -> InboundMessage {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn unknown_type_keeps_raw_fields() {
        let v = json!({"from":"1","id":"wamid.A","timestamp":"1","type":"hologram","hologram":{"x":[1,2]},"extra":true});
        let m = parse(v.clone());
        let InboundContent::Unsupported(u) = &m.content else {
            panic!("{m:?}")
        };
        assert_eq!(u.kind, "hologram");
        assert_eq!(u.raw["hologram"], json!({"x":[1,2]}));
        assert_eq!(serde_json::to_value(&m).unwrap(), v);
    }

    #[test]
    fn malformed_known_type_is_unsupported_not_an_error() {
        let v = json!({"from":"1","id":"wamid.A","timestamp":"1","type":"image","image":{"caption":"no id"}});
        let m = parse(v.clone());
        assert!(matches!(m.content, InboundContent::Unsupported(ref u) if u.kind == "image"));
        assert_eq!(serde_json::to_value(&m).unwrap(), v);
    }

    #[test]
    fn malformed_optional_parts_read_as_absent() {
        let m = parse(
            json!({"from":"1","id":"w","timestamp":"1","type":"text","text":{"body":"b"},
            "context":"oops","errors":{"code":"x"},"referral":[1],"identity":7}),
        );
        assert!(
            m.context.is_none()
                && m.referral.is_none()
                && m.identity.is_none()
                && m.errors.is_empty()
        );
        assert_eq!(m.content.kind(), "text");
    }

    #[test]
    fn meta_unsupported_type_with_errors() {
        let m = parse(
            json!({"from":"1","id":"wamid.A","timestamp":"1","type":"unsupported",
            "errors":[{"code":131051,"title":"Message type unknown"}],"unsupported":{"type":"poll"}}),
        );
        assert_eq!(m.errors[0].code, 131051);
        assert_eq!(m.content.kind(), "unsupported");
    }

    #[test]
    fn bsuid_only_message_and_user_id_change() {
        let v = json!({"from_user_id":"US.134","from_parent_user_id":"US.ENT.118","id":"wamid.A",
            "timestamp":"1749416383","type":"text","text":{"body":"hi"}});
        let m = parse(v.clone());
        assert_eq!(
            (m.from.as_deref(), m.from_user_id.as_deref()),
            (None, Some("US.134"))
        );
        assert_eq!(serde_json::to_value(&m).unwrap(), v);
        let m = parse(json!({"id":"w","timestamp":"1","type":"system","system":{
            "body":"User A changed from US.1 to US.2","user_id":"US.2","previous_user_id":"US.1",
            "type":"user_changed_user_id"}}));
        let InboundContent::System(s) = &m.content else {
            panic!("{m:?}")
        };
        assert_eq!(
            (s.previous_user_id.as_deref(), s.user_id.as_deref()),
            (Some("US.1"), Some("US.2"))
        );
        assert_eq!(s.wa_id, None);
    }

    #[test]
    fn list_reply_and_reaction_removal() {
        let m = parse(
            json!({"from":"1","id":"w","timestamp":"1","type":"interactive",
            "interactive":{"type":"list_reply","list_reply":{"id":"row-1","title":"Row 1"}}}),
        );
        assert!(
            matches!(m.content, InboundContent::Interactive(InteractiveReply::ListReply(ref r)) if r.id == "row-1")
        );
        let m = parse(
            json!({"from":"1","id":"w","timestamp":"1","type":"reaction","reaction":{"message_id":"wamid.Q"}}),
        );
        assert!(matches!(m.content, InboundContent::Reaction(ref r) if r.emoji.is_none()));
    }
}
