//! Message templates: create (validated locally, checked for prohibited
//! content, then submitted to the channel's WhatsApp Business Account), list,
//! get and delete. Review results arrive later through `crate::templates`.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::{IntoParams, ToSchema};
use waypost_core::NewAuditEvent;
use waypost_store::templates::{TemplateFilter, TemplateRow};

use super::json::ApiJson;
use super::{ApiError, Problem};
use crate::auth::Authorized;
use crate::auth::permission::act;
use crate::messaging::client_for;
use crate::ops::Ctx;
use crate::ops::paging::page_limit;
use crate::ops::templates::{self, NewTemplate, provider_problem};
use crate::state::{AppState, RequestOrigin};

#[derive(Deserialize, ToSchema)]
pub struct CreateTemplate {
    /// Lower-case letters, digits and underscores, at most 512.
    #[schema(min_length = 1, max_length = 512)]
    pub name: String,
    /// Locale code, e.g. `en_US`.
    pub language: String,
    /// `marketing`, `utility` or `authentication`.
    pub category: String,
    /// Meta's components array (`HEADER`, `BODY`, `FOOTER`, `BUTTONS`) with
    /// positional `{{1}}` placeholders and an example for each.
    #[schema(value_type = Vec<Object>)]
    pub components: Value,
    /// The channel whose WhatsApp Business Account holds the template;
    /// optional when the workspace has exactly one channel.
    pub channel_id: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct TemplateView {
    pub id: String,
    pub channel_id: String,
    pub name: String,
    pub language: String,
    pub category: String,
    #[schema(value_type = Vec<Object>)]
    pub components: Value,
    /// `PENDING`, `APPROVED`, `REJECTED`, `PAUSED`, `DISABLED`, …
    pub status: String,
    pub rejection_reason: Option<String>,
    /// The template's id at the provider.
    pub provider_id: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Serialize, ToSchema)]
pub struct TemplatePage {
    pub data: Vec<TemplateView>,
    /// Pass as `after` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

#[derive(Deserialize, IntoParams)]
pub struct TemplateQuery {
    /// Only templates with this status, e.g. `APPROVED`.
    pub status: Option<String>,
    /// Only templates of this channel.
    pub channel_id: Option<String>,
    /// The `next_cursor` of the previous page.
    pub after: Option<String>,
    /// Page size, 1 to 100 (default 50).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
}

pub(crate) fn view(t: TemplateRow) -> TemplateView {
    TemplateView {
        components: serde_json::from_str(&t.components).unwrap_or(Value::Null),
        id: t.id,
        channel_id: t.channel_id,
        name: t.name,
        language: t.language,
        category: t.category,
        status: t.status,
        rejection_reason: t.rejection_reason,
        provider_id: t.provider_id,
        created_at: t.created_at,
        updated_at: t.updated_at,
    }
}

/// Submits a template for review (scope `templates:write`).
#[utoipa::path(operation_id = "create_template", post, path = "/v1/templates", tag = "templates", request_body = CreateTemplate,
    responses((status = 201, body = TemplateView),
        (status = 409, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
        (status = 502, body = Problem, content_type = "application/problem+json")),
    security(("api_key" = ["templates:write"]), ("session" = [])))]
pub async fn create(
    State(state): State<AppState>,
    origin: RequestOrigin,
    auth: Authorized<act::TemplatesWrite>,
    ApiJson(req): ApiJson<CreateTemplate>,
) -> Result<(StatusCode, Json<TemplateView>), ApiError> {
    let input = NewTemplate {
        name: req.name,
        language: req.language,
        category: req.category,
        components: req.components,
        channel_id: req.channel_id,
    };
    let row = templates::create(&state, &Ctx::of(&auth, origin), input).await?;
    Ok((StatusCode::CREATED, Json(view(row))))
}

/// The workspace's templates, oldest first (scope `templates:read`).
#[utoipa::path(operation_id = "list_templates", get, path = "/v1/templates", tag = "templates", params(TemplateQuery),
    responses((status = 200, body = TemplatePage)),
    security(("api_key" = ["templates:read"]), ("session" = [])))]
pub async fn list(
    State(state): State<AppState>,
    auth: Authorized<act::TemplatesRead>,
    Query(q): Query<TemplateQuery>,
) -> Result<Json<TemplatePage>, ApiError> {
    let limit = page_limit(q.limit, 50, 100)?;
    let filter = TemplateFilter {
        status: q.status.map(|s| s.to_ascii_uppercase()),
        channel_id: q.channel_id,
        after: q.after,
    };
    let rows = state
        .store
        .list_templates(&auth.workspace_id.to_string(), &filter, limit)
        .await?;
    let next_cursor = (rows.len() as u32 == limit)
        .then(|| rows.last().map(|t| t.id.clone()))
        .flatten();
    Ok(Json(TemplatePage {
        data: rows.into_iter().map(view).collect(),
        next_cursor,
    }))
}

