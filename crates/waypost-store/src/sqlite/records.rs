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
        // Begun on its own task: a caller dropped while `BEGIN` was answered (a client
        // that hung up) would otherwise leave the one writer connection inside a
        // transaction no `Transaction` owns, and every later write would fail with
        // InvalidSavePointStatement. Dropped here instead, it is rolled back.
        let writer = self.writer.clone();
        tokio::spawn(async move { writer.begin_with("BEGIN IMMEDIATE").await })
            .await
            .map_err(|e| StoreError::Unavailable(format!("beginning a transaction: {e}")))?
            .map_err(Into::into)
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
crate::events::insert_events_fn!(SqliteConnection);
crate::events::customer_event_store_impl!(SqliteStore, insert_events);
crate::privacy::insert_privacy_request_fn!(SqliteConnection);
crate::privacy::privacy_store_impl!(SqliteStore, append_audit);
crate::retention::retention_store_impl!(SqliteStore);
crate::operators::operator_store_impl!(SqliteStore, append_audit);
crate::incidents::incident_store_impl!(SqliteStore, SqliteConnection, append_audit, insert_events);
crate::messaging::message_row_fns!(SqliteConnection);
crate::accept::accept_batch_fn!(SqliteConnection);
crate::usage::usage_fns!(SqliteConnection);
crate::usage::usage_count_fns!(SqliteConnection);
crate::usage::usage_store_impl!(SqliteStore, append_audit);
crate::plans::plan_store_impl!(SqliteStore, append_audit, insert_events);
crate::stripe::stripe_store_impl!(SqliteStore, append_audit, insert_events);
crate::conversations::conversation_fns!(SqliteConnection);
crate::audiences::audience_fns!(SqliteConnection);
crate::import_writes::import_write_fns!(SqliteConnection);
crate::audiences::audience_store_impl!(SqliteStore, append_audit);
// SQLite picks the unique (workspace, phone index) index without statistics.
crate::imports::import_store_impl!(SqliteStore, append_audit, []);
crate::campaigns::campaign_store_impl!(SqliteStore, append_audit);
crate::campaign_sends::campaign_send_store_impl!(SqliteStore, append_audit, insert_events);
crate::campaign_reports::campaign_report_store_impl!(SqliteStore, append_audit);
crate::conversations::conversation_store_impl!(SqliteStore, append_audit, insert_events);
crate::messaging::messaging_store_impl!(SqliteStore, append_audit, insert_events, insert_status);
crate::media::insert_media_fn!(SqliteConnection);
crate::media::media_store_impl!(SqliteStore, append_audit, insert_media);
crate::inbound_writes::inbound_fns!(SqliteConnection, insert_status, insert_events);
crate::dispatch::record_sent_fn!(SqliteConnection);
crate::dispatch::dispatch_store_impl!(
    SqliteStore,
    insert_status,
    apply_status,
    apply_unmatched,
    ""
);
crate::inbound::inbound_store_impl!(SqliteStore, insert_events, insert_media);
crate::account::insert_email_token_fn!(SqliteConnection);
crate::account::account_store_impl!(SqliteStore, append_audit);
crate::legacy_emails::legacy_email_store_impl!(SqliteStore, ["PRAGMA wal_checkpoint(TRUNCATE)"]);
crate::workspace_deletion::workspace_deletion_store_impl!(
    SqliteStore,
    append_audit,
    "DELETE FROM {t} WHERE rowid IN (SELECT rowid FROM {t} WHERE workspace_id = $1 LIMIT $2)"
);
crate::automation::automation_store_impl!(SqliteStore, append_audit, "");
crate::knowledge::knowledge_store_impl!(
    SqliteStore,
    append_audit,
    "SELECT c.body FROM knowledge_fts JOIN knowledge_chunks c ON c.rowid = knowledge_fts.rowid
     WHERE knowledge_fts MATCH $1 AND c.workspace_id = $2 ORDER BY bm25(knowledge_fts) LIMIT $3",
    crate::knowledge::fts5_query
);
crate::trust::trust_store_impl!(SqliteStore, append_audit, insert_events, "");
crate::mail::mail_store_impl!(SqliteStore, append_audit, "");
crate::templates::template_store_impl!(SqliteStore, append_audit, insert_events);
crate::webhooks::webhook_store_impl!(SqliteStore, append_audit, insert_events, "");

/// Chain appends need no extra lock here: `BEGIN IMMEDIATE` on the single
/// writer connection already makes each transaction the only writer.
async fn lock_chain(_conn: &mut SqliteConnection, _chain: &str) -> Result<()> {
    Ok(())
}

crate::foundation::append_audit_fn!(SqliteConnection, lock_chain);

crate::foundation::foundation_store_impl!(SqliteStore, append_audit, "");
