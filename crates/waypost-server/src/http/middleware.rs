//! Edge middleware shared by every route: request ids, one log line and the
//! metrics per request, security headers, and turning every error response
//! into a problem document.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::body::HttpBody;
use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use tracing::Instrument;

use crate::error::{PROBLEM_JSON, Problem};
use crate::guard::rate_limit;
use crate::state::AppState;

pub static REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The request's id, as seen by handlers.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

/// Keeps a caller's `x-request-id` when it is short and plain, else makes one.
fn sane_request_id(value: Option<&HeaderValue>) -> Option<String> {
    let text = value?.to_str().ok()?;
    let ok = (1..=128).contains(&text.len())
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'));
    ok.then(|| text.to_owned())
}

/// Outermost layer: assigns the request id, opens the request span, logs one
/// line and records metrics when the response is ready.
pub async fn observe(mut req: Request, next: Next) -> Response {
    let id = sane_request_id(req.headers().get(&REQUEST_ID))
        .unwrap_or_else(|| ulid::Ulid::new().to_string());
    let header_value = HeaderValue::from_str(&id).expect("request ids are visible ASCII");
    req.headers_mut()
        .insert(REQUEST_ID.clone(), header_value.clone());
    req.extensions_mut().insert(RequestId(id.clone()));
    let method = req.method().clone();
    let started = Instant::now();
    let span = tracing::info_span!("request", request_id = %id);
    let mut res = next.run(req).instrument(span.clone()).await;
    let latency = started.elapsed();
    let route = res
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |m| m.as_str().to_owned());
    let status = res.status().as_u16();
    crate::telemetry::record_request(method.as_str(), &route, status, latency);
    span.in_scope(|| {
        tracing::info!(
            method = %method,
            route = %route,
            status,
            latency_ms = latency.as_secs_f64() * 1000.0,
            "request"
        );
    });
    res.headers_mut().insert(REQUEST_ID.clone(), header_value);
    res
}

/// The routes that take large bodies: media uploads and contact imports.
fn is_upload(req: &Request) -> bool {
    req.method() == axum::http::Method::POST
        && matches!(
            req.uri().path(),
            "/v1/media" | "/v1/contacts/imports" | "/audiences/imports"
        )
}

/// Caps every request body at `limit`, or `upload_limit` for uploads (media
/// files and contact imports): a declared length past it is refused at once,
/// a streamed body fails when it passes it.
pub async fn limit_body(limit: usize, upload_limit: usize, req: Request, next: Next) -> Response {
    let upload = is_upload(&req);
    let limit = if upload { upload_limit } else { limit };
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Problem::for_status(StatusCode::PAYLOAD_TOO_LARGE).into_response();
    }
    let (parts, body) = req.into_parts();
    let body = Body::new(http_body_util::Limited::new(body, limit));
    next.run(Request::from_parts(parts, body)).await
}

/// Refuses a NUL character (`%00`) in the path or query: no identifier or
/// filter holds one, and PostgreSQL refuses it in text, which would otherwise
/// surface as a server error.
pub async fn refuse_nul(req: Request, next: Next) -> Response {
    let uri = req.uri();
    let has_nul = |s: &str| {
        s.as_bytes()
            .windows(3)
            .any(|w| w.eq_ignore_ascii_case(b"%00"))
    };
    if has_nul(uri.path()) || uri.query().is_some_and(has_nul) {
        // Read (within the body limit) what the client is sending, so it
        // sees this answer rather than a connection closed mid-body.
        let _ = axum::body::to_bytes(req.into_body(), usize::MAX).await;
        return Problem::new(
            StatusCode::BAD_REQUEST,
            "bad-request",
            "Bad request",
            "the address contains a NUL character (%00), which no Waypost identifier or filter holds",
        )
        .into_response();
    }
    next.run(req).await
}

/// Answers when a request runs longer than its limit: `media` for the media
/// routes and contact imports (100 MB files move slowly), `default` for everything else. Covers
/// reading the body and producing the response head (a stream's body is not
/// limited). A client still sending its body then is answered 408 (and the
/// connection closed); otherwise the server was too slow: 503.
pub async fn time_limit(default: Duration, media: Duration, req: Request, next: Next) -> Response {
    let limit = if req.uri().path().starts_with("/v1/media") || is_upload(&req) {
        media
    } else {
        default
    };
    let (parts, body) = req.into_parts();
    let body_done = Arc::new(AtomicBool::new(body.is_end_stream()));
    let body = if body_done.load(Ordering::Relaxed) {
        body
    } else {
        let done = body_done.clone();
        let end = futures_util::stream::poll_fn(move |_| {
            done.store(true, Ordering::Relaxed);
            std::task::Poll::Ready(None)
        });
        Body::from_stream(body.into_data_stream().chain(end))
    };
    match tokio::time::timeout(limit, next.run(Request::from_parts(parts, body))).await {
        Ok(res) => res,
        Err(_) if !body_done.load(Ordering::Relaxed) => {
            let mut res = Problem::for_status(StatusCode::REQUEST_TIMEOUT).into_response();
            res.headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
            res
        }
        Err(_) => Problem::for_status(StatusCode::SERVICE_UNAVAILABLE).into_response(),
    }
}

