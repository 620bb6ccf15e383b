//! Authentication: turns a request's bearer API key or session cookie into a
//! [`Caller`], or refuses it with a 401 problem. Key typos are rejected by
//! their checksum before any database lookup; failures are audited with the
//! key's display prefix only.

use std::net::IpAddr;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Duration, Utc};
use waypost_core::audit::Actor;
use waypost_core::auth::Scope;
use waypost_core::trust::{ScopeKind, network_of, signal};
use waypost_core::{NewAuditEvent, WorkspaceId};
use waypost_crypto::token;
use waypost_store::identity::{ApiKeyRecord, SessionRecord, UserRecord};

use super::cookies;
use super::rate_limit::{RateLimitSlot, too_many_requests};
use crate::error::{ApiError, Problem};
use crate::state::{AppState, RequestOrigin};

/// How stale `last_seen_at` / `last_used_at` may get before a request rewrites it.
const TOUCH_EVERY: i64 = 60;

#[derive(Debug, Clone)]
pub struct SessionCaller {
    pub user: UserRecord,
    pub session: SessionRecord,
    pub token_hash: [u8; 32],
}

#[derive(Debug, Clone)]
pub struct ApiKeyCaller {
    pub key: ApiKeyRecord,
    pub workspace_id: WorkspaceId,
    pub scopes: Vec<Scope>,
}

/// An authenticated caller.
#[derive(Debug, Clone)]
pub enum Caller {
    Session(Box<SessionCaller>),
    ApiKey(Box<ApiKeyCaller>),
}

impl Caller {
    pub fn actor(&self) -> Actor {
        match self {
            Caller::Session(s) => Actor::User(s.user.id.clone()),
            Caller::ApiKey(k) => Actor::ApiKey(k.key.id.clone()),
        }
    }

    pub fn session(&self) -> Result<&SessionCaller, ApiError> {
        match self {
            Caller::Session(s) => Ok(s),
            Caller::ApiKey(_) => Err(session_required()),
        }
    }
}

pub fn session_required() -> ApiError {
    Problem::new(
        StatusCode::FORBIDDEN,
        "session-required",
        "Session required",
        "This action needs a signed-in user, not an API key.",
    )
    .into()
}

fn unauthorized(slug: &str, detail: &str) -> ApiError {
    Problem::new(StatusCode::UNAUTHORIZED, slug, "Unauthorized", detail).into()
}

/// A rejection that is either a problem or a ready 429 response.
pub enum AuthRejection {
    Problem(ApiError),
    Limited(Response),
}

impl IntoResponse for AuthRejection {
    fn into_response(self) -> Response {
        match self {
            AuthRejection::Problem(e) => e.into_response(),
            AuthRejection::Limited(r) => r,
        }
    }
}

impl From<ApiError> for AuthRejection {
    fn from(e: ApiError) -> Self {
        AuthRejection::Problem(e)
    }
}

impl From<waypost_store::StoreError> for AuthRejection {
    fn from(e: waypost_store::StoreError) -> Self {
        AuthRejection::Problem(e.into())
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = AuthRejection;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, AuthRejection> {
        if let Some(caller) = parts.extensions.get::<Caller>() {
            return Ok(caller.clone());
        }
        let origin = RequestOrigin::from_request_parts(parts, state)
            .await
            .unwrap_or_else(|never| match never {});
        let slot = parts
            .extensions
            .get::<RateLimitSlot>()
            .cloned()
            .unwrap_or_default();
        let bearer = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .map(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
                    .unwrap_or("")
                    .trim()
                    .to_owned()
            });
        let caller = match bearer {
            Some(key) => authenticate_api_key(state, &key, &origin, &slot).await?,
            None => authenticate_session(state, parts, &slot).await?,
        };
        parts.extensions.insert(caller.clone());
        Ok(caller)
    }
}

