//! Who may read which events on the live event stream. Each event type is as
//! sensitive as its subject ([`EventType::read_action`]): a caller asking for
//! a type it cannot read is refused naming the type, and a caller asking for
//! none gets exactly the types it may read. An open stream re-checks its key
//! or session periodically, so revoking either ends the stream.

use std::collections::BTreeSet;

use axum::http::StatusCode;
use waypost_core::WorkspaceId;
use waypost_core::auth::{Role, role_allows, scope_for};
use waypost_core::events::EventType;

use crate::auth::caller::session_alive;
use crate::auth::{Caller, WorkspaceCaller};
use crate::error::{ApiError, Problem};
use crate::state::AppState;

/// The event types named in `types=a,b` (`None`: not given, or empty).
pub fn parse_types(raw: Option<&str>) -> Result<Option<BTreeSet<EventType>>, ApiError> {
    let names: Vec<&str> = raw
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    if names.is_empty() {
        return Ok(None);
    }
    let (known, unknown): (Vec<_>, Vec<_>) = names
        .iter()
        .map(|n| n.parse::<EventType>().map_err(|e| e.0))
        .partition(Result::is_ok);
    if !unknown.is_empty() {
        let unknown: Vec<String> = unknown.into_iter().filter_map(Result::err).collect();
        let all: Vec<&str> = EventType::ALL.iter().map(|t| t.as_str()).collect();
        return Err(Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation",
            "Invalid request",
            format!(
                "Unknown event type(s) in `types`: {}. Known types: {}.",
                unknown.join(", "),
                all.join(", ")
            ),
        )
        .with("unknown_types", unknown.into())
        .into());
    }
    Ok(Some(known.into_iter().filter_map(Result::ok).collect()))
}

/// The `seq` to resume after: the `Last-Event-ID` header, else `since`.
pub fn parse_after(
    last_event_id: Option<&str>,
    since: Option<&str>,
) -> Result<Option<i64>, ApiError> {
    let (name, raw) = match (last_event_id, since) {
        (Some(h), _) => ("the Last-Event-ID header", h),
        (None, Some(s)) => ("`since`", s),
        (None, None) => return Ok(None),
    };
    match raw.trim().parse::<i64>() {
        Ok(n) if n >= 0 => Ok(Some(n)),
        _ => Err(crate::error::unprocessable(format!(
            "{name} must be the decimal id of an event this stream sent (a non-negative integer)."
        ))),
    }
}

/// How an open stream proves it may still read.
#[derive(Debug, Clone)]
enum Credential {
    ApiKey {
        hash: Vec<u8>,
    },
    Session {
        token_hash: [u8; 32],
        user_id: String,
    },
}

/// A caller cleared to read `types` in `workspace_id`.
#[derive(Debug, Clone)]
pub struct StreamAccess {
    pub workspace_id: WorkspaceId,
    pub types: BTreeSet<EventType>,
    credential: Credential,
}

fn allowed(caller: &WorkspaceCaller, t: EventType) -> bool {
    caller.allows(t.read_action())
}

/// The types the caller may read: all it asked for (403 naming the first it
/// may not), or without `requested` every type it may read (403 if none).
pub fn authorize(
    caller: &WorkspaceCaller,
    requested: Option<BTreeSet<EventType>>,
) -> Result<StreamAccess, ApiError> {
    let types = match requested {
        Some(types) => {
            if let Some(t) = types.iter().find(|t| !allowed(caller, **t)) {
                return Err(refusal(caller, *t));
            }
            types
        }
        None => {
            let readable: BTreeSet<EventType> = EventType::ALL
                .into_iter()
                .filter(|t| allowed(caller, *t))
                .collect();
            if readable.is_empty() {
                return Err(Problem::new(
                    StatusCode::FORBIDDEN,
                    "insufficient-scope",
                    "Insufficient scope",
                    "This caller may read no event type: API keys need a read scope such as `messages:read`.",
                )
                .into());
            }
            readable
        }
    };
    let credential = match &caller.caller {
        Caller::ApiKey(k) => Credential::ApiKey {
            hash: k.key.key_hash.clone(),
        },
        Caller::Session(s) => Credential::Session {
            token_hash: s.token_hash,
            user_id: s.user.id.clone(),
        },
    };
    Ok(StreamAccess {
        workspace_id: caller.workspace_id,
        types,
        credential,
    })
}

