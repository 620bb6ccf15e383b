//! Campaigns: drafts of a template broadcast to a segment. The pre-flight
//! reads contacts through [`crate::audiences`]; this module only keeps the
//! campaign rows (sending is [`crate::campaign_sends`]).
//!
//! The SQL is written once with `$n` placeholders and instantiated for both
//! backends by `campaign_store_impl!`.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use waypost_core::NewAuditEvent;

use crate::Result;

#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct CampaignRow {
    pub id: String,
    pub workspace_id: String,
    pub name: String,
    pub segment_id: String,
    pub channel_id: String,
    pub template_name: String,
    pub template_language: String,
    /// JSON: where each template parameter comes from (never a contact's value).
    pub parameters: String,
    /// A `CampaignStatus` name.
    pub status: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// JSON `SendWindow` given at start.
    pub send_window: Option<String>,
    /// Not before this time (a scheduled start).
    pub start_at: Option<DateTime<Utc>>,
    /// The eligible count confirmed at start.
    pub confirmed_recipients: Option<i64>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    /// A `PauseReason` name while paused.
    pub pause_reason: Option<String>,
}

/// The columns a draft is created with.
pub(crate) const INSERT_COLUMNS: &str = "id, workspace_id, name, segment_id, channel_id, \
     template_name, template_language, parameters, status, created_at, updated_at";

pub(crate) const CAMPAIGN_COLUMNS: &str = "id, workspace_id, name, segment_id, channel_id, \
     template_name, template_language, parameters, status, created_at, updated_at, \
     send_window, start_at, confirmed_recipients, started_at, finished_at, pause_reason";

#[async_trait]
pub trait CampaignStore {
    /// `Conflict` when the workspace has a campaign with this name.
    async fn create_campaign(&self, campaign: &CampaignRow, audit: NewAuditEvent) -> Result<()>;
    async fn get_campaign(&self, workspace_id: &str, id: &str) -> Result<CampaignRow>;
    /// Campaigns after the cursor, in id order.
    async fn list_campaigns(
        &self,
        workspace_id: &str,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<CampaignRow>>;
}

macro_rules! campaign_store_impl {
    ($store:ty, $append_audit:path) => {
        #[async_trait::async_trait]
        impl $crate::campaigns::CampaignStore for $store {
            async fn create_campaign(
                &self,
                c: &$crate::campaigns::CampaignRow,
                audit: waypost_core::NewAuditEvent,
            ) -> $crate::Result<()> {
                let mut tx = self.write_tx().await?;
                sqlx::query(&format!(
                    "INSERT INTO campaigns ({}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
                    $crate::campaigns::INSERT_COLUMNS
                ))
                .bind(&c.id)
                .bind(&c.workspace_id)
                .bind(&c.name)
                .bind(&c.segment_id)
                .bind(&c.channel_id)
                .bind(&c.template_name)
                .bind(&c.template_language)
                .bind(&c.parameters)
                .bind(&c.status)
                .bind(c.created_at)
                .bind(c.updated_at)
                .execute(&mut *tx)
                .await
                .map_err(|e| {
                    $crate::StoreError::conflict_on_unique(e, "a campaign with this name exists")
                })?;
                $append_audit(&mut *tx, audit).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn get_campaign(
                &self,
                workspace_id: &str,
                id: &str,
            ) -> $crate::Result<$crate::campaigns::CampaignRow> {
                sqlx::query_as(&format!(
                    "SELECT {} FROM campaigns WHERE workspace_id = $1 AND id = $2",
                    $crate::campaigns::CAMPAIGN_COLUMNS
                ))
                .bind(workspace_id)
                .bind(id)
                .fetch_optional(self.reads())
                .await?
                .ok_or($crate::StoreError::NotFound("campaign"))
            }

            async fn list_campaigns(
                &self,
                workspace_id: &str,
                after: Option<&str>,
                limit: u32,
            ) -> $crate::Result<Vec<$crate::campaigns::CampaignRow>> {
                Ok(sqlx::query_as(&format!(
                    "SELECT {} FROM campaigns WHERE workspace_id = $1 AND id > $2 ORDER BY id LIMIT $3",
                    $crate::campaigns::CAMPAIGN_COLUMNS
                ))
                .bind(workspace_id)
                .bind(after.unwrap_or(""))
                .bind(limit as i64)
                .fetch_all(self.reads())
                .await?)
            }
        }
    };
}
pub(crate) use campaign_store_impl;
