//! Customer webhook endpoints, their delivery queue and attempt log, and the
//! storage trait the API and the webhook deliverer use.
//!
//! The fan-out turns each customer event into one delivery row per matching
//! enabled endpoint and marks the event, in one transaction (PostgreSQL claims
//! events with `FOR UPDATE SKIP LOCKED`, so several nodes can fan out). A
//! delivery is claimed with a lease naming its worker, taken only if the row
//! is still free when the lease is written; deliveries sharing an ordering key (the
//! event's subject, or one key per replay) wait for every earlier pending one
//! of the same endpoint, so a message's events reach an endpoint in order.
//! Endpoint secrets arrive encrypted by the caller. As elsewhere, the SQL is
//! written once and instantiated per backend by `webhook_store_impl!`.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use waypost_core::NewAuditEvent;

use crate::Result;
use crate::events::NewCustomerEvent;

/// The most endpoints one workspace may hold; lists stay bounded.
pub const MAX_ENDPOINTS_PER_WORKSPACE: i64 = 50;

#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct WebhookEndpointRecord {
    /// `whep_<ulid>`.
    pub id: String,
    pub workspace_id: String,
    pub url: String,
    pub description: String,
    /// Space-separated event type names; empty: every type.
    pub event_types: String,
    pub enabled: bool,
    /// Encrypted `whsec_…`, AAD `(webhook_endpoints, secret, id)`.
    pub secret: Vec<u8>,
    /// Encrypted, AAD `(webhook_endpoints, previous_secret, id)`.
    pub previous_secret: Option<Vec<u8>>,
    pub previous_secret_expires_at: Option<DateTime<Utc>>,
    /// Start of the current run of failures; `None` after a success.
    pub first_failure_at: Option<DateTime<Utc>>,
    pub disabled_reason: Option<String>,
    pub last_replay_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl WebhookEndpointRecord {
    /// A new enabled endpoint for every event type, with no history.
    pub fn new(
        id: String,
        workspace_id: String,
        url: String,
        secret: Vec<u8>,
        now: DateTime<Utc>,
    ) -> Self {
        WebhookEndpointRecord {
            id,
            workspace_id,
            url,
            description: String::new(),
            event_types: String::new(),
            enabled: true,
            secret,
            previous_secret: None,
            previous_secret_expires_at: None,
            first_failure_at: None,
            disabled_reason: None,
            last_replay_at: None,
            created_at: now,
            updated_at: now,
        }
    }
}

/// Changes to an endpoint; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct WebhookEndpointPatch {
    pub url: Option<String>,
    pub description: Option<String>,
    pub event_types: Option<String>,
    /// `Some(true)` also forgets the failure run and the reason it was disabled.
    pub enabled: Option<bool>,
}

/// A delivery claimed by a worker, with what it needs to make the attempt.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DueDelivery {
    pub delivery_id: i64,
    pub endpoint_id: String,
    pub workspace_id: String,
    pub event_id: String,
    pub event_type: String,
    pub event_created_at: DateTime<Utc>,
    /// The encrypted event `data`.
    pub payload: Vec<u8>,
    /// Held inbound content (see [`crate::events::NewCustomerEvent::content`]).
    pub content: Option<Vec<u8>>,
    pub content_contact_id: Option<String>,
    /// Attempts made before this one.
    pub attempts: i32,
    pub url: String,
    pub secret: Vec<u8>,
    pub previous_secret: Option<Vec<u8>>,
    pub previous_secret_expires_at: Option<DateTime<Utc>>,
}

/// What happens to a delivery after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryNext {
    Succeeded,
    RetryAt(DateTime<Utc>),
    /// No retries left (or the endpoint is gone): stop.
    Exhausted,
}

/// One attempt's result, recorded with the delivery's new state.
#[derive(Debug, Clone)]
pub struct WebhookAttemptOutcome {
    /// `wha_<ulid>`.
    pub id: String,
    pub delivery_id: i64,
    pub endpoint_id: String,
    pub workspace_id: String,
    pub event_id: String,
    pub attempted_at: DateTime<Utc>,
    pub status_code: Option<i32>,
    pub latency_ms: i64,
    pub response_excerpt: Option<String>,
    pub error_class: Option<String>,
    pub next: DeliveryNext,
}

/// A recorded attempt.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct WebhookAttemptRecord {
    pub id: String,
    pub delivery_id: i64,
    pub endpoint_id: String,
    pub event_id: String,
    pub attempted_at: DateTime<Utc>,
    pub status_code: Option<i32>,
    pub latency_ms: i64,
    pub response_excerpt: Option<String>,
    pub error_class: Option<String>,
    pub succeeded: bool,
}

/// Pending deliveries of one endpoint.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct WebhookQueueStat {
    pub endpoint_id: String,
    pub depth: i64,
    pub oldest_created_at: Option<DateTime<Utc>>,
}

