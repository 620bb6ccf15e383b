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
use waypost_cloudapi::ClientError;
use waypost_cloudapi::classify::ErrorClass;
use waypost_cloudapi::manage::{TemplateCreate, TemplateDefComponent};
use waypost_core::template::{
    LanguageCode, TemplateCategory, TemplateName, template_texts, validate_components,
};
use waypost_core::{NewAuditEvent, TemplateId};
use waypost_store::messaging::ChannelRow;
use waypost_store::templates::{TemplateFilter, TemplateRow};

use super::json::ApiJson;
use super::{ApiError, Problem};
use crate::auth::Authorized;
use crate::auth::permission::act;
use crate::messaging::client_for;
use crate::state::{AppState, RequestOrigin};

#[derive(Deserialize, ToSchema)]
pub struct CreateTemplate {
    /// Lower-case letters, digits and underscores, at most 512.
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
    pub limit: Option<u32>,
}

fn view(t: TemplateRow) -> TemplateView {
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

fn invalid(detail: impl Into<String>, errors: Value) -> ApiError {
    Problem::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation",
        "Invalid request",
        detail,
    )
    .with("errors", errors)
    .into()
}

fn invalid_field(field: &str, message: String) -> ApiError {
    invalid(
        format!("`{field}` {message}"),
        json!([{ "pointer": format!("/{field}"), "detail": message }]),
    )
}

/// A provider failure as a problem: the provider's code and title, never
/// our request or token. Refusals of the template itself are 422, the rest 502.
pub fn provider_problem(e: &ClientError) -> ApiError {
    let (status, slug, title) = match (e.meta(), e.class()) {
        (Some(_), ErrorClass::Permanent) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            "provider-rejected",
            "Refused by the provider",
        ),
        _ => (StatusCode::BAD_GATEWAY, "provider-error", "Provider error"),
    };
    let mut problem = match e.meta() {
        Some(m) => Problem::new(
            status,
            slug,
            title,
            format!(
                "The provider answered {}: {}",
                m.code,
                m.details().unwrap_or(&m.message)
            ),
        )
        .with("provider_code", m.code.into())
        .with("provider_title", m.message.clone().into()),
        None => Problem::new(
            status,
            slug,
            title,
            "The provider could not be reached or gave no usable answer; retry later.",
        ),
    };
    if let Some(s) = e.status() {
        problem = problem.with("provider_status", s.into());
    }
    tracing::warn!(error = %e, "template request refused by the provider");
    problem.into()
}

/// The channel named in the request, or the workspace's only one.
async fn channel_for(
    state: &AppState,
    workspace_id: &str,
    named: Option<&str>,
) -> Result<ChannelRow, ApiError> {
    if let Some(id) = named {
        return match state.store.get_channel(workspace_id, id).await {
            Err(waypost_store::StoreError::NotFound(_)) => Err(invalid_field(
                "channel_id",
                "names no channel of this workspace".into(),
            )),
            other => Ok(other?),
        };
    }
    let mut channels = state.store.list_channels(workspace_id).await?;
    match channels.len() {
        1 => Ok(channels.remove(0)),
        0 => Err(invalid_field(
            "channel_id",
            "is required: the workspace has no channel yet".into(),
        )),
        _ => Err(invalid_field(
            "channel_id",
            "is required when the workspace has several channels".into(),
        )),
    }
}

/// Local checks: name, language, category, components and prohibited content.
fn validate(
    state: &AppState,
    req: &CreateTemplate,
) -> Result<(TemplateName, LanguageCode, TemplateCategory), ApiError> {
    let name = TemplateName::parse(&req.name).map_err(|m| invalid_field("name", m))?;
    let language = LanguageCode::parse(&req.language).map_err(|m| invalid_field("language", m))?;
    let category =
        TemplateCategory::parse(&req.category).map_err(|m| invalid_field("category", m))?;
    if let Err(errors) = validate_components(&req.components) {
        let detail = format!(
            "The template's components are invalid: {}",
            errors
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; ")
        );
        let list: Vec<Value> = errors
            .iter()
            .map(|e| json!({ "pointer": e.pointer, "detail": e.message }))
            .collect();
        return Err(invalid(detail, Value::Array(list)));
    }
    let prohibited = state.config.template_prohibited();
    if let Some(category) = prohibited.check(template_texts(name.as_str(), &req.components)) {
        // Name the category only: echoing the matched words would repeat them into logs.
        return Err(Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "template-prohibited-content",
            "Prohibited content",
            format!("The template contains content of the prohibited category `{category}`, which WhatsApp's commerce and business policies do not allow."),
        )
        .with("category", category.into())
        .into());
    }
    Ok((name, language, category))
}

