//! Authorization: every route names the action it performs by extracting
//! `Authorized<act::X>`; the extractor authenticates, resolves the workspace
//! and checks the one permission table in `waypost_core::auth`, so a handler
//! cannot forget the check.
//!
//! API keys act in their own workspace and need the action's scope. Sessions
//! act in the workspace named by the `Waypost-Workspace` header (or their only
//! one) with their role there (a live just-in-time elevation counts); a
//! workspace they are not in is "not found", and a workspace that requires MFA
//! refuses members without it.

use std::marker::PhantomData;

use axum::extract::FromRequestParts;
use axum::http::StatusCode;
use axum::http::request::Parts;
use waypost_core::WorkspaceId;
use waypost_core::auth::{Action, Role, role_allows, scope_for};

use super::caller::{AuthRejection, Caller};
use crate::error::{ApiError, Problem};
use crate::state::AppState;

pub const WORKSPACE_HEADER: &str = "waypost-workspace";

pub trait RequiredAction: Send + Sync + 'static {
    const ACTION: Action;
}

macro_rules! actions {
    ($($name:ident),* $(,)?) => {
        $(
            #[derive(Debug)]
            pub struct $name;
            impl super::RequiredAction for $name {
                const ACTION: waypost_core::auth::Action = waypost_core::auth::Action::$name;
            }
        )*
    };
}

/// Marker types, one per action, for `Authorized<act::…>`.
pub mod act {
    actions!(
        MessagesSend,
        MessagesRead,
        ContactsRead,
        ContactsWrite,
        TemplatesRead,
        TemplatesWrite,
        ChannelsManage,
        WebhooksManage,
        ShieldScan,
        AuditRead,
        PrivacyManage,
        CampaignsManage,
        UsageRead,
        ApiKeysManage,
        MembersManage,
        MembersRead,
        WorkspaceManage,
        ElevationGrant,
        WorkspaceDelete,
        BillingManage,
    );
}

/// The refusal of an action the member's role does not permit.
pub fn role_forbidden(role: Role, action: Action) -> ApiError {
    ApiError::from(Problem::new(
        StatusCode::FORBIDDEN,
        "forbidden",
        "Forbidden",
        format!("The role `{}` may not {}.", role.as_str(), action.as_str()),
    ))
}

/// A caller allowed to perform `A` in `workspace_id`.
#[derive(Debug)]
pub struct Authorized<A> {
    pub caller: Caller,
    pub workspace_id: WorkspaceId,
    /// The session user's role in the workspace; `None` for API keys.
    pub role: Option<Role>,
    _action: PhantomData<A>,
}

impl<A: RequiredAction> FromRequestParts<AppState> for Authorized<A> {
    type Rejection = AuthRejection;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, AuthRejection> {
        let caller = Caller::from_request_parts(parts, state).await?;
        let (workspace_id, role) = match &caller {
            Caller::ApiKey(key) => {
                let scope = scope_for(A::ACTION).ok_or_else(super::caller::session_required)?;
                if !key.scopes.contains(&scope) {
                    state.signals.add(
                        state.clock.now(),
                        Some(&key.key.workspace_id),
                        &[(waypost_core::trust::ScopeKind::ApiKey, &key.key.id)],
                        waypost_core::trust::signal::DENIED_403,
                        1,
                    );
                    return Err(ApiError::from(
                        Problem::new(
                            StatusCode::FORBIDDEN,
                            "insufficient-scope",
                            "Insufficient scope",
                            format!("This API key lacks the scope `{}`.", scope.as_str()),
                        )
                        .with("required_scope", scope.as_str().into()),
                    )
                    .into());
                }
                (key.workspace_id, None)
            }
            Caller::Session(session) => {
                let (workspace_id, role) = session_workspace(state, parts, &session.user).await?;
                if !role_allows(role, A::ACTION) {
                    return Err(role_forbidden(role, A::ACTION).into());
                }
                (workspace_id, Some(role))
            }
        };
        Ok(Self {
            caller,
            workspace_id,
            role,
            _action: PhantomData,
        })
    }
}

/// An authenticated caller and the workspace it acts in, with no action
/// checked yet: for routes whose permission depends on the request (the live
/// event stream checks one action per event type with [`Self::allows`]).
/// Sessions may also name the workspace in a `workspace` query parameter,
/// since a browser's `EventSource` cannot send headers.
#[derive(Debug)]
pub struct WorkspaceCaller {
    pub caller: Caller,
    pub workspace_id: WorkspaceId,
    /// The session user's role in the workspace; `None` for API keys.
    pub role: Option<Role>,
}

