//! Automation storage: rules per channel, the work queue the inbound webhook
//! fills in its own transaction (claimed under a lease, deleted once handled),
//! the per-conversation automation state (cooldown, assistant turns, handoff),
//! and the assistant's settings and token usage (its knowledge base is in
//! `knowledge`). The SQL is shared by both backends.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use waypost_core::NewAuditEvent;

use crate::Result;

#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct RuleRow {
    pub id: String,
    pub workspace_id: String,
    pub channel_id: String,
    pub kind: String,
    pub name: String,
    pub priority: i64,
    pub pattern: Option<String>,
    pub is_regex: bool,
    /// JSON of `waypost_core::automation::Schedule`.
    pub schedule: Option<String>,
    /// JSON of `waypost_core::automation::RuleActions`.
    pub actions: String,
    pub enabled: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// An inbound message waiting for the rules and the assistant.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct AutomationWork {
    pub id: String,
    pub workspace_id: String,
    pub channel_id: String,
    pub contact_id: String,
    pub message_id: String,
    /// The text, sealed under the contact's content key; `None` for non-text messages.
    pub sealed: Option<Vec<u8>>,
    pub first_contact: bool,
    pub sent_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    pub attempts: i64,
}

/// A conversation's automation state.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct ConversationAutomation {
    pub id: String,
    pub assignee_id: Option<String>,
    pub automation_replied_at: Option<DateTime<Utc>>,
    pub assistant_turns: i64,
    pub assistant_paused: bool,
}

#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct AssistantSettingsRow {
    pub workspace_id: String,
    pub enabled: bool,
    pub base_url: String,
    pub model: String,
    /// Sealed under the key ring (AAD `assistant_settings`, `api_key`, workspace id).
    pub api_key: Option<Vec<u8>>,
    /// `max_tokens` or `max_completion_tokens`.
    pub token_field: String,
    pub max_reply_tokens: i64,
    pub monthly_token_budget: i64,
    pub turn_cap: i64,
    pub timeout_ms: i64,
    pub max_retries: i64,
    pub fallback_message: String,
    /// The member a handed-off conversation is assigned to; `None` unassigns it.
    pub handoff_assignee: Option<String>,
    /// JSON array of the channel ids the assistant answers on.
    pub channels: String,
    pub usage_month: String,
    pub tokens_used: i64,
    pub updated_at: DateTime<Utc>,
}

#[async_trait]
pub trait AutomationStore {
    async fn create_rule(&self, rule: &RuleRow, audit: NewAuditEvent) -> Result<()>;
    async fn list_rules(&self, workspace_id: &str) -> Result<Vec<RuleRow>>;
    /// The enabled rules of a channel.
    async fn channel_rules(&self, channel_id: &str) -> Result<Vec<RuleRow>>;
    async fn delete_rule(&self, workspace_id: &str, id: &str, audit: NewAuditEvent) -> Result<()>;

