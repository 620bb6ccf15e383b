//! Plain records passed across the store boundary.

use chrono::{DateTime, Utc};
use waypost_core::audit::Actor;
use waypost_core::{AuditEvent, AuditEventId, WorkspaceId};

use crate::StoreError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Workspace {
    pub id: WorkspaceId,
    pub name: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A data key as stored: wrapped by the master key.
#[derive(Debug, Clone)]
pub struct StoredDataKey {
    pub version: u32,
    pub wrapped_key: Vec<u8>,
    pub created_at: DateTime<Utc>,
}

/// A column holding waypost-crypto ciphertexts, bound to `(table, column, id)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EncryptedColumn {
    pub table: &'static str,
    pub id_column: &'static str,
    pub column: &'static str,
}

impl EncryptedColumn {
    pub fn name(&self) -> String {
        format!("{}.{}", self.table, self.column)
    }
}

/// Every encrypted column, for key rotation. Later schemas add theirs here.
pub const ENCRYPTED_COLUMNS: &[EncryptedColumn] = &[
    EncryptedColumn {
        table: "idempotency_records",
        id_column: "id",
        column: "response_body",
    },
    EncryptedColumn {
        table: "channels",
        id_column: "id",
        column: "access_token",
    },
    EncryptedColumn {
        table: "channels",
        id_column: "id",
        column: "app_secret",
    },
    EncryptedColumn {
        table: "channels",
        id_column: "id",
        column: "verify_token",
    },
    EncryptedColumn {
        table: "contacts",
        id_column: "id",
        column: "phone",
    },
    EncryptedColumn {
        table: "contacts",
        id_column: "id",
        column: "user_id",
    },
    EncryptedColumn {
        table: "contacts",
        id_column: "id",
        column: "parent_user_id",
    },
    EncryptedColumn {
        table: "contacts",
        id_column: "id",
        column: "username",
    },
    EncryptedColumn {
        table: "contacts",
        id_column: "id",
        column: "name",
    },
    EncryptedColumn {
        table: "contacts",
        id_column: "id",
        column: "attributes",
    },
    EncryptedColumn {
        table: "contacts",
        id_column: "id",
        column: "content_key",
    },
    EncryptedColumn {
        table: "contact_consents",
        id_column: "id",
        column: "evidence",
    },
    EncryptedColumn {
        table: "outbox",
        id_column: "message_id",
        column: "payload",
    },
    EncryptedColumn {
        table: "passkeys",
        id_column: "id",
        column: "credential",
    },
    EncryptedColumn {
        table: "customer_events",
        id_column: "id",
        column: "payload",
    },
    EncryptedColumn {
        table: "assistant_settings",
        id_column: "workspace_id",
        column: "api_key",
    },
    EncryptedColumn {
        table: "webhook_endpoints",
        id_column: "id",
        column: "secret",
    },
    EncryptedColumn {
        table: "webhook_endpoints",
        id_column: "id",
        column: "previous_secret",
    },
    EncryptedColumn {
        table: "webauthn_challenges",
        id_column: "id",
        column: "state",
    },
    EncryptedColumn {
        table: "users",
        id_column: "id",
        column: "totp_secret",
    },
    EncryptedColumn {
        table: "incidents",
        id_column: "id",
        column: "description",
    },
    EncryptedColumn {
        table: "incidents",
        id_column: "id",
        column: "resolution",
    },
    EncryptedColumn {
        table: "media",
        id_column: "id",
        column: "filename",
    },
    // Only the wrapped key moves on rotation; the (large) blob it seals stays as is.
    EncryptedColumn {
        table: "media",
        id_column: "id",
        column: "blob_key",
    },
    EncryptedColumn {
        table: "segments",
        id_column: "id",
        column: "definition",
    },
    EncryptedColumn {
        table: "users",
        id_column: "id",
        column: "email",
    },
    EncryptedColumn {
        table: "invitations",
        id_column: "id",
        column: "email",
    },
    EncryptedColumn {
        table: "email_tokens",
        id_column: "id",
        column: "email",
    },
];

#[derive(Debug, Clone)]
pub struct EncryptedValue {
    pub id: String,
    pub ciphertext: Vec<u8>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReencryptionProgress {
    pub last_id: Option<String>,
    pub finished_at: Option<DateTime<Utc>>,
}

/// The state of one migration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationStatus {
    pub version: i64,
    pub description: String,
    pub state: MigrationState,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MigrationState {
    Applied,
    Pending,
    /// Applied, but the file embedded in this binary differs from what ran.
    ChecksumMismatch,
    /// Started and did not finish.
    Failed,
    /// In the database but not in this binary (a newer binary migrated it).
    Unknown,
}

impl MigrationState {
    pub fn as_str(self) -> &'static str {
        match self {
            MigrationState::Applied => "applied",
            MigrationState::Pending => "pending",
            MigrationState::ChecksumMismatch => "checksum mismatch",
            MigrationState::Failed => "failed",
            MigrationState::Unknown => "unknown to this binary",
        }
    }
}

/// True when every embedded migration is applied and nothing is out of place.
pub fn migrations_current(statuses: &[MigrationStatus]) -> bool {
    statuses.iter().all(|s| s.state == MigrationState::Applied)
}

#[derive(Debug, Clone)]
pub struct PoolStats {
    pub name: &'static str,
    pub size: u32,
    pub idle: u32,
    pub max: u32,
}

