//! Contact imports: one row per uploaded file, keyed by the caller's import
//! key (so a retried upload finds the first), and one result per file row.
//! The server parses and seals; each batch of contacts, their tags, attribute
//! indexes, consent records and row results commits in one transaction, and
//! results are written `ON CONFLICT DO NOTHING`, so an interrupted import run
//! again keeps each row's first outcome. Counts are taken from the results
//! when the import finishes.
//!
//! The SQL is written once with `$n` placeholders and instantiated for both
//! backends by `import_store_impl!`.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use waypost_core::NewAuditEvent;

use crate::Result;
use crate::messaging::{ConsentRow, ContactRow};

#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct ImportRow {
    pub id: String,
    pub workspace_id: String,
    pub import_key: String,
    /// SHA-256 of the file, once read to the end.
    pub content_hash: Option<Vec<u8>>,
    /// `running`, `completed` or `failed`.
    pub status: String,
    /// Rows read so far.
    pub rows_total: i64,
    pub created: i64,
    pub updated: i64,
    pub invalid_number: i64,
    pub invalid: i64,
    pub duplicate: i64,
    pub consent_recorded: i64,
    pub error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}

pub(crate) const IMPORT_COLUMNS: &str = "id, workspace_id, import_key, content_hash, status, \
     rows_total, created, updated, invalid_number, invalid, duplicate, consent_recorded, error, \
     created_at, updated_at, finished_at";

/// What [`ImportStore::begin_import`] found.
#[derive(Debug, Clone, PartialEq)]
pub enum ImportBegin {
    /// The row given was inserted.
    Started,
    /// The workspace already has an import with this key.
    Existing(Box<ImportRow>),
}

/// What became of one row of the file.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct ImportRowResult {
    pub row_number: i64,
    /// An `ImportOutcome` name.
    pub outcome: String,
    pub contact_id: Option<String>,
    /// `recorded`, `not_recorded`, `kept_opt_out`, or `None`.
    pub consent: Option<String>,
    /// Names the column at fault; never quotes the value.
    pub detail: Option<String>,
}

/// One contact an import creates or updates: its tags are added, its
/// attribute indexes replace those of the same fields, its consent record appended.
#[derive(Debug, Clone)]
pub struct ImportContactWrite {
    pub contact: ContactRow,
    pub new: bool,
    pub tags: Vec<String>,
    pub attribute_indexes: Vec<(String, Vec<u8>)>,
    pub consent: Option<ConsentRow>,
}

#[derive(Debug, Clone)]
pub struct ImportBatch {
    pub import_id: String,
    pub workspace_id: String,
    pub writes: Vec<ImportContactWrite>,
    pub results: Vec<ImportRowResult>,
    /// The last row number read.
    pub rows_read: i64,
    pub at: DateTime<Utc>,
}

#[async_trait]
pub trait ImportStore {
    /// Inserts `import` (with its audit), or returns the import that holds its key.
    async fn begin_import(&self, import: &ImportRow, audit: NewAuditEvent) -> Result<ImportBegin>;
    /// Sets a `failed` or stale `running` import running again.
    async fn restart_import(&self, workspace_id: &str, id: &str, at: DateTime<Utc>) -> Result<()>;
    async fn get_import(&self, workspace_id: &str, id: &str) -> Result<ImportRow>;
    /// Contacts with these phone blind indexes.
    async fn contacts_by_phone_indexes(
        &self,
        workspace_id: &str,
        indexes: &[Vec<u8>],
    ) -> Result<Vec<ContactRow>>;
    /// Writes a batch in one transaction.
    async fn apply_import_batch(&self, batch: &ImportBatch) -> Result<()>;
    /// Refreshes the planner's statistics of the tables an import fills. On
    /// PostgreSQL a table that grew from empty within minutes still has the
    /// statistics of an empty one, and the batch lookup by phone index then
    /// scans the whole workspace (0.1 s a batch at 10,000 contacts, growing).
    async fn analyze_contacts(&self) -> Result<()>;
    /// Ends the import: counts from its results, status, hash, error, with its audit.
    async fn finish_import(&self, import: &ImportRow, audit: NewAuditEvent) -> Result<ImportRow>;
    /// Results after row `after_row`, in row order, at most `limit`.
    async fn import_results(
        &self,
        import_id: &str,
        after_row: i64,
        limit: u32,
    ) -> Result<Vec<ImportRowResult>>;
}

