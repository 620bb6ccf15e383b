//! What a customer wrote, normalised from the Cloud API's webhook: the
//! content part of `message.received` and of inbound messages in the
//! conversations API. Field names follow the Cloud API's; exactly one kind
//! field is set, with `context` and `referral` beside it. Phone numbers the
//! provider puts beside the content (the quoted sender, a changed number) are
//! masked as everywhere outside the contacts API; contact cards the customer
//! chose to share are content and kept whole.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use waypost_cloudapi::inbound::{
    InboundContext, InboundMedia, InteractiveReply, Order, Referral, ReplyChoice,
};
use waypost_cloudapi::{InboundContent, InboundMessage};
use waypost_core::redact::mask_phone;

/// Waypost message ids of provider ids a message refers to (replies, reactions).
pub type KnownMessages = HashMap<String, String>;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct MessageContent {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<TextContent>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<MediaContent>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub video: Option<MediaContent>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audio: Option<MediaContent>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub document: Option<MediaContent>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sticker: Option<MediaContent>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<LocationContent>,
    /// Contact cards in the Cloud API's shape (`name`, `phones`, `emails`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Vec<Object>>)]
    pub contacts: Option<Vec<waypost_cloudapi::send::Contact>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interactive: Option<InteractiveContent>,
    /// A quick-reply button of a template.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub button: Option<ButtonContent>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reaction: Option<ReactionContent>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order: Option<OrderContent>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system: Option<SystemContent>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unsupported: Option<UnsupportedContent>,
    /// The message this one replies to or forwards.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<ContextContent>,
    /// The click-to-WhatsApp ad or post that started the conversation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub referral: Option<ReferralContent>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct TextContent {
    pub body: String,
}

/// Media the customer sent; fetch it with `GET /v1/media/{id}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct MediaContent {
    /// Waypost media id (`med_…`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mime_type: Option<String>,
    /// As the provider gives it in webhooks (base64).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// Bytes, when the provider said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caption: Option<String>,
    /// Documents only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filename: Option<String>,
    /// Audio only: a push-to-talk voice note.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub voice: Option<bool>,
    /// Stickers only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub animated: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct LocationContent {
    pub latitude: f64,
    pub longitude: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

/// A tap on an interactive message: `type` is `button_reply`, `list_reply`
/// or `nfm_reply` (a completed Flow), and the field of that name is set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct InteractiveContent {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub button_reply: Option<ChoiceContent>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub list_reply: Option<ChoiceContent>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nfm_reply: Option<FlowContent>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ChoiceContent {
    pub id: String,
    pub title: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct FlowContent {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// The Flow's answers: a JSON document encoded as a string.
    pub response_json: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ButtonContent {
    pub text: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload: Option<String>,
}

/// A reaction; no `emoji` removes an earlier one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ReactionContent {
    /// The Waypost id of the message reacted to, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
    /// Its provider id.
    pub wamid: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub emoji: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct OrderContent {
    pub catalog_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    pub product_items: Vec<ProductItemContent>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ProductItemContent {
    pub product_retailer_id: String,
    pub quantity: u32,
    pub item_price: f64,
    pub currency: String,
}

/// A change the provider announces in the conversation (`user_changed_number`,
/// `user_changed_user_id`, `customer_identity_changed`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SystemContent {
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// The new number, masked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wa_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_user_id: Option<String>,
}

/// A message kind Waypost does not model; `kind` is the provider's `type`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct UnsupportedContent {
    pub kind: String,
    /// The provider's error codes for it (131051 for types WhatsApp itself does not support).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub error_codes: Vec<i64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ContextContent {
    /// The Waypost id of the quoted message, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
    /// The quoted message's provider id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wamid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forwarded: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frequently_forwarded: Option<bool>,
    /// A product enquiry: the product the customer asked about.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub referred_product: Option<ReferredProductContent>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ReferredProductContent {
    pub catalog_id: String,
    pub product_retailer_id: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ReferralContent {
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
    /// Click id for conversion reporting.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ctwa_clid: Option<String>,
}

/// `data` of a `message.received` event. The content fields travel beside the
/// metadata while the event is in transit; once it has been delivered (or when
/// replayed later) they are absent and `content_state` says why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct MessageReceivedData {
    /// Waypost message id (`msg_…`).
    pub message_id: String,
    pub channel_id: String,
    pub contact_id: String,
    pub from: Sender,
    /// `text`, `image`, … (the field of that name holds the content), or `unsupported`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The provider's message id.
    pub wamid: String,
    /// When the customer sent it (RFC 3339), as the provider says.
    pub sent_at: Option<String>,
    #[serde(flatten)]
    pub content: MessageContent,
    /// Set when the content is absent: `not_retained` (delivered and removed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_state: Option<String>,
}

