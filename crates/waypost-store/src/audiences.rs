//! Audiences: contacts found by tag, custom attribute, language, consent and
//! time; custom field definitions; contact profiles (tags and attribute
//! indexes written with the contact); saved segments, counted live.
//!
//! Custom attribute *values* never reach this module in plaintext: they are in
//! the encrypted `contacts.attributes`, and filters match `contact_attribute_index`
//! rows by blind index, which the server computes. Imports live in
//! [`crate::imports`].
//!
//! The SQL is written once with `$n` placeholders and instantiated for both
//! backends by `audience_fns!` and `audience_store_impl!`.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use waypost_core::NewAuditEvent;

use crate::Result;
use crate::messaging::ContactRow;

#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct ContactFieldRow {
    pub workspace_id: String,
    pub field_key: String,
    /// `text`, `number`, `boolean` or `date`.
    pub field_type: String,
    pub created_at: DateTime<Utc>,
}

/// Which contacts a listing or a count covers; every condition must hold.
#[derive(Debug, Clone, Default)]
pub struct ContactQuery {
    /// The contact has every one of these tags.
    pub tags: Vec<String>,
    /// The contact has an attribute with each of these blind indexes.
    pub attribute_indexes: Vec<Vec<u8>>,
    pub language: Option<String>,
    /// `Some(None)`: never recorded; `Some(Some(state))`: in that state.
    pub consent_marketing: Option<Option<String>>,
    pub consent_utility: Option<Option<String>>,
    pub consent_authentication: Option<Option<String>>,
    pub last_inbound_after: Option<DateTime<Utc>>,
    pub last_inbound_before: Option<DateTime<Utc>>,
    pub created_after: Option<DateTime<Utc>>,
    pub created_before: Option<DateTime<Utc>>,
    /// Continue after this contact id (ascending).
    pub after: Option<String>,
}

/// A live count of an audience.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AudienceCounts {
    pub contacts: i64,
    /// Of those, opted in to marketing and not restricted.
    pub marketing_consent: i64,
}

/// A contact written with its tags and attribute indexes in one transaction.
#[derive(Debug, Clone)]
pub struct ContactProfileWrite {
    pub contact: ContactRow,
    /// Insert rather than update (`Conflict` when the phone or BSUID is taken).
    pub new: bool,
    /// Replaces the tags when set.
    pub tags: Option<Vec<String>>,
    /// Replaces the attribute indexes `(field, index)` when set.
    pub attribute_indexes: Option<Vec<(String, Vec<u8>)>>,
    pub audit: NewAuditEvent,
}

