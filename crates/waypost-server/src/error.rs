//! The crate's error types, at the bottom of its module graph: RFC 9457
//! problem details (the only error format of the JSON API), the error every
//! operation and handler returns, and the one-line startup failure.
//!
//! Handlers return [`ApiError`]; its response carries a [`Problem`] in the
//! response extensions, and the edge middleware (`finish_problem`) writes the
//! body with `instance` and `request_id` filled in. Any other error response
//! (a 405 from routing, a 413 from the body limit, a panic) is turned into a
//! problem there too, so no plain-text or HTML error ever leaves the API.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

pub const PROBLEM_JSON: &str = "application/problem+json";
const TYPE_BASE: &str = "https://waypost.dev/problems/";

/// An RFC 9457 problem document.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Problem {
    /// Stable URI identifying the kind of problem.
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    /// The request path this problem answers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
    /// The `x-request-id` of the request, for support and log correlation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// Problem-specific members (e.g. `errors`, `checks`).
    #[serde(flatten)]
    #[schema(value_type = Object)]
    pub extensions: serde_json::Map<String, serde_json::Value>,
}

impl Problem {
    pub fn new(status: StatusCode, slug: &str, title: &str, detail: impl Into<String>) -> Self {
        Self {
            kind: format!("{TYPE_BASE}{slug}"),
            title: title.into(),
            status: status.as_u16(),
            detail: detail.into(),
            instance: None,
            request_id: None,
            extensions: Default::default(),
        }
    }

    pub fn with(mut self, key: &str, value: serde_json::Value) -> Self {
        self.extensions.insert(key.into(), value);
        self
    }

    /// The generic problem for a bare status produced outside a handler.
    pub fn for_status(status: StatusCode) -> Self {
        let (slug, title, detail) = match status {
            StatusCode::NOT_FOUND => ("not-found", "Not found", "No resource exists at this path."),
            StatusCode::METHOD_NOT_ALLOWED => (
                "method-not-allowed",
                "Method not allowed",
                "This path does not accept this HTTP method.",
            ),
            StatusCode::PAYLOAD_TOO_LARGE => (
                "payload-too-large",
                "Payload too large",
                "The request body exceeds the configured limit.",
            ),
            StatusCode::UNSUPPORTED_MEDIA_TYPE => (
                "unsupported-media-type",
                "Unsupported media type",
                "Send the body as JSON with `Content-Type: application/json`.",
            ),
            StatusCode::UNAUTHORIZED => (
                "unauthorized",
                "Unauthorized",
                "The request lacks valid credentials.",
            ),
            StatusCode::FORBIDDEN => (
                "forbidden",
                "Forbidden",
                "The credentials given do not allow this request.",
            ),
            StatusCode::REQUEST_TIMEOUT => (
                "request-timeout",
                "Request timeout",
                "The request body did not arrive in time.",
            ),
            StatusCode::URI_TOO_LONG => (
                "uri-too-long",
                "URI too long",
                "The request target is longer than this server accepts.",
            ),
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE => (
                "header-fields-too-large",
                "Request header fields too large",
                "The request has too many header fields or they are too large.",
            ),
            StatusCode::SERVICE_UNAVAILABLE => (
                "unavailable",
                "Service unavailable",
                "The request could not be completed in time; retry later.",
            ),
            s if s.is_server_error() => (
                "internal",
                "Internal error",
                "An internal error occurred. Quote the request id when reporting it.",
            ),
            _ => (
                "bad-request",
                "Bad request",
                "The request could not be processed.",
            ),
        };
        Self::new(status, slug, title, detail)
    }

    pub fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let mut res = self.status_code().into_response();
        res.headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        res.extensions_mut().insert(self);
        res
    }
}

/// The error every handler returns.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0:?}")]
    Problem(Box<Problem>),
    /// Logged with the request id; the client sees only the id.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

/// A 422 `validation` problem: the request is well-formed but a value is not acceptable.
pub fn unprocessable(detail: impl Into<String>) -> ApiError {
    Problem::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation",
        "Invalid request",
        detail,
    )
    .into()
}

impl From<Problem> for ApiError {
    fn from(p: Problem) -> Self {
        ApiError::Problem(Box::new(p))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match self {
            ApiError::Problem(p) => p.into_response(),
            ApiError::Internal(e) => {
                tracing::error!(error = format!("{e:#}"), "internal error");
                Problem::for_status(StatusCode::INTERNAL_SERVER_ERROR).into_response()
            }
        }
    }
}

impl From<waypost_store::StoreError> for ApiError {
    fn from(e: waypost_store::StoreError) -> Self {
        use waypost_store::StoreError as E;
        match e {
            E::NotFound(what) => Problem::new(
                StatusCode::NOT_FOUND,
                "not-found",
                "Not found",
                format!("{what} not found"),
            )
            .into(),
            E::Conflict(detail) => {
                Problem::new(StatusCode::CONFLICT, "conflict", "Conflict", detail).into()
            }
            other => ApiError::Internal(other.into()),
        }
    }
}

/// A startup failure: one line naming the setting or resource at fault.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct StartupError(pub String);

/// The answer to a suspended caller, key, channel, user or workspace: type
/// `suspended` and nothing that says which or why (the owners are told).
pub fn suspended() -> ApiError {
    Problem::new(
        StatusCode::FORBIDDEN,
        "suspended",
        "Suspended",
        "Suspended.",
    )
    .into()
}
