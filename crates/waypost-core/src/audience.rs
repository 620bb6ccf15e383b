//! Audiences: the vocabulary of who a business may address at once. Tags,
//! custom field names and types, language and time-zone codes, the consent
//! states a filter asks for, and the canonical form of a custom attribute's
//! value: the text a blind index is computed over, so that equal values
//! (`"Berlin"`, `" berlin "`) find each other without the value being stored
//! in plaintext.
//!
//! Pure rules: the server seals and indexes, the store queries.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Why an audience value was refused; the message names the rule, never the value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AudienceError {
    #[error("must be 1 to 64 characters of a-z, 0-9, `_` and `-`, starting with a letter or digit")]
    Tag,
    #[error("must be 1 to 64 characters of a-z, 0-9 and `_`, starting with a letter")]
    FieldKey,
    #[error("is a built-in contact field; choose another name")]
    ReservedFieldKey,
    #[error("must be a language code such as `en`, `pt_BR` or `es-MX`")]
    Language,
    #[error("must be an IANA time zone such as `Europe/Berlin`")]
    TimeZone,
    #[error("must be {0}")]
    Value(&'static str),
}

/// A label a business puts on contacts (`vip`, `newsletter-2026`). Tags are the
/// business's own vocabulary, restricted to a slug so they cannot carry free text.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct Tag(String);

