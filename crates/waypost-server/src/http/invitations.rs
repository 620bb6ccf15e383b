//! Invitations: a one-time link, valid seven days, that lets the invited email
//! join the workspace with the role chosen by the inviter. New people set a
//! password when accepting; existing users accept while signed in.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use waypost_core::auth::Role;
use waypost_store::members::InvitationRecord;

use super::json::ApiJson;
use super::{ApiError, Problem};
use crate::auth::permission::act;
use crate::auth::{Authorized, Caller};
use crate::ops::Ctx;
use crate::ops::invitations;
use crate::state::{AppState, RequestOrigin};

#[derive(Deserialize, ToSchema)]
pub struct CreateInvitation {
    pub email: String,
    #[schema(value_type = String, example = "agent")]
    pub role: Role,
}

#[derive(Serialize, ToSchema)]
pub struct InvitationView {
    pub id: String,
    pub email: String,
    pub role: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub accepted_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

#[derive(Serialize, ToSchema)]
pub struct CreatedInvitation {
    #[serde(flatten)]
    pub view: InvitationView,
    /// The one-time link; shown only in this answer. The token in it is what `accept` takes.
    pub url: String,
    pub token: String,
}

impl From<InvitationRecord> for InvitationView {
    fn from(i: InvitationRecord) -> Self {
        Self {
            id: i.id,
            email: i.email,
            role: i.role,
            created_at: i.created_at,
            expires_at: i.expires_at,
            accepted_at: i.accepted_at,
            revoked_at: i.revoked_at,
        }
    }
}

/// Invites someone by email (step-up required); nobody invites above their own role.
#[utoipa::path(post, path = "/v1/invitations", operation_id = "create_invitation", tag = "members", request_body = CreateInvitation,
    responses((status = 201, body = CreatedInvitation), (status = 409, body = Problem, content_type = "application/problem+json")),
    security(("session" = [])))]
pub async fn create(
    State(state): State<AppState>,
    origin: RequestOrigin,
    auth: Authorized<act::MembersManage>,
    ApiJson(req): ApiJson<CreateInvitation>,
) -> Result<(StatusCode, Json<CreatedInvitation>), ApiError> {
    let ctx = Ctx::of(&auth, origin);
    let (record, secret) =
        invitations::create(&state, &ctx, &auth.caller, auth.role, &req.email, req.role).await?;
    let url = invitations::link(&state, &secret);
    Ok((
        StatusCode::CREATED,
        Json(CreatedInvitation {
            view: record.into(),
            url,
            token: secret,
        }),
    ))
}

/// The workspace's invitations.
#[utoipa::path(get, path = "/v1/invitations", operation_id = "list_invitations", tag = "members",
    responses((status = 200, body = Vec<InvitationView>)),
    security(("session" = [])))]
pub async fn list(
    State(state): State<AppState>,
    auth: Authorized<act::MembersManage>,
) -> Result<Json<Vec<InvitationView>>, ApiError> {
    let all = crate::emails::invitations(&state, &auth.workspace_id.to_string()).await?;
    Ok(Json(all.into_iter().map(InvitationView::from).collect()))
}

/// Withdraws a pending invitation.
#[utoipa::path(delete, path = "/v1/invitations/{id}", operation_id = "revoke_invitation", tag = "members",
    params(("id" = String, Path)),
    responses((status = 204, description = "Revoked"), (status = 404, body = Problem, content_type = "application/problem+json")),
    security(("session" = [])))]
pub async fn revoke(
    State(state): State<AppState>,
    origin: RequestOrigin,
    auth: Authorized<act::MembersManage>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    invitations::revoke(&state, &Ctx::of(&auth, origin), &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, ToSchema)]
pub struct AcceptAsNewUser {
    pub token: String,
    #[schema(value_type = String, format = Password)]
    pub password: SecretString,
}

/// Accepts an invitation by creating an account for the invited email.
#[utoipa::path(post, path = "/v1/invitations/accept", operation_id = "accept_invitation", tag = "members", request_body = AcceptAsNewUser,
    security(()),
    responses((status = 201, description = "Account created; sign in next"), (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The email has an account: accept while signed in", body = Problem, content_type = "application/problem+json")))]
pub async fn accept_as_new_user(
    State(state): State<AppState>,
    origin: RequestOrigin,
    ApiJson(req): ApiJson<AcceptAsNewUser>,
) -> Result<StatusCode, ApiError> {
    invitations::accept_as_new_user(&state, &origin, &req.token, &req.password).await?;
    Ok(StatusCode::CREATED)
}

#[derive(Deserialize, ToSchema)]
pub struct AcceptAsUser {
    pub token: String,
}

/// Accepts an invitation with the signed-in account (its email must be the invited one).
#[utoipa::path(post, path = "/v1/invitations/accept-signed-in", operation_id = "accept_invitation_signed_in", tag = "members",
    request_body = AcceptAsUser,
    responses((status = 204, description = "Joined"), (status = 404, body = Problem, content_type = "application/problem+json")),
    security(("session" = [])))]
pub async fn accept_as_user(
    State(state): State<AppState>,
    origin: RequestOrigin,
    caller: Caller,
    ApiJson(req): ApiJson<AcceptAsUser>,
) -> Result<StatusCode, ApiError> {
    invitations::accept_as_user(&state, &origin, &caller, &req.token).await?;
    Ok(StatusCode::NO_CONTENT)
}
