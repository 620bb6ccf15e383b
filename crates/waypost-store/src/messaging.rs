//! Channels, contacts and consent, and the acceptance and reading of messages.
//! Values arrive encrypted by the server; phone numbers are found by blind index.
//!
//! The SQL is written once with `$n` placeholders and instantiated for both
//! backends by `messaging_store_impl!`.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use waypost_core::NewAuditEvent;

use crate::Result;
use crate::events::NewCustomerEvent;

/// A channel: one business phone number at a provider. Secrets are ciphertexts
/// (table `channels`, their column name, the channel id).
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct ChannelRow {
    pub id: String,
    pub workspace_id: String,
    pub name: String,
    /// `cloud` or `sandbox`.
    pub provider: String,
    pub phone_number_id: String,
    pub waba_id: String,
    pub access_token: Vec<u8>,
    pub app_secret: Vec<u8>,
    pub verify_token: Vec<u8>,
    pub base_url: Option<String>,
    pub api_version: Option<String>,
    pub throughput_mps: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub deleted_at: Option<DateTime<Utc>>,
}

/// A contact, identified by its phone number and/or its business-scoped user
/// id (BSUID). `phone`, `user_id`, `parent_user_id`, `username`, `name`,
/// `attributes` and `content_key` are ciphertexts (table `contacts`); the
/// `*_index` columns are blind indexes of the number and the ids.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct ContactRow {
    pub id: String,
    pub workspace_id: String,
    pub phone_index: Option<Vec<u8>>,
    pub phone: Option<Vec<u8>>,
    pub user_id_index: Option<Vec<u8>>,
    pub user_id: Option<Vec<u8>>,
    pub parent_user_id_index: Option<Vec<u8>>,
    pub parent_user_id: Option<Vec<u8>>,
    pub username: Option<Vec<u8>>,
    pub name: Option<Vec<u8>>,
    pub attributes: Option<Vec<u8>>,
    pub content_key: Option<Vec<u8>>,
    pub consent_marketing: Option<String>,
    pub consent_utility: Option<String>,
    pub consent_authentication: Option<String>,
    pub restricted: bool,
    pub last_inbound_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// A language code in WhatsApp's form (`pt_BR`); plain, see `audiences`.
    pub language: Option<String>,
    /// An IANA time zone; plain, see `audiences`.
    pub time_zone: Option<String>,
}

/// One entry of a contact's consent history (`evidence` encrypted, table `contact_consents`).
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct ConsentRow {
    pub id: String,
    pub workspace_id: String,
    pub contact_id: String,
    pub status: String,
    /// Comma-separated: `marketing,utility,authentication`.
    pub categories: String,
    pub source: String,
    pub evidence: Option<Vec<u8>>,
    pub captured_at: DateTime<Utc>,
    pub recorded_at: DateTime<Utc>,
}

/// A contact's current consent per category, after a change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsentState {
    pub marketing: Option<String>,
    pub utility: Option<String>,
    pub authentication: Option<String>,
}

#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct MessageRow {
    pub id: String,
    pub workspace_id: String,
    pub channel_id: String,
    pub contact_id: String,
    /// `outbound` or `inbound`.
    pub direction: String,
    pub message_type: String,
    pub template_name: Option<String>,
    pub template_language: Option<String>,
    pub category: Option<String>,
    pub status: String,
    pub provider_message_id: Option<String>,
    pub error_code: Option<i64>,
    pub error_title: Option<String>,
    /// Retained content, encrypted with the contact's content key (table `messages`, column `content`).
    pub content: Option<Vec<u8>>,
    pub content_expires_at: Option<DateTime<Utc>>,
    pub shield_label: Option<String>,
    /// How the provider accepted the send (`accepted`, `held_for_quality_assessment`,
    /// `paused`), when its answer said; set by the dispatcher, never on insert.
    pub provider_acceptance: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// The recipient's country (ISO 3166-1 alpha-2) of an outbound message
    /// sent to a known number, for per-country prices; never the number.
    pub country: Option<String>,
}

/// One step of a message's status history.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct StatusRow {
    pub id: i64,
    pub message_id: String,
    pub status: String,
    pub provider_code: Option<i64>,
    pub provider_title: Option<String>,
    pub occurred_at: DateTime<Utc>,
    pub recorded_at: DateTime<Utc>,
}

/// An outbox row: the encrypted provider request of a message still to send
/// (table `outbox`, column `payload`, row = message id).
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct OutboxRow {
    pub message_id: String,
    pub workspace_id: String,
    pub channel_id: String,
    pub contact_id: String,
    pub payload: Vec<u8>,
    pub attempts: i64,
    pub next_attempt_at: DateTime<Utc>,
    pub deadline_at: DateTime<Utc>,
    pub lease_owner: Option<String>,
    pub lease_until: Option<DateTime<Utc>>,
    pub attempt_started_at: Option<DateTime<Utc>>,
    pub last_error_code: Option<i64>,
    pub last_error_title: Option<String>,
}

/// The stored answer of an accepted request, written with the message.
#[derive(Debug, Clone, PartialEq)]
pub struct NewIdempotencyRecord {
    pub id: String,
    pub key: String,
    pub request_hash: Vec<u8>,
    pub response_status: u16,
    /// Encrypted (table `idempotency_records`, column `response_body`, row `id`).
    pub response_body: Vec<u8>,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// Everything one accepted message writes, in one transaction.
#[derive(Debug, Clone)]
pub struct NewOutboundMessage {
    pub message: MessageRow,
    pub outbox: OutboxRow,
    pub idempotency: Option<NewIdempotencyRecord>,
    pub audit: NewAuditEvent,
    pub events: Vec<NewCustomerEvent>,
}

/// What happened to one message of an accepted batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AcceptOutcome {
    Accepted,
    /// Another request with the same idempotency key committed first; nothing was written.
    DuplicateKey,
}