/// Innermost route layer: copies the matched route template to the response,
/// where [`observe`] labels metrics and logs with it.
pub async fn expose_matched_path(req: Request, next: Next) -> Response {
    let matched = req.extensions().get::<MatchedPath>().cloned();
    let mut res = next.run(req).await;
    if let Some(m) = matched {
        res.extensions_mut().insert(m);
    }
    res
}

/// Writes problem bodies: fills `instance` and `request_id` into problems from
/// handlers, and replaces any other error body with the problem for its status.
pub async fn finish_problem(req: Request, next: Next) -> Response {
    let path = req.uri().path().to_owned();
    let request_id = req.extensions().get::<RequestId>().map(|r| r.0.clone());
    let res = next.run(req).await;
    let status = res.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return res;
    }
    let problem = match res.extensions().get::<Problem>() {
        Some(p) => p.clone(),
        None if is_problem(&res) || is_page(&res) => return res,
        None => Problem::for_status(status),
    };
    let (mut parts, _) = res.into_parts();
    let problem = Problem {
        instance: Some(path),
        request_id,
        ..problem
    };
    let body = serde_json::to_vec(&problem).expect("problems serialise");
    parts
        .headers
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.extensions.remove::<Problem>();
    Response::from_parts(parts, Body::from(body))
}

/// Dashboard pages answer errors as pages.
fn is_page(res: &Response) -> bool {
    res.headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"text/html"))
}

fn is_problem(res: &Response) -> bool {
    res.headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(PROBLEM_JSON.as_bytes()))
}

/// Security headers on every response; HSTS only when this process terminates TLS.
pub async fn security_headers(tls: bool, req: Request, next: Next) -> Response {
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    h.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    h.insert("x-frame-options", HeaderValue::from_static("DENY"));
    h.insert(
        "cross-origin-opener-policy",
        HeaderValue::from_static("same-origin"),
    );
    h.insert(
        "cross-origin-resource-policy",
        HeaderValue::from_static("same-origin"),
    );
    // Pages set their own policy (scripts and styles from this server only).
    if !h.contains_key("content-security-policy") {
        h.insert(
            "content-security-policy",
            HeaderValue::from_static(
                "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
            ),
        );
    }
    // A route may say more (media files add `private`), never less than
    // `no-store`; only content-addressed assets are `immutable`.
    if !h
        .get(header::CACHE_CONTROL)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("no-store") || v.contains("immutable"))
    {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    if tls {
        h.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000; includeSubDomains"),
        );
    }
    res
}

/// The answer for a handler that panicked; the panic itself is logged.
pub fn panic_response(err: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let message = err
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| err.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "non-string panic".into());
    tracing::error!(panic = %message, "handler panicked");
    Problem::for_status(StatusCode::INTERNAL_SERVER_ERROR).into_response()
}

/// Edge layer: limits each client address, gives each request a slot for the
/// caller's own limit, and turns the strictest check into headers.
pub async fn limit_requests(
    axum::extract::State(state): axum::extract::State<AppState>,
    mut req: Request,
    next: Next,
) -> Response {
    let slot = rate_limit::RateLimitSlot::default();
    if let Some(ip) = crate::state::client_ip(&state.config, req.headers(), req.extensions()) {
        let info = state.limits.ip.check(&ip);
        if info.retry_after_secs.is_some() {
            return rate_limit::too_many_requests(info, "Too many requests from this address.");
        }
        slot.record(info);
    }
    req.extensions_mut().insert(slot.clone());
    let mut res = next.run(req).await;
    // A refusal further in (e.g. the login throttle) already carries its own numbers.
    if let Some(info) = slot.take()
        && !res.headers().contains_key("ratelimit-limit")
    {
        rate_limit::apply_headers(&mut res, info);
    }
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_must_be_plain() {
        let ok = HeaderValue::from_static("abc-123_x.y:z");
        assert_eq!(sane_request_id(Some(&ok)).as_deref(), Some("abc-123_x.y:z"));
        assert_eq!(
            sane_request_id(Some(&HeaderValue::from_static("has space"))),
            None
        );
        assert_eq!(sane_request_id(Some(&HeaderValue::from_static(""))), None);
        let long = HeaderValue::from_str(&"a".repeat(129)).unwrap();
        assert_eq!(sane_request_id(Some(&long)), None);
        assert_eq!(sane_request_id(None), None);
    }
}
