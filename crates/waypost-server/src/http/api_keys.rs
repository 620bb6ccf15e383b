//! API keys of a workspace: created by signed-in users (with step-up), shown
//! once, stored only as a keyed hash, listed with their prefix, revoked at once.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use waypost_store::identity::ApiKeyRecord;

use super::json::ApiJson;
use super::{ApiError, Problem};
use crate::auth::Authorized;
use crate::auth::permission::act;
use crate::error::unprocessable;
use crate::ops::Ctx;
use crate::ops::api_keys::{self, KeySpec};
use crate::state::{AppState, RequestOrigin};

#[derive(Deserialize, ToSchema)]
pub struct CreateApiKey {
    pub name: String,
    /// e.g. `["messages:send", "messages:read"]`
    pub scopes: Vec<String>,
    pub expires_at: Option<DateTime<Utc>>,
    /// Addresses or CIDR ranges allowed to use the key; empty or absent: any.
    #[serde(default)]
    pub allowed_ips: Vec<String>,
}

#[derive(Serialize, ToSchema)]
pub struct ApiKeyView {
    pub id: String,
    pub name: String,
    /// The first characters of the key, enough to recognise it.
    pub prefix: String,
    pub scopes: Vec<String>,
    pub allowed_ips: Vec<String>,
    pub expires_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub last_used_ip: Option<String>,
    pub revoked_at: Option<DateTime<Utc>>,
}

#[derive(Serialize, ToSchema)]
pub struct CreatedApiKey {
    #[serde(flatten)]
    pub view: ApiKeyView,
    /// The key itself. Shown only in this answer.
    pub key: String,
}

impl From<ApiKeyRecord> for ApiKeyView {
    fn from(k: ApiKeyRecord) -> Self {
        Self {
            id: k.id,
            name: k.name,
            prefix: k.display_prefix,
            scopes: k.scopes.split_whitespace().map(str::to_owned).collect(),
            allowed_ips: k
                .allowed_ips
                .split_whitespace()
                .map(str::to_owned)
                .collect(),
            expires_at: k.expires_at,
            created_at: k.created_at,
            last_used_at: k.last_used_at,
            last_used_ip: k.last_used_ip,
            revoked_at: k.revoked_at,
        }
    }
}

/// Creates an API key (signed-in users only, after step-up). The key is shown once.
#[utoipa::path(operation_id = "create_api_key", post, path = "/v1/api-keys", tag = "api-keys", request_body = CreateApiKey,
    responses((status = 201, body = CreatedApiKey), (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")),
    security(("session" = [])))]
pub async fn create(
    State(state): State<AppState>,
    origin: RequestOrigin,
    auth: Authorized<act::ApiKeysManage>,
    ApiJson(req): ApiJson<CreateApiKey>,
) -> Result<(StatusCode, Json<CreatedApiKey>), ApiError> {
    let now = state.clock.now();
    let spec = KeySpec::parse(
        &req.name,
        &req.scopes,
        &req.allowed_ips,
        req.expires_at,
        now,
    )
    .map_err(unprocessable)?;
    let ctx = Ctx::of(&auth, origin);
    let (key, record) = api_keys::create(&state, &ctx, &auth.caller, spec).await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedApiKey {
            view: record.into(),
            key,
        }),
    ))
}

/// The workspace's API keys (never the keys themselves).
#[utoipa::path(operation_id = "list_api_keys", get, path = "/v1/api-keys", tag = "api-keys", responses((status = 200, body = Vec<ApiKeyView>)),
    security(("session" = [])))]
pub async fn list(
    State(state): State<AppState>,
    auth: Authorized<act::ApiKeysManage>,
) -> Result<Json<Vec<ApiKeyView>>, ApiError> {
    let keys = state
        .store
        .list_api_keys(&auth.workspace_id.to_string())
        .await?;
    Ok(Json(keys.into_iter().map(ApiKeyView::from).collect()))
}

/// One API key.
#[utoipa::path(operation_id = "get_api_key", get, path = "/v1/api-keys/{id}", tag = "api-keys", params(("id" = String, Path)),
    responses((status = 200, body = ApiKeyView), (status = 404, body = Problem, content_type = "application/problem+json")),
    security(("session" = [])))]
pub async fn get(
    State(state): State<AppState>,
    auth: Authorized<act::ApiKeysManage>,
    Path(id): Path<String>,
) -> Result<Json<ApiKeyView>, ApiError> {
    Ok(Json(
        state
            .store
            .get_api_key(&auth.workspace_id.to_string(), &id)
            .await?
            .into(),
    ))
}

/// Revokes an API key at once.
#[utoipa::path(operation_id = "revoke_api_key", delete, path = "/v1/api-keys/{id}", tag = "api-keys", params(("id" = String, Path)),
    responses((status = 204, description = "Revoked"), (status = 404, body = Problem, content_type = "application/problem+json")),
    security(("session" = [])))]
pub async fn revoke(
    State(state): State<AppState>,
    origin: RequestOrigin,
    auth: Authorized<act::ApiKeysManage>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    api_keys::revoke(&state, &Ctx::of(&auth, origin), &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
