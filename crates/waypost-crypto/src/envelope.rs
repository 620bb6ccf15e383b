//! Envelope encryption of stored values and blind indexes.
//!
//! Ciphertext layout: `0x01 | key version (u32 BE) | nonce (12) | ciphertext+tag`.
//! The associated data binds the header and the value's place (table, column,
//! row id), so a ciphertext copied to another row or column fails to decrypt,
//! and a ciphertext's claimed key version cannot be altered.

use std::collections::BTreeMap;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use hmac::{Hmac, Mac};
use rand::RngCore;
use secrecy::{ExposeSecret, SecretBox};
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::{CryptoError, DataKey, MasterKey};

const FORMAT: u8 = 1;
const HEADER_LEN: usize = 5;
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;

/// Where a value is stored; part of its encryption.
#[derive(Debug, Clone, Copy)]
pub struct Aad<'a> {
    pub table: &'a str,
    pub column: &'a str,
    pub row_id: &'a str,
}

impl<'a> Aad<'a> {
    pub fn new(table: &'a str, column: &'a str, row_id: &'a str) -> Self {
        Self {
            table,
            column,
            row_id,
        }
    }

    pub(crate) fn bytes(&self, header: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(64);
        out.extend_from_slice(header);
        for part in ["waypost/v1", self.table, self.column, self.row_id] {
            out.extend_from_slice(&(part.len() as u32).to_be_bytes());
            out.extend_from_slice(part.as_bytes());
        }
        out
    }
}

/// The data key version a ciphertext was written with, if it is well-formed.
pub fn ciphertext_key_version(ciphertext: &[u8]) -> Option<u32> {
    if ciphertext.len() < HEADER_LEN + NONCE_LEN + TAG_LEN || ciphertext[0] != FORMAT {
        return None;
    }
    Some(u32::from_be_bytes(ciphertext[1..5].try_into().ok()?))
}

/// All data keys this process can use, the current one for writes, and the blind-index key.
pub struct KeyRing {
    keys: BTreeMap<u32, DataKey>,
    current: u32,
    blind_index_key: SecretBox<[u8; 32]>,
}

impl std::fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyRing")
            .field("versions", &self.keys.keys().collect::<Vec<_>>())
            .field("current", &self.current)
            .finish_non_exhaustive()
    }
}

impl KeyRing {
    /// Unwraps every stored data key; the highest version becomes current.
    /// Fails with [`CryptoError::WrongMasterKey`] on the first key that does not open.
    pub fn open(master: &MasterKey, wrapped: &[(u32, Vec<u8>)]) -> Result<Self, CryptoError> {
        let mut keys = BTreeMap::new();
        for (version, bytes) in wrapped {
            keys.insert(*version, master.unwrap(*version, bytes)?);
        }
        let current = *keys.keys().next_back().ok_or(CryptoError::EmptyKeyRing)?;
        Ok(Self {
            keys,
            current,
            blind_index_key: master.derive("blind-index/v1"),
        })
    }

    pub fn current_version(&self) -> u32 {
        self.current
    }

