//! API keys of a workspace: created by signed-in users (with step-up), shown
//! once, stored only as a keyed hash, listed with their prefix, revoked at once.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use waypost_core::NewAuditEvent;
use waypost_core::auth::Scope;
use waypost_crypto::token;
use waypost_store::identity::ApiKeyRecord;

use super::json::ApiJson;
use super::problem::unprocessable;
use super::{ApiError, Problem};
use crate::auth::caller::{parse_cidr, require_recent_auth};
use crate::auth::permission::act;
use crate::auth::{Authorized, Caller};
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

/// Validated key settings, shared by the API and `waypost admin api-key create`.
pub struct KeySpec {
    pub name: String,
    pub scopes: Vec<Scope>,
    pub allowed_ips: Vec<String>,
    pub expires_at: Option<DateTime<Utc>>,
}

impl KeySpec {
    pub fn parse(
        name: &str,
        scopes: &[String],
        allowed_ips: &[String],
        expires_at: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Result<Self, String> {
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 100 {
            return Err("`name` must be 1 to 100 characters".into());
        }
        if scopes.is_empty() {
            return Err("`scopes` must name at least one scope".into());
        }
        let mut parsed = Vec::new();
        for s in scopes {
            let scope: Scope = s.parse().map_err(|_| format!("unknown scope `{s}`"))?;
            if !parsed.contains(&scope) {
                parsed.push(scope);
            }
        }
        if allowed_ips.len() > 50 {
            return Err("`allowed_ips` holds at most 50 entries".into());
        }
        for ip in allowed_ips {
            parse_cidr(ip)
                .ok_or_else(|| format!("`allowed_ips`: `{ip}` is not an address or CIDR range"))?;
        }
        if expires_at.is_some_and(|t| t <= now) {
            return Err("`expires_at` must be in the future".into());
        }
        Ok(Self {
            name: name.to_owned(),
            scopes: parsed,
            allowed_ips: allowed_ips.to_vec(),
            expires_at,
        })
    }

    /// Generates the key and its record; the plaintext key is returned once.
    pub fn mint(
        self,
        state_ring: &waypost_crypto::KeyRing,
        workspace_id: &str,
        created_by: Option<String>,
        now: DateTime<Utc>,
    ) -> (String, ApiKeyRecord) {
        let generated = token::generate_api_key();
        let secret = secrecy::ExposeSecret::expose_secret(&generated.secret).to_owned();
        let record = ApiKeyRecord {
            id: format!("key_{}", ulid::Ulid::new()),
            workspace_id: workspace_id.to_owned(),
            name: self.name,
            display_prefix: generated.display_prefix,
            key_hash: state_ring
                .blind_index("api_key", secret.as_bytes())
                .to_vec(),
            scopes: self
                .scopes
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(" "),
            allowed_ips: self.allowed_ips.join(" "),
            expires_at: self.expires_at,
            created_by,
            created_at: now,
            last_used_at: None,
            last_used_ip: None,
            revoked_at: None,
        };
        (secret, record)
    }
}

/// Creates an API key (signed-in users only, after step-up). The key is shown once.
#[utoipa::path(operation_id = "create_api_key", post, path = "/v1/api-keys", tag = "api-keys", request_body = CreateApiKey,
    responses((status = 201, body = CreatedApiKey), (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn create(
    State(state): State<AppState>,
    origin: RequestOrigin,
    auth: Authorized<act::ApiKeysManage>,
    ApiJson(req): ApiJson<CreateApiKey>,
) -> Result<(StatusCode, Json<CreatedApiKey>), ApiError> {
    require_recent_auth(&state, &auth.caller)?;
    let now = state.clock.now();
    let spec = KeySpec::parse(
        &req.name,
        &req.scopes,
        &req.allowed_ips,
        req.expires_at,
        now,
    )
    .map_err(unprocessable)?;
    let created_by = match &auth.caller {
        Caller::Session(s) => Some(s.user.id.clone()),
        Caller::ApiKey(k) => Some(k.key.id.clone()),
    };
    let (key, record) = spec.mint(
        &state.keys.current(),
        &auth.workspace_id.to_string(),
        created_by,
        now,
    );
    let event = NewAuditEvent::new(Some(auth.workspace_id), auth.caller.actor(), "api_key.created")
        .target("api_key", record.id.clone())
        .details(serde_json::json!({ "prefix": record.display_prefix, "scopes": record.scopes, "name": record.name }));
    state
        .store
        .create_api_key(&record, origin.stamp(event))
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedApiKey {
            view: record.into(),
            key,
        }),
    ))
}

/// The workspace's API keys (never the keys themselves).
#[utoipa::path(operation_id = "list_api_keys", get, path = "/v1/api-keys", tag = "api-keys", responses((status = 200, body = Vec<ApiKeyView>)))]
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
    responses((status = 200, body = ApiKeyView), (status = 404, body = Problem, content_type = "application/problem+json")))]
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
    responses((status = 204, description = "Revoked"), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn revoke(
    State(state): State<AppState>,
    origin: RequestOrigin,
    auth: Authorized<act::ApiKeysManage>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let event = NewAuditEvent::new(
        Some(auth.workspace_id),
        auth.caller.actor(),
        "api_key.revoked",
    )
    .target("api_key", id.clone());
    state
        .store
        .revoke_api_key(
            &auth.workspace_id.to_string(),
            &id,
            state.clock.now(),
            origin.stamp(event),
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
