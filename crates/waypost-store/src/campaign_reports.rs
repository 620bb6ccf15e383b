//! What campaigns report and keep to: each recipient's outcome (read from
//! the message it was sent, the contact's replies and consent), and each
//! number's messaging tier with the count it limits.
//!
//! Instantiated for both backends by `campaign_report_store_impl!`.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use waypost_core::NewAuditEvent;

use crate::Result;

/// How many recipients share one outcome (the parts the outcome is made of).
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct OutcomeCount {
    pub state: String,
    pub skip_reason: Option<String>,
    pub message_status: Option<String>,
    pub error_code: Option<i64>,
    /// 1 when the contact wrote after the message was queued.
    pub replied: i64,
    /// 1 when the contact is now opted out of the campaign's category.
    pub opted_out: i64,
    pub n: i64,
}

/// One recipient with what became of it, for the export.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct RecipientOutcomeRow {
    pub seq: i64,
    pub contact_id: String,
    pub state: String,
    pub skip_reason: Option<String>,
    pub skip_detail: Option<String>,
    pub message_id: Option<String>,
    pub message_status: Option<String>,
    pub error_code: Option<i64>,
    pub queued_at: Option<DateTime<Utc>>,
    pub replied: i64,
    pub opted_out: i64,
}

/// How many recipients of one campaign are in one state (`pending`,
/// `queued`, `skipped`, `cancelled`), for a list of campaigns.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct CampaignStateCount {
    pub campaign_id: String,
    pub state: String,
    pub n: i64,
}

/// The contact column holding consent for a template category (a fixed set,
/// never caller text in SQL).
pub fn consent_column(category: &str) -> &'static str {
    match category {
        "utility" => "consent_utility",
        "authentication" => "consent_authentication",
        _ => "consent_marketing",
    }
}