async fn authenticate_api_key(
    state: &AppState,
    presented: &str,
    origin: &RequestOrigin,
    slot: &RateLimitSlot,
) -> Result<Caller, AuthRejection> {
    let invalid = || {
        unauthorized(
            "invalid-api-key",
            "The API key is invalid, expired, revoked or not allowed from this address.",
        )
    };
    let parsed = token::parse_api_key(presented).map_err(|_| invalid())?;
    let hash = state
        .keys
        .current()
        .blind_index("api_key", parsed.as_str().as_bytes());
    let now = state.clock.now();
    let found = state.lookups.api_key(&hash).await?;
    // The lookup is by keyed hash; compare again in constant time so no code path
    // depends on a variable-time comparison of key material.
    let Some(key) = found.filter(|k| token::ct_eq(&k.key_hash, &hash)) else {
        audit_key_rejection(state, None, parsed.display_prefix(), "unknown", origin).await;
        return Err(invalid().into());
    };
    let reason = if key.revoked_at.is_some() {
        Some("revoked")
    } else if key.expires_at.is_some_and(|t| t <= now) {
        Some("expired")
    } else if !ip_allowed(&key.allowed_ips, origin.ip) {
        Some("ip_not_allowed")
    } else {
        None
    };
    if let Some(reason) = reason {
        state.signals.add(
            now,
            Some(&key.workspace_id),
            &[(ScopeKind::ApiKey, &key.id)],
            signal::DENIED_401,
            1,
        );
        audit_key_rejection(state, Some(&key), parsed.display_prefix(), reason, origin).await;
        return Err(invalid().into());
    }
    if state
        .lookups
        .suspended(&[("api_key", &key.id), ("workspace", &key.workspace_id)])
        .await?
    {
        audit_key_rejection(
            state,
            Some(&key),
            parsed.display_prefix(),
            "suspended",
            origin,
        )
        .await;
        return Err(crate::error::suspended().into());
    }
    let info = state.limits.api_key.check(&key.id);
    slot.record(info);
    count_key_request(state, &key, origin, info.retry_after_secs.is_some(), now);
    if info.retry_after_secs.is_some() {
        return Err(AuthRejection::Limited(too_many_requests(
            info,
            "This API key sent too many requests.",
        )));
    }
    if key
        .last_used_at
        .is_none_or(|t| now - t > Duration::seconds(TOUCH_EVERY))
    {
        let ip = origin.ip.map(|ip| ip.to_string());
        state
            .store
            .touch_api_key(&key.id, now, ip.as_deref())
            .await?;
        state.lookups.api_key_touched(&hash, now, ip.as_deref());
    }
    let workspace_id = WorkspaceId::parse(&key.workspace_id).map_err(|_| {
        ApiError::Internal(anyhow::anyhow!(
            "API key {} has a malformed workspace id",
            key.id
        ))
    })?;
    let scopes = key
        .scopes
        .split_whitespace()
        .filter_map(|s| s.parse().ok())
        .collect();
    Ok(Caller::ApiKey(Box::new(ApiKeyCaller {
        key,
        workspace_id,
        scopes,
    })))
}

/// Counts a key's request (and the network it came from, and a 429) for the detectors.
fn count_key_request(
    state: &AppState,
    key: &ApiKeyRecord,
    origin: &RequestOrigin,
    limited: bool,
    now: DateTime<Utc>,
) {
    if !state.signals.enabled() {
        return;
    }
    let ws = Some(key.workspace_id.as_str());
    let scope = [(ScopeKind::ApiKey, key.id.as_str())];
    state.signals.add(now, ws, &scope, signal::API_REQUEST, 1);
    if limited {
        state.signals.add(now, ws, &scope, signal::LIMITED_429, 1);
    }
    if let Some(ip) = origin.ip {
        let net = format!("{}{}", signal::NETWORK_PREFIX, network_of(ip));
        state.signals.add(now, ws, &scope, &net, 1);
    }
}

async fn audit_key_rejection(
    state: &AppState,
    key: Option<&ApiKeyRecord>,
    prefix: &str,
    reason: &str,
    origin: &RequestOrigin,
) {
    let workspace = key.and_then(|k| WorkspaceId::parse(&k.workspace_id).ok());
    let mut event = NewAuditEvent::new(workspace, Actor::System, "api_key.rejected")
        .details(serde_json::json!({ "prefix": prefix, "reason": reason }));
    if let Some(k) = key {
        event = event.target("api_key", k.id.clone());
    }
    if let Err(e) = state.audit(origin.stamp(event)).await {
        tracing::error!(error = %e, "cannot audit a rejected API key");
    }
}

/// Whether `ip` is inside one of the space-separated CIDRs (empty list: any address).
pub fn ip_allowed(allowed: &str, ip: Option<IpAddr>) -> bool {
    let mut nets = allowed.split_whitespace().peekable();
    if nets.peek().is_none() {
        return true;
    }
    let Some(ip) = ip else { return false };
    nets.any(|net| cidr_contains(net, ip))
}

/// Parses `addr` or `addr/len`; IPv4-mapped IPv6 clients match IPv4 ranges.
pub fn parse_cidr(net: &str) -> Option<(IpAddr, u8)> {
    let (addr, len) = match net.split_once('/') {
        Some((a, l)) => (a.parse::<IpAddr>().ok()?, l.parse::<u8>().ok()?),
        None => {
            let a = net.parse::<IpAddr>().ok()?;
            (a, if a.is_ipv4() { 32 } else { 128 })
        }
    };
    let max = if addr.is_ipv4() { 32 } else { 128 };
    (len <= max).then_some((addr, len))
}

fn cidr_contains(net: &str, ip: IpAddr) -> bool {
    let Some((base, len)) = parse_cidr(net) else {
        return false;
    };
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    };
    match (base, ip) {
        (IpAddr::V4(b), IpAddr::V4(i)) => {
            let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
            u32::from(b) & mask == u32::from(i) & mask
        }
        (IpAddr::V6(b), IpAddr::V6(i)) => {
            let mask = if len == 0 {
                0
            } else {
                u128::MAX << (128 - len)
            };
            u128::from(b) & mask == u128::from(i) & mask
        }
        _ => false,
    }
}