impl Tag {
    pub fn parse(input: &str) -> Result<Self, AudienceError> {
        let t = input.trim().to_ascii_lowercase();
        let ok = (1..=64).contains(&t.len())
            && t.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
            && t.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
        if ok {
            Ok(Self(t))
        } else {
            Err(AudienceError::Tag)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Column names of an import and keys a contact's own fields use; a custom
/// field may not take them.
pub const RESERVED_FIELD_KEYS: &[&str] = &[
    "id",
    "phone",
    "user_id",
    "name",
    "language",
    "time_zone",
    "tags",
    "consent_marketing",
    "consent_utility",
    "consent_authentication",
    "consent_source",
    "consent_captured_at",
    "consent_text",
];

/// The name of a custom contact field (`city`, `loyalty_tier`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct FieldKey(String);

impl FieldKey {
    pub fn parse(input: &str) -> Result<Self, AudienceError> {
        let k = input.trim();
        let ok = (1..=64).contains(&k.len())
            && k.chars().next().is_some_and(|c| c.is_ascii_lowercase())
            && k.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if !ok {
            return Err(AudienceError::FieldKey);
        }
        if RESERVED_FIELD_KEYS.contains(&k) {
            return Err(AudienceError::ReservedFieldKey);
        }
        Ok(Self(k.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for FieldKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The type of a custom field: what its values must be, and how they compare.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FieldType {
    /// Up to 500 characters; compared ignoring case and surrounding spaces.
    Text,
    /// A finite number.
    Number,
    Boolean,
    /// A calendar date, `YYYY-MM-DD`.
    Date,
}

/// Longest text value of a custom field, in characters.
pub const MAX_TEXT_VALUE_CHARS: usize = 500;

impl FieldType {
    pub fn as_str(self) -> &'static str {
        match self {
            FieldType::Text => "text",
            FieldType::Number => "number",
            FieldType::Boolean => "boolean",
            FieldType::Date => "date",
        }
    }

    fn rule(self) -> &'static str {
        match self {
            FieldType::Text => "a string of at most 500 characters",
            FieldType::Number => "a finite number",
            FieldType::Boolean => "true or false",
            FieldType::Date => "a date in the form YYYY-MM-DD",
        }
    }

    /// A JSON value of this type in its stored form (text trimmed, dates checked).
    pub fn check(self, value: &serde_json::Value) -> Result<serde_json::Value, AudienceError> {
        use serde_json::Value as J;
        let bad = || AudienceError::Value(self.rule());
        match (self, value) {
            (FieldType::Text, J::String(s)) => {
                let t = s.trim();
                if t.chars().count() > MAX_TEXT_VALUE_CHARS {
                    return Err(bad());
                }
                Ok(J::String(t.to_owned()))
            }
            (FieldType::Number, J::Number(n)) if n.as_f64().is_some_and(f64::is_finite) => {
                Ok(value.clone())
            }
            (FieldType::Boolean, J::Bool(_)) => Ok(value.clone()),
            (FieldType::Date, J::String(s)) => {
                chrono::NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d")
                    .map(|d| J::String(d.format("%Y-%m-%d").to_string()))
                    .map_err(|_| bad())
            }
            _ => Err(bad()),
        }
    }

    /// A value of this type written as text (a CSV cell, a query parameter).
    pub fn parse_text(self, text: &str) -> Result<serde_json::Value, AudienceError> {
        let t = text.trim();
        let bad = || AudienceError::Value(self.rule());
        let value = match self {
            FieldType::Text | FieldType::Date => serde_json::Value::String(t.to_owned()),
            FieldType::Number => {
                let n: f64 = t.parse().map_err(|_| bad())?;
                serde_json::Number::from_f64(n)
                    .map(serde_json::Value::Number)
                    .ok_or_else(bad)?
            }
            FieldType::Boolean => match t.to_ascii_lowercase().as_str() {
                "true" | "yes" | "1" => serde_json::Value::Bool(true),
                "false" | "no" | "0" => serde_json::Value::Bool(false),
                _ => return Err(bad()),
            },
        };
        self.check(&value)
    }
}

impl FromStr for FieldType {
    type Err = AudienceError;
    fn from_str(s: &str) -> Result<Self, AudienceError> {
        match s {
            "text" => Ok(FieldType::Text),
            "number" => Ok(FieldType::Number),
            "boolean" => Ok(FieldType::Boolean),
            "date" => Ok(FieldType::Date),
            _ => Err(AudienceError::Value("one of text, number, boolean, date")),
        }
    }
}

/// The canonical text of an attribute value that its blind index is computed
/// over: typed (`s:`, `n:`, `b:`), so `"1"` and `1` differ, and text folded to
/// lower case without surrounding spaces, so a filter need not match the case.
/// Arrays and objects have none: they are kept but cannot be filtered on.
pub fn canonical_value(value: &serde_json::Value) -> Option<String> {
    use serde_json::Value as J;
    match value {
        J::String(s) => Some(format!("s:{}", s.trim().to_lowercase())),
        J::Number(n) => n.as_f64().map(|f| format!("n:{f}")),
        J::Bool(b) => Some(format!("b:{b}")),
        J::Null | J::Array(_) | J::Object(_) => None,
    }
}

/// A language code as WhatsApp templates name them (`en`, `en_US`, `pt_BR`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Language(String);

impl Language {
    /// Accepts `-` or `_` between language and region; stores `_` (WhatsApp's form).
    pub fn parse(input: &str) -> Result<Self, AudienceError> {
        let t = input.trim().replace('-', "_");
        let (lang, region) = match t.split_once('_') {
            Some((l, r)) => (l, Some(r)),
            None => (t.as_str(), None),
        };
        let lang_ok =
            (2..=3).contains(&lang.len()) && lang.chars().all(|c| c.is_ascii_alphabetic());
        let region_ok = region.is_none_or(|r| {
            (2..=4).contains(&r.len()) && r.chars().all(|c| c.is_ascii_alphanumeric())
        });
        if !lang_ok || !region_ok {
            return Err(AudienceError::Language);
        }
        Ok(Self(match region {
            Some(r) if r.len() == 2 => format!("{}_{}", lang.to_lowercase(), r.to_uppercase()),
            Some(r) => format!("{}_{}", lang.to_lowercase(), r),
            None => lang.to_lowercase(),
        }))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An IANA time zone (`Europe/Berlin`), the one campaigns schedule in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TimeZoneName(String);

impl TimeZoneName {
    pub fn parse(input: &str) -> Result<Self, AudienceError> {
        input
            .trim()
            .parse::<chrono_tz::Tz>()
            .map(|tz| Self(tz.name().to_owned()))
            .map_err(|_| AudienceError::TimeZone)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The consent state a filter asks for in one category.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConsentFilter {
    OptedIn,
    OptedOut,
    /// Never recorded.
    Unknown,
}

impl ConsentFilter {
    /// The stored value the filter matches; `None` for [`ConsentFilter::Unknown`] (SQL NULL).
    pub fn stored(self) -> Option<&'static str> {
        match self {
            ConsentFilter::OptedIn => Some("opted_in"),
            ConsentFilter::OptedOut => Some("opted_out"),
            ConsentFilter::Unknown => None,
        }
    }
}

impl FromStr for ConsentFilter {
    type Err = AudienceError;
    fn from_str(s: &str) -> Result<Self, AudienceError> {
        match s {
            "opted_in" => Ok(ConsentFilter::OptedIn),
            "opted_out" => Ok(ConsentFilter::OptedOut),
            "unknown" => Ok(ConsentFilter::Unknown),
            _ => Err(AudienceError::Value("one of opted_in, opted_out, unknown")),
        }
    }
}

/// What became of one row of a contact import.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ImportOutcome {
    Created,
    Updated,
    InvalidNumber,
    /// Another value of the row is not valid (the detail names the column).
    Invalid,
    /// The number appeared on an earlier row of the same file.
    Duplicate,
}

impl ImportOutcome {
    pub const ALL: [ImportOutcome; 5] = [
        ImportOutcome::Created,
        ImportOutcome::Updated,
        ImportOutcome::InvalidNumber,
        ImportOutcome::Invalid,
        ImportOutcome::Duplicate,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ImportOutcome::Created => "created",
            ImportOutcome::Updated => "updated",
            ImportOutcome::InvalidNumber => "invalid_number",
            ImportOutcome::Invalid => "invalid",
            ImportOutcome::Duplicate => "duplicate",
        }
    }
}

impl FromStr for ImportOutcome {
    type Err = AudienceError;
    fn from_str(s: &str) -> Result<Self, AudienceError> {
        ImportOutcome::ALL
            .into_iter()
            .find(|o| o.as_str() == s)
            .ok_or(AudienceError::Value("an import outcome"))
    }
}

/// Whether an import cell says the person agreed (`yes`, `true`, `1`, `opted_in`),
/// refused (`no`, `false`, `0`, `opted_out`) or says nothing (empty).
pub fn parse_consent_cell(cell: &str) -> Result<Option<bool>, AudienceError> {
    match cell.trim().to_ascii_lowercase().as_str() {
        "" => Ok(None),
        "yes" | "y" | "true" | "1" | "opted_in" => Ok(Some(true)),
        "no" | "n" | "false" | "0" | "opted_out" => Ok(Some(false)),
        _ => Err(AudienceError::Value("yes/no, true/false, 1/0 or empty")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    #[test]
    fn tags_are_slugs_folded_to_lower_case() {
        assert_eq!(Tag::parse(" VIP ").unwrap().as_str(), "vip");
        assert_eq!(Tag::parse("news-2026_q1").unwrap().as_str(), "news-2026_q1");
        for bad in ["", "-x", "a b", "ü", &"x".repeat(65)] {
            assert_eq!(Tag::parse(bad), Err(AudienceError::Tag), "{bad}");
        }
    }

    #[test]
    fn field_keys_refuse_built_in_names() {
        assert_eq!(FieldKey::parse("city").unwrap().as_str(), "city");
        assert_eq!(
            FieldKey::parse("name"),
            Err(AudienceError::ReservedFieldKey)
        );
        assert_eq!(FieldKey::parse("1st"), Err(AudienceError::FieldKey));
        assert_eq!(FieldKey::parse("City"), Err(AudienceError::FieldKey));
    }

    #[test]
    fn typed_values_are_checked_and_parsed_from_text() {
        assert_eq!(FieldType::Number.parse_text(" 42 ").unwrap(), json!(42.0));
        assert!(FieldType::Number.parse_text("NaN").is_err());
        assert_eq!(FieldType::Boolean.parse_text("Yes").unwrap(), json!(true));
        assert_eq!(
            FieldType::Date.parse_text("2026-02-28").unwrap(),
            json!("2026-02-28")
        );
        assert!(FieldType::Date.parse_text("2026-02-30").is_err());
        assert!(FieldType::Text.check(&json!(3)).is_err());
        assert!(FieldType::Text.check(&json!("x".repeat(501))).is_err());
    }

    #[test]
    fn canonical_values_ignore_case_and_spaces_but_keep_the_type() {
        assert_eq!(
            canonical_value(&json!(" Berlin ")),
            canonical_value(&json!("berlin"))
        );
        assert_ne!(canonical_value(&json!("1")), canonical_value(&json!(1)));
        assert_eq!(canonical_value(&json!(1)), canonical_value(&json!(1.0)));
        assert_eq!(canonical_value(&json!([1])), None);
    }

    #[test]
    fn languages_and_time_zones_take_their_canonical_form() {
        assert_eq!(Language::parse("pt-br").unwrap().as_str(), "pt_BR");
        assert_eq!(Language::parse("EN").unwrap().as_str(), "en");
        assert!(Language::parse("english").is_err());
        assert_eq!(
            TimeZoneName::parse("Europe/Berlin").unwrap().as_str(),
            "Europe/Berlin"
        );
        assert!(TimeZoneName::parse("Mars/Olympus").is_err());
    }

    #[test]
    fn consent_cells() {
        assert_eq!(parse_consent_cell(" YES "), Ok(Some(true)));
        assert_eq!(parse_consent_cell("0"), Ok(Some(false)));
        assert_eq!(parse_consent_cell(""), Ok(None));
        assert!(parse_consent_cell("maybe").is_err());
    }

    proptest! {
        #[test]
        fn tag_parsing_never_panics_and_is_idempotent(s in "\\PC{0,80}") {
            if let Ok(t) = Tag::parse(&s) {
                prop_assert_eq!(Tag::parse(t.as_str()).unwrap(), t);
            }
        }

        #[test]
        fn text_values_index_alike_whatever_the_case(s in "[a-zA-Z ]{0,40}") {
            prop_assert_eq!(
                canonical_value(&json!(s.to_uppercase())),
                canonical_value(&json!(s.to_lowercase()))
            );
        }
    }
}