fn refusal(caller: &WorkspaceCaller, t: EventType) -> ApiError {
    let action = t.read_action();
    let problem = match (&caller.caller, caller.role) {
        (Caller::Session(_), Some(role)) => Problem::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "Forbidden",
            format!(
                "The role `{}` may not read `{t}` events (they need the permission {}).",
                role.as_str(),
                action.as_str()
            ),
        ),
        _ => match scope_for(action) {
            Some(scope) => Problem::new(
                StatusCode::FORBIDDEN,
                "insufficient-scope",
                "Insufficient scope",
                format!(
                    "This API key lacks the scope `{}` needed for `{t}` events.",
                    scope.as_str()
                ),
            )
            .with("required_scope", scope.as_str().into()),
            None => Problem::new(
                StatusCode::FORBIDDEN,
                "session-required",
                "Session required",
                format!("`{t}` events are for signed-in members only."),
            ),
        },
    };
    problem.with("event_type", t.as_str().into()).into()
}

impl StreamAccess {
    /// Whether the key or session still exists, is neither revoked nor
    /// expired, and (for members) still has a role that reads every type. A
    /// database error counts as valid: the next check decides.
    pub async fn still_valid(&self, state: &AppState) -> bool {
        match self.check(state).await {
            Ok(valid) => valid,
            Err(e) => {
                tracing::warn!(error = %e, "event stream: cannot re-check the caller; keeping the stream");
                true
            }
        }
    }

    async fn check(&self, state: &AppState) -> Result<bool, waypost_store::StoreError> {
        let now = state.clock.now();
        match &self.credential {
            Credential::ApiKey { hash } => {
                Ok(state.lookups.api_key(hash).await?.is_some_and(|k| {
                    k.revoked_at.is_none() && k.expires_at.is_none_or(|t| t > now)
                }))
            }
            Credential::Session {
                token_hash,
                user_id,
            } => {
                let Some(session) = state.store.find_session(token_hash).await? else {
                    return Ok(false);
                };
                if session.revoked_at.is_some() || !session_alive(state, &session, now) {
                    return Ok(false);
                }
                let membership = state
                    .store
                    .membership(&self.workspace_id.to_string(), user_id)
                    .await?;
                let role = membership.and_then(|m| m.effective_role(now).parse::<Role>().ok());
                Ok(role.is_some_and(|role| {
                    self.types
                        .iter()
                        .all(|t| role_allows(role, t.read_action()))
                }))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_parse_and_unknown_ones_are_named() {
        let got = parse_types(Some("message.received, message.read,")).unwrap();
        assert_eq!(
            got.unwrap().into_iter().collect::<Vec<_>>(),
            [EventType::MessageRead, EventType::MessageReceived]
        );
        assert_eq!(parse_types(Some(" ,")).unwrap(), None);
        assert_eq!(parse_types(None).unwrap(), None);
        let ApiError::Problem(p) = parse_types(Some("message.received,message.lost")).unwrap_err()
        else {
            panic!("a problem")
        };
        assert!(p.detail.contains("message.lost"), "{}", p.detail);
    }

    #[test]
    fn the_header_wins_and_ids_must_be_numbers() {
        assert_eq!(parse_after(Some("7"), Some("3")).unwrap(), Some(7));
        assert_eq!(parse_after(None, Some("3")).unwrap(), Some(3));
        assert_eq!(parse_after(None, None).unwrap(), None);
        assert!(parse_after(Some("evt_1"), None).is_err());
        assert!(parse_after(None, Some("-1")).is_err());
    }
}
