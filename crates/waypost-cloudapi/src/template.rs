//! The `template` payload of a send: which approved template, in which
//! language, with which header/body/button parameters.

use serde::{Deserialize, Deserializer, Serialize};

use crate::send::{Location, Media};
use crate::wire::{open_enum, type_tagged};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TemplateMessage {
    pub name: String,
    pub language: TemplateLanguage,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub components: Vec<TemplateComponent>,
}

/// `policy` is legacy (`"deterministic"`), still sent by Meta's node SDK.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TemplateLanguage {
    pub code: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
}

/// One of header/body/button with its parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TemplateComponent {
    #[serde(rename = "type", deserialize_with = "component_kind_any_case")]
    pub kind: ComponentKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub_type: Option<ButtonSubType>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index: Option<ButtonIndex>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parameters: Vec<TemplateParameter>,
}

open_enum! {
    /// Component `type` on send. Lower-case on the wire; parsing accepts any
    /// case ([uncertain] whether Meta does) and normalises to lower-case.
    pub enum ComponentKind {
        Header = "header",
        Body = "body",
        Button = "button",
    }
}

fn component_kind_any_case<'de, D: Deserializer<'de>>(d: D) -> Result<ComponentKind, D::Error> {
    let s = String::deserialize(d)?;
    Ok(match ComponentKind::from(s.to_ascii_lowercase().as_str()) {
        ComponentKind::Other(_) => ComponentKind::Other(s),
        known => known,
    })
}

open_enum! {
    /// Button component `sub_type`.
    pub enum ButtonSubType {
        QuickReply = "quick_reply",
        Url = "url",
        CopyCode = "copy_code",
        Flow = "flow",
        Catalog = "catalog",
        Mpm = "mpm",
        VoiceCall = "voice_call",
    }
}

/// Button position. Meta's examples send a string (`"0"`), pywa sends a
/// number ([uncertain] which Meta prefers); both are accepted and the form
/// received is kept so a round-trip is exact.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ButtonIndex {
    Number(u32),
    Text(String),
}

impl ButtonIndex {
    /// The numeric position, if it is one.
    pub fn position(&self) -> Option<u32> {
        match self {
            Self::Number(n) => Some(*n),
            Self::Text(s) => s.trim().parse().ok(),
        }
    }
}

/// A parameter; `parameter_name` is set for templates with named variables.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TemplateParameter {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameter_name: Option<String>,
    #[serde(flatten)]
    pub value: ParameterValue,
}

impl TemplateParameter {
    /// A positional text parameter.
    pub fn text(text: impl Into<String>) -> Self {
        Self {
            parameter_name: None,
            value: ParameterValue::Text(text.into()),
        }
    }

    /// A named text parameter (`{{first_name}}`).
    pub fn named_text(name: impl Into<String>, text: impl Into<String>) -> Self {
        Self {
            parameter_name: Some(name.into()),
            value: ParameterValue::Text(text.into()),
        }
    }
}

type_tagged! {
    /// Parameter value, `{"type":"text","text":"Jessica"}` and so on.
    pub enum ParameterValue (lenient = false, default = None) {
        Text(String) = "text",
        Currency(Currency) = "currency",
        DateTime(DateTime) = "date_time",
        Image(Media) = "image",
        Document(Media) = "document",
        Video(Media) = "video",
        Location(Location) = "location",
        /// Quick-reply button payload.
        Payload(String) = "payload",
        CouponCode(String) = "coupon_code",
    }
}

/// `amount_1000` is the amount times 1000 (100990 = 100.99).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Currency {
    pub fallback_value: String,
    pub code: String,
    pub amount_1000: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DateTime {
    pub fallback_value: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn named_parameter_keeps_sibling_name() {
        let v = json!({"type":"text","text":"Jessica","parameter_name":"first_name"});
        let p: TemplateParameter = serde_json::from_value(v.clone()).unwrap();
        assert_eq!(p, TemplateParameter::named_text("first_name", "Jessica"));
        assert_eq!(serde_json::to_value(&p).unwrap(), v);
    }

    #[test]
    fn index_as_string_or_number() {
        let a: ButtonIndex = serde_json::from_value(json!("1")).unwrap();
        let b: ButtonIndex = serde_json::from_value(json!(1)).unwrap();
        assert_eq!(a.position(), Some(1));
        assert_eq!(b.position(), Some(1));
        assert_eq!(serde_json::to_value(&a).unwrap(), json!("1"));
        assert_eq!(serde_json::to_value(&b).unwrap(), json!(1));
    }

    #[test]
    fn component_type_accepts_upper_case() {
        let c: TemplateComponent = serde_json::from_value(json!({"type":"BODY"})).unwrap();
        assert_eq!(c.kind, ComponentKind::Body);
        let c: TemplateComponent = serde_json::from_value(json!({"type":"Carousel"})).unwrap();
        assert_eq!(c.kind, ComponentKind::Other("Carousel".into()));
    }
}
