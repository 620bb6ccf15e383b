//! Automation rules, the assistant's settings and knowledge base, and handing
//! a conversation back to the assistant. Rules and settings need
//! `channels:manage`; handing back needs `messages:send` (agents do it). The
//! rules are in `ops::automation`, `ops::assistant` and `ops::knowledge`.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::json::ApiJson;
use super::{ApiError, Problem};
use crate::auth::Authorized;
use crate::auth::permission::act;
use crate::ops::Ctx;
use crate::ops::assistant::{self, AssistantInput, AssistantView};
use crate::ops::automation::{self, NewRule, RuleView};
use crate::ops::knowledge::{self, KnowledgeView, NewFaq};
use crate::state::{AppState, RequestOrigin};

#[derive(Serialize, ToSchema)]
pub struct RuleList {
    pub data: Vec<RuleView>,
}

#[derive(Serialize, ToSchema)]
pub struct KnowledgeList {
    pub data: Vec<KnowledgeView>,
}

#[derive(Deserialize, IntoParams)]
pub struct DocumentQuery {
    /// The document's title.
    #[param(min_length = 1, max_length = 200, pattern = r"\S")]
    pub title: String,
}

/// Adds a welcome, away or keyword rule to a channel.
#[utoipa::path(operation_id = "create_automation_rule", post, path = "/v1/automation/rules", tag = "automation",
    request_body = NewRule,
    responses((status = 201, body = RuleView),
        (status = 422, body = Problem, content_type = "application/problem+json")),
    security(("api_key" = ["channels:manage"]), ("session" = [])))]
pub async fn create_rule(
    State(state): State<AppState>,
    origin: RequestOrigin,
    auth: Authorized<act::ChannelsManage>,
    ApiJson(req): ApiJson<NewRule>,
) -> Result<(StatusCode, Json<RuleView>), ApiError> {
    let rule = automation::create_rule(&state, &Ctx::of(&auth, origin), req).await?;
    Ok((StatusCode::CREATED, Json(rule)))
}

/// The workspace's rules, by channel and priority.
#[utoipa::path(operation_id = "list_automation_rules", get, path = "/v1/automation/rules", tag = "automation",
    responses((status = 200, body = RuleList)),
    security(("api_key" = ["channels:manage"]), ("session" = [])))]
pub async fn list_rules(
    State(state): State<AppState>,
    origin: RequestOrigin,
    auth: Authorized<act::ChannelsManage>,
) -> Result<Json<RuleList>, ApiError> {
    let data = automation::list_rules(&state, &Ctx::of(&auth, origin)).await?;
    Ok(Json(RuleList { data }))
}

#[utoipa::path(operation_id = "delete_automation_rule", delete, path = "/v1/automation/rules/{id}", tag = "automation",
    params(("id" = String, Path)),
    responses((status = 204), (status = 404, body = Problem, content_type = "application/problem+json")),
    security(("api_key" = ["channels:manage"]), ("session" = [])))]
pub async fn delete_rule(
    State(state): State<AppState>,
    origin: RequestOrigin,
    auth: Authorized<act::ChannelsManage>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    automation::delete_rule(&state, &Ctx::of(&auth, origin), &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The assistant's settings (the API key is never shown).
#[utoipa::path(operation_id = "get_assistant", get, path = "/v1/assistant", tag = "automation",
    responses((status = 200, body = AssistantView), (status = 404, body = Problem, content_type = "application/problem+json")),
    security(("api_key" = ["channels:manage"]), ("session" = [])))]
pub async fn get_assistant(
    State(state): State<AppState>,
    origin: RequestOrigin,
    auth: Authorized<act::ChannelsManage>,
) -> Result<Json<AssistantView>, ApiError> {
    Ok(Json(
        assistant::settings(&state, &Ctx::of(&auth, origin)).await?,
    ))
}

/// Sets the assistant's provider, limits, handoff rule and channels.
#[utoipa::path(operation_id = "put_assistant", put, path = "/v1/assistant", tag = "automation",
    request_body = AssistantInput,
    responses((status = 200, body = AssistantView),
        (status = 422, body = Problem, content_type = "application/problem+json")),
    security(("api_key" = ["channels:manage"]), ("session" = [])))]
