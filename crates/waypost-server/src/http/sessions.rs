//! Listing and ending one's own sessions.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;
use waypost_core::NewAuditEvent;

use super::{ApiError, Problem};
use crate::auth::Caller;
use crate::state::{AppState, RequestOrigin};

#[derive(Serialize, ToSchema)]
pub struct SessionView {
    pub id: String,
    pub device: Option<String>,
    pub ip: Option<String>,
    pub created_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
    pub current: bool,
}

/// This user's active sessions.
#[utoipa::path(get, path = "/v1/auth/sessions", tag = "auth", responses((status = 200, body = Vec<SessionView>)),
    security(("session" = [])))]
pub async fn list_sessions(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Vec<SessionView>>, ApiError> {
    let s = caller.session()?;
    let now = state.clock.now();
    let sessions = state.store.list_sessions(&s.user.id).await?;
    Ok(Json(
        sessions
            .into_iter()
            .filter(|x| crate::auth::caller::session_alive(&state, x, now))
            .map(|x| SessionView {
                current: x.id == s.session.id,
                id: x.id,
                device: x.user_agent,
                ip: x.ip,
                created_at: x.created_at,
                last_seen_at: x.last_seen_at,
            })
            .collect(),
    ))
}

/// Ends one of this user's sessions.
#[utoipa::path(delete, path = "/v1/auth/sessions/{id}", tag = "auth",
    params(("id" = String, Path, description = "Session id")),
    responses((status = 204, description = "Ended"), (status = 404, body = Problem, content_type = "application/problem+json")),
    security(("session" = [])))]
pub async fn revoke_session(
    State(state): State<AppState>,
    origin: RequestOrigin,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let s = caller.session()?;
    let event = NewAuditEvent::new(None, caller.actor(), "auth.session_revoked")
        .target("session", id.clone());
    if state
        .store
        .revoke_session(&s.user.id, &id, state.clock.now(), origin.stamp(event))
        .await?
    {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(waypost_store::StoreError::NotFound("session").into())
    }
}

/// Ends every session of this user except the current one.
#[utoipa::path(delete, path = "/v1/auth/sessions", tag = "auth", responses((status = 204, description = "Ended")),
    security(("session" = [])))]
pub async fn revoke_other_sessions(
    State(state): State<AppState>,
    origin: RequestOrigin,
    caller: Caller,
) -> Result<StatusCode, ApiError> {
    let s = caller.session()?;
    let event = NewAuditEvent::new(None, caller.actor(), "auth.other_sessions_revoked")
        .target("user", s.user.id.clone());
    state
        .store
        .revoke_other_sessions(
            &s.user.id,
            &s.session.id,
            state.clock.now(),
            origin.stamp(event),
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
