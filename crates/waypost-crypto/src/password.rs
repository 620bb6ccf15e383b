//! Password hashing: Argon2id for every password Waypost stores, plus
//! verification of bcrypt hashes imported from other systems so those members
//! can sign in once and be upgraded. Also the timing decoy for unknown emails.
//!
//! Hashes are PHC strings (`$argon2id$v=19$m=…,t=…,p=…$salt$hash`), which
//! carry their own parameters; raising the cost later only marks old hashes
//! as needing a rehash on the member's next successful sign-in.

use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use rand::RngCore;
use serde::{Deserialize, Serialize};

/// Stored Argon2 hashes asking for more than this are treated as malformed
/// rather than run: a corrupted or hostile row must not make a sign-in
/// allocate gigabytes or spin for minutes.
const MAX_STORED_MEMORY_KIB: u32 = 1024 * 1024;
const MAX_STORED_ITERATIONS: u32 = 64;
const MAX_STORED_PARALLELISM: u32 = 64;
/// bcrypt cost 18 already takes tens of seconds; nothing legitimate is higher.
const MAX_BCRYPT_COST: u32 = 18;
/// The cost policy for imported bcrypt hashes. They are always rehashed to
/// Argon2id on the next sign-in; lower costs still verify so nobody is locked out.
pub const BCRYPT_POLICY_MIN_COST: u32 = 12;

const SALT_LEN: usize = 16;

/// Argon2id cost parameters. The default is OWASP's current minimum
/// recommendation: 19 MiB of memory, 2 iterations, 1 lane.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Argon2Settings {
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
}

impl Default for Argon2Settings {
    fn default() -> Self {
        Self {
            memory_kib: 19 * 1024,
            iterations: 2,
            parallelism: 1,
        }
    }
}

/// The settings were rejected by Argon2 (for example memory below 8 KiB per lane).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid Argon2 settings: {reason}")]
pub struct InvalidArgon2Settings {
    pub reason: String,
}

/// The outcome of checking a password against a stored hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PasswordCheck {
    /// The password matches. When `needs_rehash`, the caller should store
    /// [`PasswordHasher::hash`] of the same password now, while it has it.
    Valid { needs_rehash: bool },
    /// Wrong password, or a stored hash we cannot read. Deliberately one
    /// variant: the caller's response must not differ between the two.
    Invalid,
}

/// Hashes and verifies passwords with fixed Argon2id settings.
#[derive(Clone)]
pub struct PasswordHasher {
    settings: Argon2Settings,
    params: Params,
    dummy_hash: String,
}

impl std::fmt::Debug for PasswordHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PasswordHasher")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl PasswordHasher {
    /// Validates the settings and precomputes the decoy hash used by
    /// [`PasswordHasher::verify_dummy`] (which costs one hash at start-up).
    pub fn new(settings: Argon2Settings) -> Result<Self, InvalidArgon2Settings> {
        let params = Params::new(
            settings.memory_kib,
            settings.iterations,
            settings.parallelism,
            None,
        )
        .map_err(|e| InvalidArgon2Settings {
            reason: e.to_string(),
        })?;
        let mut hasher = Self {
            settings,
            params,
            dummy_hash: String::new(),
        };
        // A random decoy password: nobody can sign in "as" the decoy.
        let mut decoy = [0u8; 32];
        rand::rng().fill_bytes(&mut decoy);
        hasher.dummy_hash = hasher.hash_bytes(&decoy);
        Ok(hasher)
    }

    pub fn settings(&self) -> Argon2Settings {
        self.settings
    }

    fn argon2(&self) -> Argon2<'static> {
        Argon2::new(Algorithm::Argon2id, Version::V0x13, self.params.clone())
    }

    fn hash_bytes(&self, password: &[u8]) -> String {
        let mut salt = [0u8; SALT_LEN];
        rand::rng().fill_bytes(&mut salt);
        let salt = SaltString::encode_b64(&salt).expect("16 bytes is a valid salt length");
        self.argon2()
            .hash_password(password, &salt)
            .expect("parameters were validated in new and the salt is well-formed")
            .to_string()
    }

    /// A PHC string for `password` with a fresh random 16-byte salt.
    pub fn hash(&self, password: &str) -> String {
        self.hash_bytes(password.as_bytes())
    }

    /// Checks `password` against a stored Argon2id or imported bcrypt hash.
    /// Never panics: anything unreadable is [`PasswordCheck::Invalid`].
    pub fn verify(&self, password: &str, stored: &str) -> PasswordCheck {
        if is_bcrypt(stored) {
            return verify_bcrypt(password, stored);
        }
        self.verify_argon2(password, stored)
    }

    fn verify_argon2(&self, password: &str, stored: &str) -> PasswordCheck {
        let Ok(hash) = PasswordHash::new(stored) else {
            return PasswordCheck::Invalid;
        };
        if hash.algorithm != argon2::ARGON2ID_IDENT || hash.salt.is_none() || hash.hash.is_none() {
            return PasswordCheck::Invalid;
        }
        let Ok(params) = Params::try_from(&hash) else {
            return PasswordCheck::Invalid;
        };
        if params.m_cost() > MAX_STORED_MEMORY_KIB
            || params.t_cost() > MAX_STORED_ITERATIONS
            || params.p_cost() > MAX_STORED_PARALLELISM
        {
            return PasswordCheck::Invalid;
        }
        // `Argon2::default()` is only the verifier: it re-hashes with the
        // algorithm, version, parameters and salt recorded in `hash`.
        if Argon2::default()
            .verify_password(password.as_bytes(), &hash)
            .is_err()
        {
            return PasswordCheck::Invalid;
        }
        let current = hash.version == Some(Version::V0x13.into())
            && params.m_cost() == self.params.m_cost()
            && params.t_cost() == self.params.t_cost()
            && params.p_cost() == self.params.p_cost()
            && hash.hash.map(|h| h.len()) == Some(Params::DEFAULT_OUTPUT_LEN)
            && hash.salt.map(|s| s.len()) >= Some((SALT_LEN * 4).div_ceil(3));
        PasswordCheck::Valid {
            needs_rehash: !current,
        }
    }

    /// Spends the same time as verifying a real hash, for sign-in attempts
    /// with an unknown email, so response times do not reveal which emails
    /// have accounts.
    pub fn verify_dummy(&self, password: &str) {
        let outcome = self.verify_argon2(password, &self.dummy_hash);
        // Keep the result observable so the work cannot be optimised away.
        std::hint::black_box(outcome);
    }
}