async fn authenticate_session(
    state: &AppState,
    parts: &Parts,
    slot: &RateLimitSlot,
) -> Result<Caller, AuthRejection> {
    let Some(token) = cookies::session_token(&parts.headers) else {
        return Err(unauthorized(
            "authentication-required",
            "Sign in, or send an API key as `Authorization: Bearer wp_live_…`.",
        )
        .into());
    };
    let hash = token::hash_session_token(&token);
    let expired = || unauthorized("session-expired", "The session has ended; sign in again.");
    let Some(session) = state.store.find_session(&hash).await? else {
        return Err(expired().into());
    };
    let now = state.clock.now();
    if session.revoked_at.is_some() || !session_alive(state, &session, now) {
        return Err(expired().into());
    }
    if is_unsafe(&parts.method) {
        check_csrf(state, parts, &hash)?;
    }
    let info = state.limits.user.check(&session.user_id);
    slot.record(info);
    if info.retry_after_secs.is_some() {
        return Err(AuthRejection::Limited(too_many_requests(
            info,
            "Too many requests from this user.",
        )));
    }
    if now - session.last_seen_at > Duration::seconds(TOUCH_EVERY) {
        state.store.touch_session(&session.id, now).await?;
    }
    if state
        .lookups
        .suspended(&[("user", &session.user_id)])
        .await?
    {
        return Err(crate::error::suspended().into());
    }
    let user = crate::emails::user(state, &session.user_id).await?;
    Ok(Caller::Session(Box::new(SessionCaller {
        user,
        session,
        token_hash: hash,
    })))
}

/// Idle and absolute expiry, measured with the application clock.
pub fn session_alive(state: &AppState, s: &SessionRecord, now: DateTime<Utc>) -> bool {
    let idle = Duration::seconds(state.config.session_idle_timeout_secs as i64);
    let absolute = Duration::seconds(state.config.session_absolute_timeout_secs as i64);
    now - s.last_seen_at < idle && now - s.created_at < absolute
}

fn is_unsafe(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// Cookie requests that change state must come from our own pages: browser
/// fetch metadata or `Origin` say so, and clients sending neither must carry
/// the session's CSRF token in `X-CSRF-Token`.
fn check_csrf(state: &AppState, parts: &Parts, session_hash: &[u8; 32]) -> Result<(), ApiError> {
    let forbidden = |detail: &str| {
        ApiError::from(Problem::new(
            StatusCode::FORBIDDEN,
            "csrf",
            "Cross-site request refused",
            detail,
        ))
    };
    let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(site) = header("sec-fetch-site") {
        return match site {
            "same-origin" | "none" => Ok(()),
            _ => Err(forbidden(
                "Requests from other sites cannot use this session.",
            )),
        };
    }
    if let Some(origin) = header("origin") {
        return if origin_is_this_server(state, &parts.headers, origin) {
            Ok(())
        } else {
            Err(forbidden("The request's Origin is not this server."))
        };
    }
    match header("x-csrf-token") {
        Some(t) if token::verify_csrf_token(session_hash, &state.keys.current(), t) => Ok(()),
        _ => Err(forbidden(
            "Send the session's CSRF token in the X-CSRF-Token header.",
        )),
    }
}

/// Whether a request's `Origin` is this server: the public URL, or the scheme
/// and authority the request came to (`https://host` is another origin than
/// `http://host`).
pub fn origin_is_this_server(state: &AppState, headers: &HeaderMap, origin: &str) -> bool {
    let host = headers
        .get("host")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let scheme = if crate::guard::cookies::is_secure(&state.config, headers) {
        "https"
    } else {
        "http"
    };
    origin == state.config.public_url() || origin == format!("{scheme}://{host}")
}

/// Answers 403 `reauth-required` unless the session re-authenticated within the step-up window.
pub fn require_recent_auth(state: &AppState, caller: &Caller) -> Result<(), ApiError> {
    let session = caller.session()?;
    let window = Duration::seconds(state.config.step_up_window_secs as i64);
    if state.clock.now() - session.session.reauthenticated_at <= window {
        return Ok(());
    }
    Err(Problem::new(
        StatusCode::FORBIDDEN,
        "reauth-required",
        "Re-authentication required",
        "Confirm your password (and second factor) at POST /v1/auth/reauth, then retry within 5 minutes.",
    )
    .into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ip_allowlists() {
        let v4: IpAddr = "203.0.113.7".parse().unwrap();
        assert!(ip_allowed("", Some(v4)));
        assert!(ip_allowed("203.0.113.0/24", Some(v4)));
        assert!(ip_allowed("198.51.100.1 203.0.113.7", Some(v4)));
        assert!(!ip_allowed("198.51.100.0/24", Some(v4)));
        assert!(!ip_allowed("198.51.100.0/24", None));
        let mapped: IpAddr = "::ffff:203.0.113.7".parse().unwrap();
        assert!(ip_allowed("203.0.113.0/24", Some(mapped)));
        let v6: IpAddr = "2001:db8::5".parse().unwrap();
        assert!(ip_allowed("2001:db8::/32", Some(v6)));
        assert!(!ip_allowed("2001:db9::/32", Some(v6)));
        assert!(ip_allowed("0.0.0.0/0", Some(v4)));
        assert!(parse_cidr("10.0.0.0/33").is_none());
        assert!(parse_cidr("nonsense").is_none());
    }
}
