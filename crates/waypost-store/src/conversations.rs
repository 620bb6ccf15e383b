//! Conversations (a contact on a channel), their labels and internal notes.
//! The inbound webhook and acceptance keep `last_*` and `unread_count`
//! current inside their own transactions through [`touch_conversations`];
//! state changes (assign, close, read, labels, notes) commit with their audit
//! and customer events, compare-and-set on `version`.
//!
//! The SQL is written once with `$n` placeholders and instantiated for both
//! backends by `conversation_fns!` and `conversation_store_impl!`.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use waypost_core::NewAuditEvent;

use crate::Result;
use crate::events::NewCustomerEvent;

#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct ConversationRow {
    pub id: String,
    pub workspace_id: String,
    pub channel_id: String,
    pub contact_id: String,
    /// `open`, `pending` or `closed`.
    pub status: String,
    pub assignee_id: Option<String>,
    pub last_message_at: DateTime<Utc>,
    /// `inbound` or `outbound`.
    pub last_direction: String,
    pub last_inbound_at: Option<DateTime<Utc>>,
    pub last_inbound_wamid: Option<String>,
    pub unread_count: i64,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

pub(crate) const COLUMNS: &str = "c.id, c.workspace_id, c.channel_id, c.contact_id, c.status, \
     c.assignee_id, c.last_message_at, c.last_direction, c.last_inbound_at, c.last_inbound_wamid, \
     c.unread_count, c.version, c.created_at, c.updated_at";

/// A message that moves its conversation: inbound ones count as unread and
/// make a closed or pending conversation open again.
#[derive(Debug, Clone, PartialEq)]
pub struct ConversationTouch {
    /// The message's id; a new conversation takes its id from it.
    pub message_id: String,
    pub workspace_id: String,
    pub channel_id: String,
    pub contact_id: String,
    pub at: DateTime<Utc>,
    /// The provider id of an inbound message; `None` for outbound.
    pub inbound_wamid: Option<String>,
}

impl ConversationTouch {
    pub fn conversation_id(&self) -> String {
        let tail = self
            .message_id
            .split_once('_')
            .map_or(self.message_id.as_str(), |(_, t)| t);
        format!("cnv_{tail}")
    }
}

/// Filters of a conversation listing; `None` means any.
#[derive(Debug, Clone, Default)]
pub struct ConversationFilter {
    pub status: Option<String>,
    /// `Some(None)`: unassigned only; `Some(Some(id))`: assigned to `id`.
    pub assignee: Option<Option<String>>,
    pub label: Option<String>,
    pub unread: Option<bool>,
    /// Only conversations whose customer wrote after this (an open window).
    pub inbound_after: Option<DateTime<Utc>>,
    /// Continue after this `(last_message_at, id)`, newest first.
    pub before: Option<(DateTime<Utc>, String)>,
}

/// A conversation's new state, written if nobody changed it since `version`.
#[derive(Debug, Clone)]
pub struct ConversationWrite {
    pub conversation: ConversationRow,
    /// The version read before the change.
    pub expected_version: i64,
    /// Replaces the labels when set.
    pub labels: Option<Vec<String>>,
    pub audit: NewAuditEvent,
    pub events: Vec<NewCustomerEvent>,
}

#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct NoteRow {
    pub id: String,
    pub workspace_id: String,
    pub conversation_id: String,
    pub contact_id: String,
    pub author_id: Option<String>,
    /// Encrypted under the contact's content key (AAD `conversation_notes`, `body`, id).
    pub body: Vec<u8>,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