pub async fn put_assistant(
    State(state): State<AppState>,
    origin: RequestOrigin,
    auth: Authorized<act::ChannelsManage>,
    ApiJson(req): ApiJson<AssistantInput>,
) -> Result<Json<AssistantView>, ApiError> {
    Ok(Json(
        assistant::put_settings(&state, &Ctx::of(&auth, origin), req).await?,
    ))
}

/// Adds a question and its answer to the knowledge base.
#[utoipa::path(operation_id = "add_knowledge_faq", post, path = "/v1/assistant/knowledge/faqs", tag = "automation",
    request_body = NewFaq,
    responses((status = 201, body = KnowledgeView),
        (status = 422, body = Problem, content_type = "application/problem+json")),
    security(("api_key" = ["channels:manage"]), ("session" = [])))]
pub async fn add_faq(
    State(state): State<AppState>,
    origin: RequestOrigin,
    auth: Authorized<act::ChannelsManage>,
    ApiJson(req): ApiJson<NewFaq>,
) -> Result<(StatusCode, Json<KnowledgeView>), ApiError> {
    let doc = knowledge::add_faq(&state, &Ctx::of(&auth, origin), req).await?;
    Ok((StatusCode::CREATED, Json(doc)))
}

/// Uploads a text or markdown document (the raw body), split into passages.
#[utoipa::path(operation_id = "add_knowledge_document", post, path = "/v1/assistant/knowledge/documents", tag = "automation",
    params(DocumentQuery),
    request_body(content = String, content_type = "text/markdown"),
    responses((status = 201, body = KnowledgeView),
        (status = 422, body = Problem, content_type = "application/problem+json")),
    security(("api_key" = ["channels:manage"]), ("session" = [])))]
pub async fn add_document(
    State(state): State<AppState>,
    origin: RequestOrigin,
    auth: Authorized<act::ChannelsManage>,
    Query(q): Query<DocumentQuery>,
    body: Bytes,
) -> Result<(StatusCode, Json<KnowledgeView>), ApiError> {
    let doc = knowledge::add_document(&state, &Ctx::of(&auth, origin), q.title, &body).await?;
    Ok((StatusCode::CREATED, Json(doc)))
}

#[utoipa::path(operation_id = "list_knowledge", get, path = "/v1/assistant/knowledge", tag = "automation",
    responses((status = 200, body = KnowledgeList)),
    security(("api_key" = ["channels:manage"]), ("session" = [])))]
pub async fn list_knowledge(
    State(state): State<AppState>,
    origin: RequestOrigin,
    auth: Authorized<act::ChannelsManage>,
) -> Result<Json<KnowledgeList>, ApiError> {
    let data = knowledge::list(&state, &Ctx::of(&auth, origin)).await?;
    Ok(Json(KnowledgeList { data }))
}

#[utoipa::path(operation_id = "delete_knowledge", delete, path = "/v1/assistant/knowledge/{id}", tag = "automation",
    params(("id" = String, Path)),
    responses((status = 204), (status = 404, body = Problem, content_type = "application/problem+json")),
    security(("api_key" = ["channels:manage"]), ("session" = [])))]
pub async fn delete_knowledge(
    State(state): State<AppState>,
    origin: RequestOrigin,
    auth: Authorized<act::ChannelsManage>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    knowledge::delete(&state, &Ctx::of(&auth, origin), &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Hands a conversation the assistant gave to a person back to the assistant
/// (unassigned, turn count reset).
#[utoipa::path(operation_id = "resume_assistant", post, path = "/v1/conversations/{id}/assistant", tag = "automation",
    params(("id" = String, Path)),
    responses((status = 204), (status = 404, body = Problem, content_type = "application/problem+json")),
    security(("api_key" = ["messages:send"]), ("session" = [])))]
pub async fn resume_assistant(
    State(state): State<AppState>,
    origin: RequestOrigin,
    auth: Authorized<act::MessagesSend>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    assistant::resume(&state, &Ctx::of(&auth, origin), &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
