//! Secrets handed to people and programs: API keys, session tokens (also used
//! for one-time setup and invitation links), recovery codes and CSRF tokens,
//! plus the constant-time comparison they all need.
//!
//! None of these are stored in clear. API keys and recovery codes are stored
//! as [`KeyRing::blind_index`] values, so a database dump alone cannot be used
//! to test guesses; session tokens carry 256 random bits, so a plain SHA-256
//! is enough for them.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::{Rng, RngCore};
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::KeyRing;

/// Every Waypost API key starts with this, so secret scanners (and people)
/// can recognise a leaked key.
pub const API_KEY_PREFIX: &str = "wp_live_";
/// 32 base62 characters carry about 190 bits of randomness.
const API_KEY_RANDOM_LEN: usize = 32;
const API_KEY_CHECKSUM_LEN: usize = 6;
/// The full length of an API key.
pub const API_KEY_LEN: usize = API_KEY_PREFIX.len() + API_KEY_RANDOM_LEN + API_KEY_CHECKSUM_LEN;
/// How many random characters the display prefix reveals: enough to tell keys
/// apart in a list, far too few to help guess one.
const DISPLAY_RANDOM_CHARS: usize = 6;

const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// Blind-index domain for API keys: store `ring.blind_index(API_KEY_INDEX_DOMAIN, key)`.
pub const API_KEY_INDEX_DOMAIN: &str = "api_key";
/// Blind-index domain for recovery codes (normalised with [`normalize_recovery_code`]).
pub const RECOVERY_CODE_INDEX_DOMAIN: &str = "recovery_code";
const CSRF_INDEX_DOMAIN: &str = "csrf";

/// No 0/o, 1/l/i: codes are read off paper and typed by hand.
const RECOVERY_ALPHABET: &[u8; 31] = b"23456789abcdefghjkmnpqrstuvwxyz";
const RECOVERY_GROUP_LEN: usize = 5;

/// Why a string is not a well-formed API key. Never contains the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("API key must start with `{API_KEY_PREFIX}`")]
    WrongPrefix,
    #[error("API key must be exactly {expected} characters long")]
    WrongLength { expected: usize },
    #[error("API key may only contain the letters A-Z, a-z and digits after its prefix")]
    InvalidCharacter,
    #[error("API key checksum does not match; it was probably mistyped or truncated")]
    ChecksumMismatch,
}

/// A freshly generated key: show `secret` once, store its blind index and
/// `display_prefix`.
#[derive(Debug)]
pub struct GeneratedApiKey {
    pub secret: SecretString,
    /// `wp_live_` plus the first six random characters; safe to show and log.
    pub display_prefix: String,
}

/// A syntactically valid API key presented by a client.
pub struct ApiKeyToken {
    secret: SecretString,
}

impl std::fmt::Debug for ApiKeyToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ApiKeyToken({}…[redacted])", self.display_prefix())
    }
}

impl ApiKeyToken {
    /// `wp_live_` plus the first six random characters; safe to show and log.
    pub fn display_prefix(&self) -> &str {
        &self.secret.expose_secret()[..API_KEY_PREFIX.len() + DISPLAY_RANDOM_CHARS]
    }

    pub fn secret_bytes(&self) -> &[u8] {
        self.secret.expose_secret().as_bytes()
    }

    pub fn expose_secret(&self) -> &str {
        self.secret.expose_secret()
    }

    /// The whole key; same as [`ApiKeyToken::expose_secret`].
    pub fn as_str(&self) -> &str {
        self.secret.expose_secret()
    }

    /// The value to look the key up by: HMAC under the key ring's blind-index key.
    pub fn keyed_hash(&self, ring: &KeyRing) -> [u8; 32] {
        ring.blind_index(API_KEY_INDEX_DOMAIN, self.secret_bytes())
    }
}

pub(crate) fn random_base62(len: usize) -> Zeroizing<String> {
    let mut rng = rand::rng();
    // `random_range` is unbiased, unlike taking a random byte modulo 62.
    Zeroizing::new(
        (0..len)
            .map(|_| BASE62[rng.random_range(0..BASE62.len())] as char)
            .collect(),
    )
}

/// CRC32 of the random part, base62, left-padded to six characters
/// (62^6 > 2^32, so every CRC fits).
pub(crate) fn checksum(random: &str) -> [u8; API_KEY_CHECKSUM_LEN] {
    let mut value = crc32fast::hash(random.as_bytes());
    let mut out = [b'0'; API_KEY_CHECKSUM_LEN];
    for slot in out.iter_mut().rev() {
        *slot = BASE62[(value % 62) as usize];
        value /= 62;
    }
    out
}