    /// Leases up to `limit` work items not leased by anyone, oldest first.
    async fn claim_automation_work(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<AutomationWork>>;
    /// Deletes handled items (and with them the sealed texts).
    async fn finish_automation_work(&self, ids: &[String]) -> Result<()>;
    /// Counts a failed attempt; the item is tried again once `retry_at` passes.
    async fn retry_automation_work(&self, id: &str, retry_at: DateTime<Utc>) -> Result<()>;
    async fn automation_work_count(&self, workspace_id: &str) -> Result<i64>;

    async fn conversation_automation(
        &self,
        channel_id: &str,
        contact_id: &str,
    ) -> Result<Option<ConversationAutomation>>;
    /// Takes the conversation's automated-reply slot if nothing answered since
    /// `cooldown_start`; false when another reply holds it (no loops, no repeats).
    async fn take_reply_slot(
        &self,
        conversation_id: &str,
        now: DateTime<Utc>,
        cooldown_start: DateTime<Utc>,
    ) -> Result<bool>;
    /// A rule's tag and assignment, audited.
    async fn apply_rule_actions(
        &self,
        conversation_id: &str,
        tag: Option<&str>,
        assign_to: Option<&str>,
        now: DateTime<Utc>,
        audit: NewAuditEvent,
    ) -> Result<()>;
    /// Counts one assistant answer; returns the conversation's turns so far.
    async fn count_assistant_turn(&self, conversation_id: &str) -> Result<i64>;
    /// The assistant goes quiet in the conversation, which is assigned to
    /// `assignee` (or unassigned), audited.
    async fn hand_off_conversation(
        &self,
        conversation_id: &str,
        assignee: Option<&str>,
        now: DateTime<Utc>,
        audit: NewAuditEvent,
    ) -> Result<()>;
    /// An agent hands the conversation back: the assistant may answer again.
    async fn resume_assistant(
        &self,
        workspace_id: &str,
        conversation_id: &str,
        now: DateTime<Utc>,
        audit: NewAuditEvent,
    ) -> Result<()>;

    async fn assistant_settings(&self, workspace_id: &str) -> Result<Option<AssistantSettingsRow>>;
    /// Creates or replaces the settings, keeping the month's usage.
    async fn put_assistant_settings(
        &self,
        row: &AssistantSettingsRow,
        audit: NewAuditEvent,
    ) -> Result<()>;
    /// Adds `tokens` to `month`'s usage (starting over in a new month) and to the
    /// day's usage counters of the channel; returns the month's total.
    async fn charge_assistant_tokens(
        &self,
        workspace_id: &str,
        channel_id: &str,
        month: &str,
        tokens: i64,
        at: DateTime<Utc>,
    ) -> Result<i64>;
    /// Records an event of the assistant (no content), in its own transaction.
    async fn record_assistant_audit(&self, audit: NewAuditEvent) -> Result<()>;
}

/// Inserts inbound messages' work items inside the webhooks' transaction,
/// multi-row; `?` returns the error from the enclosing function.
macro_rules! insert_automation_works {
    ($conn:expr, $work:expr) => {
        for range in $crate::bulk::chunks($work.len()) {
            let sql = format!(
                "INSERT INTO automation_work (id, workspace_id, channel_id, contact_id, message_id, sealed,
                    first_contact, sent_at, created_at)
                 VALUES {}",
                $crate::bulk::values(9, range.len())
            );
            let mut q = sqlx::query(&sql);
            for w in &$work[range] {
                q = q
                    .bind(&w.id)
                    .bind(&w.workspace_id)
                    .bind(&w.channel_id)
                    .bind(&w.contact_id)
                    .bind(&w.message_id)
                    .bind(&w.sealed)
                    .bind(w.first_contact)
                    .bind(w.sent_at)
                    .bind(w.created_at);
            }
            q.execute($conn).await?;
        }
    };
}
pub(crate) use insert_automation_works;

