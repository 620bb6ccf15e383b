//! `Idempotent<T>`: the body extractor of any `POST` that honours an
//! `Idempotency-Key`. It reads the key and binds it to the route and the raw
//! body; the operation looks the key up and commits its record with its effect.

use axum::extract::{FromRequest, MatchedPath, Request};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;

use super::json::{is_json, parse, read_body};
use crate::error::{ApiError, Problem};
use crate::ops::idempotency::{IdempotencyKey, StoredAnswer};

pub const IDEMPOTENCY_HEADER: &str = "idempotency-key";

/// A JSON body `T` and the request's idempotency key, if it gave one.
#[derive(Debug)]
pub struct Idempotent<T> {
    pub key: Option<IdempotencyKey>,
    pub body: T,
}

impl<S, T> FromRequest<S> for Idempotent<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        if !is_json(req.headers().get(header::CONTENT_TYPE)) {
            return Err(Problem::for_status(StatusCode::UNSUPPORTED_MEDIA_TYPE).into());
        }
        let route = format!(
            "{} {}",
            req.method(),
            req.extensions()
                .get::<MatchedPath>()
                .map_or_else(|| req.uri().path(), |p| p.as_str())
        );
        let raw_key = req.headers().get(IDEMPOTENCY_HEADER).cloned();
        let bytes = read_body(req, state).await?;
        let key = IdempotencyKey::parse(raw_key.as_ref().map(|v| v.as_bytes()), &route, &bytes)?;
        Ok(Self {
            key,
            body: parse(&bytes)?,
        })
    }
}

/// The response for an answer given again, marked `Idempotent-Replayed: true`.
pub fn replayed(stored: StoredAnswer) -> Response {
    let status = StatusCode::from_u16(stored.status).unwrap_or(StatusCode::ACCEPTED);
    let mut response = (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        stored.body,
    )
        .into_response();
    response.headers_mut().insert(
        "idempotent-replayed",
        "true".parse().expect("static header"),
    );
    response
}