/// A saved filter; `definition` is its JSON, encrypted (AAD `segments`, `definition`, id).
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct SegmentRow {
    pub id: String,
    pub workspace_id: String,
    pub name: String,
    pub definition: Vec<u8>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[async_trait]
pub trait AudienceStore {
    /// `Conflict` when the workspace already has a field with this key.
    async fn create_contact_field(
        &self,
        field: &ContactFieldRow,
        audit: NewAuditEvent,
    ) -> Result<()>;
    /// The workspace's custom fields, by key.
    async fn list_contact_fields(&self, workspace_id: &str) -> Result<Vec<ContactFieldRow>>;
    /// `(contact id, tag)` pairs of these contacts, sorted.
    async fn contact_tags(&self, contact_ids: &[String]) -> Result<Vec<(String, String)>>;
    /// Creates or updates a contact with its profile and audit.
    async fn write_contact_profile(&self, write: &ContactProfileWrite) -> Result<()>;
    /// Contacts matching `query`, in id order, at most `limit`.
    async fn find_contacts(
        &self,
        workspace_id: &str,
        query: &ContactQuery,
        limit: u32,
    ) -> Result<Vec<ContactRow>>;
    /// How many contacts match `query` (its `after` is ignored).
    async fn count_contacts(
        &self,
        workspace_id: &str,
        query: &ContactQuery,
    ) -> Result<AudienceCounts>;
    /// `Conflict` when the name is taken.
    async fn create_segment(&self, segment: &SegmentRow, audit: NewAuditEvent) -> Result<()>;
    async fn get_segment(&self, workspace_id: &str, id: &str) -> Result<SegmentRow>;
    /// Segments after the cursor, in id order.
    async fn list_segments(
        &self,
        workspace_id: &str,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<SegmentRow>>;
    async fn delete_segment(
        &self,
        workspace_id: &str,
        id: &str,
        audit: NewAuditEvent,
    ) -> Result<()>;
}

/// The `WHERE` conditions of a query after `c.workspace_id = $1`, numbered
/// from `$2`; [`bind_query!`] binds the values in the same order.
pub(crate) fn query_conditions(q: &ContactQuery, with_cursor: bool) -> (String, usize) {
    let mut sql = String::new();
    let mut n = 1;
    let mut next = || {
        n += 1;
        n
    };
    for _ in &q.tags {
        sql.push_str(&format!(
            " AND EXISTS (SELECT 1 FROM contact_tags t WHERE t.contact_id = c.id AND t.workspace_id = $1 AND t.tag = ${})",
            next()
        ));
    }
    for _ in &q.attribute_indexes {
        sql.push_str(&format!(
            " AND EXISTS (SELECT 1 FROM contact_attribute_index a WHERE a.contact_id = c.id AND a.value_index = ${})",
            next()
        ));
    }
    if q.language.is_some() {
        sql.push_str(&format!(" AND c.language = ${}", next()));
    }
    for (column, wanted) in [
        ("consent_marketing", &q.consent_marketing),
        ("consent_utility", &q.consent_utility),
        ("consent_authentication", &q.consent_authentication),
    ] {
        match wanted {
            Some(Some(_)) => sql.push_str(&format!(" AND c.{column} = ${}", next())),
            Some(None) => sql.push_str(&format!(" AND c.{column} IS NULL")),
            None => {}
        }
    }
    for (cond, value) in [
        ("c.last_inbound_at >", q.last_inbound_after),
        ("c.last_inbound_at <", q.last_inbound_before),
        ("c.created_at >", q.created_after),
        ("c.created_at <", q.created_before),
    ] {
        if value.is_some() {
            sql.push_str(&format!(" AND {cond} ${}", next()));
        }
    }
    if with_cursor && q.after.is_some() {
        sql.push_str(&format!(" AND c.id > ${}", next()));
    }
    (sql, n)
}

macro_rules! bind_query {
    ($q:expr, $query:expr, $with_cursor:expr) => {{
        let query: &$crate::audiences::ContactQuery = $query;
        let mut q = $q;
        for tag in &query.tags {
            q = q.bind(tag);
        }
        for index in &query.attribute_indexes {
            q = q.bind(index);
        }
        if let Some(l) = &query.language {
            q = q.bind(l);
        }
        for wanted in [
            &query.consent_marketing,
            &query.consent_utility,
            &query.consent_authentication,
        ] {
            if let Some(Some(state)) = wanted {
                q = q.bind(state);
            }
        }
        for value in [
            query.last_inbound_after,
            query.last_inbound_before,
            query.created_after,
            query.created_before,
        ]
        .into_iter()
        .flatten()
        {
            q = q.bind(value);
        }
        if $with_cursor && let Some(after) = &query.after {
            q = q.bind(after);
        }
        q
    }};
}
pub(crate) use bind_query;

macro_rules! audience_fns {
    ($conn:ty) => {
        /// Replaces a contact's tags.
        pub(crate) async fn replace_tags(
            conn: &mut $conn,
            workspace_id: &str,
            contact_id: &str,
            tags: &[String],
        ) -> $crate::Result<()> {
            sqlx::query("DELETE FROM contact_tags WHERE contact_id = $1")
                .bind(contact_id)
                .execute(&mut *conn)
                .await?;
            add_tags(conn, workspace_id, contact_id, tags).await
        }

        /// Adds tags a contact does not have yet.
        pub(crate) async fn add_tags(
            conn: &mut $conn,
            workspace_id: &str,
            contact_id: &str,
            tags: &[String],
        ) -> $crate::Result<()> {
            for tag in tags {
                sqlx::query(
                    "INSERT INTO contact_tags (contact_id, workspace_id, tag) VALUES ($1, $2, $3)
                     ON CONFLICT (contact_id, tag) DO NOTHING",
                )
                .bind(contact_id)
                .bind(workspace_id)
                .bind(tag)
                .execute(&mut *conn)
                .await?;
            }
            Ok(())
        }

        /// Writes attribute indexes `(field, index)`, replacing a field's earlier one;
        /// with `replace_all`, indexes of fields not given go.
        pub(crate) async fn write_attribute_indexes(
            conn: &mut $conn,
            workspace_id: &str,
            contact_id: &str,
            indexes: &[(String, Vec<u8>)],
            replace_all: bool,
        ) -> $crate::Result<()> {
            if replace_all {
                sqlx::query("DELETE FROM contact_attribute_index WHERE contact_id = $1")
                    .bind(contact_id)
                    .execute(&mut *conn)
                    .await?;
            }
            for (field, index) in indexes {
                sqlx::query(
                    "INSERT INTO contact_attribute_index (contact_id, workspace_id, field, value_index)
                     VALUES ($1, $2, $3, $4)
                     ON CONFLICT (contact_id, field) DO UPDATE SET value_index = excluded.value_index",
                )
                .bind(contact_id)
                .bind(workspace_id)
                .bind(field)
                .bind(index)
                .execute(&mut *conn)
                .await?;
            }
            Ok(())
        }

        /// Inserts a contact row with every column; `Conflict` when the phone or BSUID is taken.
        pub(crate) async fn insert_contact_row(
            conn: &mut $conn,
            c: &$crate::messaging::ContactRow,
        ) -> $crate::Result<()> {
            sqlx::query(
                "INSERT INTO contacts (id, workspace_id, phone_index, phone, name, attributes, content_key,
                    consent_marketing, consent_utility, consent_authentication, restricted,
                    last_inbound_at, created_at, updated_at, user_id_index, user_id,
                    parent_user_id_index, parent_user_id, username, language, time_zone)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21)",
            )
            .bind(&c.id)
            .bind(&c.workspace_id)
            .bind(&c.phone_index)
            .bind(&c.phone)
            .bind(&c.name)
            .bind(&c.attributes)
            .bind(&c.content_key)
            .bind(&c.consent_marketing)
            .bind(&c.consent_utility)
            .bind(&c.consent_authentication)
            .bind(c.restricted)
            .bind(c.last_inbound_at)
            .bind(c.created_at)
            .bind(c.updated_at)
            .bind(&c.user_id_index)
            .bind(&c.user_id)
            .bind(&c.parent_user_id_index)
            .bind(&c.parent_user_id)
            .bind(&c.username)
            .bind(&c.language)
            .bind(&c.time_zone)
            .execute(&mut *conn)
            .await
            .map_err(|e| {
                $crate::StoreError::conflict_on_unique(
                    e,
                    "a contact with this phone number or user id exists",
                )
            })?;
            Ok(())
        }

        /// Updates what a profile holds: name, attributes, restriction, language, time
        /// zone and consent state; `NotFound` when the contact is gone.
        pub(crate) async fn update_contact_profile_row(
            conn: &mut $conn,
            c: &$crate::messaging::ContactRow,
        ) -> $crate::Result<()> {
            let done = sqlx::query(
                "UPDATE contacts SET name = $3, attributes = $4, restricted = $5, updated_at = $6,
                    language = $7, time_zone = $8, consent_marketing = $9
                 WHERE workspace_id = $1 AND id = $2",
            )
            .bind(&c.workspace_id)
            .bind(&c.id)
            .bind(&c.name)
            .bind(&c.attributes)
            .bind(c.restricted)
            .bind(c.updated_at)
            .bind(&c.language)
            .bind(&c.time_zone)
            .bind(&c.consent_marketing)
            .execute(&mut *conn)
            .await?;
            if done.rows_affected() == 0 {
                return Err($crate::StoreError::NotFound("contact"));
            }
            Ok(())
        }
    };
}
pub(crate) use audience_fns;

