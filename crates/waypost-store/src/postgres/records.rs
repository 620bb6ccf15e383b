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
        // On its own task, so a caller dropped while `BEGIN` was answered cannot put a
        // connection back in the pool inside a transaction nobody owns (see the SQLite store).
        let pool = self.pool.clone();
        tokio::spawn(async move { pool.begin().await })
            .await
            .map_err(|e| StoreError::Unavailable(format!("beginning a transaction: {e}")))?
            .map_err(Into::into)
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
crate::events::insert_events_fn!(PgConnection);
crate::events::customer_event_store_impl!(PgStore, insert_events);
crate::privacy::insert_privacy_request_fn!(PgConnection);
crate::privacy::privacy_store_impl!(PgStore, append_audit);
crate::retention::retention_store_impl!(PgStore);
crate::operators::operator_store_impl!(PgStore, append_audit);
crate::incidents::incident_store_impl!(PgStore, PgConnection, append_audit, insert_events);
crate::messaging::message_row_fns!(PgConnection);
crate::accept::accept_batch_fn!(PgConnection);
crate::usage::usage_fns!(PgConnection);
crate::usage::usage_count_fns!(PgConnection);
crate::usage::usage_store_impl!(PgStore, append_audit);
crate::plans::plan_store_impl!(PgStore, append_audit, insert_events);
crate::stripe::stripe_store_impl!(PgStore, append_audit, insert_events);
crate::conversations::conversation_fns!(PgConnection);
crate::audiences::audience_fns!(PgConnection);
crate::import_writes::import_write_fns!(PgConnection);
crate::audiences::audience_store_impl!(PgStore, append_audit);
crate::imports::import_store_impl!(
    PgStore,
    append_audit,
    ["ANALYZE contacts, contact_tags, contact_attribute_index, contact_consents"]
);
crate::campaigns::campaign_store_impl!(PgStore, append_audit);
crate::campaign_sends::campaign_send_store_impl!(PgStore, append_audit, insert_events);
crate::campaign_reports::campaign_report_store_impl!(PgStore, append_audit);
crate::conversations::conversation_store_impl!(PgStore, append_audit, insert_events);
crate::messaging::messaging_store_impl!(PgStore, append_audit, insert_events, insert_status);
crate::media::insert_media_fn!(PgConnection);
crate::media::media_store_impl!(PgStore, append_audit, insert_media);
crate::inbound_writes::inbound_fns!(PgConnection, insert_status, insert_events);
crate::dispatch::record_sent_fn!(PgConnection);
crate::dispatch::dispatch_store_impl!(
    PgStore,
    insert_status,
    apply_status,
    apply_unmatched,
    "FOR UPDATE SKIP LOCKED"
);
crate::inbound::inbound_store_impl!(PgStore, insert_events, insert_media);
crate::account::insert_email_token_fn!(PgConnection);
crate::account::account_store_impl!(PgStore, append_audit);
crate::legacy_emails::legacy_email_store_impl!(
    PgStore,
    [
        "VACUUM FULL users",
        "VACUUM FULL invitations",
        "VACUUM FULL email_tokens"
    ]
);
crate::workspace_deletion::workspace_deletion_store_impl!(
    PgStore,
    append_audit,
    "DELETE FROM {t} WHERE ctid = ANY(ARRAY(SELECT ctid FROM {t} WHERE workspace_id = $1 LIMIT $2))"
);
crate::automation::automation_store_impl!(PgStore, append_audit, "FOR UPDATE SKIP LOCKED");
crate::knowledge::knowledge_store_impl!(
    PgStore,
    append_audit,
    "SELECT body FROM knowledge_chunks
     WHERE workspace_id = $2 AND to_tsvector('english', body) @@ to_tsquery('english', $1)
     ORDER BY ts_rank(to_tsvector('english', body), to_tsquery('english', $1)) DESC, document_id, seq
     LIMIT $3",
    crate::knowledge::tsquery
);
crate::trust::trust_store_impl!(PgStore, append_audit, insert_events, " FOR KEY SHARE");
crate::mail::mail_store_impl!(PgStore, append_audit, "FOR UPDATE SKIP LOCKED");
crate::templates::template_store_impl!(PgStore, append_audit, insert_events);
crate::webhooks::webhook_store_impl!(
    PgStore,
    append_audit,
    insert_events,
    "FOR UPDATE SKIP LOCKED"
);

/// Serialises appends to one chain across connections and nodes until commit.
async fn lock_chain(conn: &mut PgConnection, chain: &str) -> Result<()> {
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
        .bind(chain)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

crate::foundation::append_audit_fn!(PgConnection, lock_chain);

crate::foundation::foundation_store_impl!(PgStore, append_audit, "FOR UPDATE");
