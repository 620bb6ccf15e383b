//! Custom contact fields and segments (saved filters, counted live). The
//! rules are in `ops::audiences` and `ops::segments`.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use waypost_core::audience::FieldType;
use waypost_store::audiences::{AudienceCounts, ContactFieldRow};

use super::contacts::{ContactPage, views};
use super::json::ApiJson;
use super::{ApiError, Problem};
use crate::auth::Authorized;
use crate::auth::permission::act;
use crate::ops::Ctx;
use crate::ops::audiences::{AudienceFilter, NewField, define_field};
use crate::ops::paging::page_limit;
use crate::ops::segments::{self, NewSegment, Segment};
use crate::state::{AppState, RequestOrigin};

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateField {
    /// `a-z`, `0-9` and `_`, starting with a letter; not a built-in column name.
    #[schema(pattern = "^[a-z][a-z0-9_]{0,63}$")]
    pub key: String,
    #[serde(rename = "type")]
    #[schema(value_type = String, example = "text")]
    /// `text`, `number`, `boolean` or `date`.
    pub field_type: FieldType,
}

#[derive(Serialize, ToSchema)]
pub struct FieldView {
    pub key: String,
    #[serde(rename = "type")]
    pub field_type: String,
    pub created_at: DateTime<Utc>,
}

impl From<ContactFieldRow> for FieldView {
    fn from(f: ContactFieldRow) -> Self {
        Self {
            key: f.field_key,
            field_type: f.field_type,
            created_at: f.created_at,
        }
    }
}

/// Defines a typed custom contact field: its values are checked on write, read
/// from import columns of the same name, and can be filtered on.
#[utoipa::path(operation_id = "create_contact_field", post, path = "/v1/contacts/fields", tag = "contacts",
    request_body = CreateField,
    responses((status = 201, body = FieldView),
        (status = 409, body = Problem, content_type = "application/problem+json", description = "field-exists"),
        (status = 422, body = Problem, content_type = "application/problem+json")),
    security(("api_key" = ["contacts:write"]), ("session" = [])))]
pub async fn create_field(
    State(state): State<AppState>,
    origin: RequestOrigin,
    auth: Authorized<act::ContactsWrite>,
    ApiJson(req): ApiJson<CreateField>,
) -> Result<(StatusCode, Json<FieldView>), ApiError> {
    let input = NewField::parse(&req.key, req.field_type)?;
    let row = define_field(&state, &Ctx::of(&auth, origin), input).await?;
    Ok((StatusCode::CREATED, Json(row.into())))
}

/// The workspace's custom contact fields.
#[utoipa::path(operation_id = "list_contact_fields", get, path = "/v1/contacts/fields", tag = "contacts",
    responses((status = 200, body = Vec<FieldView>)),
    security(("api_key" = ["contacts:read"]), ("session" = [])))]