macro_rules! import_store_impl {
    ($store:ty, $append_audit:path, $analyze:expr) => {
        #[async_trait::async_trait]
        impl $crate::imports::ImportStore for $store {
            async fn begin_import(
                &self,
                i: &$crate::imports::ImportRow,
                audit: waypost_core::NewAuditEvent,
            ) -> $crate::Result<$crate::imports::ImportBegin> {
                let mut tx = self.write_tx().await?;
                let existing: Option<$crate::imports::ImportRow> = sqlx::query_as(&format!(
                    "SELECT {} FROM contact_imports WHERE workspace_id = $1 AND import_key = $2",
                    $crate::imports::IMPORT_COLUMNS
                ))
                .bind(&i.workspace_id)
                .bind(&i.import_key)
                .fetch_optional(&mut *tx)
                .await?;
                if let Some(row) = existing {
                    return Ok($crate::imports::ImportBegin::Existing(Box::new(row)));
                }
                sqlx::query(
                    "INSERT INTO contact_imports (id, workspace_id, import_key, status, created_at, updated_at)
                     VALUES ($1, $2, $3, 'running', $4, $4)",
                )
                .bind(&i.id)
                .bind(&i.workspace_id)
                .bind(&i.import_key)
                .bind(i.created_at)
                .execute(&mut *tx)
                .await
                .map_err(|e| {
                    $crate::StoreError::conflict_on_unique(e, "an import with this key exists")
                })?;
                $append_audit(&mut *tx, audit).await?;
                tx.commit().await?;
                Ok($crate::imports::ImportBegin::Started)
            }

            async fn restart_import(
                &self,
                workspace_id: &str,
                id: &str,
                at: chrono::DateTime<chrono::Utc>,
            ) -> $crate::Result<()> {
                let mut tx = self.write_tx().await?;
                sqlx::query(
                    "UPDATE contact_imports SET status = 'running', error = NULL, updated_at = $3
                     WHERE workspace_id = $1 AND id = $2",
                )
                .bind(workspace_id)
                .bind(id)
                .bind(at)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(())
            }

            async fn get_import(
                &self,
                workspace_id: &str,
                id: &str,
            ) -> $crate::Result<$crate::imports::ImportRow> {
                sqlx::query_as(&format!(
                    "SELECT {} FROM contact_imports WHERE workspace_id = $1 AND id = $2",
                    $crate::imports::IMPORT_COLUMNS
                ))
                .bind(workspace_id)
                .bind(id)
                .fetch_optional(self.reads())
                .await?
                .ok_or($crate::StoreError::NotFound("import"))
            }

            async fn contacts_by_phone_indexes(
                &self,
                workspace_id: &str,
                indexes: &[Vec<u8>],
            ) -> $crate::Result<Vec<$crate::messaging::ContactRow>> {
                if indexes.is_empty() {
                    return Ok(Vec::new());
                }
                let indexes = $crate::padded(indexes);
                let sql = format!(
                    "SELECT {} FROM contacts WHERE workspace_id = $1 AND phone_index IN ({})",
                    $crate::messaging::CONTACT_COLUMNS,
                    $crate::placeholders(2, indexes.len())
                );
                let mut q = sqlx::query_as(&sql).bind(workspace_id);
                for index in indexes {
                    q = q.bind(index);
                }
                Ok(q.fetch_all(self.reads()).await?)
            }

            async fn analyze_contacts(&self) -> $crate::Result<()> {
                let statements: &[&str] = &$analyze;
                for sql in statements {
                    sqlx::query(sql).execute(self.writes()).await?;
                }
                Ok(())
            }

            async fn apply_import_batch(
                &self,
                b: &$crate::imports::ImportBatch,
            ) -> $crate::Result<()> {
                let mut tx = self.write_tx().await?;
                let (new, old): (Vec<_>, Vec<_>) = b.writes.iter().partition(|w| w.new);
                let new: Vec<_> = new.iter().map(|w| &w.contact).collect();
                let old: Vec<_> = old.iter().map(|w| &w.contact).collect();
                insert_contact_rows(&mut *tx, &new).await?;
                update_contact_profile_rows(&mut *tx, &old).await?;
                let tags: Vec<(&str, &str)> = b
                    .writes
                    .iter()
                    .flat_map(|w| w.tags.iter().map(|t| (w.contact.id.as_str(), t.as_str())))
                    .collect();
                add_tag_rows(&mut *tx, &b.workspace_id, &tags).await?;
                let indexes: Vec<(&str, &str, &[u8])> = b
                    .writes
                    .iter()
                    .flat_map(|w| {
                        w.attribute_indexes
                            .iter()
                            .map(|(f, i)| (w.contact.id.as_str(), f.as_str(), i.as_slice()))
                    })
                    .collect();
                write_attribute_index_rows(&mut *tx, &b.workspace_id, &indexes).await?;
                let consents: Vec<_> = b.writes.iter().filter_map(|w| w.consent.as_ref()).collect();
                insert_consent_rows(&mut *tx, &consents).await?;
                // Many rows a statement: an import writes one result per line of the file.
                for range in $crate::bulk::chunks(b.results.len()) {
                    let chunk = &b.results[range];
                    let sql = format!(
                        "INSERT INTO contact_import_rows (import_id, row_number, outcome, contact_id, consent, detail)
                         VALUES {} ON CONFLICT (import_id, row_number) DO NOTHING",
                        $crate::bulk::values(6, chunk.len())
                    );
                    let mut q = sqlx::query(&sql);
                    for r in chunk {
                        q = q
                            .bind(&b.import_id)
                            .bind(r.row_number)
                            .bind(&r.outcome)
                            .bind(&r.contact_id)
                            .bind(&r.consent)
                            .bind(&r.detail);
                    }
                    q.execute(&mut *tx).await?;
                }
                sqlx::query(
                    "UPDATE contact_imports SET rows_total = $3, updated_at = $4
                     WHERE workspace_id = $1 AND id = $2",
                )
                .bind(&b.workspace_id)
                .bind(&b.import_id)
                .bind(b.rows_read)
                .bind(b.at)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(())
            }

            async fn finish_import(
                &self,
                i: &$crate::imports::ImportRow,
                audit: waypost_core::NewAuditEvent,
            ) -> $crate::Result<$crate::imports::ImportRow> {
                let mut tx = self.write_tx().await?;
                let counts: Vec<(String, i64)> = sqlx::query_as(
                    "SELECT outcome, COUNT(*) FROM contact_import_rows WHERE import_id = $1 GROUP BY outcome",
                )
                .bind(&i.id)
                .fetch_all(&mut *tx)
                .await?;
                let consent: i64 = sqlx::query_scalar(
                    "SELECT COUNT(*) FROM contact_import_rows WHERE import_id = $1 AND consent = 'recorded'",
                )
                .bind(&i.id)
                .fetch_one(&mut *tx)
                .await?;
                let count = |name: &str| {
                    counts
                        .iter()
                        .find(|(o, _)| o == name)
                        .map_or(0, |(_, n)| *n)
                };
                sqlx::query(
                    "UPDATE contact_imports SET status = $3, content_hash = $4, error = $5, rows_total = $6,
                        created = $7, updated = $8, invalid_number = $9, invalid = $10, duplicate = $11,
                        consent_recorded = $12, updated_at = $13, finished_at = $14
                     WHERE workspace_id = $1 AND id = $2",
                )
                .bind(&i.workspace_id)
                .bind(&i.id)
                .bind(&i.status)
                .bind(&i.content_hash)
                .bind(&i.error)
                .bind(i.rows_total)
                .bind(count("created"))
                .bind(count("updated"))
                .bind(count("invalid_number"))
                .bind(count("invalid"))
                .bind(count("duplicate"))
                .bind(consent)
                .bind(i.updated_at)
                .bind(i.finished_at)
                .execute(&mut *tx)
                .await?;
                $append_audit(&mut *tx, audit).await?;
                let row = sqlx::query_as(&format!(
                    "SELECT {} FROM contact_imports WHERE id = $1",
                    $crate::imports::IMPORT_COLUMNS
                ))
                .bind(&i.id)
                .fetch_one(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(row)
            }

            async fn import_results(
                &self,
                import_id: &str,
                after_row: i64,
                limit: u32,
            ) -> $crate::Result<Vec<$crate::imports::ImportRowResult>> {
                Ok(sqlx::query_as(
                    "SELECT row_number, outcome, contact_id, consent, detail FROM contact_import_rows
                     WHERE import_id = $1 AND row_number > $2 ORDER BY row_number LIMIT $3",
                )
                .bind(import_id)
                .bind(after_row)
                .bind(limit as i64)
                .fetch_all(self.reads())
                .await?)
            }
        }
    };
}
pub(crate) use import_store_impl;
