//! The HTTP surface: routes, the OpenAPI document, and the edge layers that
//! every response passes through.

pub mod account;
pub mod api_keys;
pub mod audiences;
pub mod audit;
pub mod auth;
pub mod automation;
pub mod billing;
pub mod campaigns;
pub mod channels;
pub mod contact_imports;
pub mod contacts;
pub mod conversations;
pub mod events;
pub mod health;
pub mod idempotency;
pub mod inbound;
pub mod incident_view;
pub mod incidents;
pub mod invitations;
pub mod json;
pub mod media;
pub mod members;
pub mod messages;
pub mod mfa;
pub mod middleware;
mod openapi;
pub mod passkey_login;
pub mod passkeys;
pub mod password_reset;
pub mod plans;
pub mod privacy;
pub mod security;
pub mod sessions;
pub mod setup;
pub mod shield;
pub mod shield_view;
pub mod templates;
pub mod usage;
pub mod webhooks;
pub mod workspace;
pub mod workspace_export;

use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use tower_http::catch_panic::CatchPanicLayer;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub use crate::error::{ApiError, Problem, unprocessable};
use crate::state::AppState;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Waypost API",
        description = "Self-hosted, privacy-first WhatsApp Business messaging. Errors are RFC 9457 problem documents.",
        license(name = "AGPL-3.0-only", identifier = "AGPL-3.0-only"),
    ),
    tags(
        (name = "operations", description = "Health, readiness and metrics"),
        (name = "auth", description = "Sign-in, sessions, step-up and MFA"),
        (name = "api-keys", description = "Scoped API keys of a workspace"),
        (name = "members", description = "Members of a workspace and their roles"),
        (name = "audit", description = "The workspace's tamper-evident audit log"),
        (name = "shield", description = "Smishing and spam detection"),
        (name = "channels", description = "WhatsApp business numbers and their provider settings"),
        (name = "contacts", description = "Contacts, their consent and its history, custom fields, tags and CSV imports"),
        (name = "segments", description = "Saved contact filters, counted live"),
        (name = "campaigns", description = "Template broadcasts to a segment: drafts, pre-flight, start, pause, resume, cancel, counters and outcomes; numbers' messaging tiers"),
        (name = "messages", description = "Sending messages and following their status"),
        (name = "media", description = "Media files: upload for sending, fetch what customers sent"),
        (name = "conversations", description = "The inbox: conversations with customers, their assignment, labels, notes and read state"),
        (name = "privacy", description = "Data-subject rights: export, rectify, restrict, erase"),
        (name = "templates", description = "Message templates and their review status"),
        (name = "webhooks", description = "Customer webhook endpoints, deliveries, replay and resend"),
        (name = "events", description = "The live stream of customer events (Server-Sent Events)"),
        (name = "automation", description = "Rules (welcome, away, keywords) and the AI assistant: provider settings, knowledge base, handing conversations back"),
        (name = "incidents", description = "The security incident register: operators record, affected workspaces read"),
        (name = "usage", description = "Metered usage per day and month, its estimated cost, and the operator's rate card"),
        (name = "security", description = "Trust and safety: security alerts from the detectors, suspensions of keys, channels, users and workspaces"),
    ),
    // No global `security`: every operation states its own (see `tests/openapi.rs`).
    modifiers(&SecuritySchemes),
    components(schemas(Problem, crate::messaging::inbound_content::MessageReceivedEvent)),
)]
struct ApiDoc;

/// Customer events described as OpenAPI 3.1 `webhooks`: what Waypost posts to
/// endpoints (and sends on the event stream).
fn webhooks_section() -> serde_json::Value {
    serde_json::json!({
        "message.received": {"post": {
            "summary": "A customer wrote to one of the workspace's numbers",
            "description": "Carries the normalised content (field names follow the Cloud API's) while the event is in transit. With content retention `none` the content is removed once every endpoint has the event (or gave up) and the stream's reconnect hold has passed; later replays carry `content_state: not_retained` instead.",
            "requestBody": {"required": true, "content": {"application/json": {
                "schema": {"$ref": "#/components/schemas/MessageReceivedEvent"}}}},
            "responses": {"2XX": {"description": "Received; any other answer is retried."}}
        }}
    })
}

/// Bearer API keys, operator tokens and the session cookie, as OpenAPI security schemes.
struct SecuritySchemes;