/// Filters of the message list; `None` means any.
#[derive(Debug, Clone, Default)]
pub struct MessageFilter {
    pub channel_id: Option<String>,
    pub contact_id: Option<String>,
    pub status: Option<String>,
    pub direction: Option<String>,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
    /// Only ids after this one (the cursor), ascending.
    pub after: Option<String>,
}

/// A stored idempotency record, as the send path reads it before accepting.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct IdempotencyRow {
    pub id: String,
    pub request_hash: Vec<u8>,
    pub state: String,
    pub response_status: Option<i32>,
    pub response_body: Option<Vec<u8>>,
    pub expires_at: DateTime<Utc>,
}

/// What the send path needs of a template.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct TemplateRef {
    pub id: String,
    pub channel_id: String,
    pub category: String,
    /// Meta's status name, e.g. `APPROVED`.
    pub status: String,
    /// The Meta-format components array, as JSON text.
    pub components: String,
}

/// Workspace settings the messaging rules read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MessagingSettings {
    pub content_retention: waypost_core::RetentionPolicy,
    pub shield_policy: waypost_core::ShieldPolicy,
}

impl MessagingSettings {
    /// From the stored text forms; a value the rules do not know is corruption.
    pub fn from_stored(retention: &str, shield: &str) -> crate::Result<Self> {
        let corrupt = |what: &str| {
            crate::StoreError::Corrupt(format!("workspaces.{what} holds an unknown value"))
        };
        Ok(Self {
            content_retention: retention
                .parse()
                .map_err(|_| corrupt("content_retention"))?,
            shield_policy: shield.parse().map_err(|_| corrupt("shield_policy"))?,
        })
    }
}

#[async_trait]
pub trait ChannelStore {
    /// `Conflict` when the workspace already has a live channel for that phone number id.
    async fn create_channel(&self, channel: &ChannelRow, audit: NewAuditEvent) -> Result<()>;
    /// Live channels of a workspace, in id order.
    async fn list_channels(&self, workspace_id: &str) -> Result<Vec<ChannelRow>>;
    /// A live channel of a workspace; `NotFound` otherwise.
    async fn get_channel(&self, workspace_id: &str, id: &str) -> Result<ChannelRow>;
    /// A live channel by id alone (inbound webhooks and workers); `NotFound` otherwise.
    async fn channel_by_id(&self, id: &str) -> Result<ChannelRow>;
    /// Every live channel, for workers.
    async fn all_channels(&self) -> Result<Vec<ChannelRow>>;
    async fn update_channel(&self, channel: &ChannelRow, audit: NewAuditEvent) -> Result<()>;
    /// Marks the channel deleted; its messages stay, its queued messages fail.
    async fn delete_channel(
        &self,
        workspace_id: &str,
        id: &str,
        at: DateTime<Utc>,
        audit: NewAuditEvent,
    ) -> Result<()>;
}

