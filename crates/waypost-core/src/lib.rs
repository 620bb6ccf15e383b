//! Waypost domain types and rules. Pure code: no I/O, no async runtime, no SQL.
//!
//! Everything here can be unit-tested without a database or network, and every
//! outer crate (crypto, store, server, binary) builds on these types.
#![forbid(unsafe_code)]

pub mod assistant;
pub mod audience;
pub mod audit;
pub mod auth;
pub mod automation;
pub mod bsuid;
pub mod campaign;
pub mod events;
pub mod id;
pub mod mail;
pub mod media;
pub mod pacing;
pub mod phone;
pub mod pii;
pub mod plan;
pub mod policy;
pub mod redact;
pub mod settings;
pub mod status;
pub mod template;
pub mod trust;
pub mod usage;

pub use audit::{Actor, AuditChainError, AuditEvent, NewAuditEvent};
pub use auth::{
    Action, Email, EmailError, PasswordRejection, Role, Scope, check_password, role_allows,
    scope_for,
};
pub use id::{
    AuditEventId, CampaignId, ChannelId, ContactId, EventId, IdError, ImportId, IncidentId,
    MessageId, OperatorTokenId, SegmentId, TemplateId, WebhookEndpointId, WorkspaceId,
};
pub use settings::{RetentionPolicy, ShieldPolicy};
pub use status::MessageStatus;
