//! Message templates of a workspace: the Meta components array as submitted
//! (JSON text), the provider's id and review status. Status changes are a
//! compare-and-set on the previous status, written with their customer event
//! and audit event in one transaction, so a webhook and a sync (or two nodes)
//! seeing the same change record it once.
//!
//! The SQL is written once with `$n` placeholders and instantiated for both
//! backends by `template_store_impl!`.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use waypost_core::NewAuditEvent;

use crate::Result;
use crate::events::NewCustomerEvent;

#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct TemplateRow {
    pub id: String,
    pub workspace_id: String,
    pub channel_id: String,
    pub name: String,
    pub language: String,
    /// `marketing`, `utility` or `authentication`.
    pub category: String,
    /// The Meta-format components array, as JSON text.
    pub components: String,
    /// Meta's upper-case status: `PENDING`, `APPROVED`, `REJECTED`, `PAUSED`, `DISABLED`, …
    pub status: String,
    pub rejection_reason: Option<String>,
    pub provider_id: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Filters of the template list; `None` means any.
#[derive(Debug, Clone, Default)]
pub struct TemplateFilter {
    pub status: Option<String>,
    pub channel_id: Option<String>,
    /// Only ids after this one (the cursor), ascending.
    pub after: Option<String>,
}

/// A status change, applied only if the template still has `from_status`.
#[derive(Debug, Clone)]
pub struct TemplateStatusChange {
    pub workspace_id: String,
    pub template_id: String,
    pub from_status: String,
    pub to_status: String,
    pub rejection_reason: Option<String>,
    pub at: DateTime<Utc>,
    pub audit: NewAuditEvent,
    pub events: Vec<NewCustomerEvent>,
}

