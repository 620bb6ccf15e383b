//! Phone numbers in E.164 form, validated with libphonenumber's metadata.

use std::fmt;

/// A valid phone number in E.164 form (`+4915112345678`).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct E164(String);

/// Why input is not a usable phone number. Never echoes the input: phone
/// numbers are personal data and error messages end up in logs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PhoneError {
    #[error("is not a phone number in international form (start with + and the country code)")]
    Unparseable,
    #[error("is not a valid number for its country")]
    Invalid,
}

impl E164 {
    /// Parses international input (`+49 151 1234 5678`, `0049…`, or a WhatsApp id
    /// without `+`) into E.164.
    pub fn parse(input: &str) -> Result<Self, PhoneError> {
        let trimmed = input.trim();
        if trimmed.is_empty() || trimmed.len() > 32 {
            return Err(PhoneError::Unparseable);
        }
        let international = if let Some(rest) = trimmed.strip_prefix("00") {
            format!("+{rest}")
        } else if trimmed.starts_with('+') {
            trimmed.to_owned()
        } else if trimmed.chars().all(|c| c.is_ascii_digit()) {
            // WhatsApp ids are E.164 digits without the plus.
            format!("+{trimmed}")
        } else {
            return Err(PhoneError::Unparseable);
        };
        let number =
            phonenumber::parse(None, &international).map_err(|_| PhoneError::Unparseable)?;
        if !phonenumber::is_valid(&number) {
            return Err(PhoneError::Invalid);
        }
        Ok(Self(
            number.format().mode(phonenumber::Mode::E164).to_string(),
        ))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The digits without `+`: the form the Cloud API uses for `to` and `wa_id`.
    pub fn wa_id(&self) -> &str {
        &self.0[1..]
    }

    /// The number's country (ISO 3166-1 alpha-2, e.g. `DE`), from its
    /// calling code and, where several countries share one (`+1`), its
    /// area code: what Meta's per-country rates go by.
    pub fn country(&self) -> Option<String> {
        let number = phonenumber::parse(None, &self.0).ok()?;
        Some(number.country().id()?.as_ref().to_owned())
    }
}

impl fmt::Display for E164 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Masked, so a stray `{:?}` never prints a whole number.
impl fmt::Debug for E164 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "E164({})", crate::redact::mask_phone(&self.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn country_follows_the_calling_code_and_area() {
        let country = |n: &str| E164::parse(n).unwrap().country();
        assert_eq!(country("+4915112345678").as_deref(), Some("DE"));
        assert_eq!(country("+5511987654321").as_deref(), Some("BR"));
        // `+1` is shared: the area code tells the United States from Canada.
        assert_eq!(country("+12015550123").as_deref(), Some("US"));
        assert_eq!(country("+15062345678").as_deref(), Some("CA"));
    }

    #[test]
    fn normalises_common_forms() {
        for input in [
            "+49 151 12345678",
            "0049 151 12345678",
            "4915112345678",
            "+49-151-1234-5678",
        ] {
            assert_eq!(
                E164::parse(input).unwrap().as_str(),
                "+4915112345678",
                "{input}"
            );
        }
        assert_eq!(
            E164::parse("+1 650-555-1234").unwrap().wa_id(),
            "16505551234"
        );
    }

    #[test]
    fn refuses_what_is_not_a_number() {
        assert_eq!(E164::parse(""), Err(PhoneError::Unparseable));
        assert_eq!(E164::parse("call me"), Err(PhoneError::Unparseable));
        assert_eq!(E164::parse("0151 12345678"), Err(PhoneError::Unparseable));
        assert!(E164::parse("+49 1").is_err());
        assert_eq!(E164::parse("+1 555 000 0000"), Err(PhoneError::Invalid));
        assert_eq!(E164::parse(&"9".repeat(40)), Err(PhoneError::Unparseable));
    }

    #[test]
    fn debug_masks_the_number() {
        let n = E164::parse("+4915112345678").unwrap();
        assert!(!format!("{n:?}").contains("12345678"));
    }
}
