//! Turning a provider answer into what the outbox records, the retry
//! schedule, and the customer events of status changes (ids and metadata
//! only, never content).

use chrono::{DateTime, Utc};
use waypost_cloudapi::{ClientError, ErrorClass, SendResponse};
use waypost_core::events::EventType;
use waypost_crypto::KeyRing;
use waypost_store::NewCustomerEvent;
use waypost_store::dispatch::StatusChange;

/// What one call means for the message and the channel.
#[derive(Debug, Clone, PartialEq)]
pub enum CallResult {
    /// Accepted under this wamid; `acceptance` is the answer's `message_status`.
    Sent {
        wamid: String,
        acceptance: Option<String>,
    },
    /// Not accepted, try again (5xx, connection refused, auth trouble).
    Transient {
        code: Option<i64>,
        title: String,
    },
    /// Over a provider limit; `pair` when it is the recipient's pair limit.
    RateLimited {
        code: Option<i64>,
        title: String,
        retry_after: Option<std::time::Duration>,
        pair: bool,
    },
    /// Maybe accepted: the answer was lost.
    InDoubt(String),
    /// Given up because this node's lease on the channel ended during the
    /// call: in doubt like the above, but no sign of a failing provider.
    LeaseEnded,
    Permanent {
        code: Option<i64>,
        title: String,
    },
}

/// The pair rate limit's code.
const PAIR_LIMIT: i64 = 131056;

pub fn classify(result: Result<SendResponse, ClientError>) -> CallResult {
    let err = match result {
        Ok(resp) => {
            return match resp.wamid() {
                Some(id) if !id.is_empty() => CallResult::Sent {
                    wamid: id.to_owned(),
                    // Bounded: an unknown value is the provider's free text.
                    acceptance: resp
                        .messages
                        .first()
                        .and_then(|m| m.message_status.as_ref())
                        .map(|s| s.as_str().chars().take(64).collect()),
                },
                _ => CallResult::InDoubt("accepted without a message id".into()),
            };
        }
        Err(e) => e,
    };
    match &err {
        // The request may have reached the provider: only a webhook can tell.
        ClientError::Timeout => return CallResult::InDoubt("request timed out".into()),
        ClientError::Transport(_) => return CallResult::InDoubt("response lost".into()),
        ClientError::TooLarge { .. } => return CallResult::InDoubt("response too large".into()),
        ClientError::Decode { status, .. } if (200..300).contains(status) => {
            return CallResult::InDoubt("unreadable success response".into());
        }
        _ => {}
    }
    let code = err.meta().map(|m| m.code);
    let title = title_of(&err);
    match err.class() {
        ErrorClass::Retryable | ErrorClass::Auth => CallResult::Transient { code, title },
        ErrorClass::RateLimited { retry_after } => CallResult::RateLimited {
            pair: code == Some(PAIR_LIMIT),
            code,
            title,
            retry_after,
        },
        ErrorClass::Permanent => CallResult::Permanent { code, title },
    }
}

/// A short title: Meta's message without its `(#code) ` prefix, or the HTTP status.
fn title_of(err: &ClientError) -> String {
    match err.meta() {
        Some(m) => {
            let t = m.error_user_title.as_deref().unwrap_or(&m.message);
            let t = match t.strip_prefix("(#") {
                Some(rest) => rest.split_once(") ").map_or(t, |(_, r)| r),
                None => t,
            };
            t.chars().take(200).collect()
        }
        None => match err {
            ClientError::Http { status, .. } => format!("HTTP {status}"),
            ClientError::Connect(_) => "connection failed".into(),
            ClientError::InvalidArgument(_) => "invalid request".into(),
            ClientError::Config(_) => "channel configuration invalid".into(),
            ClientError::Refused(_) => "provider address refused by the server's policy".into(),
            _ => "provider error".into(),
        },
    }
}

/// Exponential backoff with jitter: `base · 2^(attempts-1)` capped at `max`,
/// then a uniformly random point in its upper half (so retries of many
/// messages spread out and never come sooner than half the delay).
pub fn backoff(
    attempts: i64,
    base: std::time::Duration,
    max: std::time::Duration,
) -> chrono::Duration {
    let exp = attempts.clamp(1, 30) as u32 - 1;
    let delay = base.saturating_mul(2u32.saturating_pow(exp)).min(max);
    let random = (ulid::Ulid::new().random() % 1000) as f64 / 1000.0;
    let jittered = delay.mul_f64(0.5 + random / 2.0);
    chrono::Duration::from_std(jittered).unwrap_or(chrono::Duration::seconds(1))
}

fn event_type(status: &str) -> EventType {
    match status {
        "delivered" => EventType::MessageDelivered,
        "read" => EventType::MessageRead,
        "failed" => EventType::MessageFailed,
        _ => EventType::MessageSent,
    }
}

/// The customer event of a status change, sealed like every other event.
pub fn status_event(ring: &KeyRing, c: &StatusChange, at: DateTime<Utc>) -> NewCustomerEvent {
    let data = serde_json::json!({
        "message_id": c.message_id,
        "channel_id": c.channel_id,
        "contact_id": c.contact_id,
        "status": c.status,
        "wamid": c.wamid,
        "error": c.error_code.map(|code| serde_json::json!({"code": code, "title": c.error_title}))
            .or_else(|| c.error_title.as_ref().map(|t| serde_json::json!({"code": null, "title": t}))),
        "occurred_at": c.occurred_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    });
    sealed(
        ring,
        &c.workspace_id,
        event_type(&c.status),
        Some(c.message_id.clone()),
        &data,
        at,
    )
}

/// As [`crate::events::seal`], for a workspace id read back from the database.
pub fn sealed(
    ring: &KeyRing,
    workspace_id: &str,
    event_type: EventType,
    subject_id: Option<String>,
    data: &serde_json::Value,
    at: DateTime<Utc>,
) -> NewCustomerEvent {
    crate::events::seal_with_content(ring, workspace_id, event_type, subject_id, data, None, at)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn backoff_grows_is_capped_and_jittered() {
        let base = Duration::from_secs(1);
        let max = Duration::from_secs(60);
        for attempts in 1..=10i64 {
            let d = backoff(attempts, base, max).to_std().unwrap();
            let full = base.saturating_mul(2u32.pow(attempts as u32 - 1)).min(max);
            assert!(
                d >= full / 2 && d <= full,
                "attempt {attempts}: {d:?} vs {full:?}"
            );
        }
    }

    #[test]
    fn lost_answers_are_in_doubt_and_errors_are_classified() {
        assert!(matches!(
            classify(Err(ClientError::Timeout)),
            CallResult::InDoubt(_)
        ));
        assert!(matches!(
            classify(Err(ClientError::Transport("reset".into()))),
            CallResult::InDoubt(_)
        ));
        assert!(matches!(
            classify(Err(ClientError::Connect("refused".into()))),
            CallResult::Transient { .. }
        ));
        assert!(matches!(
            classify(Err(ClientError::Http {
                status: 503,
                class: ErrorClass::Retryable
            })),
            CallResult::Transient { .. }
        ));
    }
}