/// Implements [`AutomationStore`] for a backend, given its `append_audit` and
/// the row-lock clause for claims.
macro_rules! automation_store_impl {
    ($store:ty, $append:path, $claim_lock:literal) => {
        #[async_trait::async_trait]
        impl $crate::automation::AutomationStore for $store {
            async fn create_rule(
                &self,
                r: &$crate::automation::RuleRow,
                audit: waypost_core::NewAuditEvent,
            ) -> $crate::Result<()> {
                let mut tx = self.write_tx().await?;
                sqlx::query(
                    "INSERT INTO automation_rules (id, workspace_id, channel_id, kind, name, priority, pattern,
                        is_regex, schedule, actions, enabled, created_at, updated_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
                )
                .bind(&r.id)
                .bind(&r.workspace_id)
                .bind(&r.channel_id)
                .bind(&r.kind)
                .bind(&r.name)
                .bind(r.priority)
                .bind(&r.pattern)
                .bind(r.is_regex)
                .bind(&r.schedule)
                .bind(&r.actions)
                .bind(r.enabled)
                .bind(r.created_at)
                .bind(r.updated_at)
                .execute(&mut *tx)
                .await?;
                $append(&mut tx, audit).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn list_rules(&self, workspace_id: &str) -> $crate::Result<Vec<$crate::automation::RuleRow>> {
                Ok(sqlx::query_as(
                    "SELECT * FROM automation_rules WHERE workspace_id = $1
                     ORDER BY channel_id, priority DESC, created_at LIMIT 1000",
                )
                .bind(workspace_id)
                .fetch_all(self.reads())
                .await?)
            }

            async fn channel_rules(&self, channel_id: &str) -> $crate::Result<Vec<$crate::automation::RuleRow>> {
                Ok(sqlx::query_as(
                    "SELECT * FROM automation_rules WHERE channel_id = $1 AND enabled
                     ORDER BY priority DESC, created_at LIMIT 1000",
                )
                .bind(channel_id)
                .fetch_all(self.reads())
                .await?)
            }

            async fn delete_rule(
                &self,
                workspace_id: &str,
                id: &str,
                audit: waypost_core::NewAuditEvent,
            ) -> $crate::Result<()> {
                let mut tx = self.write_tx().await?;
                let done = sqlx::query("DELETE FROM automation_rules WHERE workspace_id = $1 AND id = $2")
                    .bind(workspace_id)
                    .bind(id)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                if done == 0 {
                    return Err($crate::StoreError::NotFound("automation rule"));
                }
                $append(&mut tx, audit).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn claim_automation_work(
                &self,
                now: chrono::DateTime<chrono::Utc>,
                lease_until: chrono::DateTime<chrono::Utc>,
                limit: u32,
            ) -> $crate::Result<Vec<$crate::automation::AutomationWork>> {
                let mut tx = self.write_tx().await?;
                let rows = sqlx::query_as(concat!(
                    "UPDATE automation_work SET lease_until = $2
                     WHERE id IN (SELECT id FROM automation_work
                                  WHERE lease_until IS NULL OR lease_until <= $1
                                  ORDER BY created_at LIMIT $3 ",
                    $claim_lock,
                    ")
                     RETURNING id, workspace_id, channel_id, contact_id, message_id, sealed, first_contact,
                        sent_at, created_at, attempts"
                ))
                .bind(now)
                .bind(lease_until)
                .bind(limit as i64)
                .fetch_all(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(rows)
            }

            async fn finish_automation_work(&self, ids: &[String]) -> $crate::Result<()> {
                for range in $crate::bulk::chunks(ids.len()) {
                    let list = $crate::placeholders(1, range.len());
                    let sql = format!("DELETE FROM automation_work WHERE id IN ({list})");
                    let mut q = sqlx::query(&sql);
                    for id in &ids[range] {
                        q = q.bind(id);
                    }
                    q.execute(self.writes()).await?;
                }
                Ok(())
            }

            async fn retry_automation_work(
                &self,
                id: &str,
                retry_at: chrono::DateTime<chrono::Utc>,
            ) -> $crate::Result<()> {
                sqlx::query("UPDATE automation_work SET attempts = attempts + 1, lease_until = $2 WHERE id = $1")
                    .bind(id)
                    .bind(retry_at)
                    .execute(self.writes())
                    .await?;
                Ok(())
            }

            async fn automation_work_count(&self, workspace_id: &str) -> $crate::Result<i64> {
                Ok(sqlx::query_scalar("SELECT count(*) FROM automation_work WHERE workspace_id = $1")
                    .bind(workspace_id)
                    .fetch_one(self.reads())
                    .await?)
            }

            async fn conversation_automation(
                &self,
                channel_id: &str,
                contact_id: &str,
            ) -> $crate::Result<Option<$crate::automation::ConversationAutomation>> {
                // The writer: the webhook that created the conversation has just committed.
                Ok(sqlx::query_as(
                    "SELECT id, assignee_id, automation_replied_at, assistant_turns, assistant_paused
                     FROM conversations WHERE channel_id = $1 AND contact_id = $2",
                )
                .bind(channel_id)
                .bind(contact_id)
                .fetch_optional(self.writes())
                .await?)
            }

            async fn take_reply_slot(
                &self,
                conversation_id: &str,
                now: chrono::DateTime<chrono::Utc>,
                cooldown_start: chrono::DateTime<chrono::Utc>,
            ) -> $crate::Result<bool> {
                let done = sqlx::query(
                    "UPDATE conversations SET automation_replied_at = $2
                     WHERE id = $1 AND (automation_replied_at IS NULL OR automation_replied_at <= $3)",
                )
                .bind(conversation_id)
                .bind(now)
                .bind(cooldown_start)
                .execute(self.writes())
                .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn apply_rule_actions(
                &self,
                conversation_id: &str,
                tag: Option<&str>,
                assign_to: Option<&str>,
                now: chrono::DateTime<chrono::Utc>,
                audit: waypost_core::NewAuditEvent,
            ) -> $crate::Result<()> {
                let mut tx = self.write_tx().await?;
                if let Some(tag) = tag {
                    sqlx::query(
                        "INSERT INTO conversation_labels (conversation_id, label) VALUES ($1, $2)
                         ON CONFLICT DO NOTHING",
                    )
                    .bind(conversation_id)
                    .bind(tag)
                    .execute(&mut *tx)
                    .await?;
                }
                if let Some(user) = assign_to {
                    sqlx::query(
                        "UPDATE conversations SET assignee_id = $2, version = version + 1, updated_at = $3
                         WHERE id = $1",
                    )
                    .bind(conversation_id)
                    .bind(user)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                }
                $append(&mut tx, audit).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn count_assistant_turn(&self, conversation_id: &str) -> $crate::Result<i64> {
                Ok(sqlx::query_scalar(
                    "UPDATE conversations SET assistant_turns = assistant_turns + 1 WHERE id = $1
                     RETURNING assistant_turns",
                )
                .bind(conversation_id)
                .fetch_one(self.writes())
                .await?)
            }

            async fn hand_off_conversation(
                &self,
                conversation_id: &str,
                assignee: Option<&str>,
                now: chrono::DateTime<chrono::Utc>,
                audit: waypost_core::NewAuditEvent,
            ) -> $crate::Result<()> {
                let mut tx = self.write_tx().await?;
                sqlx::query(
                    "UPDATE conversations SET assistant_paused = TRUE, assignee_id = $2,
                        version = version + 1, updated_at = $3
                     WHERE id = $1",
                )
                .bind(conversation_id)
                .bind(assignee)
                .bind(now)
                .execute(&mut *tx)
                .await?;
                $append(&mut tx, audit).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn resume_assistant(
                &self,
                workspace_id: &str,
                conversation_id: &str,
                now: chrono::DateTime<chrono::Utc>,
                audit: waypost_core::NewAuditEvent,
            ) -> $crate::Result<()> {
                let mut tx = self.write_tx().await?;
                let done = sqlx::query(
                    "UPDATE conversations SET assistant_paused = FALSE, assistant_turns = 0, assignee_id = NULL,
                        version = version + 1, updated_at = $3
                     WHERE workspace_id = $1 AND id = $2",
                )
                .bind(workspace_id)
                .bind(conversation_id)
                .bind(now)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if done == 0 {
                    return Err($crate::StoreError::NotFound("conversation"));
                }
                $append(&mut tx, audit).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn assistant_settings(
                &self,
                workspace_id: &str,
            ) -> $crate::Result<Option<$crate::automation::AssistantSettingsRow>> {
                Ok(sqlx::query_as("SELECT * FROM assistant_settings WHERE workspace_id = $1")
                    .bind(workspace_id)
                    .fetch_optional(self.reads())
                    .await?)
            }

            async fn put_assistant_settings(
                &self,
                s: &$crate::automation::AssistantSettingsRow,
                audit: waypost_core::NewAuditEvent,
            ) -> $crate::Result<()> {
                let mut tx = self.write_tx().await?;
                sqlx::query(
                    "INSERT INTO assistant_settings (workspace_id, enabled, base_url, model, api_key, token_field,
                        max_reply_tokens, monthly_token_budget, turn_cap, timeout_ms, max_retries, fallback_message,
                        handoff_assignee, channels, updated_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)
                     ON CONFLICT (workspace_id) DO UPDATE SET enabled = $2, base_url = $3, model = $4,
                        api_key = $5, token_field = $6, max_reply_tokens = $7, monthly_token_budget = $8,
                        turn_cap = $9, timeout_ms = $10, max_retries = $11, fallback_message = $12,
                        handoff_assignee = $13, channels = $14, updated_at = $15",
                )
                .bind(&s.workspace_id)
                .bind(s.enabled)
                .bind(&s.base_url)
                .bind(&s.model)
                .bind(&s.api_key)
                .bind(&s.token_field)
                .bind(s.max_reply_tokens)
                .bind(s.monthly_token_budget)
                .bind(s.turn_cap)
                .bind(s.timeout_ms)
                .bind(s.max_retries)
                .bind(&s.fallback_message)
                .bind(&s.handoff_assignee)
                .bind(&s.channels)
                .bind(s.updated_at)
                .execute(&mut *tx)
                .await?;
                $append(&mut tx, audit).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn charge_assistant_tokens(
                &self,
                workspace_id: &str,
                channel_id: &str,
                month: &str,
                tokens: i64,
                at: chrono::DateTime<chrono::Utc>,
            ) -> $crate::Result<i64> {
                let mut tx = self.write_tx().await?;
                let total = sqlx::query_scalar(
                    "UPDATE assistant_settings SET
                        tokens_used = CASE WHEN usage_month = $2 THEN tokens_used + $3 ELSE $3 END,
                        usage_month = $2
                     WHERE workspace_id = $1 RETURNING tokens_used",
                )
                .bind(workspace_id)
                .bind(month)
                .bind(tokens)
                .fetch_one(&mut *tx)
                .await?;
                let mut usage = $crate::usage::UsageBatch::default();
                usage.add(workspace_id, channel_id, at, waypost_core::usage::ASSISTANT_TOKENS, tokens);
                write_usage(&mut *tx, &usage).await?;
                tx.commit().await?;
                Ok(total)
            }

            async fn record_assistant_audit(&self, audit: waypost_core::NewAuditEvent) -> $crate::Result<()> {
                let mut tx = self.write_tx().await?;
                $append(&mut tx, audit).await?;
                tx.commit().await?;
                Ok(())
            }

        }
    };
}
pub(crate) use automation_store_impl;