/// One template with its current review status (scope `templates:read`).
#[utoipa::path(operation_id = "get_template", get, path = "/v1/templates/{id}", tag = "templates", params(("id" = String, Path)),
    responses((status = 200, body = TemplateView), (status = 404, body = Problem, content_type = "application/problem+json")),
    security(("api_key" = ["templates:read"]), ("session" = [])))]
pub async fn get(
    State(state): State<AppState>,
    auth: Authorized<act::TemplatesRead>,
    Path(id): Path<String>,
) -> Result<Json<TemplateView>, ApiError> {
    let row = state
        .store
        .get_template(&auth.workspace_id.to_string(), &id)
        .await?;
    Ok(Json(view(row)))
}

/// Deletes a template here and at the provider (scope `templates:write`).
#[utoipa::path(operation_id = "delete_template", delete, path = "/v1/templates/{id}", tag = "templates", params(("id" = String, Path)),
    responses((status = 204, description = "Deleted"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 502, body = Problem, content_type = "application/problem+json")),
    security(("api_key" = ["templates:write"]), ("session" = [])))]
pub async fn delete(
    State(state): State<AppState>,
    origin: RequestOrigin,
    auth: Authorized<act::TemplatesWrite>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let ws = auth.workspace_id.to_string();
    let row = state.store.get_template(&ws, &id).await?;
    // The channel may be gone (soft-deleted); then only the local row remains to delete.
    match state.store.get_channel(&ws, &row.channel_id).await {
        Ok(channel) => {
            let client = client_for(&state.keys, &state.config, &channel)?;
            match client
                .delete_template(&channel.waba_id, &row.name, row.provider_id.as_deref())
                .await
            {
                Ok(()) => {}
                // Already gone at the provider (code 100): deleting here is what the caller wants.
                Err(e) if e.meta().is_some_and(|m| m.code == 100) => {
                    tracing::info!(template = %row.id, "template already absent at the provider");
                }
                Err(e) => return Err(provider_problem(&e)),
            }
        }
        Err(waypost_store::StoreError::NotFound(_)) => {}
        Err(e) => return Err(e.into()),
    }
    let event = NewAuditEvent::new(
        Some(auth.workspace_id),
        auth.caller.actor(),
        "template.deleted",
    )
    .target("template", row.id.clone())
    .details(json!({ "name": row.name, "language": row.language }));
    state
        .store
        .delete_template(&ws, &row.id, origin.stamp(event))
        .await?;
    state.lookups.invalidate();
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, IntoParams)]
pub struct SyncQuery {
    /// Only this channel's templates; all channels of the workspace without it.
    pub channel_id: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct ChannelSyncView {
    pub channel_id: String,
    pub channel_name: String,
    /// Templates of this channel whose status changed.
    pub updated: u64,
    /// Why this channel could not be synced; absent when it was.
    pub error: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct TemplateSyncView {
    /// Templates whose status changed, over every channel synced.
    pub updated: u64,
    pub channels: Vec<ChannelSyncView>,
}

/// Asks WhatsApp for the review status of the workspace's templates now
/// instead of waiting for the periodic sync (scope `templates:write`).
#[utoipa::path(operation_id = "sync_templates", post, path = "/v1/templates/sync", tag = "templates", params(SyncQuery),
    responses((status = 200, body = TemplateSyncView),
        (status = 404, description = "No such channel", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The workspace has no channel", body = Problem, content_type = "application/problem+json"),
        (status = 502, description = "No channel could be synced", body = Problem, content_type = "application/problem+json")),
    security(("api_key" = ["templates:write"]), ("session" = [])))]
pub async fn sync(
    State(state): State<AppState>,
    origin: RequestOrigin,
    auth: Authorized<act::TemplatesWrite>,
    Query(q): Query<SyncQuery>,
) -> Result<Json<TemplateSyncView>, ApiError> {
    let ctx = Ctx::of(&auth, origin);
    let done = crate::ops::template_sync::sync(&state, &ctx, q.channel_id.as_deref()).await?;
    Ok(Json(TemplateSyncView {
        updated: done.updated,
        channels: done
            .channels
            .into_iter()
            .map(|c| ChannelSyncView {
                channel_id: c.channel_id,
                channel_name: c.channel_name,
                updated: c.updated,
                error: c.error,
            })
            .collect(),
    }))
}