pub async fn list_fields(
    State(state): State<AppState>,
    auth: Authorized<act::ContactsRead>,
) -> Result<Json<Vec<FieldView>>, ApiError> {
    let rows = state
        .store
        .list_contact_fields(&auth.workspace_id.to_string())
        .await?;
    Ok(Json(rows.into_iter().map(Into::into).collect()))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateSegment {
    #[schema(min_length = 1, max_length = 100, pattern = r"\S")]
    pub name: String,
    pub filter: AudienceFilter,
}

#[derive(Serialize, ToSchema)]
pub struct SegmentCounts {
    pub contacts: i64,
    /// Of those, opted in to marketing and not restricted.
    pub marketing_consent: i64,
}

impl From<AudienceCounts> for SegmentCounts {
    fn from(c: AudienceCounts) -> Self {
        Self {
            contacts: c.contacts,
            marketing_consent: c.marketing_consent,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct SegmentView {
    pub id: String,
    pub name: String,
    pub filter: AudienceFilter,
    /// Counted now; only on single reads.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub counts: Option<SegmentCounts>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

fn segment_view(s: Segment, counts: Option<AudienceCounts>) -> SegmentView {
    SegmentView {
        id: s.row.id,
        name: s.row.name,
        filter: s.filter,
        counts: counts.map(Into::into),
        created_at: s.row.created_at,
        updated_at: s.row.updated_at,
    }
}

#[derive(Serialize, ToSchema)]
pub struct SegmentPage {
    pub data: Vec<SegmentView>,
    pub next_cursor: Option<String>,
}

#[derive(Deserialize, IntoParams)]
pub struct SegmentPageQuery {
    pub after: Option<String>,
    /// Page size, 1 to 500 (default 100).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u32>,
}

/// Saves a filter as a segment and answers with its live counts.
#[utoipa::path(operation_id = "create_segment", post, path = "/v1/segments", tag = "segments",
    request_body = CreateSegment,
    responses((status = 201, body = SegmentView),
        (status = 409, body = Problem, content_type = "application/problem+json", description = "segment-exists"),
        (status = 422, body = Problem, content_type = "application/problem+json")),
    security(("api_key" = ["contacts:write"]), ("session" = [])))]
pub async fn create(
    State(state): State<AppState>,
    origin: RequestOrigin,
    auth: Authorized<act::ContactsWrite>,
    ApiJson(req): ApiJson<CreateSegment>,
) -> Result<(StatusCode, Json<SegmentView>), ApiError> {
    let ctx = Ctx::of(&auth, origin);
    let input = NewSegment::parse(&req.name, req.filter)?;
    let segment = segments::create_segment(&state, &ctx, input).await?;
    let counts = segments::count_segment(&state, &ctx.workspace, &segment).await?;
    Ok((
        StatusCode::CREATED,
        Json(segment_view(segment, Some(counts))),
    ))
}

/// The workspace's segments in id order (without counts: read one to count it).
#[utoipa::path(operation_id = "list_segments", get, path = "/v1/segments", tag = "segments",
    params(SegmentPageQuery), responses((status = 200, body = SegmentPage)),
    security(("api_key" = ["contacts:read"]), ("session" = [])))]
pub async fn list(
    State(state): State<AppState>,
    auth: Authorized<act::ContactsRead>,
    Query(q): Query<SegmentPageQuery>,
) -> Result<Json<SegmentPage>, ApiError> {
    let limit = page_limit(q.limit, 100, 500)?;
    let (rows, next_cursor) = segments::list_segments(
        &state,
        &auth.workspace_id.to_string(),
        q.after.as_deref(),
        limit,
    )
    .await?;
    let data = rows.into_iter().map(|s| segment_view(s, None)).collect();
    Ok(Json(SegmentPage { data, next_cursor }))
}

/// One segment, counted now: its contacts and how many may receive marketing.
#[utoipa::path(operation_id = "get_segment", get, path = "/v1/segments/{id}", tag = "segments",
    params(("id" = String, Path)),
    responses((status = 200, body = SegmentView), (status = 404, body = Problem, content_type = "application/problem+json")),
    security(("api_key" = ["contacts:read"]), ("session" = [])))]
pub async fn get(
    State(state): State<AppState>,
    auth: Authorized<act::ContactsRead>,
    Path(id): Path<String>,
) -> Result<Json<SegmentView>, ApiError> {
    let ws = auth.workspace_id.to_string();
    let segment = segments::get_segment(&state, &ws, &id).await?;
    let counts = segments::count_segment(&state, &ws, &segment).await?;
    Ok(Json(segment_view(segment, Some(counts))))
}

/// Deletes a segment (its contacts stay).
#[utoipa::path(operation_id = "delete_segment", delete, path = "/v1/segments/{id}", tag = "segments",
    params(("id" = String, Path)),
    responses((status = 204, description = "Deleted"), (status = 404, body = Problem, content_type = "application/problem+json")),
    security(("api_key" = ["contacts:write"]), ("session" = [])))]
pub async fn delete(
    State(state): State<AppState>,
    origin: RequestOrigin,
    auth: Authorized<act::ContactsWrite>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    segments::delete_segment(&state, &Ctx::of(&auth, origin), &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The segment's contacts now, in id order.
#[utoipa::path(operation_id = "segment_contacts", get, path = "/v1/segments/{id}/contacts", tag = "segments",
    params(("id" = String, Path), SegmentPageQuery),
    responses((status = 200, body = ContactPage), (status = 404, body = Problem, content_type = "application/problem+json")),
    security(("api_key" = ["contacts:read"]), ("session" = [])))]
pub async fn contacts(
    State(state): State<AppState>,
    auth: Authorized<act::ContactsRead>,
    Path(id): Path<String>,
    Query(q): Query<SegmentPageQuery>,
) -> Result<Json<ContactPage>, ApiError> {
    let limit = page_limit(q.limit, 100, 500)?;
    let ws = auth.workspace_id.to_string();
    let (rows, next_cursor) = segments::segment_contacts(&state, &ws, &id, q.after, limit).await?;
    Ok(Json(ContactPage {
        data: views(&state, rows).await?,
        next_cursor,
    }))
}
