//! What a caller should do about a failed call: retry soon, back off, give up
//! on this message, or stop and fix credentials. One table maps Meta error
//! codes to a class; HTTP status decides when the code is unknown or absent.

use std::time::Duration;

/// How to react to an error. Every caller (send worker, sandbox tests,
/// management API) branches on this, never on codes directly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// Transient: retry with backoff (5xx, timeouts, connection errors,
    /// "something went wrong", maintenance).
    Retryable,
    /// A rate or throughput limit: wait (`retry_after` when Meta said how
    /// long via `Retry-After`), then retry.
    RateLimited { retry_after: Option<Duration> },
    /// The request itself is wrong or can't be delivered: retrying the same
    /// request won't help.
    Permanent,
    /// Token invalid or expired, or a permission is missing: stop sending
    /// with these credentials and alert an operator.
    Auth,
}

impl ErrorClass {
    /// A stable lower-case name, for logs and metric labels.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Retryable => "retryable",
            Self::RateLimited { .. } => "rate_limited",
            Self::Permanent => "permanent",
            Self::Auth => "auth",
        }
    }
}

/// A class without its retry-after, for the code table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeClass {
    Retryable,
    RateLimited,
    Permanent,
    Auth,
}

impl CodeClass {
    fn with_retry_after(self, retry_after: Option<Duration>) -> ErrorClass {
        match self {
            Self::Retryable => ErrorClass::Retryable,
            Self::RateLimited => ErrorClass::RateLimited { retry_after },
            Self::Permanent => ErrorClass::Permanent,
            Self::Auth => ErrorClass::Auth,
        }
    }
}

/// One row: codes `first..=last` have `class`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CodeRule {
    pub first: i64,
    pub last: i64,
    pub class: CodeClass,
    pub meaning: &'static str,
}

const fn rule(first: i64, last: i64, class: CodeClass, meaning: &'static str) -> CodeRule {
    CodeRule {
        first,
        last,
        class,
        meaning,
    }
}

use CodeClass::{Auth, Permanent, RateLimited, Retryable};

/// Meta error codes with a known class (reference §2.3). Codes not listed
/// fall back to the HTTP status (see [`classify_response`]); in a webhook,
/// where there is no status, they count as permanent.
///
/// Judgement calls: integrity (368, 131031) and billing (131042) block every
/// send but need a human, not new credentials, so they are `Permanent`;
/// code 1 ("invalid request or possible server error") is `Retryable`
/// because Graph's guidance is to wait and retry, and retries are bounded.
pub const CODE_TABLE: &[CodeRule] = &[
    // Authentication and permissions.
    rule(0, 0, Auth, "AuthException: token expired or invalidated"),
    rule(3, 3, Auth, "API Method: capability or permission problem"),
    rule(10, 10, Auth, "Permission denied"),
    rule(102, 102, Auth, "API Session: session invalid"),
    rule(190, 190, Auth, "Access token expired or invalid"),
    rule(
        200,
        299,
        Auth,
        "API Permission: permission not granted or removed",
    ),
    rule(131005, 131005, Auth, "Access denied"),
    // Throttling.
    rule(4, 4, RateLimited, "App-level Graph call-rate limit"),
    rule(17, 17, RateLimited, "User request limit"),
    rule(341, 341, RateLimited, "Application limit"),
    rule(80007, 80007, RateLimited, "WABA request rate limit"),
    rule(
        130429,
        130429,
        RateLimited,
        "Cloud API throughput (mps) reached",
    ),
    rule(131048, 131048, RateLimited, "Spam rate limit (quality) hit"),
    rule(
        131056,
        131056,
        RateLimited,
        "Business/consumer pair rate limit",
    ),
    rule(131064, 131064, RateLimited, "Messaging limit reached"),
    rule(132069, 132069, RateLimited, "Flow throttled (10 per hour)"),
    rule(133008, 133008, RateLimited, "Too many two-step PIN guesses"),
    rule(
        133009,
        133009,
        RateLimited,
        "Two-step PIN entered too quickly",
    ),
    rule(
        133016,
        133016,
        RateLimited,
        "Register/deregister attempt limit",
    ),
    // Transient.
    rule(1, 1, Retryable, "API Unknown: possibly temporary"),
    rule(
        2,
        2,
        Retryable,
        "API Service: temporary downtime or overload",
    ),
    rule(131000, 131000, Retryable, "Something went wrong"),
    rule(131016, 131016, Retryable, "Service unavailable"),
    rule(131057, 131057, Retryable, "Account in maintenance mode"),
    rule(133004, 133004, Retryable, "Server temporarily unavailable"),
    rule(
        133015,
        133015,
        Retryable,
        "Number deletion not finished; wait 5 minutes",
    ),
    // Permanent: the request or recipient is the problem.
    rule(
        33,
        33,
        Permanent,
        "Business phone number deleted / unknown object",
    ),
    rule(100, 100, Permanent, "Invalid parameter"),
    rule(
        368,
        368,
        Permanent,
        "Temporarily blocked for policy violations",
    ),
    rule(
        130472,
        130472,
        Permanent,
        "User's number is part of an experiment",
    ),
    rule(
        130497,
        130497,
        Permanent,
        "Messaging users in this country restricted",
    ),
    rule(
        131008,
        131009,
        Permanent,
        "Required parameter missing / value invalid",
    ),
    rule(131021, 131021, Permanent, "Recipient cannot be sender"),
    rule(131026, 131026, Permanent, "Message undeliverable"),
    rule(131030, 131030, Permanent, "Recipient not in allowed list"),
    rule(131031, 131031, Permanent, "Account locked"),
    rule(131037, 131037, Permanent, "Display name not approved"),
    rule(131042, 131042, Permanent, "Business payment issue"),
    rule(131044, 131044, Permanent, "Payment issue (calling)"),
    rule(131045, 131045, Permanent, "Phone number registration error"),
    rule(
        131047,
        131047,
        Permanent,
        "Re-engagement: 24 h window closed",
    ),
    rule(
        131049,
        131049,
        Permanent,
        "Not delivered for ecosystem health",
    ),
    rule(131050, 131050, Permanent, "User stopped marketing messages"),
    rule(131051, 131051, Permanent, "Unsupported message type"),
    rule(131052, 131053, Permanent, "Media download / upload error"),
    rule(
        131062,
        131063,
        Permanent,
        "BSUID not supported / marketing disabled",
    ),
    rule(
        132000,
        132001,
        Permanent,
        "Template parameter count / missing template",
    ),
    rule(132005, 132005, Permanent, "Template hydrated text too long"),
    rule(
        132007,
        132008,
        Permanent,
        "Template format policy / parameter invalid",
    ),
    rule(
        132012,
        132012,
        Permanent,
        "Template parameter format mismatch",
    ),
    rule(132015, 132016, Permanent, "Template paused / disabled"),
    rule(132068, 132068, Permanent, "Flow blocked"),
    rule(133000, 133000, Permanent, "Incomplete deregistration"),
    rule(
        133005,
        133006,
        Permanent,
        "PIN mismatch / re-verification needed",
    ),
    rule(133010, 133010, Permanent, "Phone number not registered"),
    rule(135000, 135000, Permanent, "Generic user error"),
    rule(
        137000,
        137000,
        Permanent,
        "Recipient identity key hash mismatch",
    ),
    rule(
        139000,
        139002,
        Permanent,
        "Flow create/update/publish error",
    ),
];

