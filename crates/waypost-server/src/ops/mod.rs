//! Business operations: one function per operation, taking the shared state,
//! a typed caller context and typed input, and returning typed output or an
//! [`ApiError`](crate::error::ApiError). HTTP handlers, pages, the CLI, the
//! workers and the bench programs all call these; nothing here knows HTTP.

pub mod account;
pub mod account_admin;
pub mod accounts;
pub mod api_keys;
pub mod assistant;
pub mod audiences;
pub mod auto_reply;
pub mod automation;
pub mod backups;
pub mod billing;
pub mod campaign_feed;
pub mod campaign_outcomes;
pub mod campaign_runs;
pub mod campaigns;
pub mod channel_check;
pub mod channel_quality;
pub mod channels;
pub mod contact_events;
pub mod contact_import;
mod contact_import_batch;
pub mod contact_merge;
pub mod contacts;
pub mod conversations;
pub mod email_change;
pub mod event_access;
pub mod event_stream;
pub mod idempotency;
pub mod inbound;
pub mod inbound_identity;
pub mod incident_changes;
pub mod incidents;
pub mod invitations;
pub mod knowledge;
pub mod media;
pub mod media_fetch;
pub mod members;
pub mod message_content;
pub mod messages;
pub mod mfa;
pub mod notices;
pub mod paging;
pub mod passkey_sign_in;
pub mod passkeys;
pub mod password_reset;
pub mod plans;
pub mod privacy;
pub mod security_alerts;
pub mod segments;
pub mod setup;
pub mod sign_in;
pub mod suspensions;
pub mod template_sync;
pub mod templates;
pub mod usage;
pub mod webhook_endpoints;
pub mod workspace;
pub mod workspace_deletion;

use waypost_core::{Actor, WorkspaceId};

use crate::auth::Authorized;
use crate::state::RequestOrigin;

/// Who performs an operation, in which workspace, and from where (for audit).
#[derive(Debug, Clone)]
pub struct Ctx {
    pub workspace_id: WorkspaceId,
    /// `workspace_id` as text, as the store takes it.
    pub workspace: String,
    pub actor: Actor,
    pub origin: RequestOrigin,
}

impl Ctx {
    pub fn new(workspace_id: WorkspaceId, actor: Actor, origin: RequestOrigin) -> Self {
        Self {
            workspace: workspace_id.to_string(),
            workspace_id,
            actor,
            origin,
        }
    }

    /// The context of a caller the permission check let through.
    pub fn of<A>(auth: &Authorized<A>, origin: RequestOrigin) -> Self {
        Self::new(auth.workspace_id, auth.caller.actor(), origin)
    }
}
