//! The server's side of key management: finding the master key, opening the
//! key ring from the database (creating the first data key on a new database),
//! rotating data keys, and moving old ciphertexts to the current key in
//! resumable batches.

use std::io::Write;
use std::path::Path;
use std::sync::{Arc, RwLock};

use chrono::Utc;
use secrecy::ExposeSecret;
use waypost_core::NewAuditEvent;
use waypost_core::audit::Actor;
use waypost_crypto::{Aad, CryptoError, DataKey, KeyRing, MasterKey};
use waypost_store::{ENCRYPTED_COLUMNS, ReencryptionProgress, Store, StoreError, StoredDataKey};

use crate::config::Config;

/// A startup failure that names the setting at fault.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct KeyError(pub String);

/// Reads the master key from `WAYPOST_MASTER_KEY` or the key file. When neither
/// exists and the database holds no data keys yet, creates the key file (mode 0600).
pub fn load_or_create_master_key(
    config: &Config,
    database_has_keys: bool,
) -> Result<MasterKey, KeyError> {
    if let Some(encoded) = &config.master_key {
        return MasterKey::from_base64(encoded.expose_secret())
            .map_err(|e| KeyError(format!("WAYPOST_MASTER_KEY: {e}")));
    }
    let path = config.master_key_path();
    if path.exists() {
        let text = std::fs::read_to_string(&path).map_err(|e| {
            KeyError(format!(
                "WAYPOST_MASTER_KEY_FILE: cannot read {}: {e}",
                path.display()
            ))
        })?;
        return MasterKey::from_base64(&text)
            .map_err(|e| KeyError(format!("WAYPOST_MASTER_KEY_FILE: {}: {e}", path.display())));
    }
    if database_has_keys {
        return Err(KeyError(format!(
            "WAYPOST_MASTER_KEY: the database holds encrypted data but no master key was given and {} does not exist",
            path.display()
        )));
    }
    let key = MasterKey::generate();
    write_key_file(&path, &key).map_err(|e| {
        KeyError(format!(
            "WAYPOST_MASTER_KEY_FILE: cannot create {}: {e}",
            path.display()
        ))
    })?;
    tracing::warn!(
        path = %path.display(),
        "created a new master key; back this file up now and keep it apart from database backups: without it the encrypted data cannot be read"
    );
    Ok(key)
}

fn write_key_file(path: &Path, key: &MasterKey) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    file.write_all(key.to_base64().expose_secret().as_bytes())?;
    file.write_all(b"\n")?;
    file.sync_all()
}

/// The live key ring, swapped when another node or the CLI adds a data key.
pub struct Keys {
    master: MasterKey,
    ring: RwLock<Arc<KeyRing>>,
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keys")
            .field("ring", &self.current())
            .finish_non_exhaustive()
    }
}

impl Keys {
    /// Opens the ring, creating data key version 1 on a new database.
    pub async fn open(store: &dyn Store, master: MasterKey) -> Result<Self, KeyError> {
        let mut stored = list(store).await?;
        if stored.is_empty() {
            match add_data_key(store, &master, 1, "key.created").await {
                Ok(()) | Err(StoreError::Conflict(_)) => {}
                Err(e) => {
                    return Err(KeyError(format!(
                        "database: cannot store the first data key: {e}"
                    )));
                }
            }
            stored = list(store).await?;
        }
        let ring = open_ring(&master, &stored)?;
        Ok(Self {
            master,
            ring: RwLock::new(Arc::new(ring)),
        })
    }

    /// The Ed25519 key that signs audit checkpoints (derived from the master key).
    pub fn audit_signing_key(&self) -> ed25519_dalek::SigningKey {
        self.master.audit_signing_key()
    }

    pub fn current(&self) -> Arc<KeyRing> {
        self.ring.read().expect("key ring lock").clone()
    }

    /// Re-reads data keys; returns whether a new version appeared.
    pub async fn reload(&self, store: &dyn Store) -> Result<bool, KeyError> {
        let stored = list(store).await?;
        let newest = stored.last().map(|k| k.version);
        if newest == Some(self.current().current_version()) {
            return Ok(false);
        }
        let ring = open_ring(&self.master, &stored)?;
        tracing::info!(version = ring.current_version(), "data key ring reloaded");
        *self.ring.write().expect("key ring lock") = Arc::new(ring);
        Ok(true)
    }

