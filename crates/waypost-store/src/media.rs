//! Media files: uploads for sending and files customers sent. A row holds the
//! provider's media id and what we know of the file; the bytes stay at the
//! provider unless the workspace retains content, then an encrypted copy is
//! kept until `blob_expires_at`. Every query is scoped by workspace.
//!
//! The SQL is written once with `$n` placeholders and instantiated for both
//! backends by `insert_media_fn!` and `media_store_impl!`.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use waypost_core::NewAuditEvent;

use crate::Result;

/// One media file, without its kept copy.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct MediaRow {
    pub id: String,
    pub workspace_id: String,
    pub channel_id: String,
    /// The customer who sent it (inbound only).
    pub contact_id: Option<String>,
    /// The inbound message that carried it.
    pub message_id: Option<String>,
    /// `outbound` or `inbound`.
    pub direction: String,
    /// `image`, `audio`, `video`, `document` or `sticker`.
    pub media_type: String,
    pub provider_media_id: String,
    pub mime_type: String,
    pub size: Option<i64>,
    /// Hex SHA-256 of the bytes.
    pub sha256: Option<String>,
    /// The file name, encrypted by the key ring.
    pub filename: Option<Vec<u8>>,
    pub blob_expires_at: Option<DateTime<Utc>>,
    /// When the provider forgets the media id.
    pub provider_expires_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    /// Whether an encrypted copy is kept (read-only; set by storing a blob).
    pub retained: bool,
}

/// A kept copy of a file, encrypted.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct MediaBlob {
    pub blob: Vec<u8>,
    /// The blob's own key, wrapped by the key ring (outbound); `None` when the
    /// blob is sealed with the contact's content key (inbound).
    pub blob_key: Option<Vec<u8>>,
    pub blob_expires_at: DateTime<Utc>,
}

/// A media row to insert, with its kept copy when there is one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewMedia {
    pub media: MediaRow,
    pub blob: Option<MediaBlob>,
}

pub(crate) const MEDIA_COLUMNS: &str = "id, workspace_id, channel_id, contact_id, message_id, \
     direction, media_type, provider_media_id, mime_type, size, sha256, filename, blob_expires_at, \
     provider_expires_at, created_at, (blob IS NOT NULL) AS retained";

#[async_trait]
pub trait MediaStore {
    /// Records an upload (and its audit event) in one transaction.
    async fn insert_media(&self, media: &NewMedia, audit: NewAuditEvent) -> Result<()>;
    /// A workspace's media file; `NotFound` for another workspace's.
    async fn get_media(&self, workspace_id: &str, id: &str) -> Result<MediaRow>;
    /// The kept copy, if any.
    async fn media_blob(&self, workspace_id: &str, id: &str) -> Result<Option<MediaBlob>>;
    /// Keeps a copy unless one is kept already; returns whether this one was stored.
    async fn keep_media_blob(&self, workspace_id: &str, id: &str, blob: &MediaBlob)
    -> Result<bool>;
    /// A contact's media files after the cursor, in id order.
    async fn contact_media(
        &self,
        workspace_id: &str,
        contact_id: &str,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<MediaRow>>;
}

/// `insert_media(conn, &NewMedia)`, inside the caller's transaction.
macro_rules! insert_media_fn {
    ($conn:ty) => {
        pub(crate) async fn insert_media(
            conn: &mut $conn,
            n: &$crate::media::NewMedia,
        ) -> $crate::Result<()> {
            let m = &n.media;
            let b = n.blob.as_ref();
            sqlx::query(
                "INSERT INTO media (id, workspace_id, channel_id, contact_id, message_id, direction, media_type,
                    provider_media_id, mime_type, size, sha256, filename, blob, blob_key, blob_expires_at,
                    provider_expires_at, created_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)",
            )
            .bind(&m.id)
            .bind(&m.workspace_id)
            .bind(&m.channel_id)
            .bind(&m.contact_id)
            .bind(&m.message_id)
            .bind(&m.direction)
            .bind(&m.media_type)
            .bind(&m.provider_media_id)
            .bind(&m.mime_type)
            .bind(m.size)
            .bind(&m.sha256)
            .bind(&m.filename)
            .bind(b.map(|b| &b.blob))
            .bind(b.and_then(|b| b.blob_key.as_ref()))
            .bind(b.map(|b| b.blob_expires_at))
            .bind(m.provider_expires_at)
            .bind(m.created_at)
            .execute(&mut *conn)
            .await?;
            Ok(())
        }
    };
}
pub(crate) use insert_media_fn;

/// Implements [`MediaStore`] for a backend with `reads()`, `writes()`,
/// `write_tx()` and the helper functions in scope.
macro_rules! media_store_impl {
    ($store:ty, $append_audit:path, $insert_media:path) => {
        #[async_trait::async_trait]
        impl $crate::media::MediaStore for $store {
            async fn insert_media(
                &self,
                n: &$crate::media::NewMedia,
                audit: waypost_core::NewAuditEvent,
            ) -> $crate::Result<()> {
                let mut tx = self.write_tx().await?;
                $insert_media(&mut *tx, n).await?;
                $append_audit(&mut *tx, audit).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn get_media(
                &self,
                workspace_id: &str,
                id: &str,
            ) -> $crate::Result<$crate::media::MediaRow> {
                let sql = format!(
                    "SELECT {} FROM media WHERE workspace_id = $1 AND id = $2",
                    $crate::media::MEDIA_COLUMNS
                );
                sqlx::query_as(&sql)
                    .bind(workspace_id)
                    .bind(id)
                    .fetch_optional(self.reads())
                    .await?
                    .ok_or($crate::StoreError::NotFound("media"))
            }

            async fn media_blob(
                &self,
                workspace_id: &str,
                id: &str,
            ) -> $crate::Result<Option<$crate::media::MediaBlob>> {
                Ok(sqlx::query_as(
                    "SELECT blob, blob_key, blob_expires_at FROM media
                     WHERE workspace_id = $1 AND id = $2 AND blob IS NOT NULL AND blob_expires_at IS NOT NULL",
                )
                .bind(workspace_id)
                .bind(id)
                .fetch_optional(self.reads())
                .await?)
            }

            async fn keep_media_blob(
                &self,
                workspace_id: &str,
                id: &str,
                b: &$crate::media::MediaBlob,
            ) -> $crate::Result<bool> {
                let done = sqlx::query(
                    "UPDATE media SET blob = $3, blob_key = $4, blob_expires_at = $5
                     WHERE workspace_id = $1 AND id = $2 AND blob IS NULL",
                )
                .bind(workspace_id)
                .bind(id)
                .bind(&b.blob)
                .bind(&b.blob_key)
                .bind(b.blob_expires_at)
                .execute(self.writes())
                .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn contact_media(
                &self,
                workspace_id: &str,
                contact_id: &str,
                after: Option<&str>,
                limit: u32,
            ) -> $crate::Result<Vec<$crate::media::MediaRow>> {
                let sql = format!(
                    "SELECT {} FROM media WHERE workspace_id = $1 AND contact_id = $2 AND id > $3
                     ORDER BY id LIMIT $4",
                    $crate::media::MEDIA_COLUMNS
                );
                Ok(sqlx::query_as(&sql)
                    .bind(workspace_id)
                    .bind(contact_id)
                    .bind(after.unwrap_or(""))
                    .bind(i64::from(limit))
                    .fetch_all(self.reads())
                    .await?)
            }
        }
    };
}
pub(crate) use media_store_impl;
