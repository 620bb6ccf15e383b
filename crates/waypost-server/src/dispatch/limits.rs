//! The dispatcher's in-memory guards for one channel, owned by the node that
//! holds the channel's lease: the throughput window (never more than the
//! limit in any window of 1 s plus a jitter margin, slowed down adaptively
//! after a provider rate-limit answer), the per-recipient pair buckets, and
//! the circuit breaker. They use monotonic time, because the provider counts
//! in real seconds whatever the application clock says.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use tokio::time::Instant;

/// Sliding-window throughput limiter. A sliding log (not a token bucket) so
/// that no window of the provider's length can hold more than the limit.
#[derive(Debug)]
pub struct RateWindow {
    limit: u32,
    window: Duration,
    /// Share of `limit` in use, lowered on 130429 and recovered on success.
    factor: f64,
    paused_until: Option<Instant>,
    starts: VecDeque<Instant>,
}

impl RateWindow {
    pub fn new(limit_per_sec: u32, margin: Duration) -> Self {
        Self {
            limit: limit_per_sec.max(1),
            window: Duration::from_secs(1) + margin,
            factor: 1.0,
            paused_until: None,
            starts: VecDeque::new(),
        }
    }

    pub fn set_limit(&mut self, limit_per_sec: u32) {
        self.limit = limit_per_sec.max(1);
    }

    pub fn effective_limit(&self) -> usize {
        ((self.limit as f64 * self.factor).floor() as usize).max(1)
    }

    /// When the next send may start (now if there is room); the caller sleeps and asks again.
    pub fn next_slot(&mut self, now: Instant) -> Option<Instant> {
        if let Some(until) = self.paused_until {
            if now < until {
                return Some(until);
            }
            self.paused_until = None;
        }
        while self
            .starts
            .front()
            .is_some_and(|t| now.duration_since(*t) >= self.window)
        {
            self.starts.pop_front();
        }
        let limit = self.effective_limit();
        if self.starts.len() < limit {
            None
        } else {
            // The oldest start of the last `limit` leaving the window frees a slot.
            let idx = self.starts.len() - limit;
            Some(self.starts[idx] + self.window)
        }
    }

    pub fn record(&mut self, at: Instant) {
        self.starts.push_back(at);
    }

    /// The provider said the channel is over its throughput: slow down and pause.
    pub fn on_rate_limited(&mut self, now: Instant, pause: Duration) {
        self.factor = (self.factor * 0.8).max(0.1);
        self.paused_until = Some(now + pause);
    }

    pub fn on_success(&mut self) {
        if self.factor < 1.0 {
            self.factor = (self.factor + 0.002).min(1.0);
        }
    }
}

/// Per-recipient token buckets (Meta's pair rate limit), keyed by contact id.
#[derive(Debug)]
pub struct PairLimits {
    burst: f64,
    interval: Duration,
    buckets: HashMap<String, (f64, Instant)>,
}

/// Buckets kept before full ones are forgotten.
const MAX_PAIR_BUCKETS: usize = 100_000;

impl PairLimits {
    pub fn new(burst: u32, interval: Duration) -> Self {
        Self {
            burst: burst.max(1) as f64,
            interval: interval.max(Duration::from_millis(1)),
            buckets: HashMap::new(),
        }
    }

    fn refill(&mut self, contact: &str, now: Instant) -> &mut (f64, Instant) {
        let (burst, interval) = (self.burst, self.interval.as_secs_f64());
        let entry = self
            .buckets
            .entry(contact.to_owned())
            .or_insert((burst, now));
        let gained = now.duration_since(entry.1).as_secs_f64() / interval;
        entry.0 = (entry.0 + gained).min(burst);
        entry.1 = now;
        entry
    }

    /// Takes a token, or says how long until one is free.
    pub fn take(&mut self, contact: &str, now: Instant) -> Result<(), Duration> {
        if self.buckets.len() >= MAX_PAIR_BUCKETS {
            self.forget_full(now);
        }
        let interval = self.interval;
        let bucket = self.refill(contact, now);
        if bucket.0 >= 1.0 {
            bucket.0 -= 1.0;
            Ok(())
        } else {
            Err(interval.mul_f64(1.0 - bucket.0))
        }
    }

    /// The provider answered 131056: this recipient's bucket is empty.
    pub fn drain(&mut self, contact: &str, now: Instant) {
        self.refill(contact, now).0 = 0.0;
    }

    fn forget_full(&mut self, now: Instant) {
        let (burst, interval) = (self.burst, self.interval.as_secs_f64());
        self.buckets
            .retain(|_, (t, at)| *t + now.duration_since(*at).as_secs_f64() / interval < burst);
    }
}

