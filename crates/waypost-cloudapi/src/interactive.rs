//! Outbound interactive messages: reply buttons and lists. Other interactive
//! kinds (`cta_url`, `flow`, `product`, …) are carried unmodelled so callers
//! can still send them and the sandbox can still parse them.

use serde::de::Error as _;
use serde::ser::SerializeMap;
use serde::{Deserialize, Serialize};

use crate::send::Media;
use crate::wire::{Unsupported, split_kind, type_tagged};

/// The `interactive` object. Its `type` picks the shape of `action`, with the
/// header/body/footer siblings shared, so it is tagged by hand.
#[derive(Debug, Clone, PartialEq)]
pub enum Interactive {
    Button(ButtonMessage),
    List(ListMessage),
    /// Any other interactive `type`, kept verbatim.
    Unsupported(Unsupported),
}

impl Interactive {
    pub fn kind(&self) -> &str {
        match self {
            Self::Button(_) => "button",
            Self::List(_) => "list",
            Self::Unsupported(u) => &u.kind,
        }
    }
}

/// 1–3 reply buttons.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ButtonMessage {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header: Option<Header>,
    pub body: TextObject,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub footer: Option<TextObject>,
    pub action: ButtonAction,
}

/// A list: up to 10 sections and 10 rows in total.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ListMessage {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header: Option<Header>,
    pub body: TextObject,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub footer: Option<TextObject>,
    pub action: ListAction,
}

/// `{"text": "..."}` as used by body and footer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TextObject {
    pub text: String,
}

type_tagged! {
    /// Interactive header: text, or media by link (`{"type":"image","image":{"link":…}}`).
    pub enum Header (lenient = false, default = None) {
        Text(String) = "text",
        Image(Media) = "image",
        Video(Media) = "video",
        Document(Media) = "document",
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ButtonAction {
    pub buttons: Vec<Button>,
}

type_tagged! {
    /// A button in a reply-button message: `{"type":"reply","reply":{id,title}}`.
    pub enum Button (lenient = false, default = None) {
        Reply(ReplyButton) = "reply",
    }
}

/// `id` ≤ 256 characters, `title` ≤ 20 and unique within the message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplyButton {
    pub id: String,
    pub title: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListAction {
    /// The label of the button that opens the list (≤ 20 characters).
    pub button: String,
    pub sections: Vec<ListSection>,
}

/// `title` is required when there is more than one section.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListSection {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    pub rows: Vec<ListRow>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListRow {
    pub id: String,
    pub title: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

impl Serialize for Interactive {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        // Serialise the variant struct to a map, then prepend `type`.
        fn with_type<S: serde::Serializer, T: Serialize>(
            s: S,
            kind: &str,
            v: &T,
        ) -> Result<S::Ok, S::Error> {
            let fields = match serde_json::to_value(v).map_err(serde::ser::Error::custom)? {
                serde_json::Value::Object(m) => m,
                _ => {
                    return Err(serde::ser::Error::custom(
                        "interactive payload must be an object",
                    ));
                }
            };
            Unsupported {
                kind: kind.to_owned(),
                raw: fields,
            }
            .serialize_into_map(s)
        }
        match self {
            Self::Button(b) => with_type(s, "button", b),
            Self::List(l) => with_type(s, "list", l),
            Self::Unsupported(u) => u.clone().serialize_into_map(s),
        }
    }
}

impl Unsupported {
    fn serialize_into_map<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(None)?;
        self.serialize_into(&mut map)?;
        map.end()
    }
}

impl<'de> Deserialize<'de> for Interactive {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let (kind, map) = split_kind(d, None)?;
        let obj = serde_json::Value::Object(map);
        match kind.as_str() {
            "button" => ButtonMessage::deserialize(&obj)
                .map(Self::Button)
                .map_err(D::Error::custom),
            "list" => ListMessage::deserialize(&obj)
                .map(Self::List)
                .map_err(D::Error::custom),
            _ => match obj {
                serde_json::Value::Object(raw) => Ok(Self::Unsupported(Unsupported { kind, raw })),
                _ => unreachable!("constructed as an object above"),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reply_buttons_round_trip_exactly() {
        let v = json!({"type":"button","header":{"type":"text","text":"Optional header"},
            "body":{"text":"Pick one"},"footer":{"text":"Optional footer"},
            "action":{"buttons":[{"type":"reply","reply":{"id":"change","title":"Change"}}]}});
        let i: Interactive = serde_json::from_value(v.clone()).unwrap();
        assert!(matches!(i, Interactive::Button(_)));
        assert_eq!(serde_json::to_value(&i).unwrap(), v);
    }

    #[test]
    fn image_header_uses_named_payload() {
        let h: Header =
            serde_json::from_value(json!({"type":"image","image":{"link":"https://x/y.jpg"}}))
                .unwrap();
        assert_eq!(h, Header::Image(Media::link("https://x/y.jpg")));
    }

    #[test]
    fn other_interactive_types_are_kept() {
        let v = json!({"type":"cta_url","body":{"text":"b"},"action":{"name":"cta_url","parameters":{"url":"https://x"}}});
        let i: Interactive = serde_json::from_value(v.clone()).unwrap();
        assert_eq!(i.kind(), "cta_url");
        assert_eq!(serde_json::to_value(&i).unwrap(), v);
    }
}
