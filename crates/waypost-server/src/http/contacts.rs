//! Contacts and consent. Numbers are validated and normalised to E.164, stored
//! encrypted and found by blind index; consent changes are appended to a
//! history that is never overwritten.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use waypost_core::events::EventType;
use waypost_core::{NewAuditEvent, WorkspaceId};
use waypost_crypto::Aad;
use waypost_store::messaging::{ConsentRow, ConsentState, ContactRow};

use super::json::ApiJson;
use super::{ApiError, Problem};
use crate::auth::Authorized;
use crate::auth::permission::act;
use crate::error::unprocessable as invalid;
use crate::messaging::identity::{Identity, contact_identity};
use crate::ops::Ctx;
pub(crate) use crate::ops::contacts::parse_phone;
use crate::ops::contacts::{NewContact, create_contact, parse_user_id};
use crate::state::{AppState, RequestOrigin};

const MAX_ATTRIBUTES_BYTES: usize = 16 * 1024;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateContact {
    /// In international form, e.g. `+4915112345678`. Give this, `user_id` or both.
    pub phone: Option<String>,
    /// The customer's business-scoped user id (`US.1349…`, not a parent `US.ENT.…`),
    /// for customers whose number WhatsApp withholds.
    pub user_id: Option<String>,
    pub name: Option<String>,
    /// Free-form JSON object.
    pub attributes: Option<serde_json::Value>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateContact {
    pub name: Option<String>,
    pub attributes: Option<serde_json::Value>,
    /// Restricts processing: no message is sent to a restricted contact.
    pub restricted: Option<bool>,
}

#[derive(Serialize, ToSchema)]
pub struct ConsentView {
    /// `opted_in`, `opted_out`, or null when never recorded.
    pub marketing: Option<String>,
    pub utility: Option<String>,
    pub authentication: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct ContactView {
    pub id: String,
    /// E.164; absent for a customer known only by business-scoped user id.
    pub phone: Option<String>,
    /// The business-scoped user id WhatsApp gives this customer (`US.1349…`).
    pub user_id: Option<String>,
    /// The parent BSUID (`US.ENT.…`), for businesses enrolled in parent accounts.
    pub parent_user_id: Option<String>,
    /// The customer's WhatsApp username, when they have one.
    pub username: Option<String>,
    pub name: Option<String>,
    pub attributes: Option<serde_json::Value>,
    pub consent: ConsentView,
    pub restricted: bool,
    /// The customer's last message: it opens the 24-hour window.
    pub last_inbound_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Serialize, ToSchema)]
pub struct ContactPage {
    pub data: Vec<ContactView>,
    /// Pass as `after` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

#[derive(Deserialize, IntoParams)]
pub struct PageQuery {
    /// The `next_cursor` of the previous page.
    pub after: Option<String>,
    /// Page size, 1 to 500 (default 100).
    pub limit: Option<u32>,
}

fn check_name(name: &str) -> Result<(), ApiError> {
    if name.chars().count() > 200 {
        return Err(invalid("`name` must be at most 200 characters"));
    }
    Ok(())
}

fn check_attributes(attributes: &serde_json::Value) -> Result<(), ApiError> {
    if !attributes.is_object() {
        return Err(invalid("`attributes` must be a JSON object"));
    }
    if serde_json::to_vec(attributes).map_or(0, |v| v.len()) > MAX_ATTRIBUTES_BYTES {
        return Err(invalid(format!(
            "`attributes` must be at most {MAX_ATTRIBUTES_BYTES} bytes of JSON"
        )));
    }
    Ok(())
}

fn open_text(
    state: &AppState,
    id: &str,
    column: &str,
    value: Option<&[u8]>,
) -> Result<Option<Vec<u8>>, ApiError> {
    value
        .map(|v| {
            state
                .keys
                .current()
                .decrypt(Aad::new("contacts", column, id), v)
                .map(|p| p.to_vec())
        })
        .transpose()
        .map_err(|e| ApiError::Internal(e.into()))
}

pub(crate) fn view(state: &AppState, c: ContactRow) -> Result<ContactView, ApiError> {
    let who = contact_identity(&state.keys, &c).map_err(ApiError::Internal)?;
    let name = open_text(state, &c.id, "name", c.name.as_deref())?
        .map(|b| String::from_utf8_lossy(&b).into_owned());
    let attributes = open_text(state, &c.id, "attributes", c.attributes.as_deref())?
        .map(|b| serde_json::from_slice(&b))
        .transpose()
        .map_err(|e| ApiError::Internal(e.into()))?;
    Ok(ContactView {
        id: c.id,
        phone: who.phone.map(|p| p.to_string()),
        user_id: who.user_id.map(|u| u.to_string()),
        parent_user_id: who.parent_user_id.map(|u| u.to_string()),
        username: who.username,
        name,
        attributes,
        consent: ConsentView {
            marketing: c.consent_marketing,
            utility: c.consent_utility,
            authentication: c.consent_authentication,
        },
        restricted: c.restricted,
        last_inbound_at: c.last_inbound_at,
        created_at: c.created_at,
        updated_at: c.updated_at,
    })
}

/// Adds a contact by phone, BSUID or both; a workspace holds each number and BSUID once.
#[utoipa::path(operation_id = "create_contact", post, path = "/v1/contacts", tag = "contacts", request_body = CreateContact,
    responses((status = 201, body = ContactView),
        (status = 409, body = Problem, content_type = "application/problem+json",
            description = "contact-exists: another contact has this phone or user id (named by `contact_id`)"),
        (status = 422, body = Problem, content_type = "application/problem+json",
            description = "invalid-phone, invalid-user-id, or neither given")))]
