//! Customer webhooks: endpoint secrets (encrypted at rest, shown once), the
//! SSRF rules for targets (`ssrf`), and the deliverer worker (`deliver`) that
//! fans customer events out to endpoints and delivers them signed per
//! Standard Webhooks, with retries, ordering per subject and an attempt log.

pub mod deliver;
pub use crate::guard::ssrf;

use secrecy::SecretString;
use waypost_crypto::{Aad, KeyRing};
use waypost_store::Store;

use crate::config::Config;
use crate::keys::Keys;

pub const TABLE: &str = "webhook_endpoints";
pub const SECRET: &str = "secret";
pub const PREVIOUS_SECRET: &str = "previous_secret";

/// The operator's target policy.
pub fn policy(config: &Config) -> ssrf::TargetPolicy {
    ssrf::TargetPolicy {
        allow_http: config.webhook_allow_http,
        allow_private: config.webhook_allow_private_targets,
    }
}

/// A secret encrypted for `column` of endpoint `id`.
pub fn seal_secret(ring: &KeyRing, id: &str, column: &str, secret: &SecretString) -> Vec<u8> {
    ring.encrypt(
        Aad::new(TABLE, column, id),
        secrecy::ExposeSecret::expose_secret(secret).as_bytes(),
    )
}

/// The stored secret of `column` of endpoint `id`.
pub async fn open_secret(
    keys: &Keys,
    store: &dyn Store,
    id: &str,
    column: &str,
    ciphertext: &[u8],
) -> anyhow::Result<SecretString> {
    let plain = keys
        .decrypt(store, Aad::new(TABLE, column, id), ciphertext)
        .await?;
    Ok(SecretString::from(String::from_utf8(plain.to_vec())?))
}
