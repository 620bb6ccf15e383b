//! The one state every handler and worker shares, and the audit writer.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::header;
use axum::http::request::Parts;
use metrics_exporter_prometheus::PrometheusHandle;
use waypost_core::{AuditEvent, NewAuditEvent};
use waypost_store::Store;

use crate::config::Config;
use crate::guard::Clock;
use crate::guard::lockout::PhantomLockouts;
use crate::guard::rate_limit::RateLimits;
use crate::keys::Keys;

#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub store: Arc<dyn Store>,
    pub keys: Arc<Keys>,
    pub metrics: PrometheusHandle,
    pub clock: Arc<dyn Clock>,
    pub hasher: Arc<waypost_crypto::password::PasswordHasher>,
    pub limits: Arc<RateLimits>,
    pub phantom_lockouts: Arc<PhantomLockouts>,
    /// The WebAuthn relying party, built once from `webauthn_rp_id` / `webauthn_origin`.
    pub webauthn: Arc<webauthn_rs::Webauthn>,
    /// The smishing detector, built once at start.
    pub shield: Arc<waypost_shield::Shield>,
    /// What the scheduled backups last did, for `/readyz`.
    pub backups: Arc<crate::backup_schedule::BackupTracker>,
    /// The group-commit writer of accepted messages.
    pub acceptor: crate::messaging::accept::Acceptor,
    /// Group commit of provider webhooks.
    pub ingestor: crate::messaging::ingest::Ingestor,
    /// Cached API keys, channels, settings and templates.
    pub lookups: Arc<crate::cache::Lookups>,
    /// The live tail of customer events that event streams read.
    pub event_feed: Arc<crate::event_feed::Feed>,
    /// Trust and safety counters, batched in memory.
    pub signals: Arc<crate::signals::Signals>,
    /// Plans, billing status and month-to-date usage of billed workspaces, in memory.
    pub quotas: Arc<crate::quota::Quotas>,
}

impl AppState {
    /// Records an audit event in its own transaction. State changes made
    /// through the store pass their event to the store method instead, so the
    /// change and its record commit together.
    pub async fn audit(
        &self,
        event: NewAuditEvent,
    ) -> Result<AuditEvent, waypost_store::StoreError> {
        self.store.append_audit_event(event).await
    }
}

/// Where a request came from, for audit events: the peer address (or the
/// first `X-Forwarded-For` hop when the operator trusts a proxy) and user agent.
#[derive(Debug, Clone)]
pub struct RequestOrigin {
    pub ip: Option<IpAddr>,
    pub user_agent: Option<String>,
    /// Where a handler's own rate-limit check (sign-in) goes, so the response's
    /// `RateLimit-*` headers describe that quota.
    pub rate_limit: Option<crate::guard::rate_limit::RateLimitSlot>,
}

impl RequestOrigin {
    /// Applies this origin to an audit event.
    pub fn stamp(&self, event: NewAuditEvent) -> NewAuditEvent {
        event.origin(self.ip.map(|ip| ip.to_string()), self.user_agent.clone())
    }
}

/// The client address: the peer, or the first `X-Forwarded-For` hop when the
/// operator trusts a proxy in front.
pub fn client_ip(
    config: &Config,
    headers: &axum::http::HeaderMap,
    extensions: &axum::http::Extensions,
) -> Option<IpAddr> {
    let peer = extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    let forwarded = config
        .trust_proxy_headers
        .then(|| headers.get("x-forwarded-for"))
        .flatten()
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').next())
        .and_then(|v| v.trim().parse().ok());
    forwarded.or(peer)
}

impl FromRequestParts<AppState> for RequestOrigin {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let ip = client_ip(&state.config, &parts.headers, &parts.extensions);
        let user_agent = parts
            .headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|s| s.chars().take(256).collect());
        let rate_limit = parts
            .extensions
            .get::<crate::guard::rate_limit::RateLimitSlot>()
            .cloned();
        Ok(Self {
            ip,
            user_agent,
            rate_limit,
        })
    }
}