#[async_trait]
pub trait ConversationStore {
    /// A workspace's conversations, most recent activity first, at most `limit`.
    async fn list_conversations(
        &self,
        workspace_id: &str,
        filter: &ConversationFilter,
        limit: u32,
    ) -> Result<Vec<ConversationRow>>;
    /// `NotFound` unless it belongs to the workspace.
    async fn get_conversation(&self, workspace_id: &str, id: &str) -> Result<ConversationRow>;
    /// The labels of each conversation, sorted.
    async fn conversation_labels(&self, ids: &[String]) -> Result<Vec<(String, String)>>;
    /// Writes a state change with its audit and events; `Conflict` if it changed meanwhile.
    async fn write_conversation(&self, write: &ConversationWrite) -> Result<()>;
    async fn add_conversation_note(
        &self,
        note: &NoteRow,
        audit: NewAuditEvent,
        events: &[NewCustomerEvent],
    ) -> Result<()>;
    /// Notes still kept, oldest first.
    async fn conversation_notes(
        &self,
        workspace_id: &str,
        conversation_id: &str,
        now: DateTime<Utc>,
    ) -> Result<Vec<NoteRow>>;
    /// `all` or `assigned`: which conversations agents see.
    async fn conversation_visibility(&self, workspace_id: &str) -> Result<String>;
    async fn set_conversation_visibility(
        &self,
        workspace_id: &str,
        visibility: &str,
        audit: NewAuditEvent,
    ) -> Result<()>;
}

/// One conversation's share of a batch of touches.
pub(crate) struct MergedTouch<'a> {
    /// The last touch, which sets the last message and direction.
    pub latest: &'a ConversationTouch,
    /// The last inbound touch, if any.
    pub inbound: Option<&'a ConversationTouch>,
    pub inbound_count: i64,
}

/// Touches folded per conversation, ordered by channel and contact.
pub(crate) fn merge_touches(touches: &[ConversationTouch]) -> Vec<MergedTouch<'_>> {
    let mut by: std::collections::BTreeMap<(&str, &str), MergedTouch<'_>> = Default::default();
    for t in touches {
        let inbound = t.inbound_wamid.is_some();
        let e = by
            .entry((t.channel_id.as_str(), t.contact_id.as_str()))
            .or_insert(MergedTouch {
                latest: t,
                inbound: None,
                inbound_count: 0,
            });
        e.latest = t;
        if inbound {
            e.inbound = Some(t);
            e.inbound_count += 1;
        }
    }
    by.into_values().collect()
}

macro_rules! conversation_fns {
    ($conn:ty) => {
        /// Moves each touched conversation (creating it on the first message):
        /// one row per conversation (a statement may not update a row twice),
        /// with the latest message, the latest inbound one and how many inbound
        /// messages it adds to the unread count; in a fixed order, so concurrent
        /// writers on PostgreSQL lock rows alike.
        pub(crate) async fn touch_conversations(
            conn: &mut $conn,
            touches: &[$crate::conversations::ConversationTouch],
        ) -> $crate::Result<()> {
            let rows = $crate::conversations::merge_touches(touches);
            for range in $crate::bulk::chunks(rows.len()) {
                let sql = format!(
                    "INSERT INTO conversations (id, workspace_id, channel_id, contact_id, status,
                        last_message_at, last_direction, last_inbound_at, last_inbound_wamid, unread_count,
                        created_at, updated_at)
                     VALUES {}
                     ON CONFLICT (channel_id, contact_id) DO UPDATE SET
                        last_message_at = excluded.last_message_at,
                        last_direction = excluded.last_direction,
                        last_inbound_at = COALESCE(excluded.last_inbound_at, conversations.last_inbound_at),
                        last_inbound_wamid = COALESCE(excluded.last_inbound_wamid, conversations.last_inbound_wamid),
                        unread_count = conversations.unread_count + excluded.unread_count,
                        status = CASE WHEN excluded.unread_count > 0 AND conversations.status IN ('closed', 'pending')
                                      THEN 'open' ELSE conversations.status END,
                        version = conversations.version + 1,
                        updated_at = excluded.updated_at",
                    $crate::bulk::values(12, range.len())
                );
                let mut q = sqlx::query(&sql);
                for r in &rows[range] {
                    let t = r.latest;
                    q = q
                        .bind(t.conversation_id())
                        .bind(&t.workspace_id)
                        .bind(&t.channel_id)
                        .bind(&t.contact_id)
                        .bind("open")
                        .bind(t.at)
                        .bind(if t.inbound_wamid.is_some() { "inbound" } else { "outbound" })
                        .bind(r.inbound.map(|i| i.at))
                        .bind(r.inbound.and_then(|i| i.inbound_wamid.as_ref()))
                        .bind(r.inbound_count)
                        .bind(t.at)
                        .bind(t.at);
                }
                q.execute(&mut *conn).await?;
            }
            Ok(())
        }
    };
}
pub(crate) use conversation_fns;