impl utoipa::Modify for SecuritySchemes {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{
            ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme,
        };
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("wp_live_…")
                    .build(),
            ),
        );
        components.add_security_scheme(
            "operator_token",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("wpo_…")
                    .build(),
            ),
        );
        components.add_security_scheme(
            "session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::new(
                crate::auth::cookies::SESSION_COOKIE,
            ))),
        );
    }
}

/// The routes and their OpenAPI description, without edge layers.
fn api() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(health::healthz))
        .routes(routes!(health::readyz))
        .routes(routes!(health::metrics))
        .routes(routes!(auth::login))
        .routes(routes!(auth::logout))
        .routes(routes!(auth::me))
        .routes(routes!(auth::reauth))
        .routes(routes!(auth::change_password))
        .routes(routes!(password_reset::request))
        .routes(routes!(password_reset::complete))
        .routes(routes!(account::export))
        .routes(routes!(account::request_deletion, account::cancel_deletion))
        .routes(routes!(account::request_verification))
        .routes(routes!(account::request_change))
        .routes(routes!(account::confirm_email))
        .routes(routes!(
            sessions::list_sessions,
            sessions::revoke_other_sessions
        ))
        .routes(routes!(sessions::revoke_session))
        .routes(routes!(mfa::enroll, mfa::disable))
        .routes(routes!(mfa::confirm))
        .routes(routes!(mfa::regenerate))
        .routes(routes!(passkeys::register_start))
        .routes(routes!(passkeys::register_finish))
        .routes(routes!(passkeys::list))
        .routes(routes!(passkeys::remove))
        .routes(routes!(passkey_login::login_start))
        .routes(routes!(passkey_login::login_finish))
        .routes(routes!(passkey_login::second_factor_finish))
        .routes(routes!(api_keys::create, api_keys::list))
        .routes(routes!(api_keys::get, api_keys::revoke))
        .routes(routes!(members::list))
        .routes(routes!(channels::create, channels::list))
        .routes(routes!(channels::get, channels::update, channels::delete))
        .routes(routes!(channels::check))
        .routes(routes!(contacts::create, contacts::list))
        .routes(routes!(audiences::create_field, audiences::list_fields))
        .routes(routes!(contact_imports::create))
        .routes(routes!(contact_imports::get))
        .routes(routes!(contact_imports::rows))
        .routes(routes!(contact_imports::download))
        .routes(routes!(audiences::create, audiences::list))
        .routes(routes!(audiences::get, audiences::delete))
        .routes(routes!(audiences::contacts))
        .routes(routes!(campaigns::create, campaigns::list))
        .routes(routes!(campaigns::get))
        .routes(routes!(campaigns::preflight))
        .routes(routes!(campaigns::start))
        .routes(routes!(campaigns::pause))
        .routes(routes!(campaigns::resume))
        .routes(routes!(campaigns::cancel))
        .routes(routes!(campaigns::export))
        .routes(routes!(campaigns::get_tier, campaigns::set_tier))
        .routes(routes!(contacts::get, contacts::update, contacts::delete))
        .routes(routes!(contacts::record_consent, contacts::consent_history))
        .routes(routes!(messages::send, messages::list))
        .routes(routes!(messages::get))
        .merge(
            OpenApiRouter::new()
                .routes(routes!(media::upload))
                .layer(DefaultBodyLimit::max(media::UPLOAD_BODY_LIMIT)),
        )
        .routes(routes!(media::download))
        .routes(routes!(media::info))
        .routes(routes!(conversations::list))
        .routes(routes!(conversations::get))
        .routes(routes!(conversations::messages))
        .routes(routes!(conversations::assign))
        .routes(routes!(conversations::close))
        .routes(routes!(conversations::reopen))
        .routes(routes!(conversations::pending))
        .routes(routes!(conversations::labels))
        .routes(routes!(conversations::read))
        .routes(routes!(conversations::add_note, conversations::notes))
        .routes(routes!(automation::create_rule, automation::list_rules))
        .routes(routes!(automation::delete_rule))
        .routes(routes!(
            automation::get_assistant,
            automation::put_assistant
        ))
        .routes(routes!(automation::add_faq))
        .routes(routes!(automation::add_document))
        .routes(routes!(automation::list_knowledge))
        .routes(routes!(automation::delete_knowledge))
        .routes(routes!(automation::resume_assistant))
        .routes(routes!(privacy::export, privacy::rectify, privacy::erase))
        .routes(routes!(privacy::restrict))
        .routes(routes!(privacy::unrestrict))
        .routes(routes!(privacy::register))
        .routes(routes!(audit::list))
        .routes(routes!(audit::public_key))
        .routes(routes!(audit::export))
        .routes(routes!(members::elevate, members::end_elevation))
        .routes(routes!(invitations::create, invitations::list))
        .routes(routes!(invitations::revoke))
        .routes(routes!(invitations::accept_as_new_user))
        .routes(routes!(invitations::accept_as_user))
        .routes(routes!(workspace::get, workspace::update))
        .routes(routes!(
            workspace::request_workspace_deletion,
            workspace::cancel_workspace_deletion
        ))
        .routes(routes!(workspace_export::export))
        .routes(routes!(members::change_role, members::remove))
        .routes(routes!(shield::scan))
        .routes(routes!(shield::scan_batch))
        .routes(routes!(templates::create, templates::list))
        .routes(routes!(templates::get, templates::delete))
        .routes(routes!(templates::sync))
        .routes(routes!(webhooks::create, webhooks::list))
        .routes(routes!(webhooks::get, webhooks::update, webhooks::delete))
        .routes(routes!(webhooks::rotate_secret))
        .routes(routes!(webhooks::send_test))
        .routes(routes!(webhooks::attempts))
        .routes(routes!(webhooks::replay))
        .routes(routes!(webhooks::resend))
        .routes(routes!(events::stream))
        .routes(routes!(incidents::create, incidents::list))
        .routes(routes!(incidents::get, incidents::update))
        .routes(routes!(incidents::close))
        .routes(routes!(
            security::create_suspension,
            security::list_all_suspensions
        ))
        .routes(routes!(security::lift_suspension))
        .routes(routes!(security::list_all_alerts))
        .routes(routes!(security::operator_acknowledge))
        .routes(routes!(security::list_alerts))
        .routes(routes!(security::acknowledge_alert))
        .routes(routes!(security::list_suspensions))
        .routes(routes!(security::owner_lift))
        .routes(routes!(security::get_policy, security::set_policy))
        .routes(routes!(incident_view::list))
        .routes(routes!(incident_view::get))
        .routes(routes!(usage::get))
        .routes(routes!(plans::get_workspace_plan))
        .routes(routes!(plans::list_plans))
        .routes(routes!(plans::put_plan))
        .routes(routes!(plans::assign_plan))
        .routes(routes!(billing::checkout))
        .routes(routes!(billing::portal))
        .routes(routes!(billing::webhook))
        .routes(routes!(usage::get_rate_card, usage::put_rate_card))
        .split_for_parts()
}