macro_rules! audience_store_impl {
    ($store:ty, $append_audit:path) => {
        #[async_trait::async_trait]
        impl $crate::audiences::AudienceStore for $store {
            async fn create_contact_field(
                &self,
                f: &$crate::audiences::ContactFieldRow,
                audit: waypost_core::NewAuditEvent,
            ) -> $crate::Result<()> {
                let mut tx = self.write_tx().await?;
                sqlx::query(
                    "INSERT INTO contact_fields (workspace_id, field_key, field_type, created_at)
                     VALUES ($1, $2, $3, $4)",
                )
                .bind(&f.workspace_id)
                .bind(&f.field_key)
                .bind(&f.field_type)
                .bind(f.created_at)
                .execute(&mut *tx)
                .await
                .map_err(|e| {
                    $crate::StoreError::conflict_on_unique(e, "a field with this key exists")
                })?;
                $append_audit(&mut *tx, audit).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn list_contact_fields(
                &self,
                workspace_id: &str,
            ) -> $crate::Result<Vec<$crate::audiences::ContactFieldRow>> {
                Ok(sqlx::query_as(
                    "SELECT workspace_id, field_key, field_type, created_at FROM contact_fields
                     WHERE workspace_id = $1 ORDER BY field_key",
                )
                .bind(workspace_id)
                .fetch_all(self.reads())
                .await?)
            }

            async fn contact_tags(
                &self,
                ids: &[String],
            ) -> $crate::Result<Vec<(String, String)>> {
                if ids.is_empty() {
                    return Ok(Vec::new());
                }
                let ids = $crate::padded(ids);
                let sql = format!(
                    "SELECT contact_id, tag FROM contact_tags WHERE contact_id IN ({})
                     ORDER BY contact_id, tag",
                    $crate::placeholders(1, ids.len())
                );
                let mut q = sqlx::query_as(&sql);
                for id in ids {
                    q = q.bind(id);
                }
                Ok(q.fetch_all(self.reads()).await?)
            }

            async fn write_contact_profile(
                &self,
                w: &$crate::audiences::ContactProfileWrite,
            ) -> $crate::Result<()> {
                let c = &w.contact;
                let mut tx = self.write_tx().await?;
                if w.new {
                    insert_contact_row(&mut *tx, c).await?;
                } else {
                    update_contact_profile_row(&mut *tx, c).await?;
                }
                if let Some(tags) = &w.tags {
                    replace_tags(&mut *tx, &c.workspace_id, &c.id, tags).await?;
                }
                if let Some(indexes) = &w.attribute_indexes {
                    write_attribute_indexes(&mut *tx, &c.workspace_id, &c.id, indexes, true)
                        .await?;
                }
                $append_audit(&mut *tx, w.audit.clone()).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn find_contacts(
                &self,
                workspace_id: &str,
                query: &$crate::audiences::ContactQuery,
                limit: u32,
            ) -> $crate::Result<Vec<$crate::messaging::ContactRow>> {
                let (conditions, n) = $crate::audiences::query_conditions(query, true);
                let columns = $crate::messaging::CONTACT_COLUMNS
                    .split(", ")
                    .map(|c| format!("c.{}", c.trim()))
                    .collect::<Vec<_>>()
                    .join(", ");
                let sql = format!(
                    "SELECT {columns} FROM contacts c WHERE c.workspace_id = $1{conditions}
                     ORDER BY c.id LIMIT ${}",
                    n + 1
                );
                let q = $crate::audiences::bind_query!(
                    sqlx::query_as(&sql).bind(workspace_id),
                    query,
                    true
                );
                Ok(q.bind(limit as i64).fetch_all(self.reads()).await?)
            }

            async fn count_contacts(
                &self,
                workspace_id: &str,
                query: &$crate::audiences::ContactQuery,
            ) -> $crate::Result<$crate::audiences::AudienceCounts> {
                let (conditions, _) = $crate::audiences::query_conditions(query, false);
                let sql = format!(
                    "SELECT COUNT(*),
                        COALESCE(SUM(CASE WHEN c.consent_marketing = 'opted_in' AND NOT c.restricted THEN 1 ELSE 0 END), 0)
                     FROM contacts c WHERE c.workspace_id = $1{conditions}"
                );
                let (contacts, marketing_consent): (i64, i64) = $crate::audiences::bind_query!(
                    sqlx::query_as(&sql).bind(workspace_id),
                    query,
                    false
                )
                .fetch_one(self.reads())
                .await?;
                Ok($crate::audiences::AudienceCounts {
                    contacts,
                    marketing_consent,
                })
            }

            async fn create_segment(
                &self,
                s: &$crate::audiences::SegmentRow,
                audit: waypost_core::NewAuditEvent,
            ) -> $crate::Result<()> {
                let mut tx = self.write_tx().await?;
                sqlx::query(
                    "INSERT INTO segments (id, workspace_id, name, definition, created_at, updated_at)
                     VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(&s.id)
                .bind(&s.workspace_id)
                .bind(&s.name)
                .bind(&s.definition)
                .bind(s.created_at)
                .bind(s.updated_at)
                .execute(&mut *tx)
                .await
                .map_err(|e| {
                    $crate::StoreError::conflict_on_unique(e, "a segment with this name exists")
                })?;
                $append_audit(&mut *tx, audit).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn get_segment(
                &self,
                workspace_id: &str,
                id: &str,
            ) -> $crate::Result<$crate::audiences::SegmentRow> {
                sqlx::query_as(
                    "SELECT id, workspace_id, name, definition, created_at, updated_at FROM segments
                     WHERE workspace_id = $1 AND id = $2",
                )
                .bind(workspace_id)
                .bind(id)
                .fetch_optional(self.reads())
                .await?
                .ok_or($crate::StoreError::NotFound("segment"))
            }

            async fn list_segments(
                &self,
                workspace_id: &str,
                after: Option<&str>,
                limit: u32,
            ) -> $crate::Result<Vec<$crate::audiences::SegmentRow>> {
                Ok(sqlx::query_as(
                    "SELECT id, workspace_id, name, definition, created_at, updated_at FROM segments
                     WHERE workspace_id = $1 AND id > $2 ORDER BY id LIMIT $3",
                )
                .bind(workspace_id)
                .bind(after.unwrap_or(""))
                .bind(limit as i64)
                .fetch_all(self.reads())
                .await?)
            }

            async fn delete_segment(
                &self,
                workspace_id: &str,
                id: &str,
                audit: waypost_core::NewAuditEvent,
            ) -> $crate::Result<()> {
                let mut tx = self.write_tx().await?;
                let done = sqlx::query("DELETE FROM segments WHERE workspace_id = $1 AND id = $2")
                    .bind(workspace_id)
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                if done.rows_affected() == 0 {
                    return Err($crate::StoreError::NotFound("segment"));
                }
                $append_audit(&mut *tx, audit).await?;
                tx.commit().await?;
                Ok(())
            }
        }
    };
}
pub(crate) use audience_store_impl;