/// The table's class for `code`, if the code is listed.
pub fn code_class(code: i64) -> Option<CodeClass> {
    CODE_TABLE
        .iter()
        .find(|r| (r.first..=r.last).contains(&code))
        .map(|r| r.class)
}

/// Class of an error code seen without an HTTP status (webhook `errors[]`).
/// Unlisted codes are permanent: an async failure already happened.
pub fn classify_code(code: i64) -> ErrorClass {
    code_class(code)
        .unwrap_or(CodeClass::Permanent)
        .with_retry_after(None)
}

/// Class of a failed HTTP response. A listed Meta code wins (Meta sends
/// throttling codes with HTTP 400, emulators with 429); otherwise the status
/// decides: 5xx, 408 and `is_transient` retry, 429 backs off, 401/403 are
/// auth, every other status is permanent. `retry_after` (from the
/// `Retry-After` header) is attached to any rate-limit result.
pub fn classify_response(
    status: u16,
    code: Option<i64>,
    is_transient: bool,
    retry_after: Option<Duration>,
) -> ErrorClass {
    if let Some(class) = code.and_then(code_class) {
        return class.with_retry_after(retry_after);
    }
    let class = match status {
        429 => CodeClass::RateLimited,
        _ if is_transient => CodeClass::Retryable,
        408 | 500..=599 => CodeClass::Retryable,
        401 | 403 => CodeClass::Auth,
        _ => CodeClass::Permanent,
    };
    class.with_retry_after(retry_after)
}

/// Parses `Retry-After` as delta-seconds. The HTTP-date form is not used by
/// Graph ([uncertain]); it yields `None` and the caller's own backoff applies.
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

/// Reads Graph's `X-Business-Use-Case-Usage` header (a JSON map from
/// business id to usage entries) and returns the longest
/// `estimated_time_to_regain_access`, which Graph gives in minutes. Used as
/// the wait for a rate limit when `Retry-After` is absent. The header's exact
/// WhatsApp shape is [uncertain]; anything unexpected yields `None`.
pub fn parse_business_usage_regain(value: &str) -> Option<Duration> {
    #[derive(serde::Deserialize)]
    struct Usage {
        #[serde(default)]
        estimated_time_to_regain_access: u64,
    }
    let map: std::collections::HashMap<String, Vec<Usage>> = serde_json::from_str(value).ok()?;
    let minutes = map
        .values()
        .flatten()
        .map(|u| u.estimated_time_to_regain_access)
        .max()?;
    (minutes > 0).then(|| Duration::from_secs(minutes.saturating_mul(60)))
}

#[cfg(test)]
#[path = "classify_tests.rs"]
mod tests;