fn is_bcrypt(stored: &str) -> bool {
    ["$2a$", "$2b$", "$2y$"]
        .iter()
        .any(|prefix| stored.starts_with(prefix))
}

/// Imported bcrypt hashes verify at any cost up to [`MAX_BCRYPT_COST`] and
/// always need a rehash: we keep one algorithm for stored passwords.
fn verify_bcrypt(password: &str, stored: &str) -> PasswordCheck {
    let Ok(parts) = stored.parse::<bcrypt::HashParts>() else {
        return PasswordCheck::Invalid;
    };
    if parts.get_cost() > MAX_BCRYPT_COST {
        return PasswordCheck::Invalid;
    }
    // bcrypt only reads the first 72 bytes; `verify` truncates the same way
    // the exporting system did, so members with long passwords still match.
    match bcrypt::verify(password, stored) {
        Ok(true) => PasswordCheck::Valid { needs_rehash: true },
        _ => PasswordCheck::Invalid,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FAST: Argon2Settings = Argon2Settings {
        memory_kib: 1024,
        iterations: 1,
        parallelism: 1,
    };

    fn fast() -> PasswordHasher {
        PasswordHasher::new(FAST).unwrap()
    }

    #[test]
    fn round_trip_and_wrong_password() {
        let hasher = fast();
        let hash = hasher.hash("correct horse battery staple");
        assert!(hash.starts_with("$argon2id$v=19$m=1024,t=1,p=1$"), "{hash}");
        assert_eq!(
            hasher.verify("correct horse battery staple", &hash),
            PasswordCheck::Valid {
                needs_rehash: false
            }
        );
        assert_eq!(
            hasher.verify("correct horse battery stapl", &hash),
            PasswordCheck::Invalid
        );
        assert_eq!(hasher.verify("", &hash), PasswordCheck::Invalid);
    }

    #[test]
    fn salts_are_random() {
        let hasher = fast();
        let a = hasher.hash("same password");
        let b = hasher.hash("same password");
        assert_ne!(a, b);
        let salt = PasswordHash::new(&a).unwrap().salt.unwrap();
        assert_eq!(salt.len(), 22, "16 bytes in unpadded base64");
    }

    #[test]
    fn changed_settings_ask_for_a_rehash() {
        let old = fast();
        let hash = old.hash("hunter2 but longer");
        for settings in [
            Argon2Settings {
                memory_kib: 2048,
                ..FAST
            },
            Argon2Settings {
                iterations: 2,
                ..FAST
            },
            Argon2Settings {
                parallelism: 2,
                ..FAST
            },
        ] {
            let new = PasswordHasher::new(settings).unwrap();
            assert_eq!(
                new.verify("hunter2 but longer", &hash),
                PasswordCheck::Valid { needs_rehash: true },
                "{settings:?}"
            );
            assert_eq!(new.verify("wrong", &hash), PasswordCheck::Invalid);
            let rehashed = new.hash("hunter2 but longer");
            assert_eq!(
                new.verify("hunter2 but longer", &rehashed),
                PasswordCheck::Valid {
                    needs_rehash: false
                }
            );
        }
    }

    #[test]
    fn other_argon2_variants_verify_but_need_a_rehash() {
        let argon2i = Argon2::new(
            Algorithm::Argon2i,
            Version::V0x13,
            Params::new(1024, 1, 1, None).unwrap(),
        );
        let salt = SaltString::encode_b64(&[7u8; 16]).unwrap();
        let hash = argon2i.hash_password(b"legacy", &salt).unwrap().to_string();
        // Only Argon2id is accepted; an argon2i row is treated as unreadable.
        assert_eq!(fast().verify("legacy", &hash), PasswordCheck::Invalid);

        let v10 = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x10,
            Params::new(1024, 1, 1, None).unwrap(),
        );
        let hash = v10.hash_password(b"legacy", &salt).unwrap().to_string();
        assert_eq!(
            fast().verify("legacy", &hash),
            PasswordCheck::Valid { needs_rehash: true }
        );
    }

    #[test]
    fn imported_bcrypt_hashes_verify_and_always_need_a_rehash() {
        let hasher = fast();
        // Cost 4 keeps the test fast; policy for imports is cost >= 12, but
        // any readable cost verifies and is upgraded on sign-in.
        let hash = bcrypt::hash("imported password", 4).unwrap();
        assert!(hash.starts_with("$2b$04$"));
        assert_eq!(
            hasher.verify("imported password", &hash),
            PasswordCheck::Valid { needs_rehash: true }
        );
        assert_eq!(
            hasher.verify("imported passwort", &hash),
            PasswordCheck::Invalid
        );
        for prefix in ["$2a$", "$2y$"] {
            let variant = hash.replacen("$2b$", prefix, 1);
            assert_eq!(
                hasher.verify("imported password", &variant),
                PasswordCheck::Valid { needs_rehash: true },
                "{prefix}"
            );
        }
        // $2x$ marks hashes from a known-buggy implementation; refuse it.
        let buggy = hash.replacen("$2b$", "$2x$", 1);
        assert_eq!(
            hasher.verify("imported password", &buggy),
            PasswordCheck::Invalid
        );
    }

    #[test]
    fn absurd_stored_costs_are_refused_without_running() {
        let hasher = fast();
        let bcrypt_31 = "$2b$31$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy";
        assert_eq!(hasher.verify("x", bcrypt_31), PasswordCheck::Invalid);
        let huge = "$argon2id$v=19$m=4194304,t=1,p=1$c29tZXNhbHRzb21lc2FsdA$\
                    AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
        assert_eq!(hasher.verify("x", huge), PasswordCheck::Invalid);
    }

    #[test]
    fn malformed_hashes_are_invalid_not_panics() {
        let hasher = fast();
        let good = hasher.hash("pw");
        let cases = [
            String::new(),
            "plaintext".to_string(),
            "$argon2id$".to_string(),
            "$argon2id$v=19$m=1024,t=1,p=1$".to_string(),
            "$argon2id$v=19$m=1024,t=1,p=1$!!!!$@@@@".to_string(),
            "$argon2id$v=19$m=0,t=0,p=0$c29tZXNhbHQ$aGFzaA".to_string(),
            "$2b$".to_string(),
            "$2b$04$short".to_string(),
            "$2b$xx$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy".to_string(),
            good[..good.len() - 5].to_string(),
            good.replace("argon2id", "scrypt"),
        ];
        for stored in &cases {
            assert_eq!(
                hasher.verify("pw", stored),
                PasswordCheck::Invalid,
                "{stored:?}"
            );
        }
    }

    #[test]
    fn dummy_verification_runs_and_never_matches_a_guess() {
        let hasher = fast();
        hasher.verify_dummy("anything");
        assert_eq!(
            hasher.verify("anything", &hasher.dummy_hash),
            PasswordCheck::Invalid
        );
        assert!(
            hasher
                .dummy_hash
                .starts_with("$argon2id$v=19$m=1024,t=1,p=1$")
        );
    }

    #[test]
    fn invalid_settings_are_rejected_at_construction() {
        let err = PasswordHasher::new(Argon2Settings {
            memory_kib: 1,
            iterations: 1,
            parallelism: 1,
        })
        .unwrap_err();
        assert!(err.to_string().starts_with("invalid Argon2 settings"));
        assert!(
            PasswordHasher::new(Argon2Settings {
                iterations: 0,
                ..FAST
            })
            .is_err()
        );
    }

    #[test]
    fn defaults_follow_owasp_and_work() {
        let defaults = Argon2Settings::default();
        assert_eq!(
            defaults,
            Argon2Settings {
                memory_kib: 19456,
                iterations: 2,
                parallelism: 1
            }
        );
        let hasher = PasswordHasher::new(defaults).unwrap();
        let hash = hasher.hash("a long and good password");
        assert!(
            hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{hash}"
        );
        assert_eq!(
            hasher.verify("a long and good password", &hash),
            PasswordCheck::Valid {
                needs_rehash: false
            }
        );
        // A fast-hash row is upgraded once the defaults are in force.
        let old = fast().hash("a long and good password");
        assert_eq!(
            hasher.verify("a long and good password", &old),
            PasswordCheck::Valid { needs_rehash: true }
        );
    }

    #[test]
    fn settings_deserialize_with_defaults_for_missing_fields() {
        let s: Argon2Settings = serde_json::from_str(r#"{"memory_kib": 65536}"#).unwrap();
        assert_eq!(
            s,
            Argon2Settings {
                memory_kib: 65536,
                ..Argon2Settings::default()
            }
        );
        assert!(serde_json::from_str::<Argon2Settings>(r#"{"memory": 1}"#).is_err());
    }
}