/// Who wrote: the business-scoped user id and the number, masked; either may be null.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Sender {
    pub user_id: Option<String>,
    /// E.164, masked (`+4915*******78`).
    pub phone: Option<String>,
}

/// The body of a `message.received` delivery.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct MessageReceivedEvent {
    /// `message.received`.
    #[serde(rename = "type")]
    pub kind: String,
    pub timestamp: String,
    pub data: MessageReceivedData,
}

/// The provider ids an inbound message refers to (quoted or reacted-to).
pub fn referenced_wamids(m: &InboundMessage) -> Vec<String> {
    let mut ids = Vec::new();
    if let Some(id) = m.context.as_ref().and_then(|c| c.id.clone()) {
        ids.push(id);
    }
    if let InboundContent::Reaction(r) = &m.content {
        ids.push(r.message_id.clone());
    }
    ids
}

/// The content of `m`; `media_id` is the Waypost id its media was registered
/// under, `known` maps referenced provider ids to Waypost message ids.
pub fn normalise(
    m: &InboundMessage,
    media_id: Option<&str>,
    known: &KnownMessages,
) -> MessageContent {
    let media = |x: &InboundMedia| MediaContent {
        id: media_id.map(str::to_owned),
        mime_type: x.mime_type.clone(),
        sha256: x.sha256.clone(),
        size: x.file_size,
        caption: x.caption.clone(),
        filename: x.filename.clone(),
        voice: x.voice,
        animated: x.animated,
    };
    let mut c = MessageContent {
        context: m.context.as_ref().map(|x| context(x, known)),
        referral: m.referral.as_ref().map(referral),
        ..Default::default()
    };
    match &m.content {
        InboundContent::Text(t) => {
            c.text = Some(TextContent {
                body: t.body.clone(),
            })
        }
        InboundContent::Image(x) => c.image = Some(media(x)),
        InboundContent::Video(x) => c.video = Some(media(x)),
        InboundContent::Audio(x) => c.audio = Some(media(x)),
        InboundContent::Document(x) => c.document = Some(media(x)),
        InboundContent::Sticker(x) => c.sticker = Some(media(x)),
        InboundContent::Location(l) => {
            c.location = Some(LocationContent {
                latitude: l.latitude,
                longitude: l.longitude,
                name: l.name.clone(),
                address: l.address.clone(),
                url: l.url.clone(),
            })
        }
        InboundContent::Contacts(cards) => c.contacts = Some(cards.clone()),
        InboundContent::Interactive(reply) => c.interactive = Some(interactive(reply)),
        InboundContent::Button(b) => {
            c.button = Some(ButtonContent {
                text: b.text.clone(),
                payload: b.payload.clone(),
            })
        }
        InboundContent::Reaction(r) => {
            c.reaction = Some(ReactionContent {
                message_id: known.get(&r.message_id).cloned(),
                wamid: r.message_id.clone(),
                emoji: r.emoji.clone().filter(|e| !e.is_empty()),
            })
        }
        InboundContent::Order(o) => c.order = Some(order(o)),
        InboundContent::System(s) => {
            c.system = Some(SystemContent {
                kind: s.kind.clone(),
                // The provider's text names both numbers.
                body: s.body.as_deref().map(mask_numbers_in),
                wa_id: s.wa_id.as_deref().or(s.new_wa_id.as_deref()).map(masked),
                user_id: s.user_id.clone(),
                previous_user_id: s.previous_user_id.clone(),
            })
        }
        InboundContent::Unsupported(u) => {
            c.unsupported = Some(UnsupportedContent {
                kind: u
                    .raw
                    .get("unsupported")
                    .and_then(|x| x.get("type"))
                    .and_then(|x| x.as_str())
                    .unwrap_or(&u.kind)
                    .to_owned(),
                error_codes: m.errors.iter().map(|e| e.code).collect(),
            })
        }
    }
    c
}

