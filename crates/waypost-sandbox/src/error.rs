//! Graph-style errors: Meta's `{"error":{…}}` envelope (the cloudapi crate's
//! `ErrorEnvelope`) with the code, HTTP status and title Meta uses.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use std::sync::atomic::{AtomicU64, Ordering};
use waypost_cloudapi::error::ErrorData;
use waypost_cloudapi::{ErrorEnvelope, MetaError};

static TRACE: AtomicU64 = AtomicU64::new(1);

/// One failed Graph call.
#[derive(Debug, Clone)]
pub struct GraphError {
    pub status: u16,
    pub code: i64,
    pub title: String,
    pub details: String,
    pub kind: &'static str,
    pub subcode: Option<i64>,
    pub retry_after: Option<u64>,
}

impl GraphError {
    pub fn new(status: u16, code: i64, title: &str, details: impl Into<String>) -> Self {
        Self {
            status,
            code,
            title: title.into(),
            details: details.into(),
            kind: "OAuthException",
            subcode: None,
            retry_after: None,
        }
    }

    pub fn auth() -> Self {
        Self::new(
            401,
            190,
            "Invalid OAuth access token - Cannot parse access token",
            "The access token is missing, unknown or not valid for this object.",
        )
    }

    /// Code 100 naming the offending field.
    pub fn param(field: &str, problem: &str) -> Self {
        Self::new(
            400,
            100,
            "Invalid parameter",
            format!("Parameter {field}: {problem}"),
        )
    }

    pub fn unknown_object(id: &str) -> Self {
        Self {
            kind: "GraphMethodException",
            subcode: Some(33),
            ..Self::new(
                400,
                100,
                &format!("Unsupported request - object with ID '{id}' does not exist"),
                "Unknown object id, or missing permission.",
            )
        }
    }

    /// A media download URL used after its 5 minutes.
    pub fn url_expired() -> Self {
        Self::new(
            404,
            100,
            "URL signature expired",
            "The media URL has expired; retrieve the media again for a new URL.",
        )
    }

    pub fn server() -> Self {
        Self::new(
            500,
            131000,
            "Something went wrong",
            "Sandbox fault: injected server error.",
        )
    }

    pub fn throughput(status: u16) -> Self {
        Self {
            retry_after: Some(1),
            ..Self::new(
                status,
                130429,
                "Rate limit hit",
                "Cloud API message throughput has been reached.",
            )
        }
    }

    pub fn code(&self) -> i64 {
        self.code
    }
}

impl IntoResponse for GraphError {
    fn into_response(self) -> Response {
        let trace = TRACE.fetch_add(1, Ordering::Relaxed);
        let body = ErrorEnvelope {
            error: MetaError {
                message: format!("(#{}) {}", self.code, self.title),
                kind: Some(self.kind.into()),
                code: self.code,
                error_subcode: self.subcode,
                error_data: Some(ErrorData {
                    messaging_product: Some("whatsapp".into()),
                    details: Some(self.details),
                }),
                error_user_title: None,
                error_user_msg: None,
                is_transient: None,
                fbtrace_id: Some(format!("SBX{trace:012x}")),
            },
        };
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::BAD_REQUEST);
        let mut resp = (status, axum::Json(body)).into_response();
        if let Some(s) = self.retry_after {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(s));
        }
        resp
    }
}
