//! SQLite queries for workspaces, data keys, the audit chain and idempotency
//! records. Writes run in `BEGIN IMMEDIATE` transactions on the writer
//! connection, so a read-then-write (like extending the audit chain) never
//! races another process.

use chrono::{DateTime, Utc};
use sqlx::{Sqlite, SqliteConnection, Transaction};
use waypost_core::audit::{GENESIS_HASH, chain_name};
use waypost_core::{AuditEvent, NewAuditEvent, WorkspaceId};

use super::SqliteStore;
use crate::model::{AuditRow, WorkspaceRow};
use crate::*;

impl SqliteStore {
    pub(crate) async fn write_tx(&self) -> Result<Transaction<'static, Sqlite>> {
        Ok(self.writer.begin_with("BEGIN IMMEDIATE").await?)
    }
}

/// SQLite has one writer; `BEGIN IMMEDIATE` already serialises workspaces.
pub(crate) async fn lock_workspace(
    _conn: &mut SqliteConnection,
    _workspace_id: &str,
) -> Result<()> {
    Ok(())
}

crate::identity::identity_store_impl!(SqliteStore, SqliteConnection, append_audit, lock_workspace);
crate::members::member_store_impl!(SqliteStore, SqliteConnection, append_audit, lock_workspace);
crate::checkpoints::checkpoint_store_impl!(SqliteStore);
crate::audit_query::audit_query_store_impl!(SqliteStore);
crate::passkeys::passkey_store_impl!(SqliteStore, append_audit);
crate::shield::shield_store_impl!(SqliteStore);

/// Appends an event to its chain inside the caller's transaction.
pub(crate) async fn append_audit(
    conn: &mut SqliteConnection,
    event: NewAuditEvent,
) -> Result<AuditEvent> {
    let chain = chain_name(event.workspace_id);
    let last: Option<(i64, Vec<u8>)> = sqlx::query_as(
        "SELECT seq, hash FROM audit_events WHERE chain = ? ORDER BY seq DESC LIMIT 1",
    )
    .bind(&chain)
    .fetch_optional(&mut *conn)
    .await?;
    let (seq, prev) = match last {
        None => (1, GENESIS_HASH),
        Some((seq, hash)) => {
            let prev = hash
                .try_into()
                .map_err(|_| StoreError::Corrupt(format!("audit chain {chain} head hash")))?;
            (seq + 1, prev)
        }
    };
    let sealed = event.seal(seq, prev);
    sqlx::query(
        "INSERT INTO audit_events (id, chain, seq, workspace_id, actor_type, actor_id, action, target_type,
            target_id, ip, user_agent, occurred_at, details, prev_hash, hash)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(sealed.id.to_string())
    .bind(&sealed.chain)
    .bind(sealed.seq)
    .bind(sealed.workspace_id.map(|w| w.to_string()))
    .bind(sealed.actor.kind())
    .bind(sealed.actor.id())
    .bind(&sealed.action)
    .bind(&sealed.target_type)
    .bind(&sealed.target_id)
    .bind(&sealed.ip)
    .bind(&sealed.user_agent)
    .bind(sealed.occurred_at)
    .bind(&sealed.details)
    .bind(sealed.prev_hash.as_slice())
    .bind(sealed.hash.as_slice())
    .execute(&mut *conn)
    .await?;
    Ok(sealed)
}

crate::foundation::foundation_store_impl!(SqliteStore, append_audit, "");
