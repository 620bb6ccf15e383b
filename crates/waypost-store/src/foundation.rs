//! Workspaces, data keys, the audit chain and idempotency records: SQL written
//! once with `$n` placeholders and instantiated for each backend by
//! `foundation_store_impl!`, like the identity tables.

/// Implements the foundation traits for a backend type with inherent `reads()`,
/// `writes()` and `write_tx()`, given its `append_audit(conn, event)` and the
/// row-lock clause its idempotency claim may use (`FOR UPDATE` or nothing).
macro_rules! foundation_store_impl {
    ($store:ty, $append:path, $for_update:literal) => {
#[async_trait::async_trait]
impl $crate::WorkspaceStore for $store {
    async fn create_workspace(&self, ws: &Workspace, audit: NewAuditEvent) -> Result<()> {
        let mut tx = self.write_tx().await?;
        sqlx::query(
            "INSERT INTO workspaces (id, name, created_at, updated_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(ws.id.to_string())
        .bind(&ws.name)
        .bind(ws.created_at)
        .bind(ws.updated_at)
        .execute(&mut *tx)
        .await
        .map_err(|e| StoreError::conflict_on_unique(e, "a workspace with this name exists"))?;
        $append(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn get_workspace(&self, id: WorkspaceId) -> Result<Workspace> {
        sqlx::query_as::<_, WorkspaceRow>(
            "SELECT id, name, created_at, updated_at FROM workspaces WHERE id = $1",
        )
        .bind(id.to_string())
        .fetch_optional(self.reads())
        .await?
        .ok_or(StoreError::NotFound("workspace"))?
        .try_into()
    }

    async fn find_workspace_by_name(&self, name: &str) -> Result<Workspace> {
        sqlx::query_as::<_, WorkspaceRow>(
            "SELECT id, name, created_at, updated_at FROM workspaces WHERE name = $1",
        )
        .bind(name)
        .fetch_optional(self.reads())
        .await?
        .ok_or(StoreError::NotFound("workspace"))?
        .try_into()
    }
}

#[async_trait::async_trait]
impl $crate::KeyStore for $store {
    async fn list_data_keys(&self) -> Result<Vec<StoredDataKey>> {
        let rows: Vec<(i32, Vec<u8>, DateTime<Utc>)> = sqlx::query_as(
            "SELECT version, wrapped_key, created_at FROM data_keys ORDER BY version",
        )
        .fetch_all(self.writes())
        .await?;
        Ok(rows
            .into_iter()
            .map(|(version, wrapped_key, created_at)| StoredDataKey {
                version: version as u32,
                wrapped_key,
                created_at,
            })
            .collect())
    }

    async fn insert_data_key(&self, key: &StoredDataKey, audit: NewAuditEvent) -> Result<()> {
        let mut tx = self.write_tx().await?;
        sqlx::query("INSERT INTO data_keys (version, wrapped_key, created_at) VALUES ($1, $2, $3)")
            .bind(key.version as i32)
            .bind(&key.wrapped_key)
            .bind(key.created_at)
            .execute(&mut *tx)
            .await
            .map_err(|e| StoreError::conflict_on_unique(e, "data key version exists"))?;
        $append(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn encrypted_values_after(
        &self,
        col: EncryptedColumn,
        after_id: Option<&str>,
        limit: u32,
    ) -> Result<Vec<EncryptedValue>> {
        // Identifiers come from the static ENCRYPTED_COLUMNS table, never from input.
        let sql = format!(
            "SELECT {id}, {c} FROM {t} WHERE {c} IS NOT NULL AND {id} > $1 ORDER BY {id} LIMIT $2",
            id = col.id_column,
            c = col.column,
            t = col.table
        );
        let rows: Vec<(String, Vec<u8>)> = sqlx::query_as(&sql)
            .bind(after_id.unwrap_or(""))
            .bind(limit as i64)
            .fetch_all(self.reads())
            .await?;
        Ok(rows
            .into_iter()
            .map(|(id, ciphertext)| EncryptedValue { id, ciphertext })
            .collect())
    }

    async fn replace_encrypted_value(
        &self,
        col: EncryptedColumn,
        id: &str,
        old: &[u8],
        new: &[u8],
    ) -> Result<bool> {
        let sql = format!(
            "UPDATE {t} SET {c} = $1 WHERE {id} = $2 AND {c} = $3",
            t = col.table,
            c = col.column,
            id = col.id_column
        );
        let done = sqlx::query(&sql)
            .bind(new)
            .bind(id)
            .bind(old)
            .execute(self.writes())
            .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn reencryption_progress(
        &self,
        target_version: u32,
        col: EncryptedColumn,
    ) -> Result<ReencryptionProgress> {
        let row: Option<(Option<String>, Option<DateTime<Utc>>)> = sqlx::query_as(
            "SELECT last_id, finished_at FROM reencryption_progress WHERE target_version = $1 AND column_name = $2",
        )
        .bind(target_version as i32)
        .bind(col.name())
        .fetch_optional(self.writes())
        .await?;
        Ok(row
            .map(|(last_id, finished_at)| ReencryptionProgress {
                last_id,
                finished_at,
            })
            .unwrap_or_default())
    }

    async fn save_reencryption_progress(
        &self,
        target_version: u32,
        col: EncryptedColumn,
        p: &ReencryptionProgress,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO reencryption_progress (target_version, column_name, last_id, finished_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (target_version, column_name) DO UPDATE SET last_id = excluded.last_id,
                finished_at = excluded.finished_at",
        )
        .bind(target_version as i32)
        .bind(col.name())
        .bind(&p.last_id)
        .bind(p.finished_at)
        .execute(self.writes())
        .await?;
        Ok(())
    }
}

const AUDIT_COLUMNS: &str = "id, chain, seq, workspace_id, actor_type, actor_id, action, target_type, target_id, \
     ip, user_agent, occurred_at, details, prev_hash, hash";

#[async_trait::async_trait]
impl $crate::AuditStore for $store {
    async fn append_audit_event(&self, event: NewAuditEvent) -> Result<AuditEvent> {
        let mut tx = self.write_tx().await?;
        let sealed = $append(&mut tx, event).await?;
        tx.commit().await?;
        Ok(sealed)
    }

    async fn audit_chain(
        &self,
        chain: &str,
        after_seq: i64,
        limit: u32,
    ) -> Result<Vec<AuditEvent>> {
        let sql = format!(
            "SELECT {AUDIT_COLUMNS} FROM audit_events WHERE chain = $1 AND seq > $2 ORDER BY seq LIMIT $3"
        );
        sqlx::query_as::<_, AuditRow>(&sql)
            .bind(chain)
            .bind(after_seq)
            .bind(limit as i64)
            .fetch_all(self.reads())
            .await?
            .into_iter()
            .map(AuditEvent::try_from)
            .collect()
    }
}

#[async_trait::async_trait]
impl $crate::IdempotencyStore for $store {
    async fn begin_idempotent_request(&self, claim: &IdempotencyClaim) -> Result<IdempotencyBegin> {
        let mut tx = self.write_tx().await?;
        let existing: Option<IdempotencyRow> = sqlx::query_as(
            concat!("SELECT id, request_hash, state, response_status, response_body, locked_until, expires_at
             FROM idempotency_records WHERE workspace_id = $1 AND idempotency_key = $2 ", $for_update),
        )
        .bind(claim.workspace_id.to_string())
        .bind(&claim.key)
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(row) = existing {
            match row.decide(claim) {
                Decision::Answer(answer) => return Ok(answer),
                Decision::Replace => {
                    sqlx::query("DELETE FROM idempotency_records WHERE id = $1")
                        .bind(&row.id)
                        .execute(&mut *tx)
                        .await?;
                }
            }
        }
        sqlx::query(
            "INSERT INTO idempotency_records (id, workspace_id, idempotency_key, request_hash, state, locked_until,
                created_at, expires_at) VALUES ($1, $2, $3, $4, 'in_progress', $5, $6, $7)",
        )
        .bind(&claim.id)
        .bind(claim.workspace_id.to_string())
        .bind(&claim.key)
        .bind(&claim.request_hash)
        .bind(claim.lock_until)
        .bind(claim.now)
        .bind(claim.expires_at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(IdempotencyBegin::Claimed)
    }

    async fn complete_idempotent_request(&self, id: &str, status: u16, body: &[u8]) -> Result<()> {
        let done = sqlx::query(
            "UPDATE idempotency_records SET state = 'completed', response_status = $1, response_body = $2 WHERE id = $3",
        )
        .bind(status as i32)
        .bind(body)
        .bind(id)
        .execute(self.writes())
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound("idempotency record"));
        }
        Ok(())
    }

    async fn release_idempotent_request(&self, id: &str) -> Result<()> {
        sqlx::query("DELETE FROM idempotency_records WHERE id = $1 AND state = 'in_progress'")
            .bind(id)
            .execute(self.writes())
            .await?;
        Ok(())
    }

    async fn purge_expired_idempotency_records(
        &self,
        now: DateTime<Utc>,
        limit: u32,
    ) -> Result<u64> {
        let done = sqlx::query(
            "DELETE FROM idempotency_records WHERE id IN
                (SELECT id FROM idempotency_records WHERE expires_at <= $1 ORDER BY expires_at LIMIT $2)",
        )
        .bind(now)
        .bind(limit as i64)
        .execute(self.writes())
        .await?;
        Ok(done.rows_affected())
    }
}

    };
}
pub(crate) use foundation_store_impl;

/// Defines `append_audit(conn, event)` for a backend: it extends the event's
/// chain inside the caller's transaction, after `$lock_chain(conn, chain)` has
/// made this transaction the chain's only writer until commit.
macro_rules! append_audit_fn {
    ($conn:ty, $lock_chain:path) => {
        /// Appends an event to its chain inside the caller's transaction.
        pub(crate) async fn append_audit(
            conn: &mut $conn,
            event: NewAuditEvent,
        ) -> Result<AuditEvent> {
            let sealed = seal_audits(&mut *conn, vec![event]).await?;
            insert_audits(&mut *conn, &sealed).await?;
            sealed
                .into_iter()
                .next()
                .ok_or_else(|| StoreError::Corrupt("an audit event was not sealed".into()))
        }

        /// Inserts sealed events, a multi-row statement per chunk.
        pub(crate) async fn insert_audits(conn: &mut $conn, sealed: &[AuditEvent]) -> Result<()> {
            for range in $crate::bulk::chunks(sealed.len()) {
                let sql = format!(
                    "INSERT INTO audit_events (id, chain, seq, workspace_id, actor_type, actor_id, action,
                        target_type, target_id, ip, user_agent, occurred_at, details, prev_hash, hash)
                     VALUES {}",
                    $crate::bulk::values(15, range.len())
                );
                let mut q = sqlx::query(&sql);
                for s in &sealed[range] {
                    q = q
                        .bind(s.id.to_string())
                        .bind(&s.chain)
                        .bind(s.seq)
                        .bind(s.workspace_id.map(|w| w.to_string()))
                        .bind(s.actor.kind())
                        .bind(s.actor.id())
                        .bind(&s.action)
                        .bind(&s.target_type)
                        .bind(&s.target_id)
                        .bind(&s.ip)
                        .bind(&s.user_agent)
                        .bind(s.occurred_at)
                        .bind(&s.details)
                        .bind(s.prev_hash.as_slice())
                        .bind(s.hash.as_slice());
                }
                q.execute(&mut *conn).await?;
            }
            Ok(())
        }

        /// Seals events onto their chains inside the caller's transaction, for
        /// the caller to insert before commit: one head lookup per chain. Chains
        /// are locked in name order so two batches never wait on each other in a cycle.
        pub(crate) async fn seal_audits(
            conn: &mut $conn,
            events: Vec<NewAuditEvent>,
        ) -> Result<Vec<AuditEvent>> {
            let mut chains: std::collections::BTreeMap<String, Vec<NewAuditEvent>> =
                Default::default();
            let mut mail = Vec::new();
            for mut e in events {
                mail.append(&mut e.mail);
                chains.entry(chain_name(e.workspace_id)).or_default().push(e);
            }
            // Mail a change sends commits with it (see `NewAuditEvent::mail`).
            for m in mail {
                sqlx::query(
                    "INSERT INTO mail_outbox (id, kind, recipient_hint, sealed, created_at, next_attempt_at)
                     VALUES ($1, $2, $3, $4, $5, $5)",
                )
                .bind(&m.id)
                .bind(m.kind.as_str())
                .bind(&m.recipient_hint)
                .bind(&m.sealed)
                .bind(m.created_at)
                .execute(&mut *conn)
                .await?;
            }
            let mut sealed = Vec::new();
            for (chain, events) in chains {
                $lock_chain(&mut *conn, &chain).await?;
                let last: Option<(i64, Vec<u8>)> = sqlx::query_as(
                    "SELECT seq, hash FROM audit_events WHERE chain = $1 ORDER BY seq DESC LIMIT 1",
                )
                .bind(&chain)
                .fetch_optional(&mut *conn)
                .await?;
                let (mut seq, mut prev) = match last {
                    None => (1, GENESIS_HASH),
                    Some((seq, hash)) => {
                        let prev = hash.try_into().map_err(|_| {
                            StoreError::Corrupt(format!("audit chain {chain} head hash"))
                        })?;
                        (seq + 1, prev)
                    }
                };
                for e in events {
                    let s = e.seal(seq, prev);
                    seq += 1;
                    prev = s.hash;
                    sealed.push(s);
                }
            }
            Ok(sealed)
        }
    };
}
pub(crate) use append_audit_fn;
