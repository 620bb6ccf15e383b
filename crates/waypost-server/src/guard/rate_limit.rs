//! In-memory GCRA rate limits (governor) per API key, per session user and per
//! client address, so a limit check never costs a database round trip. Each
//! node enforces its own share; limits are per node.
//!
//! The outcome of the check that applied to a request travels in a
//! [`RateLimitSlot`] so the edge layer can add `RateLimit-*` headers to
//! whatever the handler answers.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::middleware::StateInformationMiddleware;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};

use crate::error::Problem;

type Keyed<K> = RateLimiter<K, DefaultKeyedStateStore<K>, DefaultClock, StateInformationMiddleware>;

/// One keyed limiter and its quota.
pub struct Limiter<K: std::hash::Hash + Eq + Clone> {
    inner: Keyed<K>,
    /// Requests allowed per `period` (named for the common case, a minute).
    per_minute: u32,
    period: Duration,
}

/// What a limit check found: enough to fill the `RateLimit-*` headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimitInfo {
    pub limit: u32,
    pub remaining: u32,
    /// Seconds until the full quota is available again.
    pub reset_secs: u64,
    /// Set when the request was refused.
    pub retry_after_secs: Option<u64>,
}

impl<K: std::hash::Hash + Eq + Clone> Limiter<K> {
    pub fn per_minute(per_minute: u32) -> Self {
        let n = NonZeroU32::new(per_minute.max(1)).expect("at least 1");
        Self {
            inner: RateLimiter::keyed(Quota::per_minute(n)).with_middleware(),
            per_minute: n.get(),
            period: Duration::from_secs(60),
        }
    }

    /// `per_hour` requests an hour, for rare actions (password reset mail).
    pub fn per_hour(per_hour: u32) -> Self {
        let n = NonZeroU32::new(per_hour.max(1)).expect("at least 1");
        Self {
            inner: RateLimiter::keyed(Quota::per_hour(n)).with_middleware(),
            per_minute: n.get(),
            period: Duration::from_secs(3600),
        }
    }

    pub fn check(&self, key: &K) -> RateLimitInfo {
        let per_token = self.period / self.per_minute;
        match self.inner.check_key(key) {
            Ok(snapshot) => {
                let remaining = snapshot.remaining_burst_capacity();
                let missing = self.per_minute.saturating_sub(remaining);
                RateLimitInfo {
                    limit: self.per_minute,
                    remaining,
                    reset_secs: (per_token * missing).as_secs_f64().ceil() as u64,
                    retry_after_secs: None,
                }
            }
            Err(not_until) => {
                let wait = not_until.wait_time_from(DefaultClock::default().now());
                let retry = wait.as_secs_f64().ceil().max(1.0) as u64;
                RateLimitInfo {
                    limit: self.per_minute,
                    remaining: 0,
                    reset_secs: (per_token * self.per_minute).as_secs_f64().ceil() as u64,
                    retry_after_secs: Some(retry),
                }
            }
        }
    }

    /// Drops state of keys that are back to a full quota (bounded memory).
    pub fn shrink(&self) {
        self.inner.retain_recent();
        self.inner.shrink_to_fit();
    }
}

/// Every limiter of a node.
pub struct RateLimits {
    pub api_key: Limiter<String>,
    pub user: Limiter<String>,
    pub ip: Limiter<IpAddr>,
    pub login_ip: Limiter<IpAddr>,
    /// Password reset requests, keyed by a blind index of the address.
    pub reset_address: Limiter<[u8; 32]>,
    /// Password reset requests per network (IPv4 address, IPv6 /64).
    pub reset_network: Limiter<IpAddr>,
}

impl RateLimits {
    pub fn from_config(c: &crate::config::Config) -> Self {
        Self {
            api_key: Limiter::per_minute(c.rate_limit_api_key_per_minute),
            user: Limiter::per_minute(c.rate_limit_user_per_minute),
            ip: Limiter::per_minute(c.rate_limit_ip_per_minute),
            login_ip: Limiter::per_minute(c.rate_limit_login_per_ip_per_minute),
            reset_address: Limiter::per_hour(c.password_reset_per_address_per_hour),
            reset_network: Limiter::per_hour(c.password_reset_per_ip_per_hour),
        }
    }

    pub fn shrink(&self) {
        self.api_key.shrink();
        self.user.shrink();
        self.ip.shrink();
        self.login_ip.shrink();
        self.reset_address.shrink();
        self.reset_network.shrink();
    }
}

/// Where the strictest applicable check of a request is kept for the response headers.
#[derive(Debug, Clone, Default)]
pub struct RateLimitSlot(Arc<Mutex<Option<RateLimitInfo>>>);

impl RateLimitSlot {
    /// Puts a handler's own check in the slot, whatever the edge found: the
    /// quota that governs this route (sign-in) is the one its headers describe.
    pub fn replace(&self, info: RateLimitInfo) {
        *self.0.lock().expect("slot lock") = Some(info);
    }

    /// Keeps the check with the fewest remaining requests.
    pub fn record(&self, info: RateLimitInfo) {
        let mut slot = self.0.lock().expect("slot lock");
        if slot.is_none_or(|old| info.remaining <= old.remaining) {
            *slot = Some(info);
        }
    }

    pub fn take(&self) -> Option<RateLimitInfo> {
        self.0.lock().expect("slot lock").take()
    }
}

/// The 429 problem for a refused check, with its headers.
pub fn too_many_requests(info: RateLimitInfo, detail: &str) -> Response {
    let mut res = Problem::new(
        StatusCode::TOO_MANY_REQUESTS,
        "rate-limited",
        "Too many requests",
        detail,
    )
    .into_response();
    apply_headers(&mut res, info);
    res
}

pub fn apply_headers(res: &mut Response, info: RateLimitInfo) {
    let h = res.headers_mut();
    h.insert("ratelimit-limit", HeaderValue::from(info.limit));
    h.insert("ratelimit-remaining", HeaderValue::from(info.remaining));
    h.insert("ratelimit-reset", HeaderValue::from(info.reset_secs));
    if let Some(retry) = info.retry_after_secs {
        h.insert("retry-after", HeaderValue::from(retry));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quota_runs_out_and_reports_retry_after() {
        let limiter = Limiter::<String>::per_minute(3);
        let key = "k".to_owned();
        let first = limiter.check(&key);
        assert_eq!(
            (first.limit, first.remaining, first.retry_after_secs),
            (3, 2, None)
        );
        limiter.check(&key);
        let third = limiter.check(&key);
        assert_eq!(third.remaining, 0);
        let refused = limiter.check(&key);
        assert_eq!(refused.remaining, 0);
        let retry = refused.retry_after_secs.expect("refused");
        assert!((1..=20).contains(&retry), "one token per 20 s: {retry}");
        assert_eq!(
            limiter.check(&"other".to_owned()).remaining,
            2,
            "keys are independent"
        );
    }

    #[test]
    fn the_slot_keeps_the_strictest_check() {
        let slot = RateLimitSlot::default();
        slot.record(RateLimitInfo {
            limit: 100,
            remaining: 50,
            reset_secs: 1,
            retry_after_secs: None,
        });
        slot.record(RateLimitInfo {
            limit: 10,
            remaining: 2,
            reset_secs: 1,
            retry_after_secs: None,
        });
        slot.record(RateLimitInfo {
            limit: 100,
            remaining: 60,
            reset_secs: 1,
            retry_after_secs: None,
        });
        assert_eq!(slot.take().unwrap().limit, 10);
    }
}