    pub fn versions(&self) -> impl Iterator<Item = u32> + '_ {
        self.keys.keys().copied()
    }

    /// Encrypts with the current data key and a fresh random nonce.
    pub fn encrypt(&self, aad: Aad<'_>, plaintext: &[u8]) -> Vec<u8> {
        let key = &self.keys[&self.current];
        let mut header = [0u8; HEADER_LEN];
        header[0] = FORMAT;
        header[1..].copy_from_slice(&self.current.to_be_bytes());
        let mut nonce = [0u8; NONCE_LEN];
        rand::rng().fill_bytes(&mut nonce);
        let cipher = Aes256Gcm::new(key.0.expose_secret().into());
        let sealed = cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad: &aad.bytes(&header),
                },
            )
            .expect("AES-GCM encryption fails only for inputs beyond 64 GiB");
        let mut out = Vec::with_capacity(HEADER_LEN + NONCE_LEN + sealed.len());
        out.extend_from_slice(&header);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        out
    }

    /// Decrypts a value written by [`KeyRing::encrypt`] for the same place.
    pub fn decrypt(
        &self,
        aad: Aad<'_>,
        ciphertext: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        let version = ciphertext_key_version(ciphertext).ok_or(CryptoError::MalformedCiphertext)?;
        let key = self
            .keys
            .get(&version)
            .ok_or(CryptoError::UnknownKeyVersion(version))?;
        let (header, rest) = ciphertext.split_at(HEADER_LEN);
        let (nonce, sealed) = rest.split_at(NONCE_LEN);
        let cipher = Aes256Gcm::new(key.0.expose_secret().into());
        cipher
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: sealed,
                    aad: &aad.bytes(header),
                },
            )
            .map(Zeroizing::new)
            .map_err(|_| CryptoError::DecryptionFailed)
    }

    /// Re-encrypts under the current key when written with an older one; `None` when already current.
    pub fn reencrypt(
        &self,
        aad: Aad<'_>,
        ciphertext: &[u8],
    ) -> Result<Option<Vec<u8>>, CryptoError> {
        if ciphertext_key_version(ciphertext) == Some(self.current) {
            return Ok(None);
        }
        let plain = self.decrypt(aad, ciphertext)?;
        Ok(Some(self.encrypt(aad, &plain)))
    }

    /// HMAC-SHA256 of `value` under the blind-index key, separated by `domain`
    /// (e.g. `contact.phone`), so equal values can be found without decrypting.
    pub fn blind_index(&self, domain: &str, value: &[u8]) -> [u8; 32] {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(self.blind_index_key.expose_secret())
            .expect("HMAC accepts keys of any length");
        mac.update(&(domain.len() as u32).to_be_bytes());
        mac.update(domain.as_bytes());
        mac.update(value);
        mac.finalize().into_bytes().into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ring_with(master: &MasterKey, versions: &[u32]) -> (KeyRing, Vec<(u32, Vec<u8>)>) {
        let wrapped: Vec<_> = versions
            .iter()
            .map(|v| (*v, master.wrap(*v, &DataKey::generate())))
            .collect();
        (KeyRing::open(master, &wrapped).unwrap(), wrapped)
    }

    const AAD: Aad<'static> = Aad {
        table: "contacts",
        column: "phone",
        row_id: "ct_1",
    };

    #[test]
    fn round_trip() {
        let (ring, _) = ring_with(&MasterKey::generate(), &[1]);
        let ct = ring.encrypt(AAD, b"+447911123456");
        assert_eq!(ring.decrypt(AAD, &ct).unwrap().as_slice(), b"+447911123456");
        assert_eq!(ciphertext_key_version(&ct), Some(1));
    }

    #[test]
    fn nonces_are_random() {
        let (ring, _) = ring_with(&MasterKey::generate(), &[1]);
        assert_ne!(ring.encrypt(AAD, b"same"), ring.encrypt(AAD, b"same"));
    }

    #[test]
    fn wrong_aad_fails() {
        let (ring, _) = ring_with(&MasterKey::generate(), &[1]);
        let ct = ring.encrypt(AAD, b"secret");
        for other in [
            Aad::new("contacts", "phone", "ct_2"),
            Aad::new("contacts", "name", "ct_1"),
            Aad::new("channels", "phone", "ct_1"),
        ] {
            assert_eq!(
                ring.decrypt(other, &ct).unwrap_err(),
                CryptoError::DecryptionFailed
            );
        }
    }

    #[test]
    fn aad_parts_cannot_be_shifted_between_fields() {
        let (ring, _) = ring_with(&MasterKey::generate(), &[1]);
        let ct = ring.encrypt(Aad::new("ab", "c", "1"), b"x");
        assert!(ring.decrypt(Aad::new("a", "bc", "1"), &ct).is_err());
    }

    #[test]
    fn tampered_ciphertext_fails() {
        let (ring, _) = ring_with(&MasterKey::generate(), &[1]);
        let ct = ring.encrypt(AAD, b"secret value");
        for i in HEADER_LEN..ct.len() {
            let mut bad = ct.clone();
            bad[i] ^= 0x01;
            assert_eq!(
                ring.decrypt(AAD, &bad).unwrap_err(),
                CryptoError::DecryptionFailed,
                "byte {i}"
            );
        }
        assert_eq!(
            ring.decrypt(AAD, &ct[..10]).unwrap_err(),
            CryptoError::MalformedCiphertext
        );
    }

    #[test]
    fn key_version_in_header_is_authenticated() {
        let master = MasterKey::generate();
        let (ring, _) = ring_with(&master, &[1, 2]);
        let mut ct = ring.encrypt(AAD, b"secret");
        ct[4] = 1; // claim version 1 for a version-2 ciphertext
        assert_eq!(
            ring.decrypt(AAD, &ct).unwrap_err(),
            CryptoError::DecryptionFailed
        );
    }

    #[test]
    fn rotation_keeps_old_data_readable_and_moves_writes() {
        let master = MasterKey::generate();
        let (old_ring, mut wrapped) = ring_with(&master, &[1]);
        let old_ct = old_ring.encrypt(AAD, b"before rotation");

        wrapped.push((2, master.wrap(2, &DataKey::generate())));
        let ring = KeyRing::open(&master, &wrapped).unwrap();
        assert_eq!(ring.current_version(), 2);
        assert_eq!(
            ring.decrypt(AAD, &old_ct).unwrap().as_slice(),
            b"before rotation"
        );

        let new_ct = ring.encrypt(AAD, b"after");
        assert_eq!(ciphertext_key_version(&new_ct), Some(2));
        assert_eq!(
            old_ring.decrypt(AAD, &new_ct).unwrap_err(),
            CryptoError::UnknownKeyVersion(2)
        );

        let moved = ring
            .reencrypt(AAD, &old_ct)
            .unwrap()
            .expect("old ciphertext is re-encrypted");
        assert_eq!(ciphertext_key_version(&moved), Some(2));
        assert_eq!(
            ring.decrypt(AAD, &moved).unwrap().as_slice(),
            b"before rotation"
        );
        assert_eq!(ring.reencrypt(AAD, &moved).unwrap(), None);
    }

    #[test]
    fn wrong_master_key_fails_to_open() {
        let (_, wrapped) = ring_with(&MasterKey::generate(), &[1, 2]);
        let err = KeyRing::open(&MasterKey::generate(), &wrapped).unwrap_err();
        assert_eq!(err, CryptoError::WrongMasterKey { version: 1 });
        assert_eq!(
            KeyRing::open(&MasterKey::generate(), &[]).unwrap_err(),
            CryptoError::EmptyKeyRing
        );
    }

    #[test]
    fn blind_index_is_stable_per_master_key_and_domain() {
        let master = MasterKey::generate();
        let (a, _) = ring_with(&master, &[1]);
        let (b, _) = ring_with(&master, &[1, 2]);
        let phone = b"+447911123456";
        assert_eq!(
            a.blind_index("contact.phone", phone),
            b.blind_index("contact.phone", phone)
        );
        assert_ne!(
            a.blind_index("contact.phone", phone),
            a.blind_index("user.email", phone)
        );
        assert_ne!(
            a.blind_index("contact.phone", phone),
            a.blind_index("contact.phone", b"+447911123457")
        );
        let (other, _) = ring_with(&MasterKey::generate(), &[1]);
        assert_ne!(
            a.blind_index("contact.phone", phone),
            other.blind_index("contact.phone", phone)
        );
    }

    proptest! {
        #[test]
        fn any_plaintext_round_trips(data in proptest::collection::vec(any::<u8>(), 0..512), row in "[a-z0-9_]{1,20}") {
            let master = MasterKey::generate();
            let (ring, _) = ring_with(&master, &[7]);
            let aad = Aad::new("t", "c", &row);
            let ct = ring.encrypt(aad, &data);
            let plain = ring.decrypt(aad, &ct).unwrap();
            prop_assert_eq!(plain.as_slice(), data.as_slice());
        }

        #[test]
        fn decrypt_never_panics_on_garbage(data in proptest::collection::vec(any::<u8>(), 0..128)) {
            let (ring, _) = ring_with(&MasterKey::generate(), &[1]);
            prop_assert!(ring.decrypt(AAD, &data).is_err());
        }
    }
}