/// The OpenAPI 3.1 document, as served at `/openapi.json` and committed at the repository root.
pub fn openapi_json() -> String {
    let (_, mut doc) = api();
    doc.info.version = env!("CARGO_PKG_VERSION").to_owned();
    let mut value = serde_json::to_value(&doc).expect("the OpenAPI document serialises");
    value["webhooks"] = webhooks_section();
    openapi::finish(&mut value);
    serde_json::to_string_pretty(&value).expect("the OpenAPI document serialises")
}

/// Settings the edge layers need.
#[derive(Debug, Clone, Copy)]
pub struct EdgeSettings {
    pub body_limit: usize,
    /// The body limit of media uploads (`POST /v1/media`).
    pub upload_limit: usize,
    pub request_timeout: Duration,
    /// The timeout of media routes (`/v1/media…`), whose bodies may be 100 MB.
    pub media_timeout: Duration,
    pub tls: bool,
}

/// The full application router, with `pages` (the dashboard) mounted beside
/// the API under the same edge layers.
pub fn router(state: AppState, pages: Router<AppState>) -> Router {
    let settings = EdgeSettings {
        body_limit: state.config.body_limit_bytes,
        upload_limit: media::UPLOAD_BODY_LIMIT,
        request_timeout: Duration::from_secs(state.config.request_timeout_secs),
        media_timeout: Duration::from_secs(state.config.media_timeout_secs),
        tls: state.config.tls_enabled(),
    };
    let (routes, _) = api();
    let spec = openapi_json();
    let routes = routes
        .route(
            "/openapi.json",
            get(move || async move { ([(header::CONTENT_TYPE, "application/json")], spec) }),
        )
        .route("/setup", get(setup::form).post(setup::submit))
        .merge(pages)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            middleware::limit_requests,
        ))
        // Provider webhooks come from few addresses at high rates: no per-address limit.
        .merge(inbound::routes(state.config.inbound_body_limit_bytes));
    with_edge_layers(routes, settings).with_state(state)
}

