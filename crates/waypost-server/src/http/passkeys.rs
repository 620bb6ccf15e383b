//! WebAuthn passkeys: registering (step-up required), listing and removing
//! them. The ceremonies and their rules live in `ops::passkeys`.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use waypost_store::passkeys::PasskeyRecord;
use webauthn_rs::prelude::RegisterPublicKeyCredential;

use super::json::ApiJson;
use super::{ApiError, Problem};
use crate::auth::Caller;
use crate::ops::passkeys::{self as op, Residency, Started};
use crate::state::{AppState, RequestOrigin};

/// A started WebAuthn ceremony: pass `options` to the browser's
/// `navigator.credentials.create()` / `get()` and send the result with `challenge_id`.
#[derive(Serialize, ToSchema)]
pub struct Ceremony {
    pub challenge_id: String,
    /// `PublicKeyCredentialCreationOptions` or `…RequestOptions` (under `publicKey`), as JSON.
    #[schema(value_type = Object)]
    pub options: serde_json::Value,
}

impl From<Started> for Ceremony {
    fn from(s: Started) -> Self {
        Self {
            challenge_id: s.challenge_id,
            options: s.options,
        }
    }
}

#[derive(Deserialize, ToSchema)]
pub struct RegisterFinish {
    pub challenge_id: String,
    /// A label for the list, e.g. "Laptop".
    pub name: String,
    /// The `PublicKeyCredential` from `navigator.credentials.create()`, as JSON.
    #[schema(value_type = Object)]
    pub credential: RegisterPublicKeyCredential,
}

#[derive(Serialize, ToSchema)]
pub struct PasskeyView {
    pub id: String,
    pub name: String,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
}

impl From<PasskeyRecord> for PasskeyView {
    fn from(p: PasskeyRecord) -> Self {
        Self {
            id: p.id,
            name: p.name,
            created_at: p.created_at,
            last_used_at: p.last_used_at,
        }
    }
}

/// Starts registering a passkey for the signed-in user (step-up required).
#[utoipa::path(operation_id = "start_passkey_registration", post, path = "/v1/auth/passkeys/register/start", tag = "auth",
    responses((status = 200, body = Ceremony),
        (status = 403, description = "Re-authentication required", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Too many passkeys", body = Problem, content_type = "application/problem+json")),
    security(("session" = [])))]
pub async fn register_start(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Ceremony>, ApiError> {
    let started = op::register_start(&state, &caller, Residency::Any).await?;
    Ok(Json(started.into()))
}

/// Finishes registration; answers the new passkey.
#[utoipa::path(operation_id = "finish_passkey_registration", post, path = "/v1/auth/passkeys/register/finish", tag = "auth", request_body = RegisterFinish,
    responses((status = 201, body = PasskeyView),
        (status = 422, description = "Unknown challenge, bad name or refused credential", body = Problem, content_type = "application/problem+json")),
    security(("session" = [])))]
pub async fn register_finish(
    State(state): State<AppState>,
    origin: RequestOrigin,
    caller: Caller,
    ApiJson(req): ApiJson<RegisterFinish>,
) -> Result<(StatusCode, Json<PasskeyView>), ApiError> {
    let record = op::register_finish(
        &state,
        &origin,
        &caller,
        &req.challenge_id,
        &req.name,
        &req.credential,
    )
    .await?;
    Ok((StatusCode::CREATED, Json(record.into())))
}

/// The signed-in user's passkeys.
#[utoipa::path(operation_id = "list_passkeys", get, path = "/v1/auth/passkeys", tag = "auth",
    responses((status = 200, body = Vec<PasskeyView>)),
    security(("session" = [])))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Vec<PasskeyView>>, ApiError> {
    let passkeys = op::list(&state, &caller).await?;
    Ok(Json(passkeys.into_iter().map(Into::into).collect()))
}

/// Removes one of the signed-in user's passkeys (step-up required).
#[utoipa::path(operation_id = "remove_passkey", delete, path = "/v1/auth/passkeys/{id}", tag = "auth",
    params(("id" = String, Path, description = "Passkey id")),
    responses((status = 204, description = "Removed"),
        (status = 403, description = "Re-authentication required", body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json")),
    security(("session" = [])))]
pub async fn remove(
    State(state): State<AppState>,
    origin: RequestOrigin,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    op::remove(&state, &origin, &caller, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
