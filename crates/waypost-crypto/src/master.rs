//! The master key and the data keys it wraps.
//!
//! The master key never encrypts data directly: it wraps data keys (AES-256-GCM,
//! with the key's version as associated data, so a wrapped key cannot be moved
//! to another version) and derives the blind-index key with HKDF.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rand::RngCore;
use secrecy::{ExposeSecret, SecretBox, SecretString};

use crate::CryptoError;

const NONCE_LEN: usize = 12;

/// The 32-byte root key, from `WAYPOST_MASTER_KEY` or the key file.
pub struct MasterKey(SecretBox<[u8; 32]>);

/// A 32-byte AES-256-GCM data key of some version.
pub struct DataKey(pub(crate) SecretBox<[u8; 32]>);

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey([redacted])")
    }
}

impl std::fmt::Debug for DataKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DataKey([redacted])")
    }
}

fn random_key() -> SecretBox<[u8; 32]> {
    let mut key = SecretBox::new(Box::new([0u8; 32]));
    rand::rng().fill_bytes(secrecy::ExposeSecretMut::expose_secret_mut(&mut key));
    key
}

impl MasterKey {
    pub fn generate() -> Self {
        Self(random_key())
    }

    /// Parses standard base64 (surrounding whitespace ignored) of exactly 32 bytes.
    pub fn from_base64(encoded: &str) -> Result<Self, CryptoError> {
        let bytes = zeroize::Zeroizing::new(
            STANDARD
                .decode(encoded.trim())
                .map_err(|_| CryptoError::MalformedMasterKey("not valid base64"))?,
        );
        let array: [u8; 32] = bytes
            .as_slice()
            .try_into()
            .map_err(|_| CryptoError::MalformedMasterKey("wrong length"))?;
        Ok(Self(SecretBox::new(Box::new(array))))
    }

    pub fn to_base64(&self) -> SecretString {
        SecretString::from(STANDARD.encode(self.0.expose_secret()))
    }

    fn wrap_aad(version: u32) -> Vec<u8> {
        format!("waypost/data-key/v{version}").into_bytes()
    }

    /// Encrypts a data key for storage: `nonce || ciphertext+tag`.
    pub fn wrap(&self, version: u32, key: &DataKey) -> Vec<u8> {
        let cipher = Aes256Gcm::new(self.0.expose_secret().into());
        let mut nonce = [0u8; NONCE_LEN];
        rand::rng().fill_bytes(&mut nonce);
        let aad = Self::wrap_aad(version);
        let sealed = cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: key.0.expose_secret(),
                    aad: &aad,
                },
            )
            .expect("AES-GCM encryption of 32 bytes cannot fail");
        [nonce.as_slice(), &sealed].concat()
    }

    /// Decrypts a wrapped data key; fails when this is not the master key that wrapped it.
    pub fn unwrap(&self, version: u32, wrapped: &[u8]) -> Result<DataKey, CryptoError> {
        if wrapped.len() != NONCE_LEN + 32 + 16 {
            return Err(CryptoError::WrongMasterKey { version });
        }
        let cipher = Aes256Gcm::new(self.0.expose_secret().into());
        let aad = Self::wrap_aad(version);
        let plain = zeroize::Zeroizing::new(
            cipher
                .decrypt(
                    Nonce::from_slice(&wrapped[..NONCE_LEN]),
                    Payload {
                        msg: &wrapped[NONCE_LEN..],
                        aad: &aad,
                    },
                )
                .map_err(|_| CryptoError::WrongMasterKey { version })?,
        );
        let array: [u8; 32] = plain.as_slice().try_into().expect("length checked above");
        Ok(DataKey(SecretBox::new(Box::new(array))))
    }

    /// The Ed25519 key that signs audit checkpoints, derived from the master key
    /// so it needs no storage of its own and changes only with the master key.
    pub fn audit_signing_key(&self) -> ed25519_dalek::SigningKey {
        let seed = self.derive("audit-checkpoint-signing/v1");
        ed25519_dalek::SigningKey::from_bytes(seed.expose_secret())
    }

    /// A purpose-specific key derived with HKDF-SHA256, stable for the master key's lifetime.
    pub(crate) fn derive(&self, purpose: &str) -> SecretBox<[u8; 32]> {
        let hk = hkdf::Hkdf::<sha2::Sha256>::new(Some(b"waypost"), self.0.expose_secret());
        let mut out = SecretBox::new(Box::new([0u8; 32]));
        hk.expand(
            purpose.as_bytes(),
            secrecy::ExposeSecretMut::expose_secret_mut(&mut out),
        )
        .expect("32 bytes is a valid HKDF-SHA256 output length");
        out
    }
}

impl DataKey {
    pub fn generate() -> Self {
        Self(random_key())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_round_trip() {
        let key = MasterKey::generate();
        let encoded = key.to_base64();
        let back = MasterKey::from_base64(encoded.expose_secret()).unwrap();
        assert_eq!(back.0.expose_secret(), key.0.expose_secret());
    }

    #[test]
    fn malformed_master_keys_are_refused() {
        assert_eq!(
            MasterKey::from_base64("not base64!").unwrap_err(),
            CryptoError::MalformedMasterKey("not valid base64")
        );
        assert_eq!(
            MasterKey::from_base64(&STANDARD.encode([1u8; 16])).unwrap_err(),
            CryptoError::MalformedMasterKey("wrong length")
        );
    }

    #[test]
    fn wrapped_keys_open_only_with_their_master_and_version() {
        let master = MasterKey::generate();
        let key = DataKey::generate();
        let wrapped = master.wrap(3, &key);
        let opened = master.unwrap(3, &wrapped).unwrap();
        assert_eq!(opened.0.expose_secret(), key.0.expose_secret());
        assert_eq!(
            master.unwrap(4, &wrapped).unwrap_err(),
            CryptoError::WrongMasterKey { version: 4 }
        );
        let other = MasterKey::generate();
        assert_eq!(
            other.unwrap(3, &wrapped).unwrap_err(),
            CryptoError::WrongMasterKey { version: 3 }
        );
    }

    #[test]
    fn audit_signing_key_is_stable_per_master_key() {
        let master = MasterKey::generate();
        let a = master.audit_signing_key();
        let b = master.audit_signing_key();
        assert_eq!(a.verifying_key(), b.verifying_key());
        assert_ne!(
            a.verifying_key(),
            MasterKey::generate().audit_signing_key().verifying_key()
        );
    }

    #[test]
    fn debug_output_is_redacted() {
        assert_eq!(
            format!("{:?}", MasterKey::generate()),
            "MasterKey([redacted])"
        );
        assert_eq!(format!("{:?}", DataKey::generate()), "DataKey([redacted])");
    }
}