/// The separate metrics listener's routes (`WAYPOST_METRICS_LISTEN`): `/metrics`
/// without a token, and `/healthz`.
pub fn metrics_router(state: AppState) -> Router {
    Router::new()
        .route("/metrics", get(health::metrics_open))
        .route("/healthz", get(health::healthz))
        .with_state(state)
}

/// Wraps routes in the layers every response passes through, outermost first:
/// observe (request id, log, metrics) → security headers → problem bodies →
/// panic catcher → timeout → body limit → NUL refusal.
pub fn with_edge_layers<S: Clone + Send + Sync + 'static>(
    routes: Router<S>,
    s: EdgeSettings,
) -> Router<S> {
    use axum::middleware::from_fn;
    routes
        .route_layer(from_fn(middleware::expose_matched_path))
        .fallback(|| async { Problem::for_status(StatusCode::NOT_FOUND).into_response() })
        .method_not_allowed_fallback(|| async {
            Problem::for_status(StatusCode::METHOD_NOT_ALLOWED).into_response()
        })
        .layer(DefaultBodyLimit::max(s.body_limit))
        .layer(from_fn(middleware::refuse_nul))
        .layer(from_fn(move |req, next| {
            middleware::limit_body(s.body_limit, s.upload_limit, req, next)
        }))
        .layer(from_fn(move |req, next| {
            middleware::time_limit(s.request_timeout, s.media_timeout, req, next)
        }))
        .layer(CatchPanicLayer::custom(middleware::panic_response))
        .layer(from_fn(middleware::finish_problem))
        .layer(from_fn(move |req, next| {
            middleware::security_headers(s.tls, req, next)
        }))
        .layer(from_fn(middleware::observe))
}

#[cfg(test)]
mod tests {
    //! The edge layers around a probe route, for what no real route exercises yet:
    //! JSON bodies, body limits, media types, panics and timeouts.

    use axum::body::Body;
    use axum::http::Request;
    use axum::routing::post;
    use futures_util::StreamExt;
    use serde::Deserialize;
    use tower::ServiceExt;

    use super::*;
    use crate::http::json::ApiJson;

    #[derive(Deserialize)]
    struct Probe {
        #[allow(dead_code)]
        name: String,
    }

