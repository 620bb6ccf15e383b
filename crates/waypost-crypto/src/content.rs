//! Per-contact content keys. Retained message content is encrypted with its
//! contact's own key, which is stored wrapped by the key ring; deleting the
//! wrapped key makes that contact's content unreadable (crypto-shredding)
//! without touching other rows.
//!
//! Ciphertext layout: `0x02 | nonce (12) | ciphertext+tag`; the associated data
//! binds the header and the value's place, as in the envelope format.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use rand::RngCore;
use secrecy::{ExposeSecret, SecretBox};
use zeroize::Zeroizing;

use crate::{Aad, CryptoError, KeyRing};

const FORMAT: u8 = 2;
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;

/// One contact's content key.
pub struct ContentKey(SecretBox<[u8; 32]>);

impl std::fmt::Debug for ContentKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ContentKey(…)")
    }
}

impl ContentKey {
    pub fn generate() -> Self {
        let mut key = Box::new([0u8; 32]);
        rand::rng().fill_bytes(key.as_mut());
        Self(SecretBox::new(key))
    }

    /// The key encrypted by the ring for its place (`aad`).
    pub fn wrap(&self, ring: &KeyRing, aad: Aad<'_>) -> Vec<u8> {
        ring.encrypt(aad, self.0.expose_secret())
    }

    pub fn unwrap(ring: &KeyRing, aad: Aad<'_>, wrapped: &[u8]) -> Result<Self, CryptoError> {
        let plain = ring.decrypt(aad, wrapped)?;
        let bytes: [u8; 32] = plain
            .as_slice()
            .try_into()
            .map_err(|_| CryptoError::MalformedCiphertext)?;
        Ok(Self(SecretBox::new(Box::new(bytes))))
    }

    pub fn encrypt(&self, aad: Aad<'_>, plaintext: &[u8]) -> Vec<u8> {
        let mut nonce = [0u8; NONCE_LEN];
        rand::rng().fill_bytes(&mut nonce);
        let cipher = Aes256Gcm::new(self.0.expose_secret().into());
        let sealed = cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad: &aad.bytes(&[FORMAT]),
                },
            )
            .expect("AES-GCM encryption fails only for inputs beyond 64 GiB");
        let mut out = Vec::with_capacity(1 + NONCE_LEN + sealed.len());
        out.push(FORMAT);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        out
    }

    pub fn decrypt(
        &self,
        aad: Aad<'_>,
        ciphertext: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        if ciphertext.len() < 1 + NONCE_LEN + TAG_LEN || ciphertext[0] != FORMAT {
            return Err(CryptoError::MalformedCiphertext);
        }
        let (nonce, sealed) = ciphertext[1..].split_at(NONCE_LEN);
        Aes256Gcm::new(self.0.expose_secret().into())
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: sealed,
                    aad: &aad.bytes(&[FORMAT]),
                },
            )
            .map(Zeroizing::new)
            .map_err(|_| CryptoError::DecryptionFailed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{DataKey, MasterKey};

    fn ring() -> KeyRing {
        let master = MasterKey::generate();
        KeyRing::open(&master, &[(1, master.wrap(1, &DataKey::generate()))]).unwrap()
    }

    #[test]
    fn content_round_trips_and_is_bound_to_its_place() {
        let ring = ring();
        let key = ContentKey::generate();
        let wrapped = key.wrap(&ring, Aad::new("contacts", "content_key", "ct_1"));
        let key = ContentKey::unwrap(&ring, Aad::new("contacts", "content_key", "ct_1"), &wrapped)
            .unwrap();
        let sealed = key.encrypt(Aad::new("messages", "content", "msg_1"), b"hello");
        assert_eq!(
            &*key
                .decrypt(Aad::new("messages", "content", "msg_1"), &sealed)
                .unwrap(),
            b"hello"
        );
        assert!(
            key.decrypt(Aad::new("messages", "content", "msg_2"), &sealed)
                .is_err()
        );
        assert!(
            ContentKey::unwrap(&ring, Aad::new("contacts", "content_key", "ct_2"), &wrapped)
                .is_err()
        );
        let other = ContentKey::generate();
        assert!(
            other
                .decrypt(Aad::new("messages", "content", "msg_1"), &sealed)
                .is_err()
        );
    }
}
