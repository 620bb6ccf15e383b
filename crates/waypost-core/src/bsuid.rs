//! Business-scoped user ids (BSUIDs): the id WhatsApp gives a user per
//! business portfolio since 2026 (`US.13491208655302741918`), and parent
//! BSUIDs (`US.ENT.1181…`) for businesses enrolled in parent accounts.
//! Kept verbatim, never normalised like a phone number.

use std::fmt;

/// A BSUID or parent BSUID: ISO 3166 alpha-2 code, `.`, optionally `ENT.`,
/// then 1 to 128 letters and digits.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Bsuid(String);

/// Why input is not a BSUID. Never echoes the input: a BSUID identifies a person.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "is not a business-scoped user id (a two-letter country code, a dot, then up to 128 letters and digits, e.g. US.13491208655302741918)"
)]
pub struct BsuidError;

impl Bsuid {
    pub fn parse(input: &str) -> Result<Self, BsuidError> {
        let s = input.trim();
        let (cc, rest) = s.split_once('.').ok_or(BsuidError)?;
        let rest = rest.strip_prefix("ENT.").unwrap_or(rest);
        let ok = cc.len() == 2
            && cc.bytes().all(|b| b.is_ascii_uppercase())
            && (1..=128).contains(&rest.len())
            && rest.bytes().all(|b| b.is_ascii_alphanumeric());
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(BsuidError)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A parent BSUID (`CC.ENT.…`), valid across the enrolled portfolios.
    pub fn is_parent(&self) -> bool {
        self.0.get(2..7) == Some(".ENT.")
    }
}

impl fmt::Display for Bsuid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Masked like phone numbers: the country and the last two characters.
impl fmt::Debug for Bsuid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let tail = &self.0[self.0.len().saturating_sub(2)..];
        write!(f, "Bsuid({}.…{tail})", &self.0[..2])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_bsuids_and_parents_verbatim() {
        let b = Bsuid::parse("US.13491208655302741918").unwrap();
        assert_eq!(b.as_str(), "US.13491208655302741918");
        assert!(!b.is_parent());
        assert!(
            Bsuid::parse("US.ENT.11815799212886844830")
                .unwrap()
                .is_parent()
        );
        assert!(Bsuid::parse("BR.abcXYZ09").is_ok());
        assert_eq!(format!("{b:?}"), "Bsuid(US.…18)");
    }

    #[test]
    fn refuses_phones_and_malformed_ids() {
        let long = format!("US.{}", "1".repeat(129));
        for bad in [
            "16505551234",
            "+16505551234",
            "us.1",
            "USA.1",
            "US.",
            "US.1-2",
            "US.ENT.",
            &long,
        ] {
            // One fixed message: the input is never echoed.
            assert_eq!(Bsuid::parse(bad), Err(BsuidError), "{bad}");
        }
    }
}
