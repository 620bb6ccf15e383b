//! Contacts and consent. Numbers are validated and normalised to E.164, stored
//! encrypted and found by blind index; consent changes are appended to a
//! history that is never overwritten.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use waypost_core::audience::ConsentFilter;
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
use crate::ops::audiences::{
    AudienceFilter, ConsentFilters, ProfileChange, RawProfile, fields, find_contacts, tags_of,
    update_profile,
};
pub(crate) use crate::ops::contacts::parse_phone;
use crate::ops::contacts::{NewContact, create_contact, parse_user_id};
use crate::ops::paging::page_limit;
use crate::state::{AppState, RequestOrigin};

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateContact {
    /// In international form, e.g. `+4915112345678`. Give this, `user_id` or both.
    pub phone: Option<String>,
    /// The customer's business-scoped user id (`US.1349…`, not a parent `US.ENT.…`),
    /// for customers whose number WhatsApp withholds.
    pub user_id: Option<String>,
    pub name: Option<String>,
    /// A JSON object; values of defined custom fields must have the field's type.
    pub attributes: Option<serde_json::Value>,
    /// A language code, e.g. `pt_BR`.
    pub language: Option<String>,
    /// An IANA time zone, e.g. `Europe/Berlin`.
    pub time_zone: Option<String>,
    /// Slugs such as `vip`; at most 50.
    pub tags: Option<Vec<String>>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateContact {
    pub name: Option<String>,
    /// Replaces every attribute; values of defined custom fields must have the field's type.
    pub attributes: Option<serde_json::Value>,
    /// A language code, e.g. `pt_BR`; an empty string clears it.
    pub language: Option<String>,
    /// An IANA time zone, e.g. `Europe/Berlin`; an empty string clears it.
    pub time_zone: Option<String>,
    /// Replaces every tag.
    pub tags: Option<Vec<String>>,
    /// Restricts processing: no message is sent to a restricted contact.
    pub restricted: Option<bool>,
}

impl UpdateContact {
    pub(crate) fn raw(&self) -> RawProfile<'_> {
        RawProfile {
            name: self.name.as_deref(),
            attributes: self.attributes.as_ref(),
            language: self.language.as_deref(),
            time_zone: self.time_zone.as_deref(),
            tags: self.tags.as_deref(),
            restricted: self.restricted,
        }
    }
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
    pub language: Option<String>,
    pub time_zone: Option<String>,
    pub tags: Vec<String>,
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

/// Filters of the contact list; every one given must hold.
#[derive(Deserialize, IntoParams)]
pub struct ContactListQuery {
    /// The `next_cursor` of the previous page.
    pub after: Option<String>,
    /// Page size, 1 to 500 (default 100).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u32>,
    /// Comma-separated tags the contact has, all of them.
    pub tag: Option<String>,
    /// `key:value`: a custom attribute equal to the value (text ignoring case).
    pub attribute: Option<String>,
    pub language: Option<String>,
    /// `opted_in`, `opted_out` or `unknown` (never recorded).
    pub consent_marketing: Option<String>,
    pub consent_utility: Option<String>,
    pub consent_authentication: Option<String>,
    pub last_inbound_after: Option<DateTime<Utc>>,
    pub last_inbound_before: Option<DateTime<Utc>>,
    pub created_after: Option<DateTime<Utc>>,
    pub created_before: Option<DateTime<Utc>>,
}

impl ContactListQuery {
    fn filter(&self) -> Result<AudienceFilter, ApiError> {
        let consent = |field: &str, v: &Option<String>| {
            v.as_deref()
                .map(|s| {
                    s.parse::<ConsentFilter>()
                        .map_err(|e| invalid(format!("`{field}` must be {e}")))
                })
                .transpose()
        };
        let mut attributes = std::collections::BTreeMap::new();
        if let Some(a) = &self.attribute {
            let (k, v) = a
                .split_once(':')
                .ok_or_else(|| invalid("`attribute` must be `key:value`"))?;
            attributes.insert(k.to_owned(), serde_json::Value::String(v.to_owned()));
        }
        Ok(AudienceFilter {
            tags: self
                .tag
                .as_deref()
                .map(|t| t.split(',').map(str::to_owned).collect())
                .unwrap_or_default(),
            attributes,
            language: self.language.clone(),
            consent: ConsentFilters {
                marketing: consent("consent_marketing", &self.consent_marketing)?,
                utility: consent("consent_utility", &self.consent_utility)?,
                authentication: consent("consent_authentication", &self.consent_authentication)?,
            },
            last_inbound_after: self.last_inbound_after,
            last_inbound_before: self.last_inbound_before,
            created_after: self.created_after,
            created_before: self.created_before,
        })
    }
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

/// One contact as the API shows it, with its tags.
pub(crate) async fn view_one(state: &AppState, c: ContactRow) -> Result<ContactView, ApiError> {
    let mut tags = tags_of(state, std::slice::from_ref(&c)).await?;
    let t = tags.remove(&c.id).unwrap_or_default();
    view(state, c, t)
}

/// A page of contacts as the API shows them (tags read in one query).
pub(crate) async fn views(
    state: &AppState,
    rows: Vec<ContactRow>,
) -> Result<Vec<ContactView>, ApiError> {
    let mut tags = tags_of(state, &rows).await?;
    rows.into_iter()
        .map(|c| {
            let t = tags.remove(&c.id).unwrap_or_default();
            view(state, c, t)
        })
        .collect()
}

fn view(state: &AppState, c: ContactRow, tags: Vec<String>) -> Result<ContactView, ApiError> {
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
        language: c.language,
        time_zone: c.time_zone,
        tags,
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
            description = "invalid-phone, invalid-user-id, or neither given")),
    security(("api_key" = ["contacts:write"]), ("session" = [])))]
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
    let ctx = Ctx::of(&auth, origin);
    let fields = fields(&state, &ctx.workspace).await?;
    let raw = RawProfile {
        name: req.name.as_deref(),
        attributes: req.attributes.as_ref(),
        language: req.language.as_deref(),
        time_zone: req.time_zone.as_deref(),
        tags: req.tags.as_deref(),
        restricted: None,
    };
    let input = NewContact {
        who: Identity {
            phone,
            user_id,
            ..Identity::default()
        },
        profile: ProfileChange::parse(raw, &fields)?,
    };
    let row = create_contact(&state, &ctx, input).await?;
    Ok((StatusCode::CREATED, Json(view_one(&state, row).await?)))
}

