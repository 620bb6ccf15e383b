//! The writes of one import batch, many rows a statement: on PostgreSQL each
//! statement is a network round trip, and a batch of 500 rows written one
//! statement per contact, tag and consent record took some 2,000 of them.
//! Rows go in [`crate::bulk`]'s fixed chunks (at most 64 rows): SQLite looks up
//! each bound parameter's name in a list, so a statement with n parameters
//! costs n² to bind (500 contacts a statement spent three quarters of an
//! import there), and fixed sizes keep the prepared statements cached.
//!
//! Written once with `$n` placeholders and instantiated for both backends by
//! `import_write_fns!`. Updates join a `VALUES` list, whose columns both
//! backends name `column1`, `column2`, ….

macro_rules! import_write_fns {
    ($conn:ty) => {
        /// Inserts contacts with every column; `Conflict` when a phone or BSUID is taken.
        pub(crate) async fn insert_contact_rows(
            conn: &mut $conn,
            rows: &[&$crate::messaging::ContactRow],
        ) -> $crate::Result<()> {
            for range in $crate::bulk::chunks(rows.len()) {
                let chunk = &rows[range];
                let sql = format!(
                    "INSERT INTO contacts (id, workspace_id, phone_index, phone, name, attributes, content_key,
                        consent_marketing, consent_utility, consent_authentication, restricted,
                        last_inbound_at, created_at, updated_at, user_id_index, user_id,
                        parent_user_id_index, parent_user_id, username, language, time_zone)
                     VALUES {}",
                    $crate::bulk::values(21, chunk.len())
                );
                let mut q = sqlx::query(&sql);
                for c in chunk {
                    q = q
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
                        .bind(&c.time_zone);
                }
                q.execute(&mut *conn).await.map_err(|e| {
                    $crate::StoreError::conflict_on_unique(
                        e,
                        "a contact with this phone number or user id exists",
                    )
                })?;
            }
            Ok(())
        }

        /// Updates what a profile holds (name, attributes, restriction, language,
        /// time zone, marketing consent); `NotFound` when any contact is gone, so an
        /// erased contact is never written back.
        pub(crate) async fn update_contact_profile_rows(
            conn: &mut $conn,
            rows: &[&$crate::messaging::ContactRow],
        ) -> $crate::Result<()> {
            for range in $crate::bulk::chunks(rows.len()) {
                let chunk = &rows[range];
                let sql = format!(
                    "UPDATE contacts SET name = v.column3, attributes = v.column4, restricted = v.column5,
                        updated_at = v.column6, language = v.column7, time_zone = v.column8,
                        consent_marketing = v.column9
                     FROM (VALUES {}) AS v
                     WHERE contacts.workspace_id = v.column1 AND contacts.id = v.column2",
                    $crate::bulk::values(9, chunk.len())
                );
                let mut q = sqlx::query(&sql);
                for c in chunk {
                    q = q
                        .bind(&c.workspace_id)
                        .bind(&c.id)
                        .bind(&c.name)
                        .bind(&c.attributes)
                        .bind(c.restricted)
                        .bind(c.updated_at)
                        .bind(&c.language)
                        .bind(&c.time_zone)
                        .bind(&c.consent_marketing);
                }
                let done = q.execute(&mut *conn).await?;
                if done.rows_affected() < chunk.len() as u64 {
                    return Err($crate::StoreError::NotFound("contact"));
                }
            }
            Ok(())
        }

        /// Adds `(contact_id, tag)` pairs a contact does not have yet.
        pub(crate) async fn add_tag_rows(
            conn: &mut $conn,
            workspace_id: &str,
            tags: &[(&str, &str)],
        ) -> $crate::Result<()> {
            for range in $crate::bulk::chunks(tags.len()) {
                let chunk = &tags[range];
                let sql = format!(
                    "INSERT INTO contact_tags (contact_id, workspace_id, tag) VALUES {}
                     ON CONFLICT (contact_id, tag) DO NOTHING",
                    $crate::bulk::values(3, chunk.len())
                );
                let mut q = sqlx::query(&sql);
                for (contact_id, tag) in chunk {
                    q = q.bind(*contact_id).bind(workspace_id).bind(*tag);
                }
                q.execute(&mut *conn).await?;
            }
            Ok(())
        }

        /// Writes `(contact_id, field, index)` attribute indexes, replacing a
        /// field's earlier one. A pair given twice keeps its last index (PostgreSQL
        /// refuses to update one row twice in a statement).
        pub(crate) async fn write_attribute_index_rows(
            conn: &mut $conn,
            workspace_id: &str,
            indexes: &[(&str, &str, &[u8])],
        ) -> $crate::Result<()> {
            let mut last = std::collections::HashMap::new();
            for (i, (contact_id, field, _)) in indexes.iter().enumerate() {
                last.insert((*contact_id, *field), i);
            }
            let kept: Vec<_> = indexes
                .iter()
                .enumerate()
                .filter(|(i, (c, f, _))| last.get(&(*c, *f)) == Some(i))
                .map(|(_, row)| row)
                .collect();
            for range in $crate::bulk::chunks(kept.len()) {
                let chunk = &kept[range];
                let sql = format!(
                    "INSERT INTO contact_attribute_index (contact_id, workspace_id, field, value_index)
                     VALUES {}
                     ON CONFLICT (contact_id, field) DO UPDATE SET value_index = excluded.value_index",
                    $crate::bulk::values(4, chunk.len())
                );
                let mut q = sqlx::query(&sql);
                for (contact_id, field, index) in chunk {
                    q = q.bind(*contact_id).bind(workspace_id).bind(*field).bind(*index);
                }
                q.execute(&mut *conn).await?;
            }
            Ok(())
        }

        /// Appends consent records.
        pub(crate) async fn insert_consent_rows(
            conn: &mut $conn,
            rows: &[&$crate::messaging::ConsentRow],
        ) -> $crate::Result<()> {
            for range in $crate::bulk::chunks(rows.len()) {
                let chunk = &rows[range];
                let sql = format!(
                    "INSERT INTO contact_consents (id, workspace_id, contact_id, status, categories, source,
                        evidence, captured_at, recorded_at)
                     VALUES {}",
                    $crate::bulk::values(9, chunk.len())
                );
                let mut q = sqlx::query(&sql);
                for k in chunk {
                    q = q
                        .bind(&k.id)
                        .bind(&k.workspace_id)
                        .bind(&k.contact_id)
                        .bind(&k.status)
                        .bind(&k.categories)
                        .bind(&k.source)
                        .bind(&k.evidence)
                        .bind(k.captured_at)
                        .bind(k.recorded_at);
                }
                q.execute(&mut *conn).await?;
            }
            Ok(())
        }
    };
}
pub(crate) use import_write_fns;
