//! Storage for Waypost: per-concern traits, and one implementation per backend
//! (`sqlite`, `postgres`), each owning its embedded migrations. The backend is
//! chosen by the database URL's scheme in [`connect`].
//!
//! Handlers and workers only see `Arc<dyn Store>`; SQL lives in the backend
//! modules. Every state-changing method takes the audit event describing the
//! change and writes it in the same transaction.
#![forbid(unsafe_code)]

mod accept;
pub mod account;
pub mod audiences;
pub mod audit_query;
pub mod automation;
pub mod backup;
mod bulk;
pub mod campaign_reports;
pub mod campaign_sends;
pub mod campaigns;
pub mod checkpoints;
pub mod conversations;
pub mod dispatch;
mod error;
pub mod events;
mod foundation;
pub mod identity;
mod import_writes;
pub mod imports;
pub mod inbound;
pub(crate) mod inbound_writes;
pub mod incidents;
pub mod knowledge;
pub mod legacy_emails;
pub mod mail;
pub mod media;
pub mod members;
pub mod messaging;
mod model;
pub mod node_lock;
pub mod operators;
pub mod passkeys;
pub mod plans;
pub mod postgres;
pub mod privacy;
pub mod retention;
pub mod shield;
pub mod sqlite;
pub mod stripe;
pub mod templates;
pub mod trust;
pub mod usage;
pub mod webhooks;
pub mod workspace_deletion;

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use waypost_core::{AuditEvent, NewAuditEvent, WorkspaceId};

pub use account::AccountStore;
pub use audiences::AudienceStore;
pub use audit_query::{AuditFilter, AuditQueryStore};
pub use automation::AutomationStore;
pub use backup::BackupStore;
pub use campaign_reports::CampaignReportStore;
pub use campaign_sends::CampaignSendStore;
pub use campaigns::CampaignStore;
pub use checkpoints::CheckpointStore;
pub use conversations::ConversationStore;
pub use dispatch::DispatchStore;
pub use error::{ConnectError, StoreError};
pub use events::{CustomerEventRow, CustomerEventStore, NewCustomerEvent};
pub use identity::{IdentityStore, LockoutPolicy};
pub use imports::ImportStore;
pub use inbound::InboundStore;
pub use incidents::IncidentStore;
pub use knowledge::KnowledgeStore;
pub use legacy_emails::LegacyEmailStore;
pub use mail::MailStore;
pub use media::MediaStore;
pub use members::MemberStore;
pub use messaging::{ChannelStore, ContactStore, MessageStore};
pub use model::*;
pub use node_lock::NodeLockStore;
pub use operators::OperatorStore;
pub use passkeys::PasskeyStore;
pub use plans::PlanStore;
pub use privacy::PrivacyStore;
pub use retention::RetentionStore;
pub use shield::{ShieldScanRecord, ShieldStore};
pub use stripe::StripeStore;
pub use templates::TemplateStore;
pub use trust::TrustStore;
pub use usage::UsageStore;
pub use webhooks::WebhookStore;
pub use workspace_deletion::WorkspaceDeletionStore;

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Everything a Waypost process needs from its database.
pub trait Store:
    MigrationStore
    + WorkspaceStore
    + KeyStore
    + AuditStore
    + IdempotencyStore
    + IdentityStore
    + MemberStore
    + CheckpointStore
    + AuditQueryStore
    + BackupStore
    + PasskeyStore
    + ShieldStore
    + CustomerEventStore
    + ChannelStore
    + ContactStore
    + MessageStore
    + DispatchStore
    + InboundStore
    + PrivacyStore
    + RetentionStore
    + TemplateStore
    + WebhookStore
    + OperatorStore
    + IncidentStore
    + MediaStore
    + MailStore
    + AccountStore
    + ConversationStore
    + AudienceStore
    + ImportStore
    + CampaignStore
    + CampaignSendStore
    + CampaignReportStore
    + WorkspaceDeletionStore
    + AutomationStore
    + KnowledgeStore
    + TrustStore
    + UsageStore
    + PlanStore
    + StripeStore
    + NodeLockStore
    + LegacyEmailStore
    + Send
    + Sync
    + 'static
{
}
impl<T> Store for T where
    T: MigrationStore
        + WorkspaceStore
        + KeyStore
        + AuditStore
        + IdempotencyStore
        + IdentityStore
        + MemberStore
        + CheckpointStore
        + AuditQueryStore
        + BackupStore
        + PasskeyStore
        + ShieldStore
        + CustomerEventStore
        + ChannelStore
        + ContactStore
        + MessageStore
        + DispatchStore
        + InboundStore
        + PrivacyStore
        + RetentionStore
        + TemplateStore
        + WebhookStore
        + OperatorStore
        + IncidentStore
        + MediaStore
        + MailStore
        + AccountStore
        + ConversationStore
        + AudienceStore
        + ImportStore
        + CampaignStore
        + CampaignSendStore
        + CampaignReportStore
        + WorkspaceDeletionStore
        + AutomationStore
        + KnowledgeStore
        + TrustStore
        + UsageStore
        + PlanStore
        + StripeStore
        + NodeLockStore
        + LegacyEmailStore
        + Send
        + Sync
        + 'static
{
}