macro_rules! conversation_store_impl {
    ($store:ty, $append_audit:path, $insert_events:path) => {
        #[async_trait::async_trait]
        impl $crate::conversations::ConversationStore for $store {
            async fn list_conversations(
                &self,
                workspace_id: &str,
                f: &$crate::conversations::ConversationFilter,
                limit: u32,
            ) -> $crate::Result<Vec<$crate::conversations::ConversationRow>> {
                let mut sql = format!(
                    "SELECT {} FROM conversations c WHERE c.workspace_id = $1",
                    $crate::conversations::COLUMNS
                );
                let mut n = 1;
                let mut next = || {
                    n += 1;
                    n
                };
                if f.status.is_some() {
                    sql.push_str(&format!(" AND c.status = ${}", next()));
                }
                match &f.assignee {
                    Some(Some(_)) => sql.push_str(&format!(" AND c.assignee_id = ${}", next())),
                    Some(None) => sql.push_str(" AND c.assignee_id IS NULL"),
                    None => {}
                }
                if f.label.is_some() {
                    sql.push_str(&format!(
                        " AND EXISTS (SELECT 1 FROM conversation_labels l WHERE l.conversation_id = c.id AND l.label = ${})",
                        next()
                    ));
                }
                match f.unread {
                    Some(true) => sql.push_str(" AND c.unread_count > 0"),
                    Some(false) => sql.push_str(" AND c.unread_count = 0"),
                    None => {}
                }
                if f.inbound_after.is_some() {
                    sql.push_str(&format!(" AND c.last_inbound_at > ${}", next()));
                }
                if f.before.is_some() {
                    let (a, b, c) = (next(), next(), next());
                    sql.push_str(&format!(
                        " AND (c.last_message_at < ${a} OR (c.last_message_at = ${b} AND c.id < ${c}))"
                    ));
                }
                let l = next();
                sql.push_str(&format!(" ORDER BY c.last_message_at DESC, c.id DESC LIMIT ${l}"));
                let mut q = sqlx::query_as(&sql).bind(workspace_id);
                if let Some(s) = &f.status {
                    q = q.bind(s);
                }
                if let Some(Some(a)) = &f.assignee {
                    q = q.bind(a);
                }
                if let Some(label) = &f.label {
                    q = q.bind(label);
                }
                if let Some(t) = f.inbound_after {
                    q = q.bind(t);
                }
                if let Some((at, id)) = &f.before {
                    q = q.bind(*at).bind(*at).bind(id);
                }
                Ok(q.bind(limit as i64).fetch_all(self.reads()).await?)
            }

            async fn get_conversation(
                &self,
                workspace_id: &str,
                id: &str,
            ) -> $crate::Result<$crate::conversations::ConversationRow> {
                let sql = format!(
                    "SELECT {} FROM conversations c WHERE c.workspace_id = $1 AND c.id = $2",
                    $crate::conversations::COLUMNS
                );
                sqlx::query_as(&sql)
                    .bind(workspace_id)
                    .bind(id)
                    .fetch_optional(self.reads())
                    .await?
                    .ok_or($crate::StoreError::NotFound("conversation"))
            }

            async fn conversation_labels(
                &self,
                ids: &[String],
            ) -> $crate::Result<Vec<(String, String)>> {
                if ids.is_empty() {
                    return Ok(Vec::new());
                }
                let sql = format!(
                    "SELECT conversation_id, label FROM conversation_labels WHERE conversation_id IN ({})
                     ORDER BY conversation_id, label",
                    $crate::placeholders(1, ids.len())
                );
                let mut q = sqlx::query_as(&sql);
                for id in ids {
                    q = q.bind(id);
                }
                Ok(q.fetch_all(self.reads()).await?)
            }

            async fn write_conversation(
                &self,
                w: &$crate::conversations::ConversationWrite,
            ) -> $crate::Result<()> {
                let c = &w.conversation;
                let mut tx = self.write_tx().await?;
                let done = sqlx::query(
                    "UPDATE conversations SET status = $3, assignee_id = $4, unread_count = $5,
                        version = version + 1, updated_at = $6
                     WHERE workspace_id = $1 AND id = $2 AND version = $7",
                )
                .bind(&c.workspace_id)
                .bind(&c.id)
                .bind(&c.status)
                .bind(&c.assignee_id)
                .bind(c.unread_count)
                .bind(c.updated_at)
                .bind(w.expected_version)
                .execute(&mut *tx)
                .await?;
                if done.rows_affected() == 0 {
                    return Err($crate::StoreError::Conflict(
                        "the conversation changed meanwhile; read it again".into(),
                    ));
                }
                if let Some(labels) = &w.labels {
                    sqlx::query("DELETE FROM conversation_labels WHERE conversation_id = $1")
                        .bind(&c.id)
                        .execute(&mut *tx)
                        .await?;
                    for label in labels {
                        sqlx::query(
                            "INSERT INTO conversation_labels (conversation_id, label) VALUES ($1, $2)",
                        )
                        .bind(&c.id)
                        .bind(label)
                        .execute(&mut *tx)
                        .await?;
                    }
                }
                $insert_events(&mut *tx, &w.events).await?;
                $append_audit(&mut *tx, w.audit.clone()).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn add_conversation_note(
                &self,
                n: &$crate::conversations::NoteRow,
                audit: waypost_core::NewAuditEvent,
                events: &[$crate::events::NewCustomerEvent],
            ) -> $crate::Result<()> {
                let mut tx = self.write_tx().await?;
                sqlx::query(
                    "INSERT INTO conversation_notes (id, workspace_id, conversation_id, contact_id, author_id,
                        body, created_at, expires_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                )
                .bind(&n.id)
                .bind(&n.workspace_id)
                .bind(&n.conversation_id)
                .bind(&n.contact_id)
                .bind(&n.author_id)
                .bind(&n.body)
                .bind(n.created_at)
                .bind(n.expires_at)
                .execute(&mut *tx)
                .await?;
                $insert_events(&mut *tx, events).await?;
                $append_audit(&mut *tx, audit).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn conversation_notes(
                &self,
                workspace_id: &str,
                conversation_id: &str,
                now: chrono::DateTime<chrono::Utc>,
            ) -> $crate::Result<Vec<$crate::conversations::NoteRow>> {
                Ok(sqlx::query_as(
                    "SELECT id, workspace_id, conversation_id, contact_id, author_id, body, created_at, expires_at
                     FROM conversation_notes
                     WHERE workspace_id = $1 AND conversation_id = $2 AND expires_at > $3
                     ORDER BY created_at, id",
                )
                .bind(workspace_id)
                .bind(conversation_id)
                .bind(now)
                .fetch_all(self.reads())
                .await?)
            }

            async fn conversation_visibility(&self, workspace_id: &str) -> $crate::Result<String> {
                sqlx::query_scalar("SELECT conversation_visibility FROM workspaces WHERE id = $1")
                    .bind(workspace_id)
                    .fetch_optional(self.reads())
                    .await?
                    .ok_or($crate::StoreError::NotFound("workspace"))
            }

            async fn set_conversation_visibility(
                &self,
                workspace_id: &str,
                visibility: &str,
                audit: waypost_core::NewAuditEvent,
            ) -> $crate::Result<()> {
                let mut tx = self.write_tx().await?;
                sqlx::query("UPDATE workspaces SET conversation_visibility = $2 WHERE id = $1")
                    .bind(workspace_id)
                    .bind(visibility)
                    .execute(&mut *tx)
                    .await?;
                $append_audit(&mut *tx, audit).await?;
                tx.commit().await?;
                Ok(())
            }
        }
    };
}
pub(crate) use conversation_store_impl;