#[async_trait]
pub trait ContactStore {
    /// `Conflict` when the workspace already has this phone number.
    async fn create_contact(&self, contact: &ContactRow, audit: NewAuditEvent) -> Result<()>;
    async fn get_contact(&self, workspace_id: &str, id: &str) -> Result<ContactRow>;
    async fn contact_by_phone_index(
        &self,
        workspace_id: &str,
        phone_index: &[u8],
    ) -> Result<Option<ContactRow>>;
    async fn contact_by_user_id_index(
        &self,
        workspace_id: &str,
        user_id_index: &[u8],
    ) -> Result<Option<ContactRow>>;
    /// The most recently updated contact with this parent BSUID.
    async fn contact_by_parent_user_id_index(
        &self,
        workspace_id: &str,
        parent_index: &[u8],
    ) -> Result<Option<ContactRow>>;
    /// Folds contact `absorbed_id` into `kept` in one transaction: its
    /// messages (with `contents`, their retained content re-sealed for
    /// `kept`'s key), consent history, pending sends and events move over, it
    /// is deleted, and `kept` is written as given (identifiers, name,
    /// attributes, consent, restriction, window), with `audit` and `events`.
    async fn merge_contacts(
        &self,
        kept: &ContactRow,
        absorbed_id: &str,
        contents: &[(String, Option<Vec<u8>>)],
        audit: NewAuditEvent,
        events: &[crate::events::NewCustomerEvent],
    ) -> Result<()>;
    /// Replaces the identifiers (phone, BSUID, parent BSUID, username) with
    /// their indexes, with `audit` and `events` in the same transaction;
    /// `Conflict` when another contact holds the phone or BSUID.
    async fn update_contact_identity(
        &self,
        contact: &ContactRow,
        audit: Option<NewAuditEvent>,
        events: &[crate::events::NewCustomerEvent],
    ) -> Result<()>;
    /// Contacts after the cursor, in id order.
    async fn list_contacts(
        &self,
        workspace_id: &str,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<ContactRow>>;
    /// Replaces name, attributes and restriction.
    async fn update_contact(&self, contact: &ContactRow, audit: NewAuditEvent) -> Result<()>;
    /// Deletes the contact, its messages and consent history.
    async fn delete_contact(
        &self,
        workspace_id: &str,
        id: &str,
        audit: NewAuditEvent,
    ) -> Result<()>;
    /// Appends to the consent history and sets the current state, with its events.
    async fn record_consent(
        &self,
        consent: &ConsentRow,
        state: &ConsentState,
        audit: Option<NewAuditEvent>,
        events: &[NewCustomerEvent],
    ) -> Result<()>;
    /// A contact's consent history, oldest first.
    async fn consent_history(
        &self,
        workspace_id: &str,
        contact_id: &str,
    ) -> Result<Vec<ConsentRow>>;
}

#[async_trait]
pub trait MessageStore {
    /// Writes a batch of accepted messages in one transaction (group commit).
    async fn accept_messages(&self, batch: &[NewOutboundMessage]) -> Result<Vec<AcceptOutcome>>;
    async fn get_message(&self, workspace_id: &str, id: &str) -> Result<MessageRow>;
    async fn message_statuses(&self, message_id: &str) -> Result<Vec<StatusRow>>;
    async fn list_messages(
        &self,
        workspace_id: &str,
        filter: &MessageFilter,
        limit: u32,
    ) -> Result<Vec<MessageRow>>;
    async fn messaging_settings(&self, workspace_id: &str) -> Result<MessagingSettings>;
    /// Marks a message with the shield's label and writes its `message.flagged`
    /// event together; `false` (and nothing written) when the message does not exist.
    async fn flag_message(
        &self,
        message_id: &str,
        label: &str,
        event: &NewCustomerEvent,
    ) -> Result<bool>;
    async fn find_idempotency(
        &self,
        workspace_id: &str,
        key: &str,
    ) -> Result<Option<IdempotencyRow>>;
    async fn find_template(
        &self,
        workspace_id: &str,
        name: &str,
        language: &str,
    ) -> Result<Option<TemplateRef>>;
    async fn update_messaging_settings(
        &self,
        workspace_id: &str,
        settings: &MessagingSettings,
        audit: NewAuditEvent,
    ) -> Result<()>;
}

pub(crate) const CHANNEL_COLUMNS: &str = "id, workspace_id, name, provider, phone_number_id, waba_id, \
     access_token, app_secret, verify_token, base_url, api_version, throughput_mps, created_at, \
     updated_at, deleted_at";
pub(crate) const CONTACT_COLUMNS: &str = "id, workspace_id, phone_index, phone, user_id_index, \
     user_id, parent_user_id_index, parent_user_id, username, name, attributes, content_key, consent_marketing, consent_utility, consent_authentication, restricted, \
     last_inbound_at, created_at, updated_at, language, time_zone";
pub(crate) const CONSENT_COLUMNS: &str = "id, workspace_id, contact_id, status, categories, source, \
     evidence, captured_at, recorded_at";
pub(crate) const MESSAGE_COLUMNS: &str = "id, workspace_id, channel_id, contact_id, direction, \
     message_type, template_name, template_language, category, status, provider_message_id, \
     error_code, error_title, content, content_expires_at, shield_label, provider_acceptance, created_at, updated_at, \
     country";
pub(crate) const STATUS_COLUMNS: &str =
    "id, message_id, status, provider_code, provider_title, occurred_at, recorded_at";
#[allow(dead_code)] // used by the dispatcher
pub(crate) const OUTBOX_COLUMNS: &str = "message_id, workspace_id, channel_id, contact_id, payload, \
     attempts, next_attempt_at, deadline_at, lease_owner, lease_until, attempt_started_at, \
     last_error_code, last_error_title";

/// Message rows, their status history and consent changes, written inside
/// the caller's transaction.
macro_rules! message_row_fns {
    ($conn:ty) => {
        /// Inserts message rows, a multi-row statement per chunk; with
        /// `skip_duplicates`, a row whose id or provider id is taken (also by an
        /// earlier row of the same statement) is left out. Returns the ids inserted.
        pub(crate) async fn insert_messages(
            conn: &mut $conn,
            rows: &[&$crate::messaging::MessageRow],
            skip_duplicates: bool,
        ) -> $crate::Result<Vec<String>> {
            let mut inserted = Vec::with_capacity(rows.len());
            for range in $crate::bulk::chunks(rows.len()) {
                let sql = format!(
                    "INSERT INTO messages (id, workspace_id, channel_id, contact_id, direction, message_type,
                        template_name, template_language, category, status, provider_message_id, error_code,
                        error_title, content, content_expires_at, shield_label, created_at, updated_at, country)
                     VALUES {} {} RETURNING id",
                    $crate::bulk::values(19, range.len()),
                    if skip_duplicates { "ON CONFLICT DO NOTHING" } else { "" }
                );
                let mut q = sqlx::query_scalar::<_, String>(&sql);
                for m in &rows[range] {
                    q = q
                        .bind(&m.id)
                        .bind(&m.workspace_id)
                        .bind(&m.channel_id)
                        .bind(&m.contact_id)
                        .bind(&m.direction)
                        .bind(&m.message_type)
                        .bind(&m.template_name)
                        .bind(&m.template_language)
                        .bind(&m.category)
                        .bind(&m.status)
                        .bind(&m.provider_message_id)
                        .bind(m.error_code)
                        .bind(&m.error_title)
                        .bind(&m.content)
                        .bind(m.content_expires_at)
                        .bind(&m.shield_label)
                        .bind(m.created_at)
                        .bind(m.updated_at)
                        .bind(&m.country);
                }
                inserted.extend(q.fetch_all(&mut *conn).await?);
            }
            Ok(inserted)
        }

        /// Sets a contact's consent state and adds the change to its history;
        /// false (and nothing written) when the contact does not exist.
        pub(crate) async fn write_consent(
            conn: &mut $conn,
            c: &$crate::messaging::ConsentRow,
            state: &$crate::messaging::ConsentState,
        ) -> $crate::Result<bool> {
            let done = sqlx::query(
                "UPDATE contacts SET consent_marketing = $3, consent_utility = $4,
                    consent_authentication = $5, updated_at = $6
                 WHERE workspace_id = $1 AND id = $2",
            )
            .bind(&c.workspace_id)
            .bind(&c.contact_id)
            .bind(&state.marketing)
            .bind(&state.utility)
            .bind(&state.authentication)
            .bind(c.recorded_at)
            .execute(&mut *conn)
            .await?;
            if done.rows_affected() == 0 {
                return Ok(false);
            }
            sqlx::query(
                "INSERT INTO contact_consents (id, workspace_id, contact_id, status, categories, source,
                    evidence, captured_at, recorded_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            )
            .bind(&c.id)
            .bind(&c.workspace_id)
            .bind(&c.contact_id)
            .bind(&c.status)
            .bind(&c.categories)
            .bind(&c.source)
            .bind(&c.evidence)
            .bind(c.captured_at)
            .bind(c.recorded_at)
            .execute(&mut *conn)
            .await?;
            Ok(true)
        }

        pub(crate) async fn insert_status(
            conn: &mut $conn,
            message_id: &str,
            status: &str,
            code: Option<i64>,
            title: Option<&str>,
            occurred_at: chrono::DateTime<chrono::Utc>,
            recorded_at: chrono::DateTime<chrono::Utc>,
        ) -> $crate::Result<()> {
            let row = $crate::messaging::NewStatusRow {
                message_id,
                status,
                code,
                title,
                occurred_at,
                recorded_at,
            };
            insert_statuses(conn, std::slice::from_ref(&row)).await
        }

        /// Inserts history rows, a multi-row statement per chunk.
        pub(crate) async fn insert_statuses(
            conn: &mut $conn,
            rows: &[$crate::messaging::NewStatusRow<'_>],
        ) -> $crate::Result<()> {
            for range in $crate::bulk::chunks(rows.len()) {
                let sql = format!(
                    "INSERT INTO message_statuses (message_id, status, provider_code, provider_title,
                        occurred_at, recorded_at)
                     VALUES {}",
                    $crate::bulk::values(6, range.len())
                );
                let mut q = sqlx::query(&sql);
                for r in &rows[range] {
                    q = q
                        .bind(r.message_id)
                        .bind(r.status)
                        .bind(r.code)
                        .bind(r.title)
                        .bind(r.occurred_at)
                        .bind(r.recorded_at);
                }
                q.execute(&mut *conn).await?;
            }
            Ok(())
        }
    };
}
pub(crate) use message_row_fns;

