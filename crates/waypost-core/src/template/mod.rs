//! Message templates: name, language and category rules, validation of the
//! Meta-format `components` array before it is submitted to the provider, and
//! the parameter counts a send must supply. Meta rejects a malformed template
//! only after a review round trip; checking here answers at once, with the
//! JSON pointer of the offending field.
//!
//! Components are kept as `serde_json::Value` exactly as submitted (the stored
//! form the send path reads), so validation also refuses fields Waypost does
//! not pass on to the provider.

mod components;
mod prohibited;

use std::fmt;

use serde_json::Value;

pub use components::validate_components;
pub use prohibited::{
    BUILTIN_PROHIBITED, ProhibitedContent, SPAM_CATEGORY, TEMPLATE_SPAM_SCORE, template_texts,
};

/// Longest template name Meta accepts.
pub const NAME_MAX: usize = 512;
pub const BODY_MAX: usize = 1024;
pub const HEADER_TEXT_MAX: usize = 60;
pub const FOOTER_MAX: usize = 60;
/// Button label length ([uncertain]: Meta's UI limit; not in the reference tables).
pub const BUTTON_TEXT_MAX: usize = 25;
pub const BUTTONS_MAX: usize = 10;
pub const URL_BUTTONS_MAX: usize = 2;
pub const PHONE_BUTTONS_MAX: usize = 1;
pub const COPY_CODE_BUTTONS_MAX: usize = 1;

/// A template name: lower-case ASCII letters, digits and underscores, 1 to 512.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TemplateName(String);

impl TemplateName {
    pub fn parse(s: &str) -> Result<Self, String> {
        if s.is_empty() || s.len() > NAME_MAX {
            return Err(format!("must be 1 to {NAME_MAX} characters"));
        }
        if !s
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        {
            return Err("may contain only lower-case letters, digits and underscores".into());
        }
        Ok(Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TemplateName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A template language: a locale code as Meta writes it (`en`, `en_US`,
/// `pt_BR`, `zh_CN`, `fil`, `sr_Latn`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LanguageCode(String);

impl LanguageCode {
    pub fn parse(s: &str) -> Result<Self, String> {
        let (lang, region) = match s.split_once('_') {
            Some((l, r)) => (l, Some(r)),
            None => (s, None),
        };
        let lang_ok = (2..=3).contains(&lang.len()) && lang.bytes().all(|b| b.is_ascii_lowercase());
        let region_ok = region.is_none_or(|r| {
            (r.len() == 2 && r.bytes().all(|b| b.is_ascii_uppercase()))
                || (r.len() == 4
                    && r.as_bytes()[0].is_ascii_uppercase()
                    && r.bytes().skip(1).all(|b| b.is_ascii_lowercase()))
        });
        if lang_ok && region_ok {
            Ok(Self(s.to_owned()))
        } else {
            Err("must be a locale code such as `en`, `en_US` or `pt_BR`".into())
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for LanguageCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What a template is for; decides which consent a send needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TemplateCategory {
    Marketing,
    Utility,
    Authentication,
}

impl TemplateCategory {
    /// Any case: `marketing`, `MARKETING`.
    pub fn parse(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "marketing" => Ok(Self::Marketing),
            "utility" => Ok(Self::Utility),
            "authentication" => Ok(Self::Authentication),
            _ => Err("must be `marketing`, `utility` or `authentication`".into()),
        }
    }

    /// The stored (lower-case) form.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Marketing => "marketing",
            Self::Utility => "utility",
            Self::Authentication => "authentication",
        }
    }

    /// Meta's upper-case form.
    pub fn meta_str(self) -> &'static str {
        match self {
            Self::Marketing => "MARKETING",
            Self::Utility => "UTILITY",
            Self::Authentication => "AUTHENTICATION",
        }
    }
}

/// One problem in a components array, located by JSON pointer (RFC 6901,
/// relative to the request body).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComponentError {
    pub pointer: String,
    pub message: String,
}

impl fmt::Display for ComponentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.pointer, self.message)
    }
}

/// Parameters a send must supply for one button.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ButtonParameters {
    /// Position in the BUTTONS component (the `index` of a send).
    pub index: usize,
    /// Button type, upper-case (`URL`, `COPY_CODE`).
    pub kind: String,
    pub count: usize,
}

/// Parameters a send must supply, per component.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ParameterCounts {
    pub header: usize,
    pub body: usize,
    /// Only buttons that take parameters.
    pub buttons: Vec<ButtonParameters>,
}

/// The highest `{{n}}` in a text (0 without placeholders). Named or malformed
/// placeholders are ignored here; [`validate_components`] refuses them.
pub fn max_placeholder(text: &str) -> usize {
    placeholders(text)
        .into_iter()
        .filter_map(|p| p.number)
        .max()
        .unwrap_or(0)
}

/// Expected parameter counts of a stored components array. Lenient (it
/// never fails) because stored templates were validated on the way in.
pub fn parameter_counts(components: &Value) -> ParameterCounts {
    let mut counts = ParameterCounts::default();
    for c in components.as_array().into_iter().flatten() {
        let kind = c["type"].as_str().unwrap_or("").to_ascii_uppercase();
        let text = c["text"].as_str().unwrap_or("");
        match kind.as_str() {
            "HEADER" => {
                let format = c["format"].as_str().unwrap_or("TEXT").to_ascii_uppercase();
                counts.header = if format == "TEXT" {
                    max_placeholder(text)
                } else {
                    // A media or location header takes its media at send time.
                    usize::from(format != "NONE")
                };
            }
            "BODY" => counts.body = max_placeholder(text),
            "BUTTONS" => {
                for (index, b) in c["buttons"].as_array().into_iter().flatten().enumerate() {
                    let kind = b["type"].as_str().unwrap_or("").to_ascii_uppercase();
                    let count = match kind.as_str() {
                        "URL" => max_placeholder(b["url"].as_str().unwrap_or("")),
                        "COPY_CODE" => 1,
                        _ => 0,
                    };
                    if count > 0 {
                        counts.buttons.push(ButtonParameters { index, kind, count });
                    }
                }
            }
            _ => {}
        }
    }
    counts
}

/// One `{{…}}` occurrence: its number when positional, and byte span.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Placeholder {
    number: Option<usize>,
    start: usize,
    end: usize,
}

fn placeholders(text: &str) -> Vec<Placeholder> {
    let mut found = Vec::new();
    let mut offset = 0;
    while let Some(open) = text[offset..].find("{{") {
        let start = offset + open;
        let Some(close) = text[start + 2..].find("}}") else {
            break;
        };
        let inner = &text[start + 2..start + 2 + close];
        let number =
            (!inner.is_empty() && inner.len() <= 4 && inner.bytes().all(|b| b.is_ascii_digit()))
                .then(|| inner.parse::<usize>().ok())
                .flatten()
                .filter(|n| *n > 0);
        let end = start + 2 + close + 2;
        found.push(Placeholder { number, start, end });
        offset = end;
    }
    found
}

#[cfg(test)]
mod tests;