pub fn generate_api_key() -> GeneratedApiKey {
    let random = random_base62(API_KEY_RANDOM_LEN);
    let mut key = String::with_capacity(API_KEY_LEN);
    key.push_str(API_KEY_PREFIX);
    key.push_str(&random);
    key.extend(checksum(&random).iter().map(|&b| b as char));
    let display_prefix = format!("{API_KEY_PREFIX}{}", &random[..DISPLAY_RANDOM_CHARS]);
    GeneratedApiKey {
        secret: SecretString::from(key),
        display_prefix,
    }
}

/// Checks prefix, length, alphabet and checksum, so a truncated or mistyped
/// key is refused with a helpful message before any database lookup.
pub fn parse_api_key(s: &str) -> Result<ApiKeyToken, TokenError> {
    let rest = s
        .strip_prefix(API_KEY_PREFIX)
        .ok_or(TokenError::WrongPrefix)?;
    if rest.len() != API_KEY_RANDOM_LEN + API_KEY_CHECKSUM_LEN {
        return Err(TokenError::WrongLength {
            expected: API_KEY_LEN,
        });
    }
    // Checked before slicing: all-ASCII makes every byte index a char boundary.
    if !rest.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(TokenError::InvalidCharacter);
    }
    let (random, check) = rest.split_at(API_KEY_RANDOM_LEN);
    if checksum(random) != check.as_bytes() {
        return Err(TokenError::ChecksumMismatch);
    }
    Ok(ApiKeyToken {
        secret: SecretString::from(s.to_owned()),
    })
}

/// 256 random bits, base64url without padding (43 characters). Also used for
/// one-time setup and invitation links.
pub fn generate_session_token() -> SecretString {
    let mut bytes = Zeroizing::new([0u8; 32]);
    rand::rng().fill_bytes(bytes.as_mut());
    SecretString::from(URL_SAFE_NO_PAD.encode(bytes.as_ref()))
}