#[async_trait]
pub trait WebhookStore {
    /// Adds an endpoint; `Conflict` at [`MAX_ENDPOINTS_PER_WORKSPACE`].
    async fn create_webhook_endpoint(
        &self,
        endpoint: &WebhookEndpointRecord,
        audit: NewAuditEvent,
    ) -> Result<()>;
    /// A workspace's endpoints, oldest first (bounded by [`MAX_ENDPOINTS_PER_WORKSPACE`]).
    async fn list_webhook_endpoints(
        &self,
        workspace_id: &str,
    ) -> Result<Vec<WebhookEndpointRecord>>;
    async fn get_webhook_endpoint(
        &self,
        workspace_id: &str,
        id: &str,
    ) -> Result<WebhookEndpointRecord>;
    async fn update_webhook_endpoint(
        &self,
        workspace_id: &str,
        id: &str,
        patch: &WebhookEndpointPatch,
        now: DateTime<Utc>,
        audit: NewAuditEvent,
    ) -> Result<WebhookEndpointRecord>;
    /// Replaces the secret if it still is `old_secret` (`Conflict` otherwise);
    /// the old one, re-encrypted by the caller, keeps signing until `previous_expires_at`.
    #[allow(clippy::too_many_arguments)]
    async fn rotate_webhook_secret(
        &self,
        workspace_id: &str,
        id: &str,
        old_secret: &[u8],
        new_secret: &[u8],
        previous_secret: &[u8],
        previous_expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
        audit: NewAuditEvent,
    ) -> Result<()>;
    /// Deletes the endpoint with its deliveries and attempts.
    async fn delete_webhook_endpoint(
        &self,
        workspace_id: &str,
        id: &str,
        audit: NewAuditEvent,
    ) -> Result<()>;
    /// Disables an enabled endpoint and records `events` (the `endpoint.disabled`
    /// event for the workspace's other endpoints); false when it was not enabled.
    async fn disable_webhook_endpoint(
        &self,
        id: &str,
        reason: &str,
        now: DateTime<Utc>,
        events: &[NewCustomerEvent],
        audit: NewAuditEvent,
    ) -> Result<bool>;
    /// Enabled endpoints failing without a success since before `before`: `(id, workspace_id)`.
    async fn webhook_endpoints_failing_since(
        &self,
        before: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<(String, String)>>;

    /// Fans out up to `limit` events not yet fanned out; returns how many events it took.
    async fn fan_out_customer_events(&self, now: DateTime<Utc>, limit: u32) -> Result<u64>;
    /// Records a `webhook.test` event and queues it for one endpoint only.
    async fn queue_webhook_test(
        &self,
        event: &NewCustomerEvent,
        endpoint_id: &str,
        now: DateTime<Utc>,
    ) -> Result<()>;
    /// Queues one event again for the workspace's matching enabled endpoints
    /// (or only `endpoint_id`); `NotFound` for an unknown event. Returns how many deliveries.
    async fn resend_customer_event(
        &self,
        workspace_id: &str,
        event_id: &str,
        endpoint_id: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<u64>;
    /// Queues, in order, up to `limit` of the workspace's events created at or
    /// after `since` for one endpoint, under one ordering key. `None` when the
    /// endpoint replayed after `not_after` (rate limit).
    #[allow(clippy::too_many_arguments)]
    async fn replay_webhook_endpoint(
        &self,
        workspace_id: &str,
        endpoint_id: &str,
        since: DateTime<Utc>,
        not_after: DateTime<Utc>,
        now: DateTime<Utc>,
        limit: u32,
        audit: NewAuditEvent,
    ) -> Result<Option<u64>>;

    /// Leases up to `limit` due deliveries to `worker` until `lease_until`,
    /// keeping each endpoint at most `per_endpoint` in flight: the leases of
    /// other workers count, and for `worker` itself its `open` attempts by
    /// endpoint (its finished attempts keep their leases until recorded, but
    /// no longer load the endpoint).
    async fn claim_webhook_deliveries(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: u32,
        per_endpoint: u32,
        worker: &str,
        open: &std::collections::HashMap<String, u32>,
    ) -> Result<Vec<DueDelivery>>;
    /// Records attempts and moves their deliveries on, in one transaction.
    async fn record_webhook_attempts(&self, outcomes: &[WebhookAttemptOutcome]) -> Result<()>;
    /// An endpoint's attempts, newest first, before the attempt id `before`.
    async fn list_webhook_attempts(
        &self,
        workspace_id: &str,
        endpoint_id: &str,
        before: Option<&str>,
        limit: u32,
    ) -> Result<Vec<WebhookAttemptRecord>>;
    /// Queue depth and oldest pending delivery per endpoint with pending work.
    async fn webhook_queue_stats(&self) -> Result<Vec<WebhookQueueStat>>;
    /// Deletes up to `limit` attempts, and finished deliveries, older than `before`.
    async fn purge_webhook_history(&self, before: DateTime<Utc>, limit: u32) -> Result<u64>;
    /// Refreshes the planner's view of a queue that grew fast (PostgreSQL
    /// would otherwise plan claims for the near-empty table it last sampled).
    async fn refresh_webhook_queue_statistics(&self) -> Result<()>;
}

pub(crate) const ENDPOINT_COLUMNS: &str = "id, workspace_id, url, description, event_types, enabled, secret, \
     previous_secret, previous_secret_expires_at, first_failure_at, disabled_reason, last_replay_at, \
     created_at, updated_at";

pub(crate) const ATTEMPT_COLUMNS: &str = "id, delivery_id, endpoint_id, event_id, attempted_at, \
     status_code, latency_ms, response_excerpt, error_class, succeeded";

/// Matches a space-separated type list against an event type (both backends).
pub(crate) const TYPE_FILTER: &str =
    "(w.event_types = '' OR (' ' || w.event_types || ' ') LIKE $TYPE ESCAPE '\\')";

/// `% <type> %` with LIKE wildcards escaped.
pub(crate) fn type_pattern(event_type: &str) -> String {
    let escaped = event_type
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_");
    format!("% {escaped} %")
}

pub(crate) fn with_type_param(sql: &str, n: usize) -> String {
    sql.replace("$TYPE", &format!("${n}"))
}

/// Matches each endpoint's type list against the joined event `e`'s type.
pub(crate) const EVENT_TYPE_FILTER: &str = "(w.event_types = '' OR (' ' || w.event_types || ' ') LIKE \
     ('% ' || replace(replace(replace(e.event_type, '\\', '\\\\'), '%', '\\%'), '_', '\\_') || ' %') ESCAPE '\\')";

/// Due deliveries a worker may lease, oldest first: those of enabled
/// endpoints with no earlier pending delivery under the same ordering key,
/// leaving out `full` endpoints (bound from `$3`) that have no room. Read
/// without row locks: a claim then leases only rows still free (so two
/// workers reading the same rows lease each at most once).
pub(crate) fn claim_sql(full: usize) -> String {
    let skip = if full == 0 {
        String::new()
    } else {
        format!(
            "AND d.endpoint_id NOT IN ({})",
            crate::placeholders(3, full)
        )
    };
    format!(
        "SELECT d.id, d.endpoint_id
         FROM webhook_deliveries d
         JOIN webhook_endpoints w ON w.id = d.endpoint_id
         WHERE d.state = 'pending' AND d.next_attempt_at <= $1
           AND (d.locked_until IS NULL OR d.locked_until <= $1)
           AND w.enabled {skip}
           AND NOT EXISTS (SELECT 1 FROM webhook_deliveries p
                           WHERE p.endpoint_id = d.endpoint_id AND p.ordering_key = d.ordering_key
                             AND p.state = 'pending' AND p.event_seq < d.event_seq)
         ORDER BY d.next_attempt_at, d.event_seq
         LIMIT $2"
    )
}

/// What a leased delivery's attempt needs; the `IN` list follows.
pub(crate) const DUE_SQL: &str =
    "SELECT d.id AS delivery_id, d.endpoint_id, d.workspace_id, d.event_id, \
        e.event_type, e.created_at AS event_created_at, e.payload, e.content, e.content_contact_id, d.attempts, w.url, w.secret, \
        w.previous_secret, w.previous_secret_expires_at
     FROM webhook_deliveries d
     JOIN webhook_endpoints w ON w.id = d.endpoint_id
     JOIN customer_events e ON e.id = d.event_id
     WHERE d.id IN";

/// Rows per multi-row `INSERT` of attempts (11 parameters each).
const ATTEMPT_ROWS_PER_INSERT: usize = 100;
/// Ids per `IN` list.
const IDS_PER_STATEMENT: usize = 500;

/// `INSERT INTO webhook_attempts … VALUES` for `rows` attempts.
pub(crate) fn insert_attempts_sql(rows: usize) -> String {
    let values: Vec<String> = (0..rows)
        .map(|r| format!("({})", crate::placeholders(r * 11 + 1, 11)))
        .collect();
    format!(
        "INSERT INTO webhook_attempts (id, delivery_id, endpoint_id, workspace_id, event_id, attempted_at,
            status_code, latency_ms, response_excerpt, error_class, succeeded) VALUES {}",
        values.join(", ")
    )
}

pub(crate) fn attempt_chunks(
    outcomes: &[WebhookAttemptOutcome],
) -> std::slice::Chunks<'_, WebhookAttemptOutcome> {
    outcomes.chunks(ATTEMPT_ROWS_PER_INSERT)
}

