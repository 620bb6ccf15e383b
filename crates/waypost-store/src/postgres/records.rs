//! PostgreSQL queries for workspaces, data keys, the audit chain and
//! idempotency records. Chain appends hold an advisory lock on the chain;
//! idempotency claims lock the existing record row.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use waypost_core::audit::{GENESIS_HASH, chain_name};
use waypost_core::{AuditEvent, NewAuditEvent, WorkspaceId};

use super::PgStore;
use crate::model::{AuditRow, WorkspaceRow};
use crate::*;

impl PgStore {
    pub(crate) async fn write_tx(&self) -> Result<sqlx::Transaction<'static, sqlx::Postgres>> {
        Ok(self.pool.begin().await?)
    }
}

/// Serialises membership changes of one workspace until commit, so two
/// concurrent demotions cannot both see "another owner remains".
pub(crate) async fn lock_workspace(conn: &mut PgConnection, workspace_id: &str) -> Result<()> {
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 1))")
        .bind(workspace_id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

crate::identity::identity_store_impl!(PgStore, PgConnection, append_audit, lock_workspace);
crate::members::member_store_impl!(PgStore, PgConnection, append_audit, lock_workspace);
crate::checkpoints::checkpoint_store_impl!(PgStore);
crate::audit_query::audit_query_store_impl!(PgStore);
crate::passkeys::passkey_store_impl!(PgStore, append_audit);
crate::shield::shield_store_impl!(PgStore);

/// Appends an event to its chain inside the caller's transaction.
pub(crate) async fn append_audit(
    conn: &mut PgConnection,
    event: NewAuditEvent,
) -> Result<AuditEvent> {
    let chain = chain_name(event.workspace_id);
    // Serialises appends to one chain across connections and nodes until commit.
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
        .bind(&chain)
        .execute(&mut *conn)
        .await?;
    let last: Option<(i64, Vec<u8>)> = sqlx::query_as(
        "SELECT seq, hash FROM audit_events WHERE chain = $1 ORDER BY seq DESC LIMIT 1",
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
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
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

crate::foundation::foundation_store_impl!(PgStore, append_audit, "FOR UPDATE");
