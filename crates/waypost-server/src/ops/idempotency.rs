//! Idempotency for any state-changing operation: a client's `Idempotency-Key`
//! with the fingerprint of its request, the stored answer of a finished request,
//! and the record an operation commits in the same transaction as its effect.

use chrono::{DateTime, Duration, Utc};
use sha2::{Digest, Sha256};
use waypost_crypto::{Aad, KeyRing};
use waypost_store::messaging::NewIdempotencyRecord;

use crate::error::{ApiError, Problem};
use crate::state::AppState;

/// How long an idempotency key is remembered.
pub const TTL: Duration = Duration::hours(24);
pub const MAX_KEY_LEN: usize = 255;

/// A client's key and the fingerprint of the request it came with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey {
    pub key: String,
    pub request_hash: Vec<u8>,
}

/// The answer a finished request gave, to give again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredAnswer {
    pub status: u16,
    pub body: Vec<u8>,
}

impl IdempotencyKey {
    /// The key in `raw` (the header's bytes), if any, bound to `route` and `body`.
    pub fn parse(raw: Option<&[u8]>, route: &str, body: &[u8]) -> Result<Option<Self>, ApiError> {
        let Some(raw) = raw else {
            return Ok(None);
        };
        let valid =
            !raw.is_empty() && raw.len() <= MAX_KEY_LEN && raw.iter().all(|b| b.is_ascii_graphic());
        if !valid {
            return Err(Problem::new(
                axum::http::StatusCode::BAD_REQUEST,
                "invalid-idempotency-key",
                "Invalid Idempotency-Key",
                format!("`Idempotency-Key` must be 1 to {MAX_KEY_LEN} printable ASCII characters"),
            )
            .into());
        }
        let mut h = Sha256::new();
        h.update(route.as_bytes());
        h.update(b"\n");
        h.update(body);
        Ok(Some(Self {
            key: String::from_utf8_lossy(raw).into_owned(),
            request_hash: h.finalize().to_vec(),
        }))
    }

    /// The record of `answer`, encrypted, for the operation's transaction.
    pub fn record(
        &self,
        ring: &KeyRing,
        status: u16,
        answer: &[u8],
        now: DateTime<Utc>,
    ) -> NewIdempotencyRecord {
        let id = waypost_core::id::IdempotencyRecordId::new().to_string();
        NewIdempotencyRecord {
            response_body: ring.encrypt(
                Aad::new("idempotency_records", "response_body", &id),
                answer,
            ),
            id,
            key: self.key.clone(),
            request_hash: self.request_hash.clone(),
            response_status: status,
            created_at: now,
            expires_at: now + TTL,
        }
    }
}

/// The stored answer for `key` in `workspace`, if an identical request finished;
/// a refusal if the key was used with another request or that one still runs.
pub async fn replay(
    state: &AppState,
    workspace: &str,
    key: &IdempotencyKey,
) -> Result<Option<StoredAnswer>, ApiError> {
    let Some(record) = state.store.find_idempotency(workspace, &key.key).await? else {
        return Ok(None);
    };
    if record.expires_at <= state.clock.now() {
        return Ok(None);
    }
    if record.request_hash != key.request_hash {
        return Err(Problem::new(
            axum::http::StatusCode::UNPROCESSABLE_ENTITY,
            "idempotency-key-reused",
            "Idempotency-Key reused",
            "This Idempotency-Key was used with a different request body.",
        )
        .into());
    }
    let (Some(status), Some(body)) = (record.response_status, record.response_body) else {
        return Err(Problem::new(
            axum::http::StatusCode::CONFLICT,
            "idempotency-in-progress",
            "Request in progress",
            "A request with this Idempotency-Key is still running; retry shortly.",
        )
        .into());
    };
    let plain = state
        .keys
        .decrypt(
            state.store.as_ref(),
            Aad::new("idempotency_records", "response_body", &record.id),
            &body,
        )
        .await
        .map_err(ApiError::Internal)?;
    Ok(Some(StoredAnswer {
        status: u16::try_from(status).unwrap_or(202),
        body: plain.to_vec(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_printable_ascii_of_bounded_length() {
        assert!(
            IdempotencyKey::parse(None, "POST /v1/messages", b"{}")
                .unwrap()
                .is_none()
        );
        assert!(IdempotencyKey::parse(Some(b""), "r", b"").is_err());
        assert!(IdempotencyKey::parse(Some(b"has space"), "r", b"").is_err());
        assert!(IdempotencyKey::parse(Some(&[b'k'; MAX_KEY_LEN + 1]), "r", b"").is_err());
        assert!(
            IdempotencyKey::parse(Some(&[b'k'; MAX_KEY_LEN]), "r", b"")
                .unwrap()
                .is_some()
        );
    }

    #[test]
    fn the_fingerprint_binds_route_and_body() {
        let a = IdempotencyKey::parse(Some(b"k1"), "POST /v1/messages", b"{}")
            .unwrap()
            .unwrap();
        let b = IdempotencyKey::parse(Some(b"k1"), "POST /v1/messages", b"{ }")
            .unwrap()
            .unwrap();
        let c = IdempotencyKey::parse(Some(b"k1"), "POST /v1/contacts", b"{}")
            .unwrap()
            .unwrap();
        assert_ne!(a.request_hash, b.request_hash);
        assert_ne!(a.request_hash, c.request_hash);
        assert_eq!(
            a,
            IdempotencyKey::parse(Some(b"k1"), "POST /v1/messages", b"{}")
                .unwrap()
                .unwrap()
        );
    }
}