/// A request asking to run under an idempotency key.
#[derive(Debug, Clone)]
pub struct IdempotencyClaim {
    pub id: String,
    pub workspace_id: WorkspaceId,
    pub key: String,
    /// SHA-256 of what makes two requests "the same" (method, path, body).
    pub request_hash: Vec<u8>,
    pub now: DateTime<Utc>,
    /// How long the claim blocks concurrent requests with the same key.
    pub lock_until: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdempotencyBegin {
    /// This request holds the key and should run.
    Claimed,
    /// The key was used with a different request.
    Mismatch,
    /// Another request with this key is still running.
    InProgress,
    /// An identical request already finished; answer with its response.
    Completed {
        record_id: String,
        status: u16,
        encrypted_body: Vec<u8>,
    },
}

/// A row of `audit_events`, as both backends return it.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct AuditRow {
    pub id: String,
    pub chain: String,
    pub seq: i64,
    pub workspace_id: Option<String>,
    pub actor_type: String,
    pub actor_id: Option<String>,
    pub action: String,
    pub target_type: Option<String>,
    pub target_id: Option<String>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub occurred_at: DateTime<Utc>,
    pub details: String,
    pub prev_hash: Vec<u8>,
    pub hash: Vec<u8>,
}

impl TryFrom<AuditRow> for AuditEvent {
    type Error = StoreError;
    fn try_from(r: AuditRow) -> Result<Self, StoreError> {
        let corrupt = |what: &str| StoreError::Corrupt(format!("audit event {}: {what}", r.id));
        Ok(AuditEvent {
            id: AuditEventId::parse(&r.id).map_err(|_| corrupt("bad id"))?,
            workspace_id: r
                .workspace_id
                .as_deref()
                .map(WorkspaceId::parse)
                .transpose()
                .map_err(|_| corrupt("bad workspace id"))?,
            actor: Actor::from_parts(&r.actor_type, r.actor_id.clone())
                .ok_or_else(|| corrupt("bad actor"))?,
            prev_hash: r
                .prev_hash
                .as_slice()
                .try_into()
                .map_err(|_| corrupt("bad prev_hash"))?,
            hash: r
                .hash
                .as_slice()
                .try_into()
                .map_err(|_| corrupt("bad hash"))?,
            chain: r.chain,
            seq: r.seq,
            action: r.action,
            target_type: r.target_type,
            target_id: r.target_id,
            ip: r.ip,
            user_agent: r.user_agent,
            occurred_at: r.occurred_at,
            details: r.details,
        })
    }
}

#[derive(Debug, sqlx::FromRow)]
pub(crate) struct WorkspaceRow {
    pub id: String,
    pub name: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl TryFrom<WorkspaceRow> for Workspace {
    type Error = StoreError;
    fn try_from(r: WorkspaceRow) -> Result<Self, StoreError> {
        Ok(Workspace {
            id: WorkspaceId::parse(&r.id)
                .map_err(|_| StoreError::Corrupt(format!("workspace id {}", r.id)))?,
            name: r.name,
            created_at: r.created_at,
            updated_at: r.updated_at,
        })
    }
}

/// Compares embedded migrations with `(version, checksum, success)` rows from the database.
pub(crate) fn compare_migrations(
    migrator: &sqlx::migrate::Migrator,
    applied: &[(i64, Vec<u8>, bool)],
) -> Vec<MigrationStatus> {
    let mut out: Vec<MigrationStatus> = migrator
        .iter()
        .filter(|m| !m.migration_type.is_down_migration())
        .map(|m| {
            let state = match applied.iter().find(|(v, _, _)| *v == m.version) {
                None => MigrationState::Pending,
                Some((_, _, false)) => MigrationState::Failed,
                Some((_, checksum, true)) if checksum.as_slice() != &*m.checksum => {
                    MigrationState::ChecksumMismatch
                }
                Some(_) => MigrationState::Applied,
            };
            MigrationStatus {
                version: m.version,
                description: m.description.to_string(),
                state,
            }
        })
        .collect();
    for (version, _, _) in applied {
        if !migrator.iter().any(|m| m.version == *version) {
            out.push(MigrationStatus {
                version: *version,
                description: String::new(),
                state: MigrationState::Unknown,
            });
        }
    }
    out
}

/// An idempotency record as both backends return it.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct IdempotencyRow {
    pub id: String,
    pub request_hash: Vec<u8>,
    pub state: String,
    pub response_status: Option<i32>,
    pub response_body: Option<Vec<u8>>,
    pub locked_until: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

pub(crate) enum Decision {
    Answer(IdempotencyBegin),
    /// The old record is expired or its request died mid-way: replace it.
    Replace,
}

impl IdempotencyRow {
    pub fn decide(&self, claim: &IdempotencyClaim) -> Decision {
        if self.expires_at <= claim.now {
            return Decision::Replace;
        }
        if self.request_hash != claim.request_hash {
            return Decision::Answer(IdempotencyBegin::Mismatch);
        }
        match (
            self.state.as_str(),
            self.response_status,
            &self.response_body,
        ) {
            ("completed", Some(status), Some(body)) => {
                Decision::Answer(IdempotencyBegin::Completed {
                    record_id: self.id.clone(),
                    status: status as u16,
                    encrypted_body: body.clone(),
                })
            }
            _ if self.locked_until > claim.now => Decision::Answer(IdempotencyBegin::InProgress),
            _ => Decision::Replace,
        }
    }
}
