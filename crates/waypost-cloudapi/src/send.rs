//! The body of `POST /{phone-number-id}/messages` for a message send, and its
//! success response. Interactive and template payloads live in `interactive`
//! and `template`; this module owns the envelope and the simple payloads.

use serde::{Deserialize, Serialize};

use crate::interactive::Interactive;
use crate::template::TemplateMessage;
use crate::wire::{open_enum, type_tagged};

/// Always `"whatsapp"` on the wire.
pub const MESSAGING_PRODUCT: &str = "whatsapp";

pub(crate) fn whatsapp_product() -> String {
    MESSAGING_PRODUCT.to_owned()
}

/// A message send request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutboundMessage {
    #[serde(default = "whatsapp_product")]
    pub messaging_product: String,
    /// `"individual"` (Meta's default) or `"group"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recipient_type: Option<String>,
    /// Phone number or wa_id; Meta accepts it with or without `+`. When both
    /// `to` and `recipient` are given, Meta uses `to`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    /// A business-scoped user id (or parent BSUID) instead of a phone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recipient: Option<String>,
    /// Makes the message a quoted reply.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<OutboundContext>,
    /// Echoed back in status webhooks as `biz_opaque_callback_data`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub biz_opaque_callback_data: Option<String>,
    #[serde(flatten)]
    pub content: OutboundContent,
}

impl OutboundMessage {
    /// A message to one user with no reply context or tracker.
    pub fn new(to: impl Into<String>, content: OutboundContent) -> Self {
        Self {
            messaging_product: whatsapp_product(),
            recipient_type: Some("individual".to_owned()),
            to: Some(to.into()),
            recipient: None,
            context: None,
            biz_opaque_callback_data: None,
            content,
        }
    }

    /// A message to a business-scoped user id, without a phone number.
    pub fn to_user_id(user_id: impl Into<String>, content: OutboundContent) -> Self {
        let mut m = Self::new(String::new(), content);
        m.to = None;
        m.recipient = Some(user_id.into());
        m
    }

    /// Who the message goes to as Meta reads it: `to` wins over `recipient`.
    pub fn addressee(&self) -> Option<&str> {
        self.to.as_deref().or(self.recipient.as_deref())
    }

    /// A plain text message.
    pub fn text(to: impl Into<String>, body: impl Into<String>) -> Self {
        Self::new(
            to,
            OutboundContent::Text(Text {
                body: body.into(),
                preview_url: None,
            }),
        )
    }
}

/// `context` on a send: the wamid being replied to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboundContext {
    pub message_id: String,
}

type_tagged! {
    /// What is sent. The reference says a missing `type` means `text`
    /// ([uncertain] in Meta's docs), so parsing defaults to it; unknown types
    /// parse as `Unsupported` so the sandbox can answer 131051 instead of 100.
    pub enum OutboundContent (lenient = false, default = Some("text")) {
        Text(Text) = "text",
        Image(Media) = "image",
        Document(Media) = "document",
        Audio(Media) = "audio",
        Video(Media) = "video",
        Sticker(Media) = "sticker",
        Location(Location) = "location",
        Contacts(Vec<Contact>) = "contacts",
        Interactive(Interactive) = "interactive",
        Template(TemplateMessage) = "template",
        Reaction(Reaction) = "reaction",
    }
}

/// A text message body (≤ 4096 characters).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Text {
    pub body: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preview_url: Option<bool>,
}

/// Where the media comes from: an uploaded media id or a public HTTPS link.
/// Meta wants exactly one; an object with both parses as `Id` (the link is
/// dropped) because the id is what Meta would use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MediaSource {
    Id(String),
    Link(String),
}

/// Image, document, audio, video or sticker payload. `caption` is valid on
/// image, video and document; `filename` on document only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Media {
    pub source: MediaSource,
    pub caption: Option<String>,
    pub filename: Option<String>,
}

#[derive(Serialize, Deserialize)]
struct MediaWire {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    link: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    caption: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    filename: Option<String>,
}

impl Serialize for Media {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let (id, link) = match &self.source {
            MediaSource::Id(id) => (Some(id.clone()), None),
            MediaSource::Link(l) => (None, Some(l.clone())),
        };
        MediaWire {
            id,
            link,
            caption: self.caption.clone(),
            filename: self.filename.clone(),
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for Media {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let w = MediaWire::deserialize(d)?;
        let source = match (w.id, w.link) {
            (Some(id), _) => MediaSource::Id(id),
            (None, Some(link)) => MediaSource::Link(link),
            (None, None) => return Err(serde::de::Error::custom("media needs `id` or `link`")),
        };
        Ok(Media {
            source,
            caption: w.caption,
            filename: w.filename,
        })
    }
}

impl Media {
    /// Media by uploaded id, no caption.
    pub fn id(id: impl Into<String>) -> Self {
        Self {
            source: MediaSource::Id(id.into()),
            caption: None,
            filename: None,
        }
    }