/// What the breaker lets through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admit {
    All,
    /// One probe call.
    Probe,
    /// Nothing until then.
    WaitUntil(Instant),
}

/// Per-channel circuit breaker: after `threshold` consecutive transient
/// failures it stops calling the provider for a cool-down, then lets one
/// probe through; failed probes double the cool-down (up to 10 minutes).
#[derive(Debug)]
pub struct Breaker {
    threshold: u32,
    base_cooldown: Duration,
    cooldown: Duration,
    failures: u32,
    open_until: Option<Instant>,
    probing: bool,
}

const MAX_COOLDOWN: Duration = Duration::from_secs(600);

impl Breaker {
    pub fn new(threshold: u32, cooldown: Duration) -> Self {
        Self {
            threshold: threshold.max(1),
            base_cooldown: cooldown,
            cooldown,
            failures: 0,
            open_until: None,
            probing: false,
        }
    }

    pub fn admit(&mut self, now: Instant) -> Admit {
        match self.open_until {
            None => Admit::All,
            Some(until) if now < until => Admit::WaitUntil(until),
            Some(_) => {
                self.probing = true;
                Admit::Probe
            }
        }
    }

    pub fn is_open(&self) -> bool {
        self.open_until.is_some()
    }

    pub fn on_success(&mut self) {
        self.failures = 0;
        self.open_until = None;
        self.probing = false;
        self.cooldown = self.base_cooldown;
    }

    pub fn on_failure(&mut self, now: Instant) {
        self.failures += 1;
        if self.probing {
            self.cooldown = (self.cooldown * 2).min(MAX_COOLDOWN);
            self.open_until = Some(now + self.cooldown);
            self.probing = false;
        } else if self.open_until.is_none() && self.failures >= self.threshold {
            self.open_until = Some(now + self.cooldown);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_never_holds_more_than_the_limit() {
        let start = Instant::now();
        let mut w = RateWindow::new(10, Duration::from_millis(0));
        let mut now = start;
        let mut sent = Vec::new();
        while sent.len() < 35 {
            match w.next_slot(now) {
                None => {
                    w.record(now);
                    sent.push(now);
                }
                Some(t) => now = t,
            }
        }
        for (i, t) in sent.iter().enumerate() {
            let in_window = sent[i..]
                .iter()
                .filter(|u| u.duration_since(*t) < Duration::from_secs(1))
                .count();
            assert!(in_window <= 10, "{in_window} sends in one second");
        }
        assert!(now.duration_since(start) >= Duration::from_secs(3));
    }

    #[test]
    fn rate_limit_answer_slows_the_channel() {
        let now = Instant::now();
        let mut w = RateWindow::new(100, Duration::ZERO);
        w.on_rate_limited(now, Duration::from_secs(1));
        assert_eq!(w.effective_limit(), 80);
        assert_eq!(w.next_slot(now), Some(now + Duration::from_secs(1)));
        assert_eq!(w.next_slot(now + Duration::from_secs(1)), None);
    }

    #[test]
    fn pair_bucket_allows_burst_then_waits() {
        let now = Instant::now();
        let mut p = PairLimits::new(2, Duration::from_secs(6));
        assert!(p.take("ct_a", now).is_ok());
        assert!(p.take("ct_a", now).is_ok());
        let wait = p.take("ct_a", now).unwrap_err();
        assert_eq!(wait, Duration::from_secs(6));
        assert!(
            p.take("ct_b", now).is_ok(),
            "other recipients are not affected"
        );
        assert!(p.take("ct_a", now + Duration::from_secs(6)).is_ok());
    }

    #[test]
    fn breaker_opens_probes_and_closes() {
        let now = Instant::now();
        let mut b = Breaker::new(3, Duration::from_secs(10));
        for _ in 0..3 {
            assert_eq!(b.admit(now), Admit::All);
            b.on_failure(now);
        }
        assert_eq!(
            b.admit(now),
            Admit::WaitUntil(now + Duration::from_secs(10))
        );
        let later = now + Duration::from_secs(10);
        assert_eq!(b.admit(later), Admit::Probe);
        b.on_failure(later);
        assert_eq!(
            b.admit(later),
            Admit::WaitUntil(later + Duration::from_secs(20)),
            "a failed probe doubles the cool-down"
        );
        let again = later + Duration::from_secs(20);
        assert_eq!(b.admit(again), Admit::Probe);
        b.on_success();
        assert_eq!(b.admit(again), Admit::All);
    }
}