/// Every run of seven or more digits (a phone number in the provider's text) masked.
fn mask_numbers_in(body: &str) -> String {
    let mut out = String::with_capacity(body.len());
    let mut digits = String::new();
    let flush = |digits: &mut String, out: &mut String| {
        if digits.len() >= 7 {
            out.push_str(&masked(digits));
        } else {
            out.push_str(digits);
        }
        digits.clear();
    };
    for ch in body.chars() {
        if ch.is_ascii_digit() {
            digits.push(ch);
        } else {
            flush(&mut digits, &mut out);
            out.push(ch);
        }
    }
    flush(&mut digits, &mut out);
    out
}

/// A provider `wa_id` (digits) masked as an E.164 number is everywhere else.
fn masked(wa_id: &str) -> String {
    mask_phone(&format!("+{}", wa_id.trim_start_matches('+')))
}

fn context(x: &InboundContext, known: &KnownMessages) -> ContextContent {
    ContextContent {
        message_id: x.id.as_ref().and_then(|id| known.get(id).cloned()),
        wamid: x.id.clone(),
        forwarded: x.forwarded,
        frequently_forwarded: x.frequently_forwarded,
        referred_product: x.referred_product.as_ref().map(|p| ReferredProductContent {
            catalog_id: p.catalog_id.clone(),
            product_retailer_id: p.product_retailer_id.clone(),
        }),
    }
}

fn referral(r: &Referral) -> ReferralContent {
    ReferralContent {
        source_url: r.source_url.clone(),
        source_id: r.source_id.clone(),
        source_type: r.source_type.clone(),
        headline: r.headline.clone(),
        body: r.body.clone(),
        media_type: r.media_type.clone(),
        image_url: r.image_url.clone(),
        video_url: r.video_url.clone(),
        thumbnail_url: r.thumbnail_url.clone(),
        ctwa_clid: r.ctwa_clid.clone(),
    }
}

fn choice(c: &ReplyChoice) -> ChoiceContent {
    ChoiceContent {
        id: c.id.clone(),
        title: c.title.clone(),
        description: c.description.clone(),
    }
}

fn interactive(reply: &InteractiveReply) -> InteractiveContent {
    let mut out = InteractiveContent {
        kind: reply.kind().to_owned(),
        button_reply: None,
        list_reply: None,
        nfm_reply: None,
    };
    match reply {
        InteractiveReply::ButtonReply(c) => out.button_reply = Some(choice(c)),
        InteractiveReply::ListReply(c) => out.list_reply = Some(choice(c)),
        InteractiveReply::NfmReply(f) => {
            out.nfm_reply = Some(FlowContent {
                name: f.name.clone(),
                body: f.body.clone(),
                response_json: f.response_json.clone(),
            })
        }
        InteractiveReply::Unsupported(_) => {}
    }
    out
}

fn order(o: &Order) -> OrderContent {
    OrderContent {
        catalog_id: o.catalog_id.clone(),
        text: o.text.clone(),
        product_items: o
            .product_items
            .iter()
            .map(|p| ProductItemContent {
                product_retailer_id: p.product_retailer_id.clone(),
                quantity: p.quantity,
                item_price: p.item_price,
                currency: p.currency.clone(),
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_in_provider_text_are_masked() {
        let body = mask_numbers_in("User A changed from 4915112345678 to 15550002222 at 12:30");
        assert!(
            !body.contains("4915112345678") && !body.contains("15550002222"),
            "{body}"
        );
        assert!(
            body.starts_with("User A changed from +") && body.ends_with(" at 12:30"),
            "{body}"
        );
    }
}