    /// Media by public link, no caption.
    pub fn link(link: impl Into<String>) -> Self {
        Self {
            source: MediaSource::Link(link.into()),
            caption: None,
            filename: None,
        }
    }
}

/// A location pin. Also the shape of inbound locations (which add `url`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Location {
    pub latitude: f64,
    pub longitude: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

/// A reaction; an empty (or, inbound, absent) emoji removes an earlier one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reaction {
    pub message_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub emoji: Option<String>,
}

/// A contact card, sent and received in the same shape.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contact {
    pub name: ContactName,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub phones: Vec<ContactPhone>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub emails: Vec<ContactEmail>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub addresses: Vec<ContactAddress>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org: Option<ContactOrg>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub urls: Vec<ContactUrl>,
    /// `YYYY-MM-DD`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub birthday: Option<String>,
}

/// `formatted_name` is required on send; inbound cards always carry it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContactName {
    pub formatted_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub middle_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suffix: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
}

/// `type` is CELL, MAIN, IPHONE, HOME or WORK; kept as a string.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContactPhone {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wa_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContactEmail {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContactAddress {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub street: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub city: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zip: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country_code: Option<String>,
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContactOrg {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub company: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub department: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContactUrl {
    pub url: String,
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
}

/// Body of a mark-as-read (optionally with typing indicator) request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MarkRead {
    #[serde(default = "whatsapp_product")]
    pub messaging_product: String,
    /// Always `"read"`.
    pub status: String,
    /// An inbound wamid received on this number.
    pub message_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub typing_indicator: Option<TypingIndicator>,
}

impl MarkRead {
    pub fn new(message_id: impl Into<String>, typing: bool) -> Self {
        Self {
            messaging_product: whatsapp_product(),
            status: "read".to_owned(),
            message_id: message_id.into(),
            typing_indicator: typing.then(|| TypingIndicator {
                kind: "text".to_owned(),
            }),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TypingIndicator {
    #[serde(rename = "type")]
    pub kind: String,
}

/// 200 response to a send.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SendResponse {
    #[serde(default = "whatsapp_product")]
    pub messaging_product: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub contacts: Vec<SendContact>,
    pub messages: Vec<SentMessage>,
}

impl SendResponse {
    /// The wamid of the accepted message.
    pub fn wamid(&self) -> Option<&str> {
        self.messages.first().map(|m| m.id.as_str())
    }
}

/// `input` echoes `to` (or `recipient`) as sent; `wa_id` is the digits-only
/// WhatsApp id, present only for sends to a phone; `user_id` only for sends
/// to a BSUID alone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SendContact {
    pub input: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wa_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SentMessage {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_status: Option<SendAcceptance>,
}

open_enum! {
    /// `messages[].message_status`, only on some template sends.
    pub enum SendAcceptance {
        Accepted = "accepted",
        HeldForQualityAssessment = "held_for_quality_assessment",
        Paused = "paused",
    }
}

/// `{"success": true}` from mark-as-read and the delete endpoints.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SuccessResponse {
    pub success: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn text_wire_shape_is_type_plus_named_payload() {
        let m = OutboundMessage::text("+16505551234", "hi");
        let v = serde_json::to_value(&m).unwrap();
        assert_eq!(
            v,
            json!({"messaging_product":"whatsapp","recipient_type":"individual","to":"+16505551234",
                   "type":"text","text":{"body":"hi"}})
        );
    }

    #[test]
    fn missing_type_defaults_to_text() {
        let m: OutboundMessage = serde_json::from_value(
            json!({"messaging_product":"whatsapp","to":"1","text":{"body":"x"}}),
        )
        .unwrap();
        assert!(matches!(m.content, OutboundContent::Text(ref t) if t.body == "x"));
    }

    #[test]
    fn unknown_send_type_is_unsupported_but_known_malformed_is_an_error() {
        let m: OutboundMessage =
            serde_json::from_value(json!({"to":"1","type":"carousel","carousel":{"x":1}})).unwrap();
        assert_eq!(m.content.kind(), "carousel");
        assert!(matches!(m.content, OutboundContent::Unsupported(_)));
        assert!(
            serde_json::from_value::<OutboundMessage>(json!({"to":"1","type":"image","image":{}}))
                .is_err()
        );
        assert!(
            serde_json::from_value::<OutboundMessage>(json!({"to":"1","type":"text"})).is_err()
        );
    }

    #[test]
    fn media_needs_id_or_link() {
        let m: Media =
            serde_json::from_value(json!({"link":"https://e/x.pdf","filename":"x.pdf"})).unwrap();
        assert_eq!(m.source, MediaSource::Link("https://e/x.pdf".into()));
        assert!(serde_json::from_value::<Media>(json!({"caption":"c"})).is_err());
    }

    #[test]
    fn mark_read_with_typing() {
        let v = serde_json::to_value(MarkRead::new("wamid.X", true)).unwrap();
        assert_eq!(
            v,
            json!({"messaging_product":"whatsapp","status":"read","message_id":"wamid.X","typing_indicator":{"type":"text"}})
        );
    }
}