pub(crate) fn id_chunks(ids: &[i64]) -> std::slice::Chunks<'_, i64> {
    ids.chunks(IDS_PER_STATEMENT)
}

/// Implements [`WebhookStore`] for a backend with `reads()`, `writes()`,
/// `write_tx()`, given its `append_audit`, `insert_events` and the row-lock
/// clause for claiming events and deliveries (`FOR UPDATE SKIP LOCKED` or nothing).
macro_rules! webhook_store_impl {
    ($store:ty, $append:path, $insert:path, $claim_lock:literal) => {
        #[async_trait::async_trait]
        impl $crate::webhooks::WebhookStore for $store {
            async fn create_webhook_endpoint(
                &self,
                e: &$crate::webhooks::WebhookEndpointRecord,
                audit: waypost_core::NewAuditEvent,
            ) -> $crate::Result<()> {
                let mut tx = self.write_tx().await?;
                let held: i64 = sqlx::query_scalar("SELECT count(*) FROM webhook_endpoints WHERE workspace_id = $1")
                    .bind(&e.workspace_id)
                    .fetch_one(&mut *tx)
                    .await?;
                if held >= $crate::webhooks::MAX_ENDPOINTS_PER_WORKSPACE {
                    return Err($crate::StoreError::Conflict(format!(
                        "a workspace may hold at most {} webhook endpoints",
                        $crate::webhooks::MAX_ENDPOINTS_PER_WORKSPACE
                    )));
                }
                sqlx::query(
                    "INSERT INTO webhook_endpoints (id, workspace_id, url, description, event_types, enabled, secret, created_at, updated_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)",
                )
                .bind(&e.id)
                .bind(&e.workspace_id)
                .bind(&e.url)
                .bind(&e.description)
                .bind(&e.event_types)
                .bind(e.enabled)
                .bind(&e.secret)
                .bind(e.created_at)
                .execute(&mut *tx)
                .await?;
                $append(&mut tx, audit).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn list_webhook_endpoints(
                &self,
                workspace_id: &str,
            ) -> $crate::Result<Vec<$crate::webhooks::WebhookEndpointRecord>> {
                let sql = format!(
                    "SELECT {} FROM webhook_endpoints WHERE workspace_id = $1 ORDER BY created_at, id LIMIT $2",
                    $crate::webhooks::ENDPOINT_COLUMNS
                );
                Ok(sqlx::query_as(&sql)
                    .bind(workspace_id)
                    .bind($crate::webhooks::MAX_ENDPOINTS_PER_WORKSPACE)
                    .fetch_all(self.reads())
                    .await?)
            }

            async fn get_webhook_endpoint(
                &self,
                workspace_id: &str,
                id: &str,
            ) -> $crate::Result<$crate::webhooks::WebhookEndpointRecord> {
                let sql = format!(
                    "SELECT {} FROM webhook_endpoints WHERE workspace_id = $1 AND id = $2",
                    $crate::webhooks::ENDPOINT_COLUMNS
                );
                sqlx::query_as(&sql)
                    .bind(workspace_id)
                    .bind(id)
                    .fetch_optional(self.reads())
                    .await?
                    .ok_or($crate::StoreError::NotFound("webhook endpoint"))
            }

            async fn update_webhook_endpoint(
                &self,
                workspace_id: &str,
                id: &str,
                p: &$crate::webhooks::WebhookEndpointPatch,
                now: chrono::DateTime<chrono::Utc>,
                audit: waypost_core::NewAuditEvent,
            ) -> $crate::Result<$crate::webhooks::WebhookEndpointRecord> {
                let mut tx = self.write_tx().await?;
                let reenable = p.enabled == Some(true);
                let done = sqlx::query(
                    "UPDATE webhook_endpoints SET
                        url = COALESCE($3, url),
                        description = COALESCE($4, description),
                        event_types = COALESCE($5, event_types),
                        enabled = COALESCE($6, enabled),
                        first_failure_at = CASE WHEN $7 THEN NULL ELSE first_failure_at END,
                        disabled_reason = CASE WHEN $7 THEN NULL ELSE disabled_reason END,
                        updated_at = $8
                     WHERE workspace_id = $1 AND id = $2",
                )
                .bind(workspace_id)
                .bind(id)
                .bind(&p.url)
                .bind(&p.description)
                .bind(&p.event_types)
                .bind(p.enabled)
                .bind(reenable)
                .bind(now)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if done == 0 {
                    return Err($crate::StoreError::NotFound("webhook endpoint"));
                }
                $append(&mut tx, audit).await?;
                let sql = format!(
                    "SELECT {} FROM webhook_endpoints WHERE id = $1",
                    $crate::webhooks::ENDPOINT_COLUMNS
                );
                let updated = sqlx::query_as(&sql).bind(id).fetch_one(&mut *tx).await?;
                tx.commit().await?;
                Ok(updated)
            }

            async fn rotate_webhook_secret(
                &self,
                workspace_id: &str,
                id: &str,
                old_secret: &[u8],
                new_secret: &[u8],
                previous_secret: &[u8],
                previous_expires_at: chrono::DateTime<chrono::Utc>,
                now: chrono::DateTime<chrono::Utc>,
                audit: waypost_core::NewAuditEvent,
            ) -> $crate::Result<()> {
                let mut tx = self.write_tx().await?;
                let done = sqlx::query(
                    "UPDATE webhook_endpoints SET secret = $4, previous_secret = $5,
                        previous_secret_expires_at = $6, updated_at = $7
                     WHERE workspace_id = $1 AND id = $2 AND secret = $3",
                )
                .bind(workspace_id)
                .bind(id)
                .bind(old_secret)
                .bind(new_secret)
                .bind(previous_secret)
                .bind(previous_expires_at)
                .bind(now)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if done == 0 {
                    return Err($crate::StoreError::Conflict(
                        "the secret changed meanwhile; rotate again".into(),
                    ));
                }
                $append(&mut tx, audit).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn delete_webhook_endpoint(
                &self,
                workspace_id: &str,
                id: &str,
                audit: waypost_core::NewAuditEvent,
            ) -> $crate::Result<()> {
                let mut tx = self.write_tx().await?;
                let done = sqlx::query("DELETE FROM webhook_endpoints WHERE workspace_id = $1 AND id = $2")
                    .bind(workspace_id)
                    .bind(id)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                if done == 0 {
                    return Err($crate::StoreError::NotFound("webhook endpoint"));
                }
                $append(&mut tx, audit).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn disable_webhook_endpoint(
                &self,
                id: &str,
                reason: &str,
                now: chrono::DateTime<chrono::Utc>,
                events: &[$crate::events::NewCustomerEvent],
                audit: waypost_core::NewAuditEvent,
            ) -> $crate::Result<bool> {
                let mut tx = self.write_tx().await?;
                let done = sqlx::query(
                    "UPDATE webhook_endpoints SET enabled = $2, disabled_reason = $3, updated_at = $4
                     WHERE id = $1 AND enabled",
                )
                .bind(id)
                .bind(false)
                .bind(reason)
                .bind(now)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if done == 0 {
                    return Ok(false);
                }
                $insert(&mut *tx, events).await?;
                $append(&mut tx, audit).await?;
                tx.commit().await?;
                Ok(true)
            }

            async fn webhook_endpoints_failing_since(
                &self,
                before: chrono::DateTime<chrono::Utc>,
                limit: u32,
            ) -> $crate::Result<Vec<(String, String)>> {
                Ok(sqlx::query_as(
                    "SELECT id, workspace_id FROM webhook_endpoints
                     WHERE enabled AND first_failure_at IS NOT NULL AND first_failure_at <= $1
                     ORDER BY first_failure_at LIMIT $2",
                )
                .bind(before)
                .bind(limit as i64)
                .fetch_all(self.reads())
                .await?)
            }

            async fn fan_out_customer_events(
                &self,
                now: chrono::DateTime<chrono::Utc>,
                limit: u32,
            ) -> $crate::Result<u64> {
                let mut tx = self.write_tx().await?;
                if $crate::MigrationStore::backend(self) == $crate::Backend::Sqlite {
                    // One writer holds the database from `BEGIN IMMEDIATE` to commit, so
                    // both statements see the same oldest events; no row travels to
                    // the application and back.
                    let oldest = "SELECT seq FROM customer_events WHERE fanned_out_at IS NULL ORDER BY seq LIMIT $2";
                    let insert = format!(
                        "INSERT INTO webhook_deliveries (endpoint_id, workspace_id, event_id, event_seq, ordering_key,
                            state, attempts, next_attempt_at, created_at, updated_at)
                         SELECT w.id, e.workspace_id, e.id, e.seq, e.subject_id, 'pending', 0, $1, $1, $1
                         FROM customer_events e JOIN webhook_endpoints w ON w.workspace_id = e.workspace_id
                         WHERE e.seq IN ({oldest}) AND w.enabled AND {}",
                        $crate::webhooks::EVENT_TYPE_FILTER
                    );
                    sqlx::query(&insert).bind(now).bind(limit as i64).execute(&mut *tx).await?;
                    let mark = format!("UPDATE customer_events SET fanned_out_at = $1 WHERE seq IN ({oldest})");
                    let done = sqlx::query(&mark).bind(now).bind(limit as i64).execute(&mut *tx).await?;
                    tx.commit().await?;
                    return Ok(done.rows_affected());
                }
                let claim = concat!(
                    "SELECT seq FROM customer_events WHERE fanned_out_at IS NULL ORDER BY seq LIMIT $1 ",
                    $claim_lock
                );
                let seqs: Vec<i64> = sqlx::query_scalar(claim)
                    .bind(limit as i64)
                    .fetch_all(&mut *tx)
                    .await?;
                if seqs.is_empty() {
                    return Ok(0);
                }
                let list = $crate::placeholders(2, seqs.len());
                let insert = format!(
                    "INSERT INTO webhook_deliveries (endpoint_id, workspace_id, event_id, event_seq, ordering_key,
                        state, attempts, next_attempt_at, created_at, updated_at)
                     SELECT w.id, e.workspace_id, e.id, e.seq, e.subject_id, 'pending', 0, $1, $1, $1
                     FROM customer_events e JOIN webhook_endpoints w ON w.workspace_id = e.workspace_id
                     WHERE e.seq IN ({list}) AND w.enabled AND {}",
                    $crate::webhooks::EVENT_TYPE_FILTER
                );
                let mut q = sqlx::query(&insert).bind(now);
                for seq in &seqs {
                    q = q.bind(seq);
                }
                q.execute(&mut *tx).await?;
                let mark = format!("UPDATE customer_events SET fanned_out_at = $1 WHERE seq IN ({list})");
                let mut q = sqlx::query(&mark).bind(now);
                for seq in &seqs {
                    q = q.bind(seq);
                }
                q.execute(&mut *tx).await?;
                tx.commit().await?;
                Ok(seqs.len() as u64)
            }

            async fn queue_webhook_test(
                &self,
                event: &$crate::events::NewCustomerEvent,
                endpoint_id: &str,
                now: chrono::DateTime<chrono::Utc>,
            ) -> $crate::Result<()> {
                let mut tx = self.write_tx().await?;
                $insert(&mut *tx, std::slice::from_ref(event)).await?;
                let seq: i64 = sqlx::query_scalar(
                    "UPDATE customer_events SET fanned_out_at = $2 WHERE id = $1 RETURNING seq",
                )
                .bind(&event.id)
                .bind(now)
                .fetch_one(&mut *tx)
                .await?;
                let done = sqlx::query(
                    "INSERT INTO webhook_deliveries (endpoint_id, workspace_id, event_id, event_seq, ordering_key,
                        state, attempts, next_attempt_at, created_at, updated_at)
                     SELECT w.id, w.workspace_id, $2, $3, NULL, 'pending', 0, $4, $4, $4
                     FROM webhook_endpoints w WHERE w.id = $1 AND w.workspace_id = $5",
                )
                .bind(endpoint_id)
                .bind(&event.id)
                .bind(seq)
                .bind(now)
                .bind(&event.workspace_id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if done == 0 {
                    return Err($crate::StoreError::NotFound("webhook endpoint"));
                }
                tx.commit().await?;
                Ok(())
            }

            async fn resend_customer_event(
                &self,
                workspace_id: &str,
                event_id: &str,
                endpoint_id: Option<&str>,
                now: chrono::DateTime<chrono::Utc>,
            ) -> $crate::Result<u64> {
                let mut tx = self.write_tx().await?;
                let event: Option<(i64, String)> = sqlx::query_as(
                    "SELECT seq, event_type FROM customer_events WHERE workspace_id = $1 AND id = $2",
                )
                .bind(workspace_id)
                .bind(event_id)
                .fetch_optional(&mut *tx)
                .await?;
                let Some((seq, event_type)) = event else {
                    return Err($crate::StoreError::NotFound("event"));
                };
                let insert = $crate::webhooks::with_type_param(
                    &format!(
                        "INSERT INTO webhook_deliveries (endpoint_id, workspace_id, event_id, event_seq, ordering_key,
                            state, attempts, next_attempt_at, created_at, updated_at)
                         SELECT w.id, $1, $2, $3, NULL, 'pending', 0, $4, $4, $4 FROM webhook_endpoints w
                         WHERE w.workspace_id = $1 AND w.enabled AND ($5 IS NULL OR w.id = $5) AND {}",
                        $crate::webhooks::TYPE_FILTER
                    ),
                    6,
                );
                let queued = sqlx::query(&insert)
                    .bind(workspace_id)
                    .bind(event_id)
                    .bind(seq)
                    .bind(now)
                    .bind(endpoint_id)
                    .bind($crate::webhooks::type_pattern(&event_type))
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                tx.commit().await?;
                Ok(queued)
            }

            async fn replay_webhook_endpoint(
                &self,
                workspace_id: &str,
                endpoint_id: &str,
                since: chrono::DateTime<chrono::Utc>,
                not_after: chrono::DateTime<chrono::Utc>,
                now: chrono::DateTime<chrono::Utc>,
                limit: u32,
                audit: waypost_core::NewAuditEvent,
            ) -> $crate::Result<Option<u64>> {
                let mut tx = self.write_tx().await?;
                let exists: Option<(String,)> = sqlx::query_as(
                    "SELECT id FROM webhook_endpoints WHERE workspace_id = $1 AND id = $2",
                )
                .bind(workspace_id)
                .bind(endpoint_id)
                .fetch_optional(&mut *tx)
                .await?;
                if exists.is_none() {
                    return Err($crate::StoreError::NotFound("webhook endpoint"));
                }
                let stamped = sqlx::query(
                    "UPDATE webhook_endpoints SET last_replay_at = $2
                     WHERE id = $1 AND (last_replay_at IS NULL OR last_replay_at <= $3)",
                )
                .bind(endpoint_id)
                .bind(now)
                .bind(not_after)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if stamped == 0 {
                    return Ok(None);
                }
                // One key per replay (the rate limit allows one per endpoint at a time).
                let key = format!(
                    "replay:{endpoint_id}:{}",
                    now.timestamp_nanos_opt().unwrap_or_default()
                );
                let sql = format!(
                    "INSERT INTO webhook_deliveries (endpoint_id, workspace_id, event_id, event_seq, ordering_key,
                        state, attempts, next_attempt_at, created_at, updated_at)
                     SELECT w.id, e.workspace_id, e.id, e.seq, $3, 'pending', 0, $4, $4, $4
                     FROM customer_events e JOIN webhook_endpoints w ON w.id = $2
                     WHERE e.workspace_id = $1 AND e.created_at >= $5 AND e.event_type <> 'webhook.test'
                       AND {}
                     ORDER BY e.seq LIMIT $6",
                    $crate::webhooks::EVENT_TYPE_FILTER
                );
                let queued = sqlx::query(&sql)
                .bind(workspace_id)
                .bind(endpoint_id)
                .bind(&key)
                .bind(now)
                .bind(since)
                .bind(limit as i64)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                $append(&mut tx, audit).await?;
                tx.commit().await?;
                Ok(Some(queued))
            }

            async fn claim_webhook_deliveries(
                &self,
                now: chrono::DateTime<chrono::Utc>,
                lease_until: chrono::DateTime<chrono::Utc>,
                limit: u32,
                per_endpoint: u32,
                worker: &str,
                open: &std::collections::HashMap<String, u32>,
            ) -> $crate::Result<Vec<$crate::webhooks::DueDelivery>> {
                // No transaction: the reads may go stale, and the lease takes only rows
                // still free when it is written, so a claim never waits on the writer.
                let mut in_flight: std::collections::HashMap<String, i64> = sqlx::query_as(
                    "SELECT endpoint_id, count(*) FROM webhook_deliveries
                     WHERE state = 'pending' AND locked_until IS NOT NULL AND locked_until > $1
                       AND (locked_by IS NULL OR locked_by <> $2)
                     GROUP BY endpoint_id",
                )
                .bind(now)
                .bind(worker)
                .fetch_all(self.reads())
                .await?
                .into_iter()
                .collect();
                for (endpoint_id, n) in open {
                    *in_flight.entry(endpoint_id.clone()).or_insert(0) += i64::from(*n);
                }
                let full: Vec<&String> = in_flight
                    .iter()
                    .filter(|(_, n)| **n >= per_endpoint as i64)
                    .map(|(id, _)| id)
                    .collect();
                let sql = $crate::webhooks::claim_sql(full.len());
                let mut q = sqlx::query_as(&sql).bind(now).bind(limit as i64);
                for id in &full {
                    q = q.bind(*id);
                }
                let candidates: Vec<(i64, String)> = q.fetch_all(self.reads()).await?;
                let mut room = in_flight;
                let mut ids = Vec::new();
                for (id, endpoint_id) in candidates {
                    if ids.len() >= limit as usize {
                        break;
                    }
                    let used = room.entry(endpoint_id).or_insert(0);
                    if *used < per_endpoint as i64 {
                        *used += 1;
                        ids.push(id);
                    }
                }
                if ids.is_empty() {
                    return Ok(Vec::new());
                }
                let mut claimed = Vec::with_capacity(ids.len());
                for chunk in $crate::webhooks::id_chunks(&ids) {
                    let chunk = $crate::padded(chunk);
                    // Skips rows another worker is leasing right now instead of waiting for them.
                    let lease = format!(
                        "UPDATE webhook_deliveries SET locked_until = $1, locked_by = $2
                         WHERE id IN (SELECT id FROM webhook_deliveries
                                      WHERE state = 'pending' AND (locked_until IS NULL OR locked_until <= $3)
                                        AND id IN ({}) {})
                         RETURNING id",
                        $crate::placeholders(4, chunk.len()),
                        $claim_lock
                    );
                    let mut q = sqlx::query_scalar(&lease).bind(lease_until).bind(worker).bind(now);
                    for id in chunk {
                        q = q.bind(id);
                    }
                    let leased: Vec<i64> = q.fetch_all(self.writes()).await?;
                    if leased.is_empty() {
                        continue;
                    }
                    let leased = $crate::padded(&leased);
                    let read = format!(
                        "{} ({}) ORDER BY d.next_attempt_at, d.event_seq",
                        $crate::webhooks::DUE_SQL,
                        $crate::placeholders(1, leased.len())
                    );
                    let mut q = sqlx::query_as::<_, $crate::webhooks::DueDelivery>(&read);
                    for id in leased {
                        q = q.bind(*id);
                    }
                    claimed.extend(q.fetch_all(self.reads()).await?);
                }
                Ok(claimed)
            }

            async fn record_webhook_attempts(
                &self,
                outcomes: &[$crate::webhooks::WebhookAttemptOutcome],
            ) -> $crate::Result<()> {
                use $crate::webhooks::DeliveryNext;
                if outcomes.is_empty() {
                    return Ok(());
                }
                let mut tx = self.write_tx().await?;
                for chunk in $crate::webhooks::attempt_chunks(outcomes) {
                    let sql = $crate::webhooks::insert_attempts_sql(chunk.len());
                    let mut q = sqlx::query(&sql);
                    for o in chunk {
                        q = q
                            .bind(&o.id)
                            .bind(o.delivery_id)
                            .bind(&o.endpoint_id)
                            .bind(&o.workspace_id)
                            .bind(&o.event_id)
                            .bind(o.attempted_at)
                            .bind(o.status_code)
                            .bind(o.latency_ms)
                            .bind(&o.response_excerpt)
                            .bind(&o.error_class)
                            .bind(o.next == DeliveryNext::Succeeded);
                    }
                    q.execute(&mut *tx).await?;
                }
                // Successes, the common case, move on together, stamped with the latest attempt.
                let succeeded: Vec<i64> = outcomes
                    .iter()
                    .filter(|o| o.next == DeliveryNext::Succeeded)
                    .map(|o| o.delivery_id)
                    .collect();
                let latest = outcomes.iter().map(|o| o.attempted_at).max();
                for chunk in $crate::webhooks::id_chunks(&succeeded) {
                    let chunk = $crate::padded(chunk);
                    let sql = format!(
                        "UPDATE webhook_deliveries SET state = 'succeeded', attempts = attempts + 1,
                            next_attempt_at = $1, locked_until = NULL, locked_by = NULL, updated_at = $1 WHERE id IN ({})",
                        $crate::placeholders(2, chunk.len())
                    );
                    let mut q = sqlx::query(&sql).bind(latest);
                    for id in chunk {
                        q = q.bind(id);
                    }
                    q.execute(&mut *tx).await?;
                }
                // Per endpoint: did any attempt succeed, and when did the first one fail.
                let mut health: std::collections::HashMap<&str, (bool, Option<chrono::DateTime<chrono::Utc>>)> =
                    Default::default();
                for o in outcomes {
                    let h = health.entry(o.endpoint_id.as_str()).or_insert((false, None));
                    let (state, next_at) = match o.next {
                        DeliveryNext::Succeeded => {
                            h.0 = true;
                            continue;
                        }
                        DeliveryNext::RetryAt(at) => ("pending", at),
                        DeliveryNext::Exhausted => ("exhausted", o.attempted_at),
                    };
                    if h.1.is_none_or(|t| o.attempted_at < t) {
                        h.1 = Some(o.attempted_at);
                    }
                    sqlx::query(
                        "UPDATE webhook_deliveries SET state = $2, attempts = attempts + 1, next_attempt_at = $3,
                            locked_until = NULL, locked_by = NULL, updated_at = $4 WHERE id = $1",
                    )
                    .bind(o.delivery_id)
                    .bind(state)
                    .bind(next_at)
                    .bind(o.attempted_at)
                    .execute(&mut *tx)
                    .await?;
                }
                for (endpoint_id, (any_success, first_failure)) in health {
                    if any_success {
                        sqlx::query(
                            "UPDATE webhook_endpoints SET first_failure_at = NULL
                             WHERE id = $1 AND first_failure_at IS NOT NULL",
                        )
                        .bind(endpoint_id)
                        .execute(&mut *tx)
                        .await?;
                    } else if let Some(at) = first_failure {
                        sqlx::query(
                            "UPDATE webhook_endpoints SET first_failure_at = $2
                             WHERE id = $1 AND first_failure_at IS NULL",
                        )
                        .bind(endpoint_id)
                        .bind(at)
                        .execute(&mut *tx)
                        .await?;
                    }
                }
                tx.commit().await?;
                Ok(())
            }

            async fn list_webhook_attempts(
                &self,
                workspace_id: &str,
                endpoint_id: &str,
                before: Option<&str>,
                limit: u32,
            ) -> $crate::Result<Vec<$crate::webhooks::WebhookAttemptRecord>> {
                let sql = format!(
                    "SELECT {} FROM webhook_attempts WHERE workspace_id = $1 AND endpoint_id = $2
                       AND ($3 IS NULL OR id < $3) ORDER BY id DESC LIMIT $4",
                    $crate::webhooks::ATTEMPT_COLUMNS
                );
                Ok(sqlx::query_as(&sql)
                    .bind(workspace_id)
                    .bind(endpoint_id)
                    .bind(before)
                    .bind(limit as i64)
                    .fetch_all(self.reads())
                    .await?)
            }

            async fn webhook_queue_stats(
                &self,
            ) -> $crate::Result<Vec<$crate::webhooks::WebhookQueueStat>> {
                Ok(sqlx::query_as(
                    "SELECT endpoint_id, count(*) AS depth, min(created_at) AS oldest_created_at
                     FROM webhook_deliveries WHERE state = 'pending' GROUP BY endpoint_id LIMIT 10000",
                )
                .fetch_all(self.reads())
                .await?)
            }

            async fn refresh_webhook_queue_statistics(&self) -> $crate::Result<()> {
                if self.backend() == $crate::Backend::Postgres {
                    sqlx::query("ANALYZE webhook_deliveries")
                        .execute(self.writes())
                        .await?;
                }
                Ok(())
            }

            async fn purge_webhook_history(
                &self,
                before: chrono::DateTime<chrono::Utc>,
                limit: u32,
            ) -> $crate::Result<u64> {
                let attempts = sqlx::query(
                    "DELETE FROM webhook_attempts WHERE id IN
                        (SELECT id FROM webhook_attempts WHERE attempted_at < $1 ORDER BY attempted_at LIMIT $2)",
                )
                .bind(before)
                .bind(limit as i64)
                .execute(self.writes())
                .await?
                .rows_affected();
                let deliveries = sqlx::query(
                    "DELETE FROM webhook_deliveries WHERE id IN
                        (SELECT d.id FROM webhook_deliveries d WHERE d.state <> 'pending' AND d.updated_at < $1
                           AND NOT EXISTS (SELECT 1 FROM webhook_attempts a WHERE a.delivery_id = d.id)
                         ORDER BY d.id LIMIT $2)",
                )
                .bind(before)
                .bind(limit as i64)
                .execute(self.writes())
                .await?
                .rows_affected();
                Ok(attempts + deliveries)
            }
        }
    };
}
pub(crate) use webhook_store_impl;
