//! Request and response bodies of the management endpoints: media
//! (upload/retrieve/delete), message templates (create/list/delete) and
//! phone number info.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::webhook::{TemplateCategory, TemplateStatus};
use crate::wire::{open_enum, u64_or_string};

/// Response to a media upload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MediaUploaded {
    pub id: String,
}

/// Response to `GET /{media-id}`: a download URL valid for about 5 minutes.
/// `sha256` is hex here. `file_size` arrives as a number or a string
/// ([uncertain]); both parse and it is written back as a number.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MediaInfo {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub messaging_product: Option<String>,
    pub url: String,
    pub mime_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    #[serde(with = "u64_or_string")]
    pub file_size: u64,
    pub id: String,
}

/// Body of `POST /{waba-id}/message_templates`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TemplateCreate {
    /// Lower-case letters, digits and underscores.
    pub name: String,
    /// Locale code, e.g. `en_US`.
    pub language: String,
    pub category: TemplateCategory,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameter_format: Option<ParameterFormat>,
    pub components: Vec<TemplateDefComponent>,
}

open_enum! {
    pub enum ParameterFormat {
        Positional = "POSITIONAL",
        Named = "NAMED",
    }
}

/// A component of a template definition (`HEADER`, `BODY`, `FOOTER`,
/// `BUTTONS`, …). One struct with optional fields because the kinds share
/// most of them and Meta keeps adding kinds (`CAROUSEL`, …).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TemplateDefComponent {
    #[serde(rename = "type")]
    pub kind: String,
    /// Header format: `TEXT`, `IMAGE`, `VIDEO`, `GIF`, `DOCUMENT`, `LOCATION`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub example: Option<TemplateExample>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub buttons: Vec<TemplateDefButton>,
}

/// Example values; Meta rejects templates whose variables lack them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TemplateExample {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub header_text: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub body_text: Vec<Vec<String>>,
    /// Resumable-upload handles for media headers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub header_handle: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub header_text_named_params: Vec<NamedExample>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub body_text_named_params: Vec<NamedExample>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NamedExample {
    pub param_name: String,
    pub example: String,
}

/// A button definition. `example` differs by button type (an array of
/// strings for URL buttons), so it is kept as JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TemplateDefButton {
    /// `QUICK_REPLY`, `URL`, `PHONE_NUMBER`, `COPY_CODE`, `OTP`, `FLOW`, …
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone_number: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub example: Option<Value>,
}

/// Response to a template create.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TemplateCreated {
    pub id: String,
    pub status: TemplateStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<TemplateCategory>,
}

/// One page of `GET /{waba-id}/message_templates`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TemplateList {
    pub data: Vec<TemplateInfo>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paging: Option<Paging>,
}

/// A stored template. Fields depend on the `fields=` asked for, so all but
/// `id` are optional.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TemplateInfo {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<TemplateStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<TemplateCategory>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameter_format: Option<ParameterFormat>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub components: Vec<TemplateDefComponent>,
}

/// Graph cursor paging; follow `cursors.after` until `next` is absent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Paging {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursors: Option<Cursors>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cursors {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<String>,
}

/// Filters for a template list page.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TemplateListQuery {
    pub name: Option<String>,
    pub status: Option<TemplateStatus>,
    /// Page size; Graph's default applies when `None`.
    pub limit: Option<u32>,
    /// `paging.cursors.after` of the previous page.
    pub after: Option<String>,
    /// Comma-separated `fields=`; `None` asks for Graph's defaults.
    pub fields: Option<String>,
}

/// `GET /{phone-number-id}`. Enum-like fields stay strings: their value
/// sets are [uncertain] and only displayed, never branched on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PhoneNumberInfo {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verified_name: Option<String>,
    /// Human-formatted (`"+1 555-096-7852"`), unlike webhook metadata.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_phone_number: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code_verification_status: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quality_rating: Option<QualityRating>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub throughput: Option<Throughput>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name_status: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_mode: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_official_business_account: Option<bool>,
    /// Deprecated by Meta but still returned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub messaging_limit_tier: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Throughput {
    /// `STANDARD` or `HIGH`.
    pub level: String,
}

open_enum! {
    pub enum QualityRating {
        Green = "GREEN",
        Yellow = "YELLOW",
        Red = "RED",
        Unknown = "UNKNOWN",
        NotApplicable = "NA",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn file_size_as_string_or_number() {
        let base = json!({"url":"https://l/x","mime_type":"image/jpeg","sha256":"ab","id":"1"});
        for size in [json!(303833), json!("303833")] {
            let mut v = base.clone();
            v["file_size"] = size;
            let m: MediaInfo = serde_json::from_value(v).unwrap();
            assert_eq!(m.file_size, 303_833);
        }
        let mut v = base;
        v["file_size"] = json!("big");
        assert!(serde_json::from_value::<MediaInfo>(v).is_err());
    }
}