pub async fn create(
    State(state): State<AppState>,
    origin: RequestOrigin,
    auth: Authorized<act::ContactsWrite>,
    ApiJson(req): ApiJson<CreateContact>,
) -> Result<(StatusCode, Json<ContactView>), ApiError> {
    let phone = req
        .phone
        .as_deref()
        .map(|p| parse_phone("phone", p))
        .transpose()?;
    let user_id = req
        .user_id
        .as_deref()
        .map(|u| parse_user_id("user_id", u))
        .transpose()?;
    if user_id.as_ref().is_some_and(|u| u.is_parent()) {
        return Err(invalid(
            "`user_id` is a parent business-scoped user id; give the customer's own (`US.1349…`)",
        ));
    }
    if let Some(n) = &req.name {
        check_name(n)?;
    }
    if let Some(a) = &req.attributes {
        check_attributes(a)?;
    }
    let input = NewContact {
        who: Identity {
            phone,
            user_id,
            ..Identity::default()
        },
        name: req.name.as_deref(),
        attributes: req.attributes.as_ref(),
    };
    let row = create_contact(&state, &Ctx::of(&auth, origin), input).await?;
    Ok((StatusCode::CREATED, Json(view(&state, row)?)))
}

/// The workspace's contacts, oldest first.
#[utoipa::path(operation_id = "list_contacts", get, path = "/v1/contacts", tag = "contacts", params(PageQuery),
    responses((status = 200, body = ContactPage)))]
pub async fn list(
    State(state): State<AppState>,
    auth: Authorized<act::ContactsRead>,
    Query(q): Query<PageQuery>,
) -> Result<Json<ContactPage>, ApiError> {
    let limit = q.limit.unwrap_or(100).clamp(1, 500);
    let rows = state
        .store
        .list_contacts(&auth.workspace_id.to_string(), q.after.as_deref(), limit)
        .await?;
    let next_cursor = (rows.len() as u32 == limit)
        .then(|| rows.last().map(|c| c.id.clone()))
        .flatten();
    let data = rows
        .into_iter()
        .map(|c| view(&state, c))
        .collect::<Result<_, _>>()?;
    Ok(Json(ContactPage { data, next_cursor }))
}

