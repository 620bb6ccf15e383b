//! `waypost-sandbox`: an in-memory emulator of the WhatsApp Business Cloud
//! API for tests, demos and load runs. It answers the Graph routes Waypost
//! uses (send, mark read, media, phone number, templates) with Meta's error
//! codes and HTTP statuses, enforces the service window and rate limits,
//! sends signed status and inbound webhooks in the 2026 shape (BSUIDs,
//! usernames, withheld phones, per-message pricing) or the older one,
//! injects faults at seeded rates, and exposes a control API under `/_sandbox/`. It reuses the wire
//! types of `waypost-cloudapi`; nothing here talks to Meta.
#![forbid(unsafe_code)]

pub mod config;
mod control;
mod error;
mod graph;
mod media;
mod rules;
pub mod state;
mod statuses;
mod templates;
mod users;
mod webhooks;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request};
use axum::routing::{get, post, put};
use tokio_util::sync::CancellationToken;

pub use config::{
    ApiConfig, ApiShape, Behaviour, FaultConfig, LimitsConfig, NumberConfig, SandboxConfig,
    TemplateConfig, UserConfig, WebhookConfig,
};
pub use error::GraphError;
pub use state::{Counters, SendRecord};

/// Largest request body (media uploads up to 100 MB plus multipart framing).
const MAX_BODY_BYTES: usize = 101 * 1024 * 1024;

/// Shared by every handler and the webhook worker.
#[derive(Clone)]
pub(crate) struct AppState {
    pub inner: Arc<Mutex<state::Inner>>,
    pub config: Arc<SandboxConfig>,
    pub base_url: Arc<str>,
    pub webhooks: webhooks::WebhookSender,
}

impl AppState {
    /// The state lock. A panic while holding it would be a sandbox bug; the
    /// data stays usable, so poisoning is ignored.
    pub fn lock(&self) -> MutexGuard<'_, state::Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Entry point: build and start a sandbox.
pub struct Sandbox;

impl Sandbox {
    /// Binds `config.listen`, starts the HTTP server and the webhook worker,
    /// and returns once the port accepts connections.
    pub async fn start(config: SandboxConfig) -> anyhow::Result<RunningSandbox> {
        config.validate()?;
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .map_err(|e| anyhow::anyhow!("listen {}: {e}", config.listen))?;
        let addr = listener.local_addr()?;
        let base_url: Arc<str> = format!("http://{addr}").into();
        let cancel = CancellationToken::new();
        let inner = Arc::new(Mutex::new(state::Inner::new(&config)));
        let config = Arc::new(config);
        let webhooks = webhooks::spawn_worker(inner.clone(), config.clone(), cancel.clone());
        let state = AppState {
            inner,
            config: config.clone(),
            base_url: base_url.clone(),
            webhooks,
        };
        let app = tower::util::MapRequest::new(router(state), strip_version);
        let server_cancel = cancel.clone();
        tokio::spawn(async move {
            let serve = axum::serve(
                listener,
                axum::ServiceExt::<Request>::into_make_service(app),
            );
            tokio::select! {
                r = serve => if let Err(e) = r { tracing::error!(error = %e, "sandbox server stopped") },
                () = server_cancel.cancelled() => {}
            }
        });
        Ok(RunningSandbox {
            addr,
            base_url: base_url.to_string(),
            config,
            cancel,
        })
    }
}

/// A running sandbox. Dropping it stops the server and the worker.
pub struct RunningSandbox {
    addr: SocketAddr,
    base_url: String,
    config: Arc<SandboxConfig>,
    cancel: CancellationToken,
}

impl RunningSandbox {
    /// `http://127.0.0.1:<port>`, without a version segment.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Bearer token for `/_sandbox/`.
    pub fn control_token(&self) -> &str {
        &self.config.control_token
    }

    pub fn numbers(&self) -> &[NumberConfig] {
        &self.config.numbers
    }

    pub fn config(&self) -> &SandboxConfig {
        &self.config
    }

    /// Stops accepting requests and ends the webhook worker.
    pub fn shutdown(&self) {
        self.cancel.cancel();
    }

    /// Waits until [`Self::shutdown`] is called (or the task is cancelled).
    pub async fn stopped(&self) {
        self.cancel.cancelled().await;
    }
}

impl Drop for RunningSandbox {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

fn router(state: AppState) -> Router {
    let control = Router::new()
        .route("/inbound", post(control::inject_inbound))
        .route("/media", post(control::create_inbound_media))
        .route("/users/{wa_id}", put(control::set_user))
        .route("/users/{wa_id}/change_number", post(control::change_number))
        .route(
            "/users/{wa_id}/change_user_id",
            post(control::change_user_id),
        )
        .route("/faults", put(control::set_faults).get(control::get_faults))
        .route("/log", get(control::log))
        .route("/reset", post(control::reset))
        .route("/templates/{id}/status", put(control::set_template_status))
        .route("/numbers/{id}/quality", put(control::set_quality));
    Router::new()
        .route("/{id}/messages", post(graph::messages))
        .route("/{id}/media", post(media::upload))
        .route("/{id}", get(media::get_object).delete(media::delete))
        .route("/_media/{id}", get(media::download))
        .route(
            "/{id}/message_templates",
            get(templates::list)
                .post(templates::create)
                .delete(templates::delete),
        )
        .nest("/_sandbox", control)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}

/// Drops a leading `/vNN.N` segment: Meta's version prefix is optional and
/// not interpreted.
fn strip_version(mut req: Request) -> Request {
    let path = req.uri().path();
    let rest = path.trim_start_matches('/');
    let (first, tail) = rest.split_once('/').unwrap_or((rest, ""));
    let is_version = first
        .strip_prefix('v')
        .is_some_and(|v| !v.is_empty() && v.chars().all(|c| c.is_ascii_digit() || c == '.'));
    if is_version {
        let new_path = format!("/{tail}");
        let pq = match req.uri().query() {
            Some(q) => format!("{new_path}?{q}"),
            None => new_path,
        };
        if let Ok(uri) = pq.parse() {
            *req.uri_mut() = uri;
        }
    }
    req
}

/// The bearer token of a request, if any.
pub(crate) fn bearer(headers: &axum::http::HeaderMap) -> Option<&str> {
    headers
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::trim)
}

/// The number `id` if `token` is its access token: 190 for an unknown
/// token, 100/33 for an id the token can't see.
pub(crate) fn authorize_number(
    inner: &state::Inner,
    token: Option<&str>,
    id: &str,
) -> Result<NumberConfig, GraphError> {
    let token = token.ok_or_else(GraphError::auth)?;
    if !inner.numbers.iter().any(|n| n.access_token == token) {
        return Err(GraphError::auth());
    }
    inner
        .numbers
        .iter()
        .find(|n| n.id == id && n.access_token == token)
        .cloned()
        .ok_or_else(|| GraphError::unknown_object(id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_version_prefix_only() {
        let r = |p: &str| {
            strip_version(
                Request::builder()
                    .uri(p)
                    .body(axum::body::Body::empty())
                    .unwrap(),
            )
            .uri()
            .to_string()
        };
        assert_eq!(r("/v21.0/123/messages"), "/123/messages");
        assert_eq!(
            r("/v21.0/1/message_templates?name=x"),
            "/1/message_templates?name=x"
        );
        assert_eq!(r("/123/messages"), "/123/messages");
        assert_eq!(r("/vendor/x"), "/vendor/x");
    }
}