#[async_trait]
pub trait MigrationStore {
    fn backend(&self) -> Backend;
    /// Answers when the database can run a trivial query.
    async fn ping(&self) -> Result<()>;
    /// The counter the database bumps with every change to a table whose rows
    /// nodes cache (API keys, channels, workspaces, templates).
    async fn cache_generation(&self) -> Result<i64>;
    /// Applies every pending embedded migration.
    async fn migrate(&self) -> Result<()>;
    /// Each embedded migration and its state, plus any applied migration this binary does not know.
    async fn migration_status(&self) -> Result<Vec<MigrationStatus>>;
    /// Connection pool sizes, for metrics.
    fn pool_stats(&self) -> Vec<PoolStats>;
    async fn close(&self);
}

#[async_trait]
pub trait WorkspaceStore {
    /// Creates a workspace; `Conflict` when the name is taken.
    async fn create_workspace(&self, workspace: &Workspace, audit: NewAuditEvent) -> Result<()>;
    async fn get_workspace(&self, id: WorkspaceId) -> Result<Workspace>;
    async fn find_workspace_by_name(&self, name: &str) -> Result<Workspace>;
}

#[async_trait]
pub trait KeyStore {
    /// Every wrapped data key, oldest first.
    async fn list_data_keys(&self) -> Result<Vec<StoredDataKey>>;
    /// Adds a wrapped data key; `Conflict` when that version already exists
    /// (another node created it first).
    async fn insert_data_key(&self, key: &StoredDataKey, audit: NewAuditEvent) -> Result<()>;
    /// Up to `limit` non-null values of `column` with ids after `after_id`, in id order.
    async fn encrypted_values_after(
        &self,
        column: EncryptedColumn,
        after_id: Option<&str>,
        limit: u32,
    ) -> Result<Vec<EncryptedValue>>;
    /// Replaces one ciphertext if it still equals `old` (a concurrent writer wins); returns whether it did.
    async fn replace_encrypted_value(
        &self,
        column: EncryptedColumn,
        id: &str,
        old: &[u8],
        new: &[u8],
    ) -> Result<bool>;
    async fn reencryption_progress(
        &self,
        target_version: u32,
        column: EncryptedColumn,
    ) -> Result<ReencryptionProgress>;
    async fn save_reencryption_progress(
        &self,
        target_version: u32,
        column: EncryptedColumn,
        progress: &ReencryptionProgress,
    ) -> Result<()>;
}

#[async_trait]
pub trait AuditStore {
    /// Appends one event to its workspace's chain in its own transaction.
    async fn append_audit_event(&self, event: NewAuditEvent) -> Result<AuditEvent>;
    /// A chain's events in order, starting after `after_seq`.
    async fn audit_chain(&self, chain: &str, after_seq: i64, limit: u32)
    -> Result<Vec<AuditEvent>>;
}

