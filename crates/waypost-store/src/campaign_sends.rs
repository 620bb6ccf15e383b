//! Campaigns that send: the recipients a start materialises, the lease the
//! sender holds while it feeds them to the outbox, and state changes with
//! their audit events (outcomes and tiers: [`crate::campaign_reports`]).
//!
//! The SQL is written once with `$n` placeholders and instantiated for both
//! backends by `campaign_send_store_impl!`.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use waypost_core::NewAuditEvent;

use crate::Result;
use crate::campaigns::CampaignRow;
use crate::events::NewCustomerEvent;

/// One recipient as a start writes it.
#[derive(Debug, Clone, PartialEq)]
pub struct NewCampaignRecipient {
    pub seq: i64,
    pub contact_id: String,
    /// `pending`, or `skipped` with `skip_reason`.
    pub state: &'static str,
    pub skip_reason: Option<&'static str>,
}

/// A pending recipient due now.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct DueRecipient {
    pub seq: i64,
    pub contact_id: String,
}

/// What the sender learnt about one recipient.
#[derive(Debug, Clone, PartialEq)]
pub enum RecipientUpdate {
    Queued {
        seq: i64,
        message_id: String,
    },
    Skipped {
        seq: i64,
        reason: &'static str,
        detail: Option<String>,
    },
    /// Outside the allowed hours: not before this time.
    Deferred {
        seq: i64,
        due_at: DateTime<Utc>,
    },
}