impl WorkspaceCaller {
    /// Whether the permission table lets this caller perform `action`: the
    /// action's scope for API keys, the role for sessions.
    pub fn allows(&self, action: Action) -> bool {
        caller_allows(&self.caller, self.role, action)
    }
}

/// The check [`Authorized`] makes, as a predicate.
pub fn caller_allows(caller: &Caller, role: Option<Role>, action: Action) -> bool {
    match caller {
        Caller::ApiKey(key) => scope_for(action).is_some_and(|s| key.scopes.contains(&s)),
        Caller::Session(_) => role.is_some_and(|r| role_allows(r, action)),
    }
}

impl FromRequestParts<AppState> for WorkspaceCaller {
    type Rejection = AuthRejection;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, AuthRejection> {
        let caller = Caller::from_request_parts(parts, state).await?;
        let (workspace_id, role) = match &caller {
            Caller::ApiKey(key) => (key.workspace_id, None),
            Caller::Session(session) => {
                let query = parts.uri.query().and_then(|q| {
                    q.split('&')
                        .find_map(|pair| pair.strip_prefix("workspace="))
                        .map(str::to_owned)
                });
                let named = header_workspace(parts).or(query);
                let (id, role) = workspace_and_role(state, named.as_deref(), &session.user).await?;
                (id, Some(role))
            }
        };
        Ok(Self {
            caller,
            workspace_id,
            role,
        })
    }
}

fn header_workspace(parts: &Parts) -> Option<String> {
    parts
        .headers
        .get(WORKSPACE_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

fn workspace_not_found() -> ApiError {
    Problem::new(
        StatusCode::NOT_FOUND,
        "not-found",
        "Not found",
        "workspace not found",
    )
    .into()
}

async fn session_workspace(
    state: &AppState,
    parts: &Parts,
    user: &waypost_store::identity::UserRecord,
) -> Result<(WorkspaceId, Role), ApiError> {
    workspace_and_role(state, header_workspace(parts).as_deref(), user).await
}

/// The workspace a session user acts in (the one `named`, or their only one)
/// and their effective role there.
pub async fn workspace_and_role(
    state: &AppState,
    named: Option<&str>,
    user: &waypost_store::identity::UserRecord,
) -> Result<(WorkspaceId, Role), ApiError> {
    let membership = match named {
        Some(raw) => {
            let id = WorkspaceId::parse(raw).map_err(|_| workspace_not_found())?;
            state
                .store
                .membership(&id.to_string(), &user.id)
                .await?
                .ok_or_else(workspace_not_found)?
        }
        None => {
            let mut memberships = state.store.memberships(&user.id).await?;
            if memberships.len() != 1 {
                return Err(Problem::new(
                    StatusCode::BAD_REQUEST,
                    "workspace-required",
                    "Workspace required",
                    "You belong to several workspaces (or none): name one in the Waypost-Workspace header.",
                )
                .into());
            }
            memberships.remove(0)
        }
    };
    if state
        .lookups
        .suspended(&[("workspace", &membership.workspace_id)])
        .await?
    {
        return Err(crate::error::suspended());
    }
    let id = WorkspaceId::parse(&membership.workspace_id).map_err(|_| {
        ApiError::Internal(anyhow::anyhow!("malformed workspace id in memberships"))
    })?;
    let role = membership
        .effective_role(state.clock.now())
        .parse::<Role>()
        .map_err(|_| ApiError::Internal(anyhow::anyhow!("unknown role in memberships")))?;
    if let Some(reason) = second_factor_required(state, &membership, role)
        && !user.totp_enabled
        && state.store.count_passkeys(&user.id).await? == 0
    {
        return Err(Problem::new(
            StatusCode::FORBIDDEN,
            "mfa-enrollment-required",
            "MFA required",
            format!("{reason}: enrol TOTP or a passkey first."),
        )
        .into());
    }
    Ok((id, role))
}

/// Why this member needs a second factor now, if they do: the workspace asks
/// it of everybody, or of owners and admins once their grace period is over.
fn second_factor_required(
    state: &AppState,
    membership: &waypost_store::identity::Membership,
    role: Role,
) -> Option<&'static str> {
    if membership.require_mfa {
        return Some("This workspace requires a second factor");
    }
    let grace = chrono::Duration::days(state.config.admin_mfa_grace_days.into());
    (membership.require_mfa_for_admins
        && matches!(role, Role::Owner | Role::Admin)
        && state.clock.now() >= membership.created_at + grace)
        .then_some("Owners and admins of this workspace need a second factor")
}