/// The provider's create body. Component types go upper case, as Meta writes
/// them; the stored components stay exactly as submitted.
fn provider_body(
    name: &TemplateName,
    language: &LanguageCode,
    category: TemplateCategory,
    components: &Value,
) -> Result<TemplateCreate, ApiError> {
    let mut components: Vec<TemplateDefComponent> = serde_json::from_value(components.clone())
        .map_err(|e| {
            invalid(
                format!("The template's components are invalid: {e}"),
                json!([]),
            )
        })?;
    for c in &mut components {
        c.kind.make_ascii_uppercase();
        if let Some(f) = &mut c.format {
            f.make_ascii_uppercase();
        }
        c.buttons
            .iter_mut()
            .for_each(|b| b.kind.make_ascii_uppercase());
    }
    Ok(TemplateCreate {
        name: name.to_string(),
        language: language.to_string(),
        category: category.meta_str().into(),
        parameter_format: None,
        components,
    })
}

/// Submits a template for review (scope `templates:write`).
#[utoipa::path(operation_id = "create_template", post, path = "/v1/templates", tag = "templates", request_body = CreateTemplate,
    responses((status = 201, body = TemplateView),
        (status = 409, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
        (status = 502, body = Problem, content_type = "application/problem+json")))]
pub async fn create(
    State(state): State<AppState>,
    origin: RequestOrigin,
    auth: Authorized<act::TemplatesWrite>,
    ApiJson(req): ApiJson<CreateTemplate>,
) -> Result<(StatusCode, Json<TemplateView>), ApiError> {
    let (name, language, category) = validate(&state, &req)?;
    let ws = auth.workspace_id.to_string();
    let channel = channel_for(&state, &ws, req.channel_id.as_deref()).await?;
    // Checked before the provider call so a duplicate leaves nothing behind there.
    if state
        .store
        .template_by_name(&ws, name.as_str(), language.as_str())
        .await?
        .is_some()
    {
        return Err(waypost_store::StoreError::Conflict(
            "the workspace already has a template with this name and language".into(),
        )
        .into());
    }
    let body = provider_body(&name, &language, category, &req.components)?;
    let client = client_for(&state.keys, &state.config, &channel)?;
    let created = client
        .create_template(&channel.waba_id, &body)
        .await
        .map_err(|e| provider_problem(&e))?;
    let now = state.clock.now();
    let row = TemplateRow {
        id: TemplateId::new().to_string(),
        workspace_id: ws.clone(),
        channel_id: channel.id.clone(),
        name: name.to_string(),
        language: language.to_string(),
        category: category.as_str().into(),
        components: req.components.to_string(),
        status: crate::templates::stored_status(created.status.as_str())
            .unwrap_or_else(|| "PENDING".into()),
        rejection_reason: None,
        provider_id: Some(created.id.clone()),
        created_at: now,
        updated_at: now,
    };
    let event = NewAuditEvent::new(
        Some(auth.workspace_id),
        auth.caller.actor(),
        "template.created",
    )
    .target("template", row.id.clone())
    .details(
        json!({ "name": row.name, "language": row.language, "category": row.category,
            "channel_id": row.channel_id, "provider_id": row.provider_id }),
    );
    if let Err(e) = state.store.create_template(&row, origin.stamp(event)).await {
        // A concurrent create won the name: withdraw ours at the provider.
        if let Err(undo) = client
            .delete_template(&channel.waba_id, &row.name, Some(&created.id))
            .await
        {
            tracing::warn!(error = %undo, "could not withdraw a template at the provider");
        }
        return Err(e.into());
    }
    state.lookups.invalidate();
    Ok((StatusCode::CREATED, Json(view(row))))
}

/// The workspace's templates, oldest first (scope `templates:read`).
#[utoipa::path(operation_id = "list_templates", get, path = "/v1/templates", tag = "templates", params(TemplateQuery),
    responses((status = 200, body = TemplatePage)))]
pub async fn list(
    State(state): State<AppState>,
    auth: Authorized<act::TemplatesRead>,
    Query(q): Query<TemplateQuery>,
) -> Result<Json<TemplatePage>, ApiError> {
    let limit = q.limit.unwrap_or(50).clamp(1, 100);
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
    responses((status = 200, body = TemplateView), (status = 404, body = Problem, content_type = "application/problem+json")))]
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
        (status = 502, body = Problem, content_type = "application/problem+json")))]
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
