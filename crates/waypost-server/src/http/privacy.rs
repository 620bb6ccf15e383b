//! Data-subject rights, addressed by phone number: export, rectify, restrict,
//! unrestrict and erase. Sessions need a recent re-authentication; every
//! request lands in the register and the audit log with a keyed hash of the
//! number instead of the number.

use axum::Json;
use axum::extract::{Path, Query, State};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use waypost_core::NewAuditEvent;
use waypost_crypto::Aad;
use waypost_store::messaging::MessageFilter;

use super::contacts::{ContactView, UpdateContact, view_one as contact_view};
use super::json::ApiJson;
use super::{ApiError, Problem};
use crate::auth::Authorized;
use crate::auth::permission::act;
use crate::messaging::content_key;
use crate::ops::Ctx;
use crate::ops::paging::page_limit;
use crate::ops::privacy::{self, audit_for, known_contact, request_row, subject};
use crate::state::{AppState, RequestOrigin};

#[derive(Serialize, ToSchema)]
pub struct SubjectMessage {
    pub id: String,
    pub direction: String,
    pub r#type: String,
    pub status: String,
    pub channel_id: String,
    pub created_at: DateTime<Utc>,
    /// The message as kept under the workspace's retention policy; absent when not kept.
    #[schema(value_type = Option<Object>)]
    pub content: Option<serde_json::Value>,
}

#[derive(Serialize, ToSchema)]
pub struct SubjectEvent {
    pub id: String,
    pub r#type: String,
    pub created_at: DateTime<Utc>,
    #[schema(value_type = Object)]
    pub data: serde_json::Value,
}

/// Everything the workspace holds about one person.
#[derive(Serialize, ToSchema)]
pub struct SubjectExport {
    /// The number the request named, when it named one.
    pub phone: Option<String>,
    /// The business-scoped user id the request named, when it named one.
    pub user_id: Option<String>,
    pub exported_at: DateTime<Utc>,
    pub contact: ContactView,
    pub consent_history: Vec<super::contacts::ConsentEntry>,
    pub messages: Vec<SubjectMessage>,
    /// The files the person sent (metadata; the bytes through `GET /v1/media/{id}`).
    pub media: Vec<super::media::MediaView>,
    pub events: Vec<SubjectEvent>,
}

/// Export: every record about the person with this number, as one JSON document.
#[utoipa::path(operation_id = "export_subject", get, path = "/v1/privacy/subjects/{phone}", tag = "privacy",
    params(("phone" = String, Path, description = "E.164 number (URL-encoded) or business-scoped user id")),
    responses((status = 200, body = SubjectExport), (status = 404, body = Problem, content_type = "application/problem+json")),
    security(("api_key" = ["privacy:manage"]), ("session" = [])))]
pub async fn export(
    State(state): State<AppState>,
    origin: RequestOrigin,
    auth: Authorized<act::PrivacyManage>,
    Path(phone): Path<String>,
) -> Result<Json<SubjectExport>, ApiError> {
    let ctx = Ctx::of(&auth, origin);
    let s = subject(&state, &ctx, &auth.caller, &phone).await?;
    Ok(Json(subject_export(&state, &ctx, &s).await?))
}

