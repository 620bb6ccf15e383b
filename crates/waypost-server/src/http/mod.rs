//! The HTTP surface: routes, the OpenAPI document, and the edge layers that
//! every response passes through.

pub mod health;
pub mod json;
pub mod middleware;
pub mod problem;

use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::state::AppState;
pub use problem::{ApiError, Problem};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Waypost API",
        description = "Self-hosted, privacy-first WhatsApp Business messaging. Errors are RFC 9457 problem documents.",
        license(name = "AGPL-3.0-only", identifier = "AGPL-3.0-only"),
    ),
    tags((name = "operations", description = "Health, readiness and metrics")),
    components(schemas(Problem)),
)]
struct ApiDoc;

/// The routes and their OpenAPI description, without edge layers.
fn api() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(health::healthz))
        .routes(routes!(health::readyz))
        .routes(routes!(health::metrics))
        .split_for_parts()
}

/// The OpenAPI 3.1 document, as served at `/openapi.json` and committed at the repository root.
pub fn openapi_json() -> String {
    let (_, mut doc) = api();
    doc.info.version = env!("CARGO_PKG_VERSION").to_owned();
    doc.to_pretty_json()
        .expect("the OpenAPI document serialises")
}

/// Settings the edge layers need.
#[derive(Debug, Clone, Copy)]
pub struct EdgeSettings {
    pub body_limit: usize,
    pub request_timeout: Duration,
    pub tls: bool,
}

/// The full application router.
pub fn router(state: AppState) -> Router {
    let settings = EdgeSettings {
        body_limit: state.config.body_limit_bytes,
        request_timeout: Duration::from_secs(state.config.request_timeout_secs),
        tls: state.config.tls_enabled(),
    };
    let (routes, _) = api();
    let spec = openapi_json();
    let routes = routes.route(
        "/openapi.json",
        get(move || async move { ([(header::CONTENT_TYPE, "application/json")], spec) }),
    );
    with_edge_layers(routes, settings).with_state(state)
}

/// Wraps routes in the layers every response passes through, outermost first:
/// observe (request id, log, metrics) → security headers → problem bodies →
/// panic catcher → timeout → body limit.
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
        .layer(RequestBodyLimitLayer::new(s.body_limit))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            s.request_timeout,
        ))
        .layer(CatchPanicLayer::custom(middleware::panic_response))
        .layer(from_fn(middleware::finish_problem))
        .layer(from_fn(move |req, next| {
            middleware::security_headers(s.tls, req, next)
        }))
        .layer(from_fn(middleware::observe))
}