/// A change of a campaign's status, made only from one of `from`.
#[derive(Debug, Clone)]
pub struct CampaignTransition {
    pub workspace_id: String,
    pub id: String,
    pub from: Vec<&'static str>,
    pub to: &'static str,
    pub pause_reason: Option<&'static str>,
    /// Set by a start.
    pub start: Option<CampaignStartFields>,
    /// A cancel also cancels every pending recipient.
    pub cancel_pending: bool,
    pub now: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct CampaignStartFields {
    pub send_window: Option<String>,
    pub start_at: Option<DateTime<Utc>>,
    pub confirmed_recipients: i64,
}

#[async_trait]
pub trait CampaignSendStore {
    /// Drops the recipients a start left behind (it crashed before it finished).
    async fn reset_campaign_recipients(&self, campaign_id: &str) -> Result<()>;
    /// Writes recipients; rows already there are kept.
    async fn insert_campaign_recipients(
        &self,
        campaign_id: &str,
        rows: &[NewCampaignRecipient],
    ) -> Result<()>;
    /// Moves the campaign if its status is one of `t.from`, with its audit
    /// event and customer events; `false` (nothing written) otherwise.
    async fn transition_campaign(
        &self,
        t: &CampaignTransition,
        audit: Option<NewAuditEvent>,
        events: &[NewCustomerEvent],
    ) -> Result<bool>;
    /// Campaigns the sender should feed (scheduled or running), any workspace.
    async fn sending_campaigns(&self, limit: u32) -> Result<Vec<CampaignRow>>;
    /// Takes or renews the campaign's lease for `owner`; `false` while another holds it.
    async fn lease_campaign(
        &self,
        id: &str,
        owner: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<bool>;
    /// Gives the lease up (a node stopping), so another node or the next start need not wait it out.
    async fn release_campaign_lease(&self, id: &str, owner: &str) -> Result<()>;
    /// Pending recipients due at `now`, in order.
    async fn due_campaign_recipients(
        &self,
        campaign_id: &str,
        now: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<DueRecipient>>;
    /// Pending recipients, due or not.
    async fn pending_campaign_recipients(&self, campaign_id: &str) -> Result<i64>;
    /// The campaign's messages still in the outbox, and how many of them the
    /// provider throttled (130429) on their last attempt.
    async fn campaign_outbox(&self, campaign_id: &str, channel_id: &str) -> Result<(i64, i64)>;
    /// Makes the dispatcher give up (as at a passed deadline, with `title`)
    /// the campaign's messages still waiting in the outbox, not yet claimed,
    /// whose contact has opted out of the category since; returns how many.
    async fn withdraw_opted_out(
        &self,
        campaign_id: &str,
        channel_id: &str,
        consent_column: &'static str,
        title: &str,
        now: DateTime<Utc>,
    ) -> Result<u64>;
    /// Records what the sender did, in one transaction. A row leaves `pending`
    /// only once; `Queued` also applies to a row cancelled meanwhile (the
    /// message exists, so the row says so).
    async fn update_campaign_recipients(
        &self,
        campaign_id: &str,
        updates: &[RecipientUpdate],
        now: DateTime<Utc>,
    ) -> Result<()>;
}

macro_rules! campaign_send_store_impl {
    ($store:ty, $append_audit:path, $insert_events:path) => {
        #[async_trait::async_trait]
        impl $crate::campaign_sends::CampaignSendStore for $store {
            async fn reset_campaign_recipients(&self, campaign_id: &str) -> $crate::Result<()> {
                sqlx::query("DELETE FROM campaign_recipients WHERE campaign_id = $1")
                    .bind(campaign_id)
                    .execute(self.writes())
                    .await?;
                Ok(())
            }

            async fn insert_campaign_recipients(
                &self,
                campaign_id: &str,
                rows: &[$crate::campaign_sends::NewCampaignRecipient],
            ) -> $crate::Result<()> {
                let mut tx = self.write_tx().await?;
                for range in $crate::bulk::chunks(rows.len()) {
                    let sql = format!(
                        "INSERT INTO campaign_recipients (campaign_id, seq, contact_id, state, skip_reason)
                         VALUES {} ON CONFLICT DO NOTHING",
                        $crate::bulk::values(5, range.len())
                    );
                    let mut q = sqlx::query(&sql);
                    for r in &rows[range] {
                        q = q
                            .bind(campaign_id)
                            .bind(r.seq)
                            .bind(&r.contact_id)
                            .bind(r.state)
                            .bind(r.skip_reason);
                    }
                    q.execute(&mut *tx).await?;
                }
                tx.commit().await?;
                Ok(())
            }

            async fn transition_campaign(
                &self,
                t: &$crate::campaign_sends::CampaignTransition,
                audit: Option<waypost_core::NewAuditEvent>,
                events: &[$crate::events::NewCustomerEvent],
            ) -> $crate::Result<bool> {
                let mut tx = self.write_tx().await?;
                // The statuses it may move from take the placeholders after the ten fixed ones.
                let from: Vec<String> = (0..t.from.len()).map(|i| format!("${}", i + 11)).collect();
                let finished = matches!(t.to, "completed" | "cancelled");
                let sql = format!(
                    "UPDATE campaigns SET status = $3, updated_at = $4, pause_reason = $5,
                        finished_at = CASE WHEN $6 THEN $4 ELSE finished_at END,
                        started_at = CASE WHEN $7 THEN $4 ELSE started_at END,
                        send_window = CASE WHEN $7 THEN $8 ELSE send_window END,
                        start_at = CASE WHEN $7 THEN $9 ELSE start_at END,
                        confirmed_recipients = CASE WHEN $7 THEN $10 ELSE confirmed_recipients END,
                        lease_owner = NULL, lease_until = NULL
                     WHERE workspace_id = $1 AND id = $2 AND status IN ({})",
                    from.join(", ")
                );
                let start = t.start.as_ref();
                let mut q = sqlx::query(&sql)
                    .bind(&t.workspace_id)
                    .bind(&t.id)
                    .bind(t.to)
                    .bind(t.now)
                    .bind(t.pause_reason)
                    .bind(finished)
                    .bind(start.is_some())
                    .bind(start.and_then(|s| s.send_window.clone()))
                    .bind(start.and_then(|s| s.start_at))
                    .bind(start.map(|s| s.confirmed_recipients));
                for f in &t.from {
                    q = q.bind(*f);
                }
                let moved = q.execute(&mut *tx).await?.rows_affected() > 0;
                if !moved {
                    return Ok(false);
                }
                if t.cancel_pending {
                    sqlx::query(
                        "UPDATE campaign_recipients SET state = 'cancelled'
                         WHERE campaign_id = $1 AND state = 'pending'",
                    )
                    .bind(&t.id)
                    .execute(&mut *tx)
                    .await?;
                }
                if let Some(audit) = audit {
                    $append_audit(&mut *tx, audit).await?;
                }
                $insert_events(&mut *tx, events).await?;
                tx.commit().await?;
                Ok(true)
            }

            async fn sending_campaigns(
                &self,
                limit: u32,
            ) -> $crate::Result<Vec<$crate::campaigns::CampaignRow>> {
                Ok(sqlx::query_as(&format!(
                    "SELECT {} FROM campaigns WHERE status IN ('scheduled', 'running') ORDER BY id LIMIT $1",
                    $crate::campaigns::CAMPAIGN_COLUMNS
                ))
                .bind(limit as i64)
                .fetch_all(self.reads())
                .await?)
            }

            async fn lease_campaign(
                &self,
                id: &str,
                owner: &str,
                now: chrono::DateTime<chrono::Utc>,
                until: chrono::DateTime<chrono::Utc>,
            ) -> $crate::Result<bool> {
                let done = sqlx::query(
                    "UPDATE campaigns SET lease_owner = $2, lease_until = $4
                     WHERE id = $1 AND status IN ('scheduled', 'running')
                       AND (lease_owner IS NULL OR lease_owner = $2 OR lease_until < $3)",
                )
                .bind(id)
                .bind(owner)
                .bind(now)
                .bind(until)
                .execute(self.writes())
                .await?;
                Ok(done.rows_affected() > 0)
            }

            async fn release_campaign_lease(&self, id: &str, owner: &str) -> $crate::Result<()> {
                sqlx::query(
                    "UPDATE campaigns SET lease_owner = NULL, lease_until = NULL
                     WHERE id = $1 AND lease_owner = $2",
                )
                .bind(id)
                .bind(owner)
                .execute(self.writes())
                .await?;
                Ok(())
            }

            async fn due_campaign_recipients(
                &self,
                campaign_id: &str,
                now: chrono::DateTime<chrono::Utc>,
                limit: u32,
            ) -> $crate::Result<Vec<$crate::campaign_sends::DueRecipient>> {
                Ok(sqlx::query_as(
                    "SELECT seq, contact_id FROM campaign_recipients
                     WHERE campaign_id = $1 AND state = 'pending' AND (due_at IS NULL OR due_at <= $2)
                     ORDER BY seq LIMIT $3",
                )
                .bind(campaign_id)
                .bind(now)
                .bind(limit as i64)
                .fetch_all(self.reads())
                .await?)
            }

            async fn pending_campaign_recipients(&self, campaign_id: &str) -> $crate::Result<i64> {
                Ok(sqlx::query_scalar(
                    "SELECT COUNT(*) FROM campaign_recipients WHERE campaign_id = $1 AND state = 'pending'",
                )
                .bind(campaign_id)
                .fetch_one(self.reads())
                .await?)
            }

            async fn campaign_outbox(
                &self,
                campaign_id: &str,
                channel_id: &str,
            ) -> $crate::Result<(i64, i64)> {
                Ok(sqlx::query_as(
                    "SELECT COUNT(*), CAST(COALESCE(SUM(CASE WHEN o.last_error_code = 130429 THEN 1 ELSE 0 END), 0) AS BIGINT)
                     FROM outbox o JOIN campaign_recipients r ON r.message_id = o.message_id
                     WHERE o.channel_id = $2 AND r.campaign_id = $1",
                )
                .bind(campaign_id)
                .bind(channel_id)
                .fetch_one(self.reads())
                .await?)
            }

            async fn withdraw_opted_out(
                &self,
                campaign_id: &str,
                channel_id: &str,
                consent_column: &'static str,
                title: &str,
                now: chrono::DateTime<chrono::Utc>,
            ) -> $crate::Result<u64> {
                let sql = format!(
                    "UPDATE outbox SET deadline_at = $3, last_error_title = $4, last_error_code = NULL
                     WHERE channel_id = $2 AND attempt_started_at IS NULL
                       AND (lease_until IS NULL OR lease_until < $3) AND deadline_at > $3
                       AND message_id IN (
                         SELECT r.message_id FROM outbox o
                         JOIN campaign_recipients r ON r.message_id = o.message_id
                         JOIN contacts c ON c.id = r.contact_id
                         WHERE o.channel_id = $2 AND r.campaign_id = $1 AND c.{consent_column} = 'opted_out')"
                );
                Ok(sqlx::query(&sql)
                    .bind(campaign_id)
                    .bind(channel_id)
                    .bind(now)
                    .bind(title)
                    .execute(self.writes())
                    .await?
                    .rows_affected())
            }

            async fn update_campaign_recipients(
                &self,
                campaign_id: &str,
                updates: &[$crate::campaign_sends::RecipientUpdate],
                now: chrono::DateTime<chrono::Utc>,
            ) -> $crate::Result<()> {
                use $crate::campaign_sends::RecipientUpdate as U;
                let mut tx = self.write_tx().await?;
                for u in updates {
                    match u {
                        U::Queued { seq, message_id } => sqlx::query(
                            "UPDATE campaign_recipients SET state = 'queued', message_id = $3, queued_at = $4
                             WHERE campaign_id = $1 AND seq = $2 AND state IN ('pending', 'cancelled')",
                        )
                        .bind(campaign_id)
                        .bind(seq)
                        .bind(message_id)
                        .bind(now),
                        U::Skipped { seq, reason, detail } => sqlx::query(
                            "UPDATE campaign_recipients SET state = 'skipped', skip_reason = $3, skip_detail = $4
                             WHERE campaign_id = $1 AND seq = $2 AND state = 'pending'",
                        )
                        .bind(campaign_id)
                        .bind(seq)
                        .bind(*reason)
                        .bind(detail.clone()),
                        U::Deferred { seq, due_at } => sqlx::query(
                            "UPDATE campaign_recipients SET due_at = $3
                             WHERE campaign_id = $1 AND seq = $2 AND state = 'pending'",
                        )
                        .bind(campaign_id)
                        .bind(seq)
                        .bind(*due_at),
                    }
                    .execute(&mut *tx)
                    .await?;
                }
                tx.commit().await?;
                Ok(())
            }

        }
    };
}
pub(crate) use campaign_send_store_impl;