/// Everything about the subject as one document; the export is registered
/// and audited.
pub async fn subject_export(
    state: &AppState,
    ctx: &Ctx,
    s: &privacy::Subject,
) -> Result<SubjectExport, ApiError> {
    let contact = known_contact(state, ctx, s, "export").await?;
    let key = content_key(&state.keys, &contact).map_err(ApiError::Internal)?;
    let mut messages = Vec::new();
    let mut filter = MessageFilter {
        contact_id: Some(contact.id.clone()),
        ..MessageFilter::default()
    };
    loop {
        let page = state
            .store
            .list_messages(&s.workspace, &filter, 500)
            .await?;
        let done = page.len() < 500;
        filter.after = page.last().map(|m| m.id.clone());
        for m in page {
            let content = match (&key, &m.content) {
                (Some(k), Some(c)) => k
                    .decrypt(Aad::new("messages", "content", &m.id), c)
                    .ok()
                    .and_then(|p| serde_json::from_slice(&p).ok()),
                _ => None,
            };
            messages.push(SubjectMessage {
                id: m.id,
                direction: m.direction,
                r#type: m.message_type,
                status: m.status,
                channel_id: m.channel_id,
                created_at: m.created_at,
                content,
            });
        }
        if done {
            break;
        }
    }
    let subjects: std::collections::HashSet<String> = messages
        .iter()
        .map(|m| m.id.clone())
        .chain([contact.id.clone()])
        .collect();
    let mut events = Vec::new();
    let mut after = 0;
    loop {
        let page = state
            .store
            .customer_events_after(&s.workspace, after, 1000)
            .await?;
        let done = page.len() < 1000;
        after = page.last().map_or(after, |e| e.seq);
        for e in page {
            if e.subject_id
                .as_ref()
                .is_some_and(|id| subjects.contains(id))
            {
                let body = crate::events::open(&state.keys, state.store.as_ref(), &e)
                    .await
                    .map_err(ApiError::Internal)?;
                events.push(SubjectEvent {
                    id: e.id,
                    r#type: e.event_type,
                    created_at: e.created_at,
                    data: body["data"].clone(),
                });
            }
        }
        if done {
            break;
        }
    }
    let media = crate::ops::media::contact_media(state, &s.workspace, &contact.id)
        .await?
        .into_iter()
        .map(|(row, name)| super::media::view(row, name))
        .collect::<Vec<_>>();
    let consent_history =
        super::contacts::consent_entries(state, &s.workspace, &contact.id).await?;
    let r = request_row(
        state,
        ctx,
        s,
        "export",
        serde_json::json!({ "messages": messages.len(), "media": media.len(), "events": events.len() }),
    );
    state
        .store
        .record_privacy_request(&r, audit_for(ctx, &r))
        .await?;
    Ok(SubjectExport {
        phone: s.who.phone.as_ref().map(ToString::to_string),
        user_id: s
            .who
            .user_id
            .as_ref()
            .or(s.who.parent_user_id.as_ref())
            .map(ToString::to_string),
        exported_at: state.clock.now(),
        contact: contact_view(state, contact).await?,
        consent_history,
        messages,
        media,
        events,
    })
}

/// Rectify: corrects the person's name, attributes, language, time zone or tags.
#[utoipa::path(operation_id = "rectify_subject", patch, path = "/v1/privacy/subjects/{phone}", tag = "privacy",
    params(("phone" = String, Path)), request_body = UpdateContact,
    responses((status = 200, body = ContactView), (status = 404, body = Problem, content_type = "application/problem+json")),
    security(("api_key" = ["privacy:manage"]), ("session" = [])))]
pub async fn rectify(
    State(state): State<AppState>,
    origin: RequestOrigin,
    auth: Authorized<act::PrivacyManage>,
    Path(phone): Path<String>,
    ApiJson(req): ApiJson<UpdateContact>,
) -> Result<Json<ContactView>, ApiError> {
    let ctx = Ctx::of(&auth, origin);
    let s = subject(&state, &ctx, &auth.caller, &phone).await?;
    let contact = known_contact(&state, &ctx, &s, "rectify").await?;
    let change = crate::ops::audiences::ProfileChange::parse(
        req.raw(),
        &crate::ops::audiences::fields(&state, &s.workspace).await?,
    )?;
    let r = request_row(
        &state,
        &ctx,
        &s,
        "rectify",
        serde_json::json!({ "fields": change.changed() }),
    );
    // Attribute indexes are written anew with the attributes, so none keeps an old value.
    let updated =
        crate::ops::audiences::update_profile(&state, contact, &change, audit_for(&ctx, &r))
            .await?;
    state
        .store
        .record_privacy_request(
            &r,
            NewAuditEvent::new(
                Some(auth.workspace_id),
                auth.caller.actor(),
                "privacy.request_registered",
            )
            .target("privacy_request", r.id.clone()),
        )
        .await?;
    Ok(Json(contact_view(&state, updated).await?))
}

async fn set_restricted(
    state: AppState,
    origin: RequestOrigin,
    auth: Authorized<act::PrivacyManage>,
    phone: String,
    restricted: bool,
) -> Result<Json<ContactView>, ApiError> {
    let ctx = Ctx::of(&auth, origin);
    let s = subject(&state, &ctx, &auth.caller, &phone).await?;
    let contact = privacy::set_restricted(&state, &ctx, &s, restricted).await?;
    Ok(Json(contact_view(&state, contact).await?))
}