/// What the database stores for a session token. A keyless hash suffices:
/// nobody can enumerate 2^256 tokens to invert it.
pub fn hash_session_token(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// `n` codes like `k7m2p-x9rtq`, about 49.5 bits each (31^10); they are
/// single-use, rate-limited, and stored only as keyed hashes.
pub fn generate_recovery_codes(n: usize) -> Vec<SecretString> {
    let mut rng = rand::rng();
    (0..n)
        .map(|_| {
            let mut code = String::with_capacity(2 * RECOVERY_GROUP_LEN + 1);
            for i in 0..2 * RECOVERY_GROUP_LEN {
                if i == RECOVERY_GROUP_LEN {
                    code.push('-');
                }
                code.push(RECOVERY_ALPHABET[rng.random_range(0..RECOVERY_ALPHABET.len())] as char);
            }
            SecretString::from(code)
        })
        .collect()
}

/// The canonical `xxxxx-xxxxx` form of a typed recovery code (trimmed,
/// lowercased, dash optional), or `None` if it cannot be one of ours.
/// Generated codes are already canonical.
pub fn normalize_recovery_code(input: &str) -> Option<String> {
    let lower = input.trim().to_ascii_lowercase();
    let compact: String = match lower.len() {
        len if len == 2 * RECOVERY_GROUP_LEN => lower,
        len if len == 2 * RECOVERY_GROUP_LEN + 1
            && lower.as_bytes()[RECOVERY_GROUP_LEN] == b'-' =>
        {
            lower.replacen('-', "", 1)
        }
        _ => return None,
    };
    if !compact.bytes().all(|b| RECOVERY_ALPHABET.contains(&b)) {
        return None;
    }
    let (head, tail) = compact.split_at(RECOVERY_GROUP_LEN);
    Some(format!("{head}-{tail}"))
}

/// The value to store for (and look up) a recovery code.
pub fn recovery_code_hash(ring: &KeyRing, normalized_code: &str) -> [u8; 32] {
    ring.blind_index(RECOVERY_CODE_INDEX_DOMAIN, normalized_code.as_bytes())
}

/// A per-session CSRF token derived from the session, so nothing extra is
/// stored and a token from one session is useless in another.
pub fn csrf_token(session_token_hash: &[u8; 32], ring: &KeyRing) -> String {
    URL_SAFE_NO_PAD.encode(ring.blind_index(CSRF_INDEX_DOMAIN, session_token_hash))
}

/// Whether `presented` is the CSRF token of this session, in constant time.
pub fn verify_csrf_token(session_token_hash: &[u8; 32], ring: &KeyRing, presented: &str) -> bool {
    ct_eq(
        presented.as_bytes(),
        csrf_token(session_token_hash, ring).as_bytes(),
    )
}

/// Constant time in the contents (not the lengths) of `a` and `b`.
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{DataKey, MasterKey};
    use proptest::prelude::*;
    use std::collections::HashSet;

    fn ring() -> KeyRing {
        let master = MasterKey::generate();
        KeyRing::open(&master, &[(1, master.wrap(1, &DataKey::generate()))]).unwrap()
    }

    fn generated() -> String {
        generate_api_key().secret.expose_secret().to_owned()
    }

    #[test]
    fn generated_keys_have_the_documented_shape() {
        let key = generate_api_key();
        let s = key.secret.expose_secret();
        assert_eq!(s.len(), 46);
        assert_eq!(API_KEY_LEN, 46);
        assert!(s.starts_with("wp_live_"));
        assert!(s[8..].bytes().all(|b| b.is_ascii_alphanumeric()));
        assert_eq!(key.display_prefix, &s[..14]);
        let parsed = parse_api_key(s).unwrap();
        assert_eq!(parsed.display_prefix(), key.display_prefix);
        assert_eq!(parsed.secret_bytes(), s.as_bytes());
        assert_eq!(parsed.expose_secret(), s);
        assert_eq!(parsed.as_str(), s);
    }

    #[test]
    fn checksum_is_crc32_in_padded_base62() {
        // crc32("") == 0 pads to all zeros; crc32("a") == 0xE8B7BE43 == 3904355907.
        assert_eq!(&checksum(""), b"000000");
        let mut n = 3_904_355_907u64;
        let mut expected = [b'0'; 6];
        for slot in expected.iter_mut().rev() {
            *slot = BASE62[(n % 62) as usize];
            n /= 62;
        }
        assert_eq!(checksum("a"), expected);
        let random = "0123456789abcdefghijABCDEFGHIJkl";
        let key = format!(
            "wp_live_{random}{}",
            std::str::from_utf8(&checksum(random)).unwrap()
        );
        assert!(parse_api_key(&key).is_ok());
    }

    #[test]
    fn keys_are_unique() {
        let keys: HashSet<String> = (0..200).map(|_| generated()).collect();
        assert_eq!(keys.len(), 200);
    }

    #[test]
    fn parse_reports_what_is_wrong_without_echoing_the_key() {
        let key = generated();
        let cases = [
            (
                key.replacen("wp_live_", "wp_test_", 1),
                TokenError::WrongPrefix,
            ),
            (format!("Bearer {key}"), TokenError::WrongPrefix),
            (
                key[..45].to_string(),
                TokenError::WrongLength { expected: 46 },
            ),
            (format!("{key}0"), TokenError::WrongLength { expected: 46 }),
            (
                format!("{}-{}", &key[..20], &key[21..]),
                TokenError::InvalidCharacter,
            ),
            (
                format!("{}é{}", &key[..20], &key[22..]),
                TokenError::InvalidCharacter,
            ),
        ];
        for (input, expected) in cases {
            let err = parse_api_key(&input).unwrap_err();
            assert_eq!(err, expected, "{input}");
            assert!(!err.to_string().contains(&key[8..]));
        }
        let mut swapped = key.clone().into_bytes();
        swapped.swap(10, 11);
        if swapped[10] != swapped[11] {
            assert_eq!(
                parse_api_key(std::str::from_utf8(&swapped).unwrap()).unwrap_err(),
                TokenError::ChecksumMismatch
            );
        }
    }

    #[test]
    fn debug_output_is_redacted() {
        let key = generate_api_key();
        let s = key.secret.expose_secret().to_owned();
        let parsed = parse_api_key(&s).unwrap();
        let debug = format!("{parsed:?} {key:?}");
        assert!(!debug.contains(&s[14..]), "{debug}");
        assert!(debug.contains(&key.display_prefix));
    }

    #[test]
    fn api_key_hash_uses_the_blind_index() {
        let ring = ring();
        let parsed = parse_api_key(&generated()).unwrap();
        assert_eq!(
            parsed.keyed_hash(&ring),
            ring.blind_index("api_key", parsed.secret_bytes())
        );
        assert_ne!(parsed.keyed_hash(&ring), parsed.keyed_hash(&self::ring()));
    }

    #[test]
    fn session_tokens_are_256_bit_base64url() {
        let tokens: HashSet<String> = (0..100)
            .map(|_| generate_session_token().expose_secret().to_owned())
            .collect();
        assert_eq!(tokens.len(), 100);
        for token in &tokens {
            assert_eq!(token.len(), 43);
            assert_eq!(URL_SAFE_NO_PAD.decode(token).unwrap().len(), 32);
        }
        let t = tokens.iter().next().unwrap();
        assert_eq!(hash_session_token(t), hash_session_token(t));
        assert_eq!(
            hash_session_token("abc"),
            <[u8; 32]>::from(Sha256::digest(b"abc"))
        );
    }

    #[test]
    fn recovery_codes_are_unambiguous_and_canonical() {
        let codes = generate_recovery_codes(10);
        assert_eq!(codes.len(), 10);
        let unique: HashSet<&str> = codes.iter().map(|c| c.expose_secret()).collect();
        assert_eq!(unique.len(), 10);
        for code in &codes {
            let code = code.expose_secret();
            assert_eq!(code.len(), 11);
            assert_eq!(&code[5..6], "-");
            assert!(!code.contains(['0', 'o', '1', 'l', 'i']), "{code}");
            assert_eq!(normalize_recovery_code(code).as_deref(), Some(code));
        }
        assert!(generate_recovery_codes(0).is_empty());
    }

    #[test]
    fn recovery_code_normalisation() {
        let canonical = Some("abcde-fghjk".to_string());
        for input in ["abcde-fghjk", " ABCDE-FGHJK\n", "abcdefghjk", "AbCdEfGhJk"] {
            assert_eq!(normalize_recovery_code(input), canonical, "{input:?}");
        }
        for input in [
            "",
            "abcde-fghj",
            "abcde-fghjkm",
            "abcd-efghjk",
            "abcde fghjk",
            "abcde--ghjk",
            "abcde-fghj0",
            "abcde-fghjl",
            "abcde-fghji",
            "abcde-fghjo",
            "abcdé-fghj",
        ] {
            assert_eq!(normalize_recovery_code(input), None, "{input:?}");
        }
        let ring = ring();
        assert_eq!(
            recovery_code_hash(&ring, "abcde-fghjk"),
            ring.blind_index("recovery_code", b"abcde-fghjk")
        );
    }

    #[test]
    fn csrf_tokens_are_bound_to_the_session_and_the_key_ring() {
        let ring = ring();
        let a = hash_session_token("session a");
        let b = hash_session_token("session b");
        let token = csrf_token(&a, &ring);
        assert_eq!(token.len(), 43);
        assert_eq!(token, csrf_token(&a, &ring));
        assert!(verify_csrf_token(&a, &ring, &token));
        assert!(!verify_csrf_token(&b, &ring, &token));
        assert!(!verify_csrf_token(&a, &self::ring(), &token));
        assert!(!verify_csrf_token(&a, &ring, ""));
        assert!(!verify_csrf_token(&a, &ring, &token[..42]));
    }

    #[test]
    fn ct_eq_compares_contents_and_lengths() {
        assert!(ct_eq(b"", b""));
        assert!(ct_eq(b"abc", b"abc"));
        assert!(!ct_eq(b"abc", b"abd"));
        assert!(!ct_eq(b"abc", b"ab"));
    }

    proptest! {
        #[test]
        fn parse_never_panics(input in "\\PC{0,64}") {
            let _ = parse_api_key(&input);
            let _ = normalize_recovery_code(&input);
        }

        #[test]
        fn parse_never_panics_near_valid_keys(tail in "[0-9A-Za-z\\PC]{0,44}") {
            let _ = parse_api_key(&format!("wp_live_{tail}"));
        }

        #[test]
        fn every_generated_key_parses(_seed in any::<u8>()) {
            let key = generated();
            prop_assert!(parse_api_key(&key).is_ok());
        }

        #[test]
        fn any_single_character_change_is_rejected(
            index in 0usize..API_KEY_LEN,
            replacement in any::<char>(),
        ) {
            let key = generated();
            let mut chars: Vec<char> = key.chars().collect();
            prop_assume!(chars[index] != replacement);
            chars[index] = replacement;
            let changed: String = chars.into_iter().collect();
            prop_assert!(parse_api_key(&changed).is_err());
        }

        #[test]
        fn any_single_alphanumeric_change_is_caught_by_the_checksum(
            index in 8usize..API_KEY_LEN,
            pick in 0usize..62,
        ) {
            let key = generated();
            let mut bytes = key.into_bytes();
            prop_assume!(bytes[index] != BASE62[pick]);
            bytes[index] = BASE62[pick];
            let changed = String::from_utf8(bytes).unwrap();
            prop_assert_eq!(parse_api_key(&changed).unwrap_err(), TokenError::ChecksumMismatch);
        }
    }
}