#[async_trait]
pub trait TemplateStore {
    /// `Conflict` when the workspace has a template with this name and language.
    async fn create_template(&self, template: &TemplateRow, audit: NewAuditEvent) -> Result<()>;
    /// A template of a workspace; `NotFound` otherwise.
    async fn get_template(&self, workspace_id: &str, id: &str) -> Result<TemplateRow>;
    async fn template_by_name(
        &self,
        workspace_id: &str,
        name: &str,
        language: &str,
    ) -> Result<Option<TemplateRow>>;
    /// Templates after the cursor, in id order.
    async fn list_templates(
        &self,
        workspace_id: &str,
        filter: &TemplateFilter,
        limit: u32,
    ) -> Result<Vec<TemplateRow>>;
    /// A channel's templates after `after` (id order), for the status sync.
    async fn channel_templates(
        &self,
        channel_id: &str,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<TemplateRow>>;
    /// Applies a status change if the status is still `from_status` (and
    /// differs from `to_status`), with its events; returns whether it did.
    async fn update_template_status(&self, change: &TemplateStatusChange) -> Result<bool>;
    /// `NotFound` when the workspace has no such template.
    async fn delete_template(
        &self,
        workspace_id: &str,
        id: &str,
        audit: NewAuditEvent,
    ) -> Result<()>;
}

pub(crate) const TEMPLATE_COLUMNS: &str = "id, workspace_id, channel_id, name, language, category, \
     components, status, rejection_reason, provider_id, created_at, updated_at";

/// Implements [`TemplateStore`] for a backend with `write_tx()`, `reads()`,
/// and `append_audit`, `insert_events` in scope.
macro_rules! template_store_impl {
    ($store:ty, $append_audit:path, $insert_events:path) => {
        #[async_trait::async_trait]
        impl $crate::templates::TemplateStore for $store {
            async fn create_template(
                &self,
                t: &$crate::templates::TemplateRow,
                audit: waypost_core::NewAuditEvent,
            ) -> $crate::Result<()> {
                let mut tx = self.write_tx().await?;
                sqlx::query(
                    "INSERT INTO templates (id, workspace_id, channel_id, name, language, category,
                        components, status, rejection_reason, provider_id, created_at, updated_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
                )
                .bind(&t.id)
                .bind(&t.workspace_id)
                .bind(&t.channel_id)
                .bind(&t.name)
                .bind(&t.language)
                .bind(&t.category)
                .bind(&t.components)
                .bind(&t.status)
                .bind(&t.rejection_reason)
                .bind(&t.provider_id)
                .bind(t.created_at)
                .bind(t.updated_at)
                .execute(&mut *tx)
                .await
                .map_err(|e| {
                    $crate::StoreError::conflict_on_unique(
                        e,
                        "the workspace already has a template with this name and language",
                    )
                })?;
                $append_audit(&mut *tx, audit).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn get_template(
                &self,
                workspace_id: &str,
                id: &str,
            ) -> $crate::Result<$crate::templates::TemplateRow> {
                let sql = format!(
                    "SELECT {} FROM templates WHERE workspace_id = $1 AND id = $2",
                    $crate::templates::TEMPLATE_COLUMNS
                );
                sqlx::query_as(&sql)
                    .bind(workspace_id)
                    .bind(id)
                    .fetch_optional(self.reads())
                    .await?
                    .ok_or($crate::StoreError::NotFound("template"))
            }

            async fn template_by_name(
                &self,
                workspace_id: &str,
                name: &str,
                language: &str,
            ) -> $crate::Result<Option<$crate::templates::TemplateRow>> {
                let sql = format!(
                    "SELECT {} FROM templates WHERE workspace_id = $1 AND name = $2 AND language = $3",
                    $crate::templates::TEMPLATE_COLUMNS
                );
                Ok(sqlx::query_as(&sql)
                    .bind(workspace_id)
                    .bind(name)
                    .bind(language)
                    .fetch_optional(self.reads())
                    .await?)
            }

            async fn list_templates(
                &self,
                workspace_id: &str,
                f: &$crate::templates::TemplateFilter,
                limit: u32,
            ) -> $crate::Result<Vec<$crate::templates::TemplateRow>> {
                // Absent filters bind NULL and match everything.
                let sql = format!(
                    "SELECT {} FROM templates WHERE workspace_id = $1
                        AND ($2 IS NULL OR status = $2)
                        AND ($3 IS NULL OR channel_id = $3)
                        AND id > $4
                     ORDER BY id LIMIT $5",
                    $crate::templates::TEMPLATE_COLUMNS
                );
                Ok(sqlx::query_as(&sql)
                    .bind(workspace_id)
                    .bind(&f.status)
                    .bind(&f.channel_id)
                    .bind(f.after.as_deref().unwrap_or(""))
                    .bind(limit as i64)
                    .fetch_all(self.reads())
                    .await?)
            }

            async fn channel_templates(
                &self,
                channel_id: &str,
                after: Option<&str>,
                limit: u32,
            ) -> $crate::Result<Vec<$crate::templates::TemplateRow>> {
                let sql = format!(
                    "SELECT {} FROM templates WHERE channel_id = $1 AND id > $2 ORDER BY id LIMIT $3",
                    $crate::templates::TEMPLATE_COLUMNS
                );
                Ok(sqlx::query_as(&sql)
                    .bind(channel_id)
                    .bind(after.unwrap_or(""))
                    .bind(limit as i64)
                    .fetch_all(self.reads())
                    .await?)
            }

            async fn update_template_status(
                &self,
                c: &$crate::templates::TemplateStatusChange,
            ) -> $crate::Result<bool> {
                if c.from_status == c.to_status {
                    return Ok(false);
                }
                let mut tx = self.write_tx().await?;
                let done = sqlx::query(
                    "UPDATE templates SET status = $4, rejection_reason = $5, updated_at = $6
                     WHERE workspace_id = $1 AND id = $2 AND status = $3",
                )
                .bind(&c.workspace_id)
                .bind(&c.template_id)
                .bind(&c.from_status)
                .bind(&c.to_status)
                .bind(&c.rejection_reason)
                .bind(c.at)
                .execute(&mut *tx)
                .await?;
                if done.rows_affected() == 0 {
                    // Someone else moved it first (or it is gone): nothing to record.
                    return Ok(false);
                }
                $append_audit(&mut *tx, c.audit.clone()).await?;
                $insert_events(&mut *tx, &c.events).await?;
                tx.commit().await?;
                Ok(true)
            }

            async fn delete_template(
                &self,
                workspace_id: &str,
                id: &str,
                audit: waypost_core::NewAuditEvent,
            ) -> $crate::Result<()> {
                let mut tx = self.write_tx().await?;
                let done = sqlx::query("DELETE FROM templates WHERE workspace_id = $1 AND id = $2")
                    .bind(workspace_id)
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                if done.rows_affected() == 0 {
                    return Err($crate::StoreError::NotFound("template"));
                }
                $append_audit(&mut *tx, audit).await?;
                tx.commit().await?;
                Ok(())
            }
        }
    };
}
pub(crate) use template_store_impl;
