//! A member's email address, validated once at the boundary. The address is
//! the login name, so it is normalised (trimmed, lowercased) before it is
//! stored or blind-indexed: `Alice@Example.com` and `alice@example.com` must
//! be the same account, or one person could register twice.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// RFC 5321 limits, in bytes.
const MAX_LOCAL_LEN: usize = 64;
const MAX_EMAIL_LEN: usize = 254;

/// A syntactically plausible, normalised email address. We deliberately do not
/// implement full RFC 5322 (quoted local parts, comments): the confirmation
/// email is the real test of an address.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Email(String);

/// Why an input is not an acceptable email address. Messages are user-facing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EmailError {
    #[error("email address is empty")]
    Empty,
    #[error("email address must contain exactly one `@`")]
    AtSign,
    #[error("email address has nothing before the `@`")]
    EmptyLocalPart,
    #[error("the part before the `@` must be at most {MAX_LOCAL_LEN} characters")]
    LocalPartTooLong,
    #[error("the part after the `@` must be a domain name such as example.com")]
    InvalidDomain,
    #[error("email address must be at most {MAX_EMAIL_LEN} characters")]
    TooLong,
    #[error("email address must not contain spaces or control characters")]
    InvalidCharacter,
}

impl Email {
    pub fn parse(input: &str) -> Result<Email, EmailError> {
        let address = input.trim().to_lowercase();
        if address.is_empty() {
            return Err(EmailError::Empty);
        }
        if address.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(EmailError::InvalidCharacter);
        }
        if address.len() > MAX_EMAIL_LEN {
            return Err(EmailError::TooLong);
        }
        let mut parts = address.split('@');
        let (Some(local), Some(domain), None) = (parts.next(), parts.next(), parts.next()) else {
            return Err(EmailError::AtSign);
        };
        if local.is_empty() {
            return Err(EmailError::EmptyLocalPart);
        }
        if local.len() > MAX_LOCAL_LEN {
            return Err(EmailError::LocalPartTooLong);
        }
        // Requiring a dot rejects `root@localhost`-style addresses that cannot
        // receive mail from the outside; empty labels (`a@.com`, `a@b..c`) are
        // never deliverable either.
        if !domain.contains('.') || domain.split('.').any(str::is_empty) {
            return Err(EmailError::InvalidDomain);
        }
        Ok(Email(address))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The domain after the `@`, e.g. for "sign-ups from this domain" rules.
    pub fn domain(&self) -> &str {
        self.0.rsplit('@').next().unwrap_or_default()
    }

    pub fn into_inner(self) -> String {
        self.0
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for Email {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl FromStr for Email {
    type Err = EmailError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Email::parse(s)
    }
}

impl Serialize for Email {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Email {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        Email::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn normalises_case_and_surrounding_space() {
        let email = Email::parse("  Alice.Smith+waypost@Example.COM \n").unwrap();
        assert_eq!(email.as_str(), "alice.smith+waypost@example.com");
        assert_eq!(email.to_string(), "alice.smith+waypost@example.com");
        assert_eq!(email.domain(), "example.com");
        assert_eq!(email, "ALICE.SMITH+WAYPOST@example.com".parse().unwrap());
    }

    #[test]
    fn rejects_malformed_addresses() {
        let cases = [
            ("", EmailError::Empty),
            ("   ", EmailError::Empty),
            ("alice.example.com", EmailError::AtSign),
            ("a@b@example.com", EmailError::AtSign),
            ("@example.com", EmailError::EmptyLocalPart),
            ("alice@", EmailError::InvalidDomain),
            ("alice@localhost", EmailError::InvalidDomain),
            ("alice@.com", EmailError::InvalidDomain),
            ("alice@example.", EmailError::InvalidDomain),
            ("alice@example..com", EmailError::InvalidDomain),
            ("al ice@example.com", EmailError::InvalidCharacter),
            ("alice@exa\tmple.com", EmailError::InvalidCharacter),
            ("alice\u{0}@example.com", EmailError::InvalidCharacter),
            ("alice@example.com\u{7f}", EmailError::InvalidCharacter),
        ];
        for (input, expected) in cases {
            assert_eq!(Email::parse(input), Err(expected), "{input:?}");
        }
    }

    #[test]
    fn enforces_length_limits() {
        let local64 = "a".repeat(64);
        assert!(Email::parse(&format!("{local64}@example.com")).is_ok());
        assert_eq!(
            Email::parse(&format!("{local64}a@example.com")),
            Err(EmailError::LocalPartTooLong)
        );
        // 1 + 1 + 252 = 254 bytes is the longest accepted address.
        let domain = format!("{}.com", "d".repeat(248));
        assert!(Email::parse(&format!("a@{domain}")).is_ok());
        assert_eq!(
            Email::parse(&format!("ab@{domain}")),
            Err(EmailError::TooLong)
        );
    }

    #[test]
    fn serde_validates_on_the_way_in() {
        let email: Email = serde_json::from_str("\"Bob@Example.org\"").unwrap();
        assert_eq!(email.as_str(), "bob@example.org");
        assert_eq!(
            serde_json::to_string(&email).unwrap(),
            "\"bob@example.org\""
        );
        let err = serde_json::from_str::<Email>("\"not an email\"").unwrap_err();
        assert!(err.to_string().contains("spaces"), "{err}");
    }

    proptest! {
        #[test]
        fn parse_never_panics_and_output_is_normalised(input in "\\PC{0,80}") {
            if let Ok(email) = Email::parse(&input) {
                let s = email.as_str();
                prop_assert_eq!(s.matches('@').count(), 1);
                prop_assert_eq!(s.to_lowercase(), s);
                prop_assert_eq!(s.trim(), s);
                prop_assert_eq!(Email::parse(s).unwrap(), email.clone());
            }
        }
    }
}