/// One row of a message's status history, to insert.
#[derive(Debug, Clone, Copy)]
pub(crate) struct NewStatusRow<'a> {
    pub message_id: &'a str,
    pub status: &'a str,
    pub code: Option<i64>,
    pub title: Option<&'a str>,
    pub occurred_at: DateTime<Utc>,
    pub recorded_at: DateTime<Utc>,
}

/// Implements the messaging traits for a backend with `write_tx()`, `reads()`,
/// and `append_audit`, `insert_events`, `insert_status` in scope.
macro_rules! messaging_store_impl {
    ($store:ty, $append_audit:path, $insert_events:path, $insert_status:path) => {
        #[async_trait::async_trait]
        impl $crate::messaging::ChannelStore for $store {
            async fn create_channel(
                &self,
                c: &$crate::messaging::ChannelRow,
                audit: waypost_core::NewAuditEvent,
            ) -> $crate::Result<()> {
                let mut tx = self.write_tx().await?;
                sqlx::query(
                    "INSERT INTO channels (id, workspace_id, name, provider, phone_number_id, waba_id,
                        access_token, app_secret, verify_token, base_url, api_version, throughput_mps,
                        created_at, updated_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
                )
                .bind(&c.id)
                .bind(&c.workspace_id)
                .bind(&c.name)
                .bind(&c.provider)
                .bind(&c.phone_number_id)
                .bind(&c.waba_id)
                .bind(&c.access_token)
                .bind(&c.app_secret)
                .bind(&c.verify_token)
                .bind(&c.base_url)
                .bind(&c.api_version)
                .bind(c.throughput_mps)
                .bind(c.created_at)
                .bind(c.updated_at)
                .execute(&mut *tx)
                .await
                .map_err(|e| {
                    $crate::StoreError::conflict_on_unique(
                        e,
                        "the workspace already has a channel for this phone number id",
                    )
                })?;
                $append_audit(&mut *tx, audit).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn list_channels(
                &self,
                workspace_id: &str,
            ) -> $crate::Result<Vec<$crate::messaging::ChannelRow>> {
                let sql = format!(
                    "SELECT {} FROM channels WHERE workspace_id = $1 AND deleted_at IS NULL ORDER BY id",
                    $crate::messaging::CHANNEL_COLUMNS
                );
                Ok(sqlx::query_as(&sql).bind(workspace_id).fetch_all(self.reads()).await?)
            }

            async fn get_channel(
                &self,
                workspace_id: &str,
                id: &str,
            ) -> $crate::Result<$crate::messaging::ChannelRow> {
                let sql = format!(
                    "SELECT {} FROM channels WHERE workspace_id = $1 AND id = $2 AND deleted_at IS NULL",
                    $crate::messaging::CHANNEL_COLUMNS
                );
                sqlx::query_as(&sql)
                    .bind(workspace_id)
                    .bind(id)
                    .fetch_optional(self.reads())
                    .await?
                    .ok_or($crate::StoreError::NotFound("channel"))
            }

            async fn channel_by_id(&self, id: &str) -> $crate::Result<$crate::messaging::ChannelRow> {
                let sql = format!(
                    "SELECT {} FROM channels WHERE id = $1 AND deleted_at IS NULL",
                    $crate::messaging::CHANNEL_COLUMNS
                );
                sqlx::query_as(&sql)
                    .bind(id)
                    .fetch_optional(self.reads())
                    .await?
                    .ok_or($crate::StoreError::NotFound("channel"))
            }

            async fn all_channels(&self) -> $crate::Result<Vec<$crate::messaging::ChannelRow>> {
                let sql = format!(
                    "SELECT {} FROM channels WHERE deleted_at IS NULL ORDER BY id",
                    $crate::messaging::CHANNEL_COLUMNS
                );
                Ok(sqlx::query_as(&sql).fetch_all(self.reads()).await?)
            }

            async fn update_channel(
                &self,
                c: &$crate::messaging::ChannelRow,
                audit: waypost_core::NewAuditEvent,
            ) -> $crate::Result<()> {
                let mut tx = self.write_tx().await?;
                let done = sqlx::query(
                    "UPDATE channels SET name = $3, phone_number_id = $4, waba_id = $5, access_token = $6,
                        app_secret = $7, verify_token = $8, base_url = $9, api_version = $10,
                        throughput_mps = $11, updated_at = $12
                     WHERE workspace_id = $1 AND id = $2 AND deleted_at IS NULL",
                )
                .bind(&c.workspace_id)
                .bind(&c.id)
                .bind(&c.name)
                .bind(&c.phone_number_id)
                .bind(&c.waba_id)
                .bind(&c.access_token)
                .bind(&c.app_secret)
                .bind(&c.verify_token)
                .bind(&c.base_url)
                .bind(&c.api_version)
                .bind(c.throughput_mps)
                .bind(c.updated_at)
                .execute(&mut *tx)
                .await
                .map_err(|e| {
                    $crate::StoreError::conflict_on_unique(
                        e,
                        "the workspace already has a channel for this phone number id",
                    )
                })?;
                if done.rows_affected() == 0 {
                    return Err($crate::StoreError::NotFound("channel"));
                }
                $append_audit(&mut *tx, audit).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn delete_channel(
                &self,
                workspace_id: &str,
                id: &str,
                at: chrono::DateTime<chrono::Utc>,
                audit: waypost_core::NewAuditEvent,
            ) -> $crate::Result<()> {
                let mut tx = self.write_tx().await?;
                let done = sqlx::query(
                    "UPDATE channels SET deleted_at = $3, updated_at = $3
                     WHERE workspace_id = $1 AND id = $2 AND deleted_at IS NULL",
                )
                .bind(workspace_id)
                .bind(id)
                .bind(at)
                .execute(&mut *tx)
                .await?;
                if done.rows_affected() == 0 {
                    return Err($crate::StoreError::NotFound("channel"));
                }
                $append_audit(&mut *tx, audit).await?;
                tx.commit().await?;
                Ok(())
            }
        }

        #[async_trait::async_trait]
        impl $crate::messaging::ContactStore for $store {
            async fn create_contact(
                &self,
                c: &$crate::messaging::ContactRow,
                audit: waypost_core::NewAuditEvent,
            ) -> $crate::Result<()> {
                let mut tx = self.write_tx().await?;
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
                .execute(&mut *tx)
                .await
                .map_err(|e| {
                    $crate::StoreError::conflict_on_unique(
                        e,
                        "a contact with this phone number or user id exists",
                    )
                })?;
                $append_audit(&mut *tx, audit).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn get_contact(
                &self,
                workspace_id: &str,
                id: &str,
            ) -> $crate::Result<$crate::messaging::ContactRow> {
                let sql = format!(
                    "SELECT {} FROM contacts WHERE workspace_id = $1 AND id = $2",
                    $crate::messaging::CONTACT_COLUMNS
                );
                sqlx::query_as(&sql)
                    .bind(workspace_id)
                    .bind(id)
                    .fetch_optional(self.reads())
                    .await?
                    .ok_or($crate::StoreError::NotFound("contact"))
            }

            async fn contact_by_phone_index(
                &self,
                workspace_id: &str,
                phone_index: &[u8],
            ) -> $crate::Result<Option<$crate::messaging::ContactRow>> {
                let sql = format!(
                    "SELECT {} FROM contacts WHERE workspace_id = $1 AND phone_index = $2",
                    $crate::messaging::CONTACT_COLUMNS
                );
                Ok(sqlx::query_as(&sql)
                    .bind(workspace_id)
                    .bind(phone_index)
                    .fetch_optional(self.reads())
                    .await?)
            }

            async fn contact_by_user_id_index(
                &self,
                workspace_id: &str,
                user_id_index: &[u8],
            ) -> $crate::Result<Option<$crate::messaging::ContactRow>> {
                let sql = format!(
                    "SELECT {} FROM contacts WHERE workspace_id = $1 AND user_id_index = $2",
                    $crate::messaging::CONTACT_COLUMNS
                );
                Ok(sqlx::query_as(&sql)
                    .bind(workspace_id)
                    .bind(user_id_index)
                    .fetch_optional(self.reads())
                    .await?)
            }

            async fn contact_by_parent_user_id_index(
                &self,
                workspace_id: &str,
                parent_index: &[u8],
            ) -> $crate::Result<Option<$crate::messaging::ContactRow>> {
                let sql = format!(
                    "SELECT {} FROM contacts WHERE workspace_id = $1 AND parent_user_id_index = $2
                     ORDER BY updated_at DESC, id LIMIT 1",
                    $crate::messaging::CONTACT_COLUMNS
                );
                Ok(sqlx::query_as(&sql)
                    .bind(workspace_id)
                    .bind(parent_index)
                    .fetch_optional(self.reads())
                    .await?)
            }

            async fn merge_contacts(
                &self,
                c: &$crate::messaging::ContactRow,
                absorbed_id: &str,
                contents: &[(String, Option<Vec<u8>>)],
                audit: waypost_core::NewAuditEvent,
                events: &[$crate::events::NewCustomerEvent],
            ) -> $crate::Result<()> {
                let mut tx = self.write_tx().await?;
                for table in ["messages", "contact_consents", "outbox"] {
                    sqlx::query(&format!(
                        "UPDATE {table} SET contact_id = $3 WHERE workspace_id = $1 AND contact_id = $2"
                    ))
                    .bind(&c.workspace_id)
                    .bind(absorbed_id)
                    .bind(&c.id)
                    .execute(&mut *tx)
                    .await?;
                }
                sqlx::query(
                    "UPDATE customer_events SET subject_id = $3 WHERE workspace_id = $1 AND subject_id = $2",
                )
                .bind(&c.workspace_id)
                .bind(absorbed_id)
                .bind(&c.id)
                .execute(&mut *tx)
                .await?;
                // A kept media copy is sealed with the absorbed contact's key; re-sealing
                // files of up to 100 MB inside this transaction is not worth it, so the
                // copy goes (the provider keeps the file for its own lifetime).
                sqlx::query(
                    "UPDATE media SET contact_id = $3, blob = NULL, blob_expires_at = NULL
                     WHERE workspace_id = $1 AND contact_id = $2",
                )
                .bind(&c.workspace_id)
                .bind(absorbed_id)
                .bind(&c.id)
                .execute(&mut *tx)
                .await?;
                // Conversations follow the messages: moved where the survivor has none on that
                // channel, else folded into the survivor's (notes, sealed by the absorbed
                // contact's key, go with the folded one).
                sqlx::query(
                    "UPDATE conversations SET contact_id = $3
                     WHERE workspace_id = $1 AND contact_id = $2
                       AND channel_id NOT IN (SELECT channel_id FROM conversations WHERE contact_id = $3)",
                )
                .bind(&c.workspace_id)
                .bind(absorbed_id)
                .bind(&c.id)
                .execute(&mut *tx)
                .await?;
                sqlx::query(
                    "UPDATE conversations SET unread_count = unread_count + COALESCE((SELECT a.unread_count
                        FROM conversations a WHERE a.contact_id = $2 AND a.channel_id = conversations.channel_id), 0)
                     WHERE workspace_id = $1 AND contact_id = $3",
                )
                .bind(&c.workspace_id)
                .bind(absorbed_id)
                .bind(&c.id)
                .execute(&mut *tx)
                .await?;
                sqlx::query("DELETE FROM conversations WHERE workspace_id = $1 AND contact_id = $2")
                    .bind(&c.workspace_id)
                    .bind(absorbed_id)
                    .execute(&mut *tx)
                    .await?;
                for (message_id, content) in contents {
                    sqlx::query(
                        "UPDATE messages SET content = $3, content_expires_at = CASE WHEN $3 IS NULL THEN NULL ELSE content_expires_at END
                         WHERE workspace_id = $1 AND id = $2",
                    )
                    .bind(&c.workspace_id)
                    .bind(message_id)
                    .bind(content)
                    .execute(&mut *tx)
                    .await?;
                }
                // Tags are the business's and survive the merge; attribute indexes
                // follow `kept`'s attributes, which the caller writes.
                sqlx::query(
                    "INSERT INTO contact_tags (contact_id, workspace_id, tag)
                     SELECT $3, workspace_id, tag FROM contact_tags WHERE workspace_id = $1 AND contact_id = $2
                     ON CONFLICT (contact_id, tag) DO NOTHING",
                )
                .bind(&c.workspace_id)
                .bind(absorbed_id)
                .bind(&c.id)
                .execute(&mut *tx)
                .await?;
                let gone = sqlx::query("DELETE FROM contacts WHERE workspace_id = $1 AND id = $2")
                    .bind(&c.workspace_id)
                    .bind(absorbed_id)
                    .execute(&mut *tx)
                    .await?;
                if gone.rows_affected() == 0 {
                    return Err($crate::StoreError::NotFound("contact"));
                }
                let done = sqlx::query(
                    "UPDATE contacts SET phone_index = $3, phone = $4, user_id_index = $5, user_id = $6,
                        parent_user_id_index = $7, parent_user_id = $8, username = $9, name = $10,
                        attributes = $11, consent_marketing = $12, consent_utility = $13,
                        consent_authentication = $14, restricted = $15, last_inbound_at = $16, updated_at = $17,
                        language = $18, time_zone = $19
                     WHERE workspace_id = $1 AND id = $2",
                )
                .bind(&c.workspace_id)
                .bind(&c.id)
                .bind(&c.phone_index)
                .bind(&c.phone)
                .bind(&c.user_id_index)
                .bind(&c.user_id)
                .bind(&c.parent_user_id_index)
                .bind(&c.parent_user_id)
                .bind(&c.username)
                .bind(&c.name)
                .bind(&c.attributes)
                .bind(&c.consent_marketing)
                .bind(&c.consent_utility)
                .bind(&c.consent_authentication)
                .bind(c.restricted)
                .bind(c.last_inbound_at)
                .bind(c.updated_at)
                .bind(&c.language)
                .bind(&c.time_zone)
                .execute(&mut *tx)
                .await?;
                if done.rows_affected() == 0 {
                    return Err($crate::StoreError::NotFound("contact"));
                }
                $append_audit(&mut *tx, audit).await?;
                $insert_events(&mut *tx, events).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn update_contact_identity(
                &self,
                c: &$crate::messaging::ContactRow,
                audit: Option<waypost_core::NewAuditEvent>,
                events: &[$crate::events::NewCustomerEvent],
            ) -> $crate::Result<()> {
                let mut tx = self.write_tx().await?;
                let done = sqlx::query(
                    "UPDATE contacts SET phone_index = $3, phone = $4, user_id_index = $5, user_id = $6,
                        parent_user_id_index = $7, parent_user_id = $8, username = $9, updated_at = $10
                     WHERE workspace_id = $1 AND id = $2",
                )
                .bind(&c.workspace_id)
                .bind(&c.id)
                .bind(&c.phone_index)
                .bind(&c.phone)
                .bind(&c.user_id_index)
                .bind(&c.user_id)
                .bind(&c.parent_user_id_index)
                .bind(&c.parent_user_id)
                .bind(&c.username)
                .bind(c.updated_at)
                .execute(&mut *tx)
                .await
                .map_err(|e| {
                    $crate::StoreError::conflict_on_unique(
                        e,
                        "another contact has this phone number or user id",
                    )
                })?;
                if done.rows_affected() == 0 {
                    return Err($crate::StoreError::NotFound("contact"));
                }
                if let Some(audit) = audit {
                    $append_audit(&mut *tx, audit).await?;
                }
                $insert_events(&mut *tx, events).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn list_contacts(
                &self,
                workspace_id: &str,
                after: Option<&str>,
                limit: u32,
            ) -> $crate::Result<Vec<$crate::messaging::ContactRow>> {
                let sql = format!(
                    "SELECT {} FROM contacts WHERE workspace_id = $1 AND id > $2 ORDER BY id LIMIT $3",
                    $crate::messaging::CONTACT_COLUMNS
                );
                Ok(sqlx::query_as(&sql)
                    .bind(workspace_id)
                    .bind(after.unwrap_or(""))
                    .bind(limit as i64)
                    .fetch_all(self.reads())
                    .await?)
            }

            async fn update_contact(
                &self,
                c: &$crate::messaging::ContactRow,
                audit: waypost_core::NewAuditEvent,
            ) -> $crate::Result<()> {
                let mut tx = self.write_tx().await?;
                let done = sqlx::query(
                    "UPDATE contacts SET name = $3, attributes = $4, restricted = $5, updated_at = $6,
                        language = $7, time_zone = $8
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
                .execute(&mut *tx)
                .await?;
                if done.rows_affected() == 0 {
                    return Err($crate::StoreError::NotFound("contact"));
                }
                $append_audit(&mut *tx, audit).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn delete_contact(
                &self,
                workspace_id: &str,
                id: &str,
                audit: waypost_core::NewAuditEvent,
            ) -> $crate::Result<()> {
                let mut tx = self.write_tx().await?;
                let done = sqlx::query("DELETE FROM contacts WHERE workspace_id = $1 AND id = $2")
                    .bind(workspace_id)
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                if done.rows_affected() == 0 {
                    return Err($crate::StoreError::NotFound("contact"));
                }
                $append_audit(&mut *tx, audit).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn record_consent(
                &self,
                c: &$crate::messaging::ConsentRow,
                state: &$crate::messaging::ConsentState,
                audit: Option<waypost_core::NewAuditEvent>,
                events: &[$crate::events::NewCustomerEvent],
            ) -> $crate::Result<()> {
                let mut tx = self.write_tx().await?;
                if !write_consent(&mut *tx, c, state).await? {
                    return Err($crate::StoreError::NotFound("contact"));
                }
                if let Some(audit) = audit {
                    $append_audit(&mut *tx, audit).await?;
                }
                $insert_events(&mut *tx, events).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn consent_history(
                &self,
                workspace_id: &str,
                contact_id: &str,
            ) -> $crate::Result<Vec<$crate::messaging::ConsentRow>> {
                let sql = format!(
                    "SELECT {} FROM contact_consents WHERE workspace_id = $1 AND contact_id = $2
                     ORDER BY recorded_at, id",
                    $crate::messaging::CONSENT_COLUMNS
                );
                Ok(sqlx::query_as(&sql)
                    .bind(workspace_id)
                    .bind(contact_id)
                    .fetch_all(self.reads())
                    .await?)
            }
        }

        #[async_trait::async_trait]
        impl $crate::messaging::MessageStore for $store {
            async fn accept_messages(
                &self,
                batch: &[$crate::messaging::NewOutboundMessage],
            ) -> $crate::Result<Vec<$crate::messaging::AcceptOutcome>> {
                let mut tx = self.write_tx().await?;
                let outcomes = accept_batch(&mut *tx, batch).await?;
                tx.commit().await?;
                Ok(outcomes)
            }

            async fn get_message(
                &self,
                workspace_id: &str,
                id: &str,
            ) -> $crate::Result<$crate::messaging::MessageRow> {
                let sql = format!(
                    "SELECT {} FROM messages WHERE workspace_id = $1 AND id = $2",
                    $crate::messaging::MESSAGE_COLUMNS
                );
                sqlx::query_as(&sql)
                    .bind(workspace_id)
                    .bind(id)
                    .fetch_optional(self.reads())
                    .await?
                    .ok_or($crate::StoreError::NotFound("message"))
            }

            async fn message_statuses(
                &self,
                message_id: &str,
            ) -> $crate::Result<Vec<$crate::messaging::StatusRow>> {
                let sql = format!(
                    "SELECT {} FROM message_statuses WHERE message_id = $1 ORDER BY id",
                    $crate::messaging::STATUS_COLUMNS
                );
                Ok(sqlx::query_as(&sql).bind(message_id).fetch_all(self.reads()).await?)
            }

            async fn list_messages(
                &self,
                workspace_id: &str,
                f: &$crate::messaging::MessageFilter,
                limit: u32,
            ) -> $crate::Result<Vec<$crate::messaging::MessageRow>> {
                // Absent filters bind NULL and match everything.
                let sql = format!(
                    "SELECT {} FROM messages WHERE workspace_id = $1
                        AND ($2 IS NULL OR channel_id = $2)
                        AND ($3 IS NULL OR contact_id = $3)
                        AND ($4 IS NULL OR status = $4)
                        AND ($5 IS NULL OR direction = $5)
                        AND ($6 IS NULL OR created_at >= $6)
                        AND ($7 IS NULL OR created_at < $7)
                        AND id > $8
                     ORDER BY id LIMIT $9",
                    $crate::messaging::MESSAGE_COLUMNS
                );
                Ok(sqlx::query_as(&sql)
                    .bind(workspace_id)
                    .bind(&f.channel_id)
                    .bind(&f.contact_id)
                    .bind(&f.status)
                    .bind(&f.direction)
                    .bind(f.since)
                    .bind(f.until)
                    .bind(f.after.as_deref().unwrap_or(""))
                    .bind(limit as i64)
                    .fetch_all(self.reads())
                    .await?)
            }

            async fn messaging_settings(
                &self,
                workspace_id: &str,
            ) -> $crate::Result<$crate::messaging::MessagingSettings> {
                let (retention, shield): (String, String) = sqlx::query_as(
                    "SELECT content_retention, shield_policy FROM workspaces WHERE id = $1",
                )
                .bind(workspace_id)
                .fetch_optional(self.reads())
                .await?
                .ok_or($crate::StoreError::NotFound("workspace"))?;
                $crate::messaging::MessagingSettings::from_stored(&retention, &shield)
            }

            async fn flag_message(
                &self,
                message_id: &str,
                label: &str,
                event: &$crate::events::NewCustomerEvent,
            ) -> $crate::Result<bool> {
                let mut tx = self.write_tx().await?;
                let done = sqlx::query("UPDATE messages SET shield_label = $2 WHERE id = $1")
                    .bind(message_id)
                    .bind(label)
                    .execute(&mut *tx)
                    .await?;
                if done.rows_affected() == 0 {
                    return Ok(false);
                }
                $insert_events(&mut *tx, std::slice::from_ref(event)).await?;
                tx.commit().await?;
                Ok(true)
            }

            async fn find_idempotency(
                &self,
                workspace_id: &str,
                key: &str,
            ) -> $crate::Result<Option<$crate::messaging::IdempotencyRow>> {
                Ok(sqlx::query_as(
                    "SELECT id, request_hash, state, response_status, response_body, expires_at
                     FROM idempotency_records WHERE workspace_id = $1 AND idempotency_key = $2",
                )
                .bind(workspace_id)
                .bind(key)
                .fetch_optional(self.reads())
                .await?)
            }

            async fn find_template(
                &self,
                workspace_id: &str,
                name: &str,
                language: &str,
            ) -> $crate::Result<Option<$crate::messaging::TemplateRef>> {
                Ok(sqlx::query_as(
                    "SELECT id, channel_id, category, status, components FROM templates
                     WHERE workspace_id = $1 AND name = $2 AND language = $3",
                )
                .bind(workspace_id)
                .bind(name)
                .bind(language)
                .fetch_optional(self.reads())
                .await?)
            }

            async fn update_messaging_settings(
                &self,
                workspace_id: &str,
                s: &$crate::messaging::MessagingSettings,
                audit: waypost_core::NewAuditEvent,
            ) -> $crate::Result<()> {
                let mut tx = self.write_tx().await?;
                let done = sqlx::query(
                    "UPDATE workspaces SET content_retention = $2, shield_policy = $3 WHERE id = $1",
                )
                .bind(workspace_id)
                .bind(s.content_retention.to_string())
                .bind(s.shield_policy.as_str())
                .execute(&mut *tx)
                .await?;
                if done.rows_affected() == 0 {
                    return Err($crate::StoreError::NotFound("workspace"));
                }
                $append_audit(&mut *tx, audit).await?;
                tx.commit().await?;
                Ok(())
            }
        }
    };
}
pub(crate) use messaging_store_impl;
