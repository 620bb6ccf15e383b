//! Waypost's key ring: a master key wraps versioned data keys; data keys
//! encrypt values with AES-256-GCM bound to where they are stored; a derived
//! key computes blind indexes for equality lookups of encrypted values.
//! Alongside it: password hashing (`password`), API keys, session, recovery
//! and CSRF tokens (`token`), TOTP second factors (`totp`), and Standard
//! Webhooks signatures for customer webhooks (`webhook`).
//!
//! No storage here: callers load wrapped keys from the database and hand them
//! in. Key material lives in `secrecy` boxes that zeroize on drop.
#![forbid(unsafe_code)]

mod content;
mod envelope;
mod master;
pub mod operator_token;
pub mod password;
pub mod stripe;
pub mod token;
pub mod totp;
pub mod webhook;

pub use content::ContentKey;
pub use envelope::{Aad, KeyRing, ciphertext_key_version};
pub use master::{DataKey, MasterKey};
pub use password::{Argon2Settings, InvalidArgon2Settings, PasswordCheck, PasswordHasher};
pub use token::{
    API_KEY_PREFIX, ApiKeyToken, GeneratedApiKey, TokenError, generate_api_key,
    generate_session_token, hash_session_token, parse_api_key,
};
pub use totp::{QrTooLong, TotpSecret, otpauth_uri, qr_svg, totp_code_at, try_qr_svg, verify_totp};

/// What can go wrong with keys and ciphertexts. Messages never include key bytes or plaintext.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CryptoError {
    #[error("master key must be 32 bytes encoded as base64 ({0})")]
    MalformedMasterKey(&'static str),
    #[error(
        "the master key does not unwrap data key version {version}; it is not the key this database was created with"
    )]
    WrongMasterKey { version: u32 },
    #[error("ciphertext is too short or has an unknown format")]
    MalformedCiphertext,
    #[error("ciphertext was written with data key version {0}, which this key ring does not hold")]
    UnknownKeyVersion(u32),
    #[error("decryption failed: the ciphertext was altered or belongs to another row or column")]
    DecryptionFailed,
    #[error("the key ring holds no data key")]
    EmptyKeyRing,
}