    async fn panics() -> &'static str {
        panic!("boom: secret detail")
    }

    fn app() -> Router {
        let routes: Router = Router::new()
            .route(
                "/probe",
                post(|ApiJson(_): ApiJson<Probe>| async { "accepted" }),
            )
            .route("/panic", get(panics))
            .route(
                "/slow",
                get(|| async { tokio::time::sleep(Duration::from_secs(5)).await }),
            )
            .route(
                "/v1/media/slow",
                get(|| async { tokio::time::sleep(Duration::from_millis(400)).await }),
            );
        let settings = EdgeSettings {
            body_limit: 64,
            upload_limit: 64,
            request_timeout: Duration::from_millis(200),
            media_timeout: Duration::from_secs(3),
            tls: false,
        };
        with_edge_layers(routes, settings)
    }

    async fn call(req: Request<Body>) -> (StatusCode, String, serde_json::Value) {
        let res = app().oneshot(req).await.unwrap();
        let status = res.status();
        let content_type = res
            .headers()
            .get(header::CONTENT_TYPE)
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        let bytes = axum::body::to_bytes(res.into_body(), 1 << 20)
            .await
            .unwrap();
        (
            status,
            content_type,
            serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null),
        )
    }

    fn post_json(body: &str) -> Request<Body> {
        Request::post("/probe")
            .header("content-type", "application/json")
            .body(Body::from(body.to_owned()))
            .unwrap()
    }

    #[tokio::test]
    async fn valid_json_passes() {
        let res = app().oneshot(post_json(r#"{"name":"x"}"#)).await.unwrap();
        assert_eq!(res.status(), 200);
    }

    #[tokio::test]
    async fn malformed_json_is_400_with_position() {
        let (status, ct, body) = call(post_json("{\"name\": ")).await;
        assert_eq!(
            (status.as_u16(), ct.as_str()),
            (400, "application/problem+json")
        );
        assert!(
            body["detail"].as_str().unwrap().contains("line 1, column"),
            "{body}"
        );
        assert_eq!(body["instance"], "/probe");
    }

    #[tokio::test]
    async fn wrong_field_type_is_400_naming_the_field() {
        let (status, _, body) = call(post_json(r#"{"name": 5}"#)).await;
        assert_eq!(status, 400);
        assert!(
            body["detail"].as_str().unwrap().starts_with("field `name`"),
            "{body}"
        );
        assert_eq!(body["errors"][0]["pointer"], "/name");
    }

    #[tokio::test]
    async fn oversized_bodies_are_413() {
        let big = format!(r#"{{"name":"{}"}}"#, "x".repeat(100));
        let (status, ct, body) = call(post_json(&big)).await;
        assert_eq!(
            (status.as_u16(), ct.as_str()),
            (413, "application/problem+json")
        );
        assert_eq!(
            body["type"],
            "https://waypost.dev/problems/payload-too-large"
        );
        // Without a content-length the limit still holds while streaming.
        let stream = Body::from_stream(futures_stream(big));
        let req = Request::post("/probe")
            .header("content-type", "application/json")
            .body(stream)
            .unwrap();
        let (status, ct, _) = call(req).await;
        assert_eq!(
            (status.as_u16(), ct.as_str()),
            (413, "application/problem+json")
        );
    }

    fn futures_stream(
        s: String,
    ) -> impl futures_core::Stream<Item = Result<Vec<u8>, std::io::Error>> {
        tokio_stream::iter(
            s.into_bytes()
                .chunks(10)
                .map(|c| Ok(c.to_vec()))
                .collect::<Vec<_>>(),
        )
    }

    #[tokio::test]
    async fn non_json_media_types_are_415() {
        let req = Request::post("/probe")
            .header("content-type", "text/plain")
            .body(Body::from("name=x"))
            .unwrap();
        let (status, ct, body) = call(req).await;
        assert_eq!(
            (status.as_u16(), ct.as_str()),
            (415, "application/problem+json")
        );
        assert_eq!(
            body["type"],
            "https://waypost.dev/problems/unsupported-media-type"
        );
    }

    #[tokio::test]
    async fn panics_become_500_showing_only_the_request_id() {
        let req = Request::get("/panic")
            .header("x-request-id", "req-1")
            .body(Body::empty())
            .unwrap();
        let (status, ct, body) = call(req).await;
        assert_eq!(
            (status.as_u16(), ct.as_str()),
            (500, "application/problem+json")
        );
        assert_eq!(body["request_id"], "req-1");
        assert!(!body.to_string().contains("boom"), "{body}");
    }

    #[tokio::test]
    async fn a_stalled_body_is_408_not_503() {
        let stalled = futures_util::stream::iter([Ok::<_, std::io::Error>(b"{\"na".to_vec())])
            .chain(futures_util::stream::pending());
        let req = Request::post("/probe")
            .header("content-type", "application/json")
            .header("content-length", "40")
            .body(Body::from_stream(stalled))
            .unwrap();
        let res = app().oneshot(req).await.unwrap();
        assert_eq!(res.status(), 408);
        assert_eq!(res.headers()[header::CONNECTION], "close");
        let (_, ct, body) = call(
            Request::post("/probe")
                .header("content-type", "application/json")
                .body(Body::from_stream(futures_util::stream::pending::<
                    Result<Vec<u8>, std::io::Error>,
                >()))
                .unwrap(),
        )
        .await;
        assert_eq!(ct, "application/problem+json");
        assert_eq!(body["status"], 408);
        assert!(body["type"].as_str().unwrap().ends_with("/request-timeout"));
    }

    #[tokio::test]
    async fn slow_requests_time_out_as_problems() {
        let (status, ct, _) = call(Request::get("/slow").body(Body::empty()).unwrap()).await;
        assert_eq!(
            (status.as_u16(), ct.as_str()),
            (503, "application/problem+json")
        );
        // Media routes move files of up to 100 MB: they get their own, longer limit.
        let (status, _, _) =
            call(Request::get("/v1/media/slow").body(Body::empty()).unwrap()).await;
        assert_eq!(status, 200);
    }
}