    /// Decrypts, reloading the ring once if the value uses a version this node has not seen.
    pub async fn decrypt(
        &self,
        store: &dyn Store,
        aad: Aad<'_>,
        ciphertext: &[u8],
    ) -> Result<zeroize::Zeroizing<Vec<u8>>, anyhow::Error> {
        match self.current().decrypt(aad, ciphertext) {
            Err(CryptoError::UnknownKeyVersion(_)) => {
                self.reload(store).await.map_err(|e| anyhow::anyhow!(e.0))?;
                Ok(self.current().decrypt(aad, ciphertext)?)
            }
            other => Ok(other?),
        }
    }
}

async fn list(store: &dyn Store) -> Result<Vec<StoredDataKey>, KeyError> {
    store
        .list_data_keys()
        .await
        .map_err(|e| KeyError(format!("database: cannot read data keys: {e}")))
}

fn open_ring(master: &MasterKey, stored: &[StoredDataKey]) -> Result<KeyRing, KeyError> {
    let wrapped: Vec<_> = stored
        .iter()
        .map(|k| (k.version, k.wrapped_key.clone()))
        .collect();
    KeyRing::open(master, &wrapped).map_err(|e| match e {
        CryptoError::WrongMasterKey { .. } => KeyError(format!("WAYPOST_MASTER_KEY: {e}")),
        other => KeyError(format!("key ring: {other}")),
    })
}

async fn add_data_key(
    store: &dyn Store,
    master: &MasterKey,
    version: u32,
    action: &str,
) -> Result<(), StoreError> {
    let key = StoredDataKey {
        version,
        wrapped_key: master.wrap(version, &DataKey::generate()),
        created_at: Utc::now(),
    };
    let audit = NewAuditEvent::new(None, Actor::System, action)
        .target("data_key", version.to_string())
        .details(serde_json::json!({ "version": version }));
    store.insert_data_key(&key, audit).await
}

/// Adds the next data key version; new writes use it once nodes reload.
pub async fn rotate(store: &dyn Store, master: MasterKey) -> Result<u32, KeyError> {
    // Opening first proves this master key matches the database before adding to it.
    let keys = Keys::open(store, master).await?;
    let next = keys.current().current_version() + 1;
    add_data_key(store, &keys.master, next, "key.rotated")
        .await
        .map_err(|e| KeyError(format!("database: cannot store data key {next}: {e}")))?;
    Ok(next)
}

/// What one re-encryption pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ReencryptionReport {
    pub examined: u64,
    pub moved: u64,
    /// Values that could not be decrypted (logged by id, never by content).
    pub failed: u64,
    /// True when every encrypted column is on the current key.
    pub finished: bool,
}

/// Moves up to one batch per column to the current key, remembering where it
/// stopped so a restart resumes instead of starting over.
pub async fn reencrypt_batch(
    store: &dyn Store,
    keys: &Keys,
    batch: u32,
) -> Result<ReencryptionReport, StoreError> {
    let ring = keys.current();
    let target = ring.current_version();
    let mut report = ReencryptionReport {
        finished: true,
        ..Default::default()
    };
    for &col in ENCRYPTED_COLUMNS {
        let progress = store.reencryption_progress(target, col).await?;
        if progress.finished_at.is_some() {
            continue;
        }
        let values = store
            .encrypted_values_after(col, progress.last_id.as_deref(), batch)
            .await?;
        for value in &values {
            report.examined += 1;
            let aad = Aad::new(col.table, col.column, &value.id);
            match ring.reencrypt(aad, &value.ciphertext) {
                Ok(None) => {}
                Ok(Some(new)) => {
                    if store
                        .replace_encrypted_value(col, &value.id, &value.ciphertext, &new)
                        .await?
                    {
                        report.moved += 1;
                    }
                }
                Err(e) => {
                    report.failed += 1;
                    tracing::error!(column = %col.name(), id = %value.id, error = %e, "cannot re-encrypt value");
                }
            }
        }
        let done = (values.len() as u32) < batch;
        let next = ReencryptionProgress {
            last_id: values.last().map(|v| v.id.clone()).or(progress.last_id),
            finished_at: done.then(Utc::now),
        };
        store.save_reencryption_progress(target, col, &next).await?;
        report.finished &= done;
    }
    Ok(report)
}

impl From<KeyError> for crate::error::StartupError {
    fn from(e: KeyError) -> Self {
        crate::error::StartupError(e.0)
    }
}