#[async_trait]
pub trait IdempotencyStore {
    /// Claims `key` for a request, or reports what an earlier request with that key did.
    async fn begin_idempotent_request(&self, claim: &IdempotencyClaim) -> Result<IdempotencyBegin>;
    /// Stores the final answer (body already encrypted by the caller).
    async fn complete_idempotent_request(
        &self,
        id: &str,
        status: u16,
        encrypted_body: &[u8],
    ) -> Result<()>;
    /// Forgets a claim whose request failed before doing anything, so a retry may run.
    async fn release_idempotent_request(&self, id: &str) -> Result<()>;
    /// Deletes up to `limit` records that expired before `now`; returns how many.
    async fn purge_expired_idempotency_records(
        &self,
        now: DateTime<Utc>,
        limit: u32,
    ) -> Result<u64>;
}

/// Which database a URL names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }

    /// The backend for a database URL, by scheme.
    pub fn from_url(url: &str) -> Result<Self, ConnectError> {
        let scheme = url.split_once("://").map(|(s, _)| s).unwrap_or("");
        match scheme {
            "sqlite" => Ok(Backend::Sqlite),
            "postgres" | "postgresql" => Ok(Backend::Postgres),
            other => Err(ConnectError::UnsupportedScheme(
                other.chars().take(32).collect(),
            )),
        }
    }
}

/// Pool settings taken from configuration.
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    pub max_connections: u32,
    pub acquire_timeout: std::time::Duration,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        Self {
            max_connections: 10,
            acquire_timeout: std::time::Duration::from_secs(5),
        }
    }
}

/// Opens the database a URL names. Does not migrate.
pub async fn connect(url: &str, options: &ConnectOptions) -> Result<Arc<dyn Store>, ConnectError> {
    match Backend::from_url(url)? {
        Backend::Sqlite => Ok(Arc::new(sqlite::SqliteStore::connect(url, options).await?)),
        Backend::Postgres => Ok(Arc::new(postgres::PgStore::connect(url, options).await?)),
    }
}

/// `$first, …, $(first + n - 1)`: the placeholders of an `IN` list or a `VALUES` row.
pub(crate) fn placeholders(first: usize, n: usize) -> String {
    (first..first + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `items` padded to the next power of two by repeating the last one: an `IN`
/// list then takes one of a few shapes, so its prepared statement (and
/// PostgreSQL's plan for it) is reused rather than made anew for each length.
pub(crate) fn padded<T>(items: &[T]) -> Vec<&T> {
    let mut all: Vec<&T> = items.iter().collect();
    if let Some(last) = items.last() {
        all.resize(items.len().next_power_of_two(), last);
    }
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn padding_repeats_the_last_item_to_a_power_of_two() {
        assert!(padded::<i64>(&[]).is_empty());
        assert_eq!(padded(&[7]), [&7]);
        assert_eq!(padded(&[1, 2, 3]), [&1, &2, &3, &3]);
        assert_eq!(padded(&[1, 2, 3, 4]).len(), 4);
        assert_eq!(padded(&(0..33).collect::<Vec<i64>>()).len(), 64);
    }

    #[test]
    fn backend_follows_the_scheme() {
        assert_eq!(Backend::from_url("sqlite://x.db").unwrap(), Backend::Sqlite);
        assert_eq!(
            Backend::from_url("postgres://u@h/db").unwrap(),
            Backend::Postgres
        );
        assert_eq!(
            Backend::from_url("postgresql://u@h/db").unwrap(),
            Backend::Postgres
        );
        assert!(matches!(
            Backend::from_url("mysql://x"),
            Err(ConnectError::UnsupportedScheme(s)) if s == "mysql"
        ));
        assert!(
            matches!(Backend::from_url("waypost.db"), Err(ConnectError::UnsupportedScheme(s)) if s.is_empty())
        );
    }
}

#[cfg(feature = "testing")]
pub mod testing;