#[async_trait]
pub trait CampaignReportStore {
    /// Recipients grouped by outcome.
    async fn campaign_outcome_counts(
        &self,
        campaign_id: &str,
        consent_column: &'static str,
    ) -> Result<Vec<OutcomeCount>>;
    /// Recipients after `after_seq` with their outcome, in order.
    async fn campaign_outcomes(
        &self,
        campaign_id: &str,
        consent_column: &'static str,
        after_seq: i64,
        limit: u32,
    ) -> Result<Vec<RecipientOutcomeRow>>;
    /// Recipients by state of each campaign on one page of
    /// `CampaignStore::list_campaigns` (the same workspace, cursor and limit).
    async fn campaign_state_counts(
        &self,
        workspace_id: &str,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<CampaignStateCount>>;
    /// Distinct contacts the number sent to since `since` (Meta's tier counts these).
    async fn unique_outbound_contacts(&self, channel_id: &str, since: DateTime<Utc>)
    -> Result<i64>;
    /// The number's messaging tier, if one was set.
    async fn messaging_tier(&self, channel_id: &str) -> Result<Option<String>>;
    /// The number's quality rating as last reported, if ever.
    async fn channel_quality(&self, channel_id: &str) -> Result<Option<String>>;
    async fn set_channel_quality(
        &self,
        workspace_id: &str,
        channel_id: &str,
        rating: &str,
        now: DateTime<Utc>,
        audit: NewAuditEvent,
    ) -> Result<()>;
    async fn set_messaging_tier(
        &self,
        workspace_id: &str,
        channel_id: &str,
        tier: &str,
        now: DateTime<Utc>,
        audit: NewAuditEvent,
    ) -> Result<()>;
}

/// The outcome columns shared by the counts and the export.
pub(crate) fn outcome_select(consent_column: &'static str) -> String {
    format!(
        "r.state, r.skip_reason, m.status AS message_status, m.error_code, \
         CAST(CASE WHEN r.queued_at IS NOT NULL AND c.last_inbound_at > r.queued_at THEN 1 ELSE 0 END AS BIGINT) AS replied, \
         CAST(CASE WHEN c.{consent_column} = 'opted_out' THEN 1 ELSE 0 END AS BIGINT) AS opted_out"
    )
}

pub(crate) const OUTCOME_FROM: &str = "FROM campaign_recipients r \
     JOIN contacts c ON c.id = r.contact_id \
     LEFT JOIN messages m ON m.id = r.message_id";

macro_rules! campaign_report_store_impl {
    ($store:ty, $append_audit:path) => {
        #[async_trait::async_trait]
        impl $crate::campaign_reports::CampaignReportStore for $store {
            async fn campaign_outcome_counts(
                &self,
                campaign_id: &str,
                consent_column: &'static str,
            ) -> $crate::Result<Vec<$crate::campaign_reports::OutcomeCount>> {
                let sql = format!(
                    "SELECT state, skip_reason, message_status, error_code, replied, opted_out, COUNT(*) AS n
                     FROM (SELECT {} {} WHERE r.campaign_id = $1) o
                     GROUP BY state, skip_reason, message_status, error_code, replied, opted_out",
                    $crate::campaign_reports::outcome_select(consent_column),
                    $crate::campaign_reports::OUTCOME_FROM
                );
                Ok(sqlx::query_as(&sql)
                    .bind(campaign_id)
                    .fetch_all(self.reads())
                    .await?)
            }

            async fn campaign_outcomes(
                &self,
                campaign_id: &str,
                consent_column: &'static str,
                after_seq: i64,
                limit: u32,
            ) -> $crate::Result<Vec<$crate::campaign_reports::RecipientOutcomeRow>> {
                let sql = format!(
                    "SELECT r.seq, r.contact_id, r.skip_detail, r.message_id, r.queued_at, {} {}
                     WHERE r.campaign_id = $1 AND r.seq > $2 ORDER BY r.seq LIMIT $3",
                    $crate::campaign_reports::outcome_select(consent_column),
                    $crate::campaign_reports::OUTCOME_FROM
                );
                Ok(sqlx::query_as(&sql)
                    .bind(campaign_id)
                    .bind(after_seq)
                    .bind(limit as i64)
                    .fetch_all(self.reads())
                    .await?)
            }

            async fn campaign_state_counts(
                &self,
                workspace_id: &str,
                after: Option<&str>,
                limit: u32,
            ) -> $crate::Result<Vec<$crate::campaign_reports::CampaignStateCount>> {
                Ok(sqlx::query_as(
                    "SELECT r.campaign_id, r.state, COUNT(*) AS n FROM campaign_recipients r
                     WHERE r.campaign_id IN (SELECT id FROM campaigns
                         WHERE workspace_id = $1 AND id > $2 ORDER BY id LIMIT $3)
                     GROUP BY r.campaign_id, r.state",
                )
                .bind(workspace_id)
                .bind(after.unwrap_or(""))
                .bind(limit as i64)
                .fetch_all(self.reads())
                .await?)
            }

            async fn unique_outbound_contacts(
                &self,
                channel_id: &str,
                since: chrono::DateTime<chrono::Utc>,
            ) -> $crate::Result<i64> {
                Ok(sqlx::query_scalar(
                    "SELECT COUNT(DISTINCT contact_id) FROM messages
                     WHERE channel_id = $1 AND direction = 'outbound' AND created_at > $2",
                )
                .bind(channel_id)
                .bind(since)
                .fetch_one(self.reads())
                .await?)
            }

            async fn messaging_tier(&self, channel_id: &str) -> $crate::Result<Option<String>> {
                Ok(sqlx::query_scalar(
                    "SELECT tier FROM channel_messaging_tiers WHERE channel_id = $1",
                )
                .bind(channel_id)
                .fetch_optional(self.reads())
                .await?)
            }

            async fn channel_quality(&self, channel_id: &str) -> $crate::Result<Option<String>> {
                Ok(sqlx::query_scalar(
                    "SELECT rating FROM channel_quality_ratings WHERE channel_id = $1",
                )
                .bind(channel_id)
                .fetch_optional(self.reads())
                .await?)
            }

            async fn set_channel_quality(
                &self,
                workspace_id: &str,
                channel_id: &str,
                rating: &str,
                now: chrono::DateTime<chrono::Utc>,
                audit: waypost_core::NewAuditEvent,
            ) -> $crate::Result<()> {
                let mut tx = self.write_tx().await?;
                sqlx::query(
                    "INSERT INTO channel_quality_ratings (channel_id, workspace_id, rating, updated_at)
                     VALUES ($1, $2, $3, $4)
                     ON CONFLICT (channel_id) DO UPDATE SET rating = $3, updated_at = $4",
                )
                .bind(channel_id)
                .bind(workspace_id)
                .bind(rating)
                .bind(now)
                .execute(&mut *tx)
                .await?;
                $append_audit(&mut *tx, audit).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn set_messaging_tier(
                &self,
                workspace_id: &str,
                channel_id: &str,
                tier: &str,
                now: chrono::DateTime<chrono::Utc>,
                audit: waypost_core::NewAuditEvent,
            ) -> $crate::Result<()> {
                let mut tx = self.write_tx().await?;
                sqlx::query(
                    "INSERT INTO channel_messaging_tiers (channel_id, workspace_id, tier, updated_at)
                     VALUES ($1, $2, $3, $4)
                     ON CONFLICT (channel_id) DO UPDATE SET tier = $3, updated_at = $4",
                )
                .bind(channel_id)
                .bind(workspace_id)
                .bind(tier)
                .bind(now)
                .execute(&mut *tx)
                .await?;
                $append_audit(&mut *tx, audit).await?;
                tx.commit().await?;
                Ok(())
            }
        }
    };
}
pub(crate) use campaign_report_store_impl;
