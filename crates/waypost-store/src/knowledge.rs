//! The assistant's knowledge base: documents (FAQ entries and uploads) and
//! their chunks, searched with the backend's full-text search (an FTS5 index
//! kept by triggers, or a `tsvector` expression index). The SQL is shared;
//! only the search differs, passed to `knowledge_store_impl!` by each backend.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use waypost_core::NewAuditEvent;

use crate::Result;

#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct KnowledgeDocumentRow {
    pub id: String,
    pub workspace_id: String,
    /// `faq` or `document`.
    pub kind: String,
    pub title: String,
    pub chunks: i64,
    pub created_at: DateTime<Utc>,
}

#[async_trait]
pub trait KnowledgeStore {
    async fn add_knowledge(
        &self,
        doc: &KnowledgeDocumentRow,
        chunks: &[String],
        audit: NewAuditEvent,
    ) -> Result<()>;
    async fn list_knowledge(&self, workspace_id: &str) -> Result<Vec<KnowledgeDocumentRow>>;
    async fn delete_knowledge(
        &self,
        workspace_id: &str,
        id: &str,
        audit: NewAuditEvent,
    ) -> Result<()>;
    /// The best `limit` passages of the workspace for any of `terms` (plain words).
    async fn search_knowledge(
        &self,
        workspace_id: &str,
        terms: &[String],
        limit: u32,
    ) -> Result<Vec<String>>;
}

/// Implements [`KnowledgeStore`] for a backend, given its `append_audit` and
/// its full-text search: `$search` takes (query, workspace, limit) and
/// `$query` builds the query from the terms.
macro_rules! knowledge_store_impl {
    ($store:ty, $append:path, $search:literal, $query:path) => {
        #[async_trait::async_trait]
        impl $crate::knowledge::KnowledgeStore for $store {
            async fn add_knowledge(
                &self,
                doc: &$crate::knowledge::KnowledgeDocumentRow,
                chunks: &[String],
                audit: waypost_core::NewAuditEvent,
            ) -> $crate::Result<()> {
                let mut tx = self.write_tx().await?;
                sqlx::query(
                    "INSERT INTO knowledge_documents (id, workspace_id, kind, title, chunks, created_at)
                     VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(&doc.id)
                .bind(&doc.workspace_id)
                .bind(&doc.kind)
                .bind(&doc.title)
                .bind(doc.chunks)
                .bind(doc.created_at)
                .execute(&mut *tx)
                .await?;
                for (seq, body) in chunks.iter().enumerate() {
                    sqlx::query(
                        "INSERT INTO knowledge_chunks (document_id, workspace_id, seq, body) VALUES ($1, $2, $3, $4)",
                    )
                    .bind(&doc.id)
                    .bind(&doc.workspace_id)
                    .bind(seq as i64)
                    .bind(body)
                    .execute(&mut *tx)
                    .await?;
                }
                $append(&mut tx, audit).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn list_knowledge(
                &self,
                workspace_id: &str,
            ) -> $crate::Result<Vec<$crate::knowledge::KnowledgeDocumentRow>> {
                Ok(sqlx::query_as(
                    "SELECT * FROM knowledge_documents WHERE workspace_id = $1 ORDER BY created_at, id LIMIT 1000",
                )
                .bind(workspace_id)
                .fetch_all(self.reads())
                .await?)
            }

            async fn delete_knowledge(
                &self,
                workspace_id: &str,
                id: &str,
                audit: waypost_core::NewAuditEvent,
            ) -> $crate::Result<()> {
                let mut tx = self.write_tx().await?;
                // Chunks first, so the full-text index's delete trigger sees each one.
                sqlx::query("DELETE FROM knowledge_chunks WHERE workspace_id = $1 AND document_id = $2")
                    .bind(workspace_id)
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                let done = sqlx::query("DELETE FROM knowledge_documents WHERE workspace_id = $1 AND id = $2")
                    .bind(workspace_id)
                    .bind(id)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                if done == 0 {
                    return Err($crate::StoreError::NotFound("knowledge document"));
                }
                $append(&mut tx, audit).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn search_knowledge(
                &self,
                workspace_id: &str,
                terms: &[String],
                limit: u32,
            ) -> $crate::Result<Vec<String>> {
                if terms.is_empty() {
                    return Ok(Vec::new());
                }
                Ok(sqlx::query_scalar($search)
                    .bind($query(terms))
                    .bind(workspace_id)
                    .bind(limit as i64)
                    .fetch_all(self.reads())
                    .await?)
            }
        }
    };
}
pub(crate) use knowledge_store_impl;

/// An FTS5 query: any of the terms, each quoted.
pub(crate) fn fts5_query(terms: &[String]) -> String {
    terms
        .iter()
        .map(|t| format!("\"{}\"", t.replace('"', "")))
        .collect::<Vec<_>>()
        .join(" OR ")
}

/// A `to_tsquery` query: any of the terms.
pub(crate) fn tsquery(terms: &[String]) -> String {
    terms
        .iter()
        .map(|t| {
            t.chars()
                .filter(|c| c.is_alphanumeric())
                .collect::<String>()
        })
        .filter(|t| !t.is_empty())
        .collect::<Vec<_>>()
        .join(" | ")
}
