//! Operator tokens: bearer credentials of platform operators (server-level
//! admins, not workspace members). Same shape as API keys — random base62 plus
//! a CRC32 checksum — under a distinct `wpo_` prefix, so a workspace key can
//! never be mistaken for one and scanners can tell them apart. Stored only as
//! a blind index under their own domain.

use secrecy::{ExposeSecret, SecretString};

use crate::KeyRing;
use crate::token::{checksum, random_base62};

/// Every operator token starts with this.
pub const OPERATOR_TOKEN_PREFIX: &str = "wpo_";
const RANDOM_LEN: usize = 32;
const CHECKSUM_LEN: usize = 6;
/// The full length of an operator token.
pub const OPERATOR_TOKEN_LEN: usize = OPERATOR_TOKEN_PREFIX.len() + RANDOM_LEN + CHECKSUM_LEN;
const DISPLAY_RANDOM_CHARS: usize = 6;
/// Blind-index domain of operator tokens, apart from API keys' so one hash can never match the other.
pub const OPERATOR_TOKEN_INDEX_DOMAIN: &str = "operator_token";

/// Why a string is not a well-formed operator token. Never contains the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum OperatorTokenError {
    #[error("operator token must start with `{OPERATOR_TOKEN_PREFIX}`")]
    WrongPrefix,
    #[error("operator token must be exactly {OPERATOR_TOKEN_LEN} characters long")]
    WrongLength,
    #[error("operator token may only contain A-Z, a-z and digits after its prefix")]
    InvalidCharacter,
    #[error("operator token checksum does not match; it was probably mistyped or truncated")]
    ChecksumMismatch,
}

/// A freshly generated token: show `secret` once, store its keyed hash and `display_prefix`.
#[derive(Debug)]
pub struct GeneratedOperatorToken {
    pub secret: SecretString,
    /// `wpo_` plus six random characters; safe to show and log.
    pub display_prefix: String,
}

/// A syntactically valid operator token presented by a client.
pub struct OperatorToken {
    secret: SecretString,
}

impl std::fmt::Debug for OperatorToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "OperatorToken({}…[redacted])", self.display_prefix())
    }
}

impl OperatorToken {
    pub fn display_prefix(&self) -> &str {
        &self.secret.expose_secret()[..OPERATOR_TOKEN_PREFIX.len() + DISPLAY_RANDOM_CHARS]
    }

    /// The value to look the token up by.
    pub fn keyed_hash(&self, ring: &KeyRing) -> [u8; 32] {
        operator_token_hash(ring, self.secret.expose_secret())
    }
}

/// The stored form of a token.
pub fn operator_token_hash(ring: &KeyRing, token: &str) -> [u8; 32] {
    ring.blind_index(OPERATOR_TOKEN_INDEX_DOMAIN, token.as_bytes())
}

pub fn generate_operator_token() -> GeneratedOperatorToken {
    let random = random_base62(RANDOM_LEN);
    let mut token = String::with_capacity(OPERATOR_TOKEN_LEN);
    token.push_str(OPERATOR_TOKEN_PREFIX);
    token.push_str(&random);
    token.extend(checksum(&random).iter().map(|&b| b as char));
    GeneratedOperatorToken {
        secret: SecretString::from(token),
        display_prefix: format!("{OPERATOR_TOKEN_PREFIX}{}", &random[..DISPLAY_RANDOM_CHARS]),
    }
}

/// Checks prefix, length, alphabet and checksum before any database lookup.
pub fn parse_operator_token(s: &str) -> Result<OperatorToken, OperatorTokenError> {
    let rest = s
        .strip_prefix(OPERATOR_TOKEN_PREFIX)
        .ok_or(OperatorTokenError::WrongPrefix)?;
    if rest.len() != RANDOM_LEN + CHECKSUM_LEN {
        return Err(OperatorTokenError::WrongLength);
    }
    if !rest.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(OperatorTokenError::InvalidCharacter);
    }
    let (random, check) = rest.split_at(RANDOM_LEN);
    if checksum(random) != check.as_bytes() {
        return Err(OperatorTokenError::ChecksumMismatch);
    }
    Ok(OperatorToken {
        secret: SecretString::from(s.to_owned()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{DataKey, MasterKey, generate_api_key};

    #[test]
    fn generated_tokens_parse_and_are_not_api_keys() {
        let t = generate_operator_token();
        let s = t.secret.expose_secret();
        assert_eq!(s.len(), OPERATOR_TOKEN_LEN);
        assert!(s.starts_with("wpo_"));
        let parsed = parse_operator_token(s).unwrap();
        assert_eq!(parsed.display_prefix(), t.display_prefix);
        assert!(!format!("{parsed:?}").contains(&s[10..]));
        assert!(crate::parse_api_key(s).is_err());
        let key = generate_api_key();
        assert_eq!(
            parse_operator_token(key.secret.expose_secret()).unwrap_err(),
            OperatorTokenError::WrongPrefix
        );
    }

    #[test]
    fn typos_are_caught_by_the_checksum() {
        let s = generate_operator_token().secret.expose_secret().to_owned();
        assert_eq!(
            parse_operator_token(&s[..s.len() - 1]).unwrap_err(),
            OperatorTokenError::WrongLength
        );
        let mut b = s.clone().into_bytes();
        b[10] = if b[10] == b'a' { b'b' } else { b'a' };
        assert_eq!(
            parse_operator_token(std::str::from_utf8(&b).unwrap()).unwrap_err(),
            OperatorTokenError::ChecksumMismatch
        );
    }

    #[test]
    fn hashes_differ_from_api_key_hashes() {
        let master = MasterKey::generate();
        let ring = KeyRing::open(&master, &[(1, master.wrap(1, &DataKey::generate()))]).unwrap();
        let s = generate_operator_token().secret.expose_secret().to_owned();
        let parsed = parse_operator_token(&s).unwrap();
        assert_eq!(parsed.keyed_hash(&ring), operator_token_hash(&ring, &s));
        assert_ne!(
            parsed.keyed_hash(&ring),
            ring.blind_index("api_key", s.as_bytes())
        );
    }
}