/// The workspace's contacts in id order (oldest first), filtered by tag,
/// custom attribute, language, consent per category, last inbound time and creation time.
#[utoipa::path(operation_id = "list_contacts", get, path = "/v1/contacts", tag = "contacts", params(ContactListQuery),
    responses((status = 200, body = ContactPage),
        (status = 422, body = Problem, content_type = "application/problem+json",
            description = "a filter value is not valid (`field` names it)")),
    security(("api_key" = ["contacts:read"]), ("session" = [])))]
pub async fn list(
    State(state): State<AppState>,
    auth: Authorized<act::ContactsRead>,
    Query(q): Query<ContactListQuery>,
) -> Result<Json<ContactPage>, ApiError> {
    let limit = page_limit(q.limit, 100, 500)?;
    let ws = auth.workspace_id.to_string();
    let (rows, next_cursor) =
        find_contacts(&state, &ws, &q.filter()?, q.after.clone(), limit).await?;
    let data = views(&state, rows).await?;
    Ok(Json(ContactPage { data, next_cursor }))
}

/// One contact.
#[utoipa::path(operation_id = "get_contact", get, path = "/v1/contacts/{id}", tag = "contacts", params(("id" = String, Path)),
    responses((status = 200, body = ContactView), (status = 404, body = Problem, content_type = "application/problem+json")),
    security(("api_key" = ["contacts:read"]), ("session" = [])))]
pub async fn get(
    State(state): State<AppState>,
    auth: Authorized<act::ContactsRead>,
    Path(id): Path<String>,
) -> Result<Json<ContactView>, ApiError> {
    let row = state
        .store
        .get_contact(&auth.workspace_id.to_string(), &id)
        .await?;
    Ok(Json(view_one(&state, row).await?))
}

/// Changes a contact's name, attributes or restriction.
#[utoipa::path(operation_id = "update_contact", patch, path = "/v1/contacts/{id}", tag = "contacts", params(("id" = String, Path)),
    request_body = UpdateContact,
    responses((status = 200, body = ContactView), (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")),
    security(("api_key" = ["contacts:write"]), ("session" = [])))]
pub async fn update(
    State(state): State<AppState>,
    origin: RequestOrigin,
    auth: Authorized<act::ContactsWrite>,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<UpdateContact>,
) -> Result<Json<ContactView>, ApiError> {
    let ws = auth.workspace_id.to_string();
    let row = state.store.get_contact(&ws, &id).await?;
    let change = ProfileChange::parse(req.raw(), &fields(&state, &ws).await?)?;
    let event = NewAuditEvent::new(
        Some(auth.workspace_id),
        auth.caller.actor(),
        "contact.updated",
    )
    .target("contact", row.id.clone())
    .details(serde_json::json!({ "changed": change.changed(), "restricted": change.restricted.unwrap_or(row.restricted) }));
    let row = update_profile(&state, row, &change, origin.stamp(event)).await?;
    Ok(Json(view_one(&state, row).await?))
}

/// Deletes a contact with its messages and consent history.
#[utoipa::path(operation_id = "delete_contact", delete, path = "/v1/contacts/{id}", tag = "contacts", params(("id" = String, Path)),
    responses((status = 204, description = "Deleted"), (status = 404, body = Problem, content_type = "application/problem+json")),
    security(("api_key" = ["contacts:write"]), ("session" = [])))]
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
    #[schema(min_items = 1)]
    pub categories: Vec<ConsentCategory>,
    /// Where consent was given or withdrawn, e.g. `checkout_form`.
    #[schema(min_length = 1, max_length = 200, pattern = r"\S")]
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
        (status = 422, body = Problem, content_type = "application/problem+json")),
    security(("api_key" = ["contacts:write"]), ("session" = [])))]
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
    Ok((StatusCode::CREATED, Json(view_one(&state, updated).await?)))
}

/// A contact's consent history, oldest first.
#[utoipa::path(operation_id = "consent_history", get, path = "/v1/contacts/{id}/consent", tag = "contacts", params(("id" = String, Path)),
    responses((status = 200, body = Vec<ConsentEntry>), (status = 404, body = Problem, content_type = "application/problem+json")),
    security(("api_key" = ["contacts:read"]), ("session" = [])))]
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