/// Restrict processing: nothing is sent to this person until unrestricted.
#[utoipa::path(operation_id = "restrict_subject", post, path = "/v1/privacy/subjects/{phone}/restrict", tag = "privacy",
    params(("phone" = String, Path)),
    responses((status = 200, body = ContactView), (status = 404, body = Problem, content_type = "application/problem+json")),
    security(("api_key" = ["privacy:manage"]), ("session" = [])))]
pub async fn restrict(
    State(state): State<AppState>,
    origin: RequestOrigin,
    auth: Authorized<act::PrivacyManage>,
    Path(phone): Path<String>,
) -> Result<Json<ContactView>, ApiError> {
    set_restricted(state, origin, auth, phone, true).await
}

/// Lifts a restriction.
#[utoipa::path(operation_id = "unrestrict_subject", post, path = "/v1/privacy/subjects/{phone}/unrestrict", tag = "privacy",
    params(("phone" = String, Path)),
    responses((status = 200, body = ContactView), (status = 404, body = Problem, content_type = "application/problem+json")),
    security(("api_key" = ["privacy:manage"]), ("session" = [])))]
pub async fn unrestrict(
    State(state): State<AppState>,
    origin: RequestOrigin,
    auth: Authorized<act::PrivacyManage>,
    Path(phone): Path<String>,
) -> Result<Json<ContactView>, ApiError> {
    set_restricted(state, origin, auth, phone, false).await
}

#[derive(Serialize, ToSchema)]
pub struct ErasureView {
    pub request_id: String,
    pub messages_deleted: u64,
    pub pending_sends_cancelled: u64,
    pub events_deleted: u64,
    pub consent_records_deleted: u64,
    pub media_deleted: u64,
}

/// Erase: shreds the person's content key, cancels pending sends and deletes the contact,
/// its consent history, messages, media files and events. The audit log keeps a keyed hash, not the number.
#[utoipa::path(operation_id = "erase_subject", delete, path = "/v1/privacy/subjects/{phone}", tag = "privacy",
    params(("phone" = String, Path)),
    responses((status = 200, body = ErasureView), (status = 404, body = Problem, content_type = "application/problem+json")),
    security(("api_key" = ["privacy:manage"]), ("session" = [])))]
pub async fn erase(
    State(state): State<AppState>,
    origin: RequestOrigin,
    auth: Authorized<act::PrivacyManage>,
    Path(phone): Path<String>,
) -> Result<Json<ErasureView>, ApiError> {
    let ctx = Ctx::of(&auth, origin);
    let s = subject(&state, &ctx, &auth.caller, &phone).await?;
    let erased = privacy::erase(&state, &ctx, &s).await?;
    Ok(Json(ErasureView {
        request_id: erased.request_id,
        messages_deleted: erased.messages,
        pending_sends_cancelled: erased.pending_cancelled,
        events_deleted: erased.events,
        consent_records_deleted: erased.consents,
        media_deleted: erased.media,
    }))
}

#[derive(Deserialize, IntoParams)]
pub struct RegisterQuery {
    /// At most this many, newest first (1 to 1000, default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
}

#[derive(Serialize, ToSchema)]
pub struct RequestView {
    pub id: String,
    pub kind: String,
    pub subject_hash: String,
    pub actor_type: String,
    pub actor_id: Option<String>,
    pub outcome: String,
    #[schema(value_type = Object)]
    pub details: serde_json::Value,
    pub created_at: DateTime<Utc>,
}

/// The register of data-subject requests, newest first.
#[utoipa::path(operation_id = "list_privacy_requests", get, path = "/v1/privacy/requests", tag = "privacy",
    params(RegisterQuery), responses((status = 200, body = Vec<RequestView>)),
    security(("api_key" = ["privacy:manage"]), ("session" = [])))]
pub async fn register(
    State(state): State<AppState>,
    auth: Authorized<act::PrivacyManage>,
    Query(q): Query<RegisterQuery>,
) -> Result<Json<Vec<RequestView>>, ApiError> {
    let rows = state
        .store
        .privacy_requests(
            &auth.workspace_id.to_string(),
            page_limit(q.limit, 100, 1000)?,
        )
        .await?;
    Ok(Json(
        rows.into_iter()
            .map(|r| RequestView {
                details: serde_json::from_str(&r.details).unwrap_or_default(),
                id: r.id,
                kind: r.kind,
                subject_hash: r.subject_hash,
                actor_type: r.actor_type,
                actor_id: r.actor_id,
                outcome: r.outcome,
                created_at: r.created_at,
            })
            .collect(),
    ))
}