/// One contact.
#[utoipa::path(operation_id = "get_contact", get, path = "/v1/contacts/{id}", tag = "contacts", params(("id" = String, Path)),
    responses((status = 200, body = ContactView), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn get(
    State(state): State<AppState>,
    auth: Authorized<act::ContactsRead>,
    Path(id): Path<String>,
) -> Result<Json<ContactView>, ApiError> {
    let row = state
        .store
        .get_contact(&auth.workspace_id.to_string(), &id)
        .await?;
    Ok(Json(view(&state, row)?))
}

/// Changes a contact's name, attributes or restriction.
#[utoipa::path(operation_id = "update_contact", patch, path = "/v1/contacts/{id}", tag = "contacts", params(("id" = String, Path)),
    request_body = UpdateContact,
    responses((status = 200, body = ContactView), (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn update(
    State(state): State<AppState>,
    origin: RequestOrigin,
    auth: Authorized<act::ContactsWrite>,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<UpdateContact>,
) -> Result<Json<ContactView>, ApiError> {
    let row = state
        .store
        .get_contact(&auth.workspace_id.to_string(), &id)
        .await?;
    let changed: Vec<&str> = [
        req.name.as_ref().map(|_| "name"),
        req.attributes.as_ref().map(|_| "attributes"),
        req.restricted.map(|_| "restricted"),
    ]
    .into_iter()
    .flatten()
    .collect();
    let row = apply_update(&state, row, &req)?;
    let event = NewAuditEvent::new(
        Some(auth.workspace_id),
        auth.caller.actor(),
        "contact.updated",
    )
    .target("contact", row.id.clone())
    .details(serde_json::json!({ "changed": changed, "restricted": row.restricted }));
    state
        .store
        .update_contact(&row, origin.stamp(event))
        .await?;
    Ok(Json(view(&state, row)?))
}

/// Applies a validated update to a contact row (values encrypted).
pub(crate) fn apply_update(
    state: &AppState,
    mut row: ContactRow,
    req: &UpdateContact,
) -> Result<ContactRow, ApiError> {
    let ring = state.keys.current();
    if let Some(name) = &req.name {
        check_name(name)?;
        row.name = Some(ring.encrypt(Aad::new("contacts", "name", &row.id), name.as_bytes()));
    }
    if let Some(a) = &req.attributes {
        check_attributes(a)?;
        let json = serde_json::to_vec(a).expect("JSON serialises");
        row.attributes = Some(ring.encrypt(Aad::new("contacts", "attributes", &row.id), &json));
    }
    if let Some(r) = req.restricted {
        row.restricted = r;
    }
    row.updated_at = state.clock.now();
    Ok(row)
}

/// Deletes a contact with its messages and consent history.
#[utoipa::path(operation_id = "delete_contact", delete, path = "/v1/contacts/{id}", tag = "contacts", params(("id" = String, Path)),
    responses((status = 204, description = "Deleted"), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn delete(
    State(state): State<AppState>,
    origin: RequestOrigin,
    auth: Authorized<act::ContactsWrite>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let event = NewAuditEvent::new(
        Some(auth.workspace_id),
        auth.caller.actor(),
        "contact.deleted",
    )
    .target("contact", id.clone());
    state
        .store
        .delete_contact(&auth.workspace_id.to_string(), &id, origin.stamp(event))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ConsentStatus {
    OptedIn,
    OptedOut,
}

impl ConsentStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ConsentStatus::OptedIn => "opted_in",
            ConsentStatus::OptedOut => "opted_out",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ConsentCategory {
    Marketing,
    Utility,
    Authentication,
}

impl ConsentCategory {
    pub const ALL: [ConsentCategory; 3] = [
        ConsentCategory::Marketing,
        ConsentCategory::Utility,
        ConsentCategory::Authentication,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ConsentCategory::Marketing => "marketing",
            ConsentCategory::Utility => "utility",
            ConsentCategory::Authentication => "authentication",
        }
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RecordConsent {
    pub status: ConsentStatus,
    pub categories: Vec<ConsentCategory>,
    /// Where consent was given or withdrawn, e.g. `checkout_form`.
    pub source: String,
    /// What proves it (form id, message id…); stored encrypted.
    pub evidence: Option<String>,
    pub captured_at: DateTime<Utc>,
}

#[derive(Serialize, ToSchema)]
pub struct ConsentEntry {
    pub id: String,
    pub status: String,
    pub categories: Vec<String>,
    pub source: String,
    pub evidence: Option<String>,
    pub captured_at: DateTime<Utc>,
    pub recorded_at: DateTime<Utc>,
}

/// Everything one consent change writes: the history row, the new state, and its event.
pub struct ConsentChange {
    pub row: ConsentRow,
    pub state: ConsentState,
    pub event: waypost_store::NewCustomerEvent,
}

/// Builds a consent change for a contact (shared with inbound opt-out keywords).
#[allow(clippy::too_many_arguments)]
pub fn consent_change(
    state: &AppState,
    contact: &ContactRow,
    status: ConsentStatus,
    categories: &[ConsentCategory],
    source: &str,
    evidence: Option<&str>,
    captured_at: DateTime<Utc>,
) -> Result<ConsentChange, ApiError> {
    let workspace = WorkspaceId::parse(&contact.workspace_id)
        .map_err(|e| ApiError::Internal(anyhow::anyhow!(e)))?;
    let now = state.clock.now();
    let id = format!("cns_{}", ulid::Ulid::new());
    let ring = state.keys.current();
    let mut new_state = ConsentState {
        marketing: contact.consent_marketing.clone(),
        utility: contact.consent_utility.clone(),
        authentication: contact.consent_authentication.clone(),
    };
    for c in categories {
        let slot = match c {
            ConsentCategory::Marketing => &mut new_state.marketing,
            ConsentCategory::Utility => &mut new_state.utility,
            ConsentCategory::Authentication => &mut new_state.authentication,
        };
        *slot = Some(status.as_str().to_owned());
    }
    let names: Vec<&str> = categories.iter().map(|c| c.as_str()).collect();
    let event_type = match status {
        ConsentStatus::OptedIn => EventType::ContactOptedIn,
        ConsentStatus::OptedOut => EventType::ContactOptedOut,
    };
    let event = crate::events::seal(
        &ring,
        workspace,
        event_type,
        Some(contact.id.clone()),
        &serde_json::json!({
            "contact_id": contact.id,
            "categories": names,
            "source": source,
            "captured_at": captured_at,
        }),
        now,
    );
    Ok(ConsentChange {
        row: ConsentRow {
            workspace_id: contact.workspace_id.clone(),
            contact_id: contact.id.clone(),
            status: status.as_str().to_owned(),
            categories: names.join(","),
            source: source.to_owned(),
            evidence: evidence
                .map(|e| ring.encrypt(Aad::new("contact_consents", "evidence", &id), e.as_bytes())),
            captured_at,
            recorded_at: now,
            id,
        },
        state: new_state,
        event,
    })
}

/// Records consent given or withdrawn for some categories; the history keeps every change.
#[utoipa::path(operation_id = "record_consent", post, path = "/v1/contacts/{id}/consent", tag = "contacts", params(("id" = String, Path)),
    request_body = RecordConsent,
    responses((status = 201, body = ContactView), (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn record_consent(
    State(state): State<AppState>,
    origin: RequestOrigin,
    auth: Authorized<act::ContactsWrite>,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<RecordConsent>,
) -> Result<(StatusCode, Json<ContactView>), ApiError> {
    if req.categories.is_empty() {
        return Err(invalid("`categories` must name at least one category"));
    }
    if req.source.trim().is_empty() || req.source.len() > 200 {
        return Err(invalid("`source` must be 1 to 200 characters"));
    }
    if req.evidence.as_ref().is_some_and(|e| e.len() > 4000) {
        return Err(invalid("`evidence` must be at most 4000 characters"));
    }
    let now = state.clock.now();
    if req.captured_at > now + chrono::Duration::minutes(5) {
        return Err(invalid("`captured_at` must not be in the future"));
    }
    let ws = auth.workspace_id.to_string();
    let contact = state.store.get_contact(&ws, &id).await?;
    let change = consent_change(
        &state,
        &contact,
        req.status,
        &req.categories,
        req.source.trim(),
        req.evidence.as_deref(),
        req.captured_at,
    )?;
    let audit = NewAuditEvent::new(
        Some(auth.workspace_id),
        auth.caller.actor(),
        "contact.consent_recorded",
    )
    .target("contact", contact.id.clone())
    .details(serde_json::json!({
        "status": change.row.status,
        "categories": change.row.categories,
        "source": change.row.source,
    }));
    state
        .store
        .record_consent(
            &change.row,
            &change.state,
            Some(origin.stamp(audit)),
            std::slice::from_ref(&change.event),
        )
        .await?;
    let updated = state.store.get_contact(&ws, &id).await?;
    Ok((StatusCode::CREATED, Json(view(&state, updated)?)))
}

/// A contact's consent history, oldest first.
#[utoipa::path(operation_id = "consent_history", get, path = "/v1/contacts/{id}/consent", tag = "contacts", params(("id" = String, Path)),
    responses((status = 200, body = Vec<ConsentEntry>), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn consent_history(
    State(state): State<AppState>,
    auth: Authorized<act::ContactsRead>,
    Path(id): Path<String>,
) -> Result<Json<Vec<ConsentEntry>>, ApiError> {
    let ws = auth.workspace_id.to_string();
    state.store.get_contact(&ws, &id).await?;
    Ok(Json(consent_entries(&state, &ws, &id).await?))
}

/// A contact's consent history with evidence decrypted.
pub(crate) async fn consent_entries(
    state: &AppState,
    ws: &str,
    id: &str,
) -> Result<Vec<ConsentEntry>, ApiError> {
    let rows = state.store.consent_history(ws, id).await?;
    let ring = state.keys.current();
    rows.into_iter()
        .map(|r| {
            let evidence = r
                .evidence
                .as_deref()
                .map(|e| ring.decrypt(Aad::new("contact_consents", "evidence", &r.id), e))
                .transpose()
                .map_err(|e| ApiError::Internal(e.into()))?
                .map(|p| String::from_utf8_lossy(&p).into_owned());
            Ok(ConsentEntry {
                categories: r.categories.split(',').map(str::to_owned).collect(),
                id: r.id,
                status: r.status,
                source: r.source,
                evidence,
                captured_at: r.captured_at,
                recorded_at: r.recorded_at,
            })
        })
        .collect()
}
