//! Data-subject rights: naming the person a request is about (a number or a
//! business-scoped user id), registering every request with a keyed hash of
//! that name instead of the name, and erasure. Sessions need a recent
//! re-authentication for any of them.

use axum::http::StatusCode;
use waypost_core::NewAuditEvent;
use waypost_core::bsuid::Bsuid;
use waypost_store::messaging::ContactRow;
use waypost_store::privacy::PrivacyRequestRow;

use super::Ctx;
use super::contacts::{find_contact, parse_phone};
use crate::auth::Caller;
use crate::auth::caller::require_recent_auth;
use crate::error::{ApiError, Problem};
use crate::messaging::identity::{Identity, contact_identity};
use crate::state::AppState;

/// The keyed hash that stands for a person (their number or BSUID) in the
/// register and the audit log.
fn subject_hash(state: &AppState, workspace: &str, subject: &dyn std::fmt::Display) -> String {
    hex::encode(state.keys.current().blind_index(
        "privacy.subject",
        format!("{workspace}:{subject}").as_bytes(),
    ))
}

/// Sessions must have re-authenticated recently; API keys act under their scope alone.
pub fn step_up(state: &AppState, caller: &Caller) -> Result<(), ApiError> {
    match caller {
        Caller::Session(_) => require_recent_auth(state, caller),
        Caller::ApiKey(_) => Ok(()),
    }
}

/// The person a request is about.
pub struct Subject {
    pub workspace: String,
    /// What the request named the person by.
    pub who: Identity,
    pub hash: String,
    pub contact: Option<ContactRow>,
}

/// The person a request names: a business-scoped user id (`US.1349…`, also a
/// parent) or else a phone number.
pub async fn subject(
    state: &AppState,
    ctx: &Ctx,
    caller: &Caller,
    id: &str,
) -> Result<Subject, ApiError> {
    step_up(state, caller)?;
    let who = match Bsuid::parse(id) {
        Ok(b) if b.is_parent() => Identity {
            parent_user_id: Some(b),
            ..Identity::default()
        },
        Ok(b) => Identity {
            user_id: Some(b),
            ..Identity::default()
        },
        Err(_) => Identity {
            phone: Some(parse_phone("phone", id)?),
            ..Identity::default()
        },
    };
    let contact = find_contact(state, &ctx.workspace, &who)
        .await
        .map_err(ApiError::Internal)?;
    let named: &dyn std::fmt::Display = match (&who.phone, &who.user_id, &who.parent_user_id) {
        (Some(p), _, _) => p,
        (_, Some(u), _) | (_, _, Some(u)) => u,
        _ => &"",
    };
    Ok(Subject {
        hash: subject_hash(state, &ctx.workspace, named),
        workspace: ctx.workspace.clone(),
        who,
        contact,
    })
}

/// The subject a known contact is: named by its number, else its user id.
pub fn subject_of_contact(
    state: &AppState,
    ctx: &Ctx,
    caller: &Caller,
    contact: ContactRow,
) -> Result<Subject, ApiError> {
    step_up(state, caller)?;
    let who = contact_identity(&state.keys, &contact).map_err(ApiError::Internal)?;
    let named: &dyn std::fmt::Display = match (&who.phone, &who.user_id, &who.parent_user_id) {
        (Some(p), _, _) => p,
        (_, Some(u), _) | (_, _, Some(u)) => u,
        _ => &contact.id,
    };
    Ok(Subject {
        hash: subject_hash(state, &ctx.workspace, named),
        workspace: ctx.workspace.clone(),
        who,
        contact: Some(contact),
    })
}

/// The register entry for a request of `kind` about `s`.
pub fn request_row(
    state: &AppState,
    ctx: &Ctx,
    s: &Subject,
    kind: &str,
    details: serde_json::Value,
) -> PrivacyRequestRow {
    PrivacyRequestRow {
        id: format!("dsr_{}", ulid::Ulid::new()),
        workspace_id: s.workspace.clone(),
        kind: kind.to_owned(),
        subject_hash: s.hash.clone(),
        actor_type: ctx.actor.kind().to_owned(),
        actor_id: ctx.actor.id().map(str::to_owned),
        outcome: if s.contact.is_some() {
            "completed"
        } else {
            "not_found"
        }
        .to_owned(),
        details: details.to_string(),
        created_at: state.clock.now(),
    }
}

/// The audit event of a registered request (the subject's hash, never the number).
pub fn audit_for(ctx: &Ctx, r: &PrivacyRequestRow) -> NewAuditEvent {
    ctx.origin.stamp(
        NewAuditEvent::new(
            Some(ctx.workspace_id),
            ctx.actor.clone(),
            format!("privacy.{}", r.kind),
        )
        .target("privacy_request", r.id.clone())
        .details(serde_json::json!({
            "subject_hash": r.subject_hash,
            "outcome": r.outcome,
            "result": serde_json::from_str::<serde_json::Value>(&r.details).unwrap_or_default(),
        })),
    )
}

/// The subject's contact; without one, the request is registered as `not_found` and answered 404.
pub async fn known_contact(
    state: &AppState,
    ctx: &Ctx,
    s: &Subject,
    kind: &str,
) -> Result<ContactRow, ApiError> {
    if let Some(contact) = &s.contact {
        return Ok(contact.clone());
    }
    let r = request_row(state, ctx, s, kind, serde_json::json!({}));
    state
        .store
        .record_privacy_request(&r, audit_for(ctx, &r))
        .await?;
    Err(not_found())
}

fn not_found() -> ApiError {
    Problem::new(
        StatusCode::NOT_FOUND,
        "subject-not-found",
        "No data about this number",
        "The workspace holds no contact with this phone number or user id.",
    )
    .into()
}

/// What an erasure removed.
#[derive(Debug, Clone)]
pub struct Erasure {
    pub request_id: String,
    pub messages: u64,
    pub pending_cancelled: u64,
    pub events: u64,
    pub consents: u64,
    pub media: u64,
}

/// Erases a person: shreds their content key, cancels pending sends and deletes
/// the contact, its consent history, messages, media files and events.
pub async fn erase(state: &AppState, ctx: &Ctx, s: &Subject) -> Result<Erasure, ApiError> {
    let contact = known_contact(state, ctx, s, "erase").await?;
    let r = request_row(state, ctx, s, "erase", serde_json::json!({}));
    let report = state
        .store
        .erase_contact(&s.workspace, &contact.id, &r, audit_for(ctx, &r))
        .await?;
    Ok(Erasure {
        request_id: r.id,
        messages: report.messages,
        pending_cancelled: report.pending_cancelled,
        events: report.events,
        consents: report.consents,
        media: report.media,
    })
}

/// Restricts processing (nothing is sent to the person) or lifts it; the
/// request lands in the register and the audit log.
pub async fn set_restricted(
    state: &AppState,
    ctx: &Ctx,
    s: &Subject,
    restricted: bool,
) -> Result<ContactRow, ApiError> {
    let kind = if restricted { "restrict" } else { "unrestrict" };
    let mut contact = known_contact(state, ctx, s, kind).await?;
    contact.restricted = restricted;
    contact.updated_at = state.clock.now();
    let r = request_row(
        state,
        ctx,
        s,
        kind,
        serde_json::json!({ "restricted": restricted }),
    );
    state
        .store
        .update_contact(&contact, audit_for(ctx, &r))
        .await?;
    let registered = NewAuditEvent::new(
        Some(ctx.workspace_id),
        ctx.actor.clone(),
        "privacy.request_registered",
    )
    .target("privacy_request", r.id.clone());
    state.store.record_privacy_request(&r, registered).await?;
    Ok(contact)
}
