//! The dispatcher's in-memory guards for one channel, owned by the node that
//! holds the channel's lease: the throughput window (never more than the
//! limit in any 1 s window where the provider counts, however long each send
//! takes; slowed down adaptively after a provider rate-limit answer), the per-recipient pair buckets, and
//! the circuit breaker. They use monotonic time, because the provider counts
//! in real seconds whatever the application clock says.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use tokio::time::Instant;

/// Sliding-window throughput limiter that holds where the provider counts.
///
/// A send reaches the provider at some moment between when it started and
/// when its answer came back; which moment, only the network knows. So a send
/// occupies a place in the window from its start until one window after it
/// *finished*, and a new send starts only while fewer than `limit` places are
/// taken. Then no window of the provider's length can see more than `limit`
/// arrivals, however the latency of each send varies: of `limit + 1` arrivals
/// within one window, the last to start would have found the other `limit`
/// still in flight or finished less than a window before, and waited.
/// (A window counted from starts, as before, let a slow send and a fast one
/// land less than a window apart: 21 in a second against a limit of 20.)
#[derive(Debug)]
pub struct RateWindow {
    limit: u32,
    window: Duration,
    /// Share of `limit` in use, lowered on 130429 and recovered on success.
    factor: f64,
    paused_until: Option<Instant>,
    /// Sends started and not yet finished.
    in_flight: usize,
    /// When recent sends finished, oldest first.
    ends: VecDeque<Instant>,
}

/// When the next send may start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Slot {
    Now,
    At(Instant),
    /// Every place is held by a send in flight: one has to finish first.
    AfterAFinish,
}

impl RateWindow {
    /// `margin` is added to the provider's 1 s window, for clocks that round.
    pub fn new(limit_per_sec: u32, margin: Duration) -> Self {
        Self {
            limit: limit_per_sec.max(1),
            window: Duration::from_secs(1) + margin,
            factor: 1.0,
            paused_until: None,
            in_flight: 0,
            ends: VecDeque::new(),
        }
    }

    pub fn set_limit(&mut self, limit_per_sec: u32) {
        self.limit = limit_per_sec.max(1);
    }

    pub fn effective_limit(&self) -> usize {
        ((self.limit as f64 * self.factor).floor() as usize).max(1)
    }

    /// When the next send may start; the caller waits and asks again.
    pub fn next_slot(&mut self, now: Instant) -> Slot {
        if let Some(until) = self.paused_until {
            if now < until {
                return Slot::At(until);
            }
            self.paused_until = None;
        }
        while self
            .ends
            .front()
            .is_some_and(|t| now.duration_since(*t) >= self.window)
        {
            self.ends.pop_front();
        }
        let taken = self.in_flight + self.ends.len();
        let limit = self.effective_limit();
        if taken < limit {
            return Slot::Now;
        }
        // Places come back as finished sends leave the window, oldest first.
        let needed = taken - limit + 1;
        match self.ends.get(needed - 1) {
            Some(end) => Slot::At(*end + self.window),
            None => Slot::AfterAFinish,
        }
    }

    /// A send starts now: it holds a place until a window after it finishes.
    pub fn started(&mut self) {
        self.in_flight += 1;
    }

    /// A send finished (answered, failed or given up) at `at`, which is no
    /// earlier than the moment it really finished.
    pub fn finished(&mut self, at: Instant) {
        self.in_flight = self.in_flight.saturating_sub(1);
        let at = self.ends.back().map_or(at, |last| at.max(*last));
        self.ends.push_back(at);
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

    /// A simulated provider: sends with latencies cycling through `latencies`
    /// (ms), arriving at a point of the call given by `arrive` (0: at the
    /// start, 1: just before the answer). Returns the arrival times.
    fn simulate(limit: u32, total: usize, latencies: &[u64], arrive: f64) -> Vec<Instant> {
        let start = Instant::now();
        let mut w = RateWindow::new(limit, Duration::ZERO);
        let mut now = start;
        // (finish time, arrival time) of calls in flight.
        let mut flying: Vec<(Instant, Instant)> = Vec::new();
        let mut arrivals = Vec::new();
        let mut sent = 0;
        while arrivals.len() < total {
            flying.sort();
            while flying.first().is_some_and(|(end, _)| *end <= now) {
                let (end, at) = flying.remove(0);
                w.finished(end);
                arrivals.push(at);
            }
            if arrivals.len() == total {
                break;
            }
            let slot = if sent < total {
                w.next_slot(now)
            } else {
                Slot::AfterAFinish
            };
            match slot {
                Slot::Now => {
                    let latency = Duration::from_millis(latencies[sent % latencies.len()]);
                    w.started();
                    flying.push((now + latency, now + latency.mul_f64(arrive)));
                    sent += 1;
                }
                Slot::At(t) => {
                    let next_end = flying.iter().map(|f| f.0).min();
                    now = next_end.map_or(t, |e| e.min(t)).max(now);
                }
                Slot::AfterAFinish => now = flying.iter().map(|f| f.0).min().unwrap(),
            }
        }
        arrivals.sort();
        arrivals
    }

    fn busiest_second(arrivals: &[Instant]) -> usize {
        arrivals
            .iter()
            .enumerate()
            .map(|(i, t)| {
                arrivals[i..]
                    .iter()
                    .filter(|u| u.duration_since(*t) < Duration::from_secs(1))
                    .count()
            })
            .max()
            .unwrap_or(0)
    }

    #[test]
    fn no_second_at_the_provider_holds_more_than_the_limit_whatever_the_latency() {
        // One slow send then fast ones: counted from starts, a slow send's
        // arrival and the fast sends of the next window landed in one second.
        for latencies in [
            &[0][..],
            &[116, 1, 1, 1],
            &[300, 2],
            &[5, 80, 1, 40, 0, 250],
        ] {
            for arrive in [0.0, 0.5, 1.0] {
                let arrivals = simulate(20, 200, latencies, arrive);
                let busiest = busiest_second(&arrivals);
                assert!(
                    busiest <= 20,
                    "{busiest} in one second with latencies {latencies:?}, arriving at {arrive}"
                );
            }
        }
        // With no latency the limit is still used in full.
        let arrivals = simulate(20, 60, &[0], 0.0);
        assert_eq!(busiest_second(&arrivals), 20);
        let span = arrivals.last().unwrap().duration_since(arrivals[0]);
        assert!(
            span >= Duration::from_secs(2) && span < Duration::from_millis(2100),
            "{span:?}"
        );
    }

    #[test]
    fn a_window_counted_from_starts_would_have_let_jitter_through() {
        // The defect this limiter answers: 20 sends started in one window, the
        // first slow (116 ms), then 20 more a window after the first start.
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut arrivals: Vec<Instant> = (0..20)
            .map(|i| t0 + ms(i) + if i == 19 { ms(116) } else { ms(0) })
            .collect();
        arrivals.extend((0..20).map(|i| t0 + ms(1025 + i)));
        arrivals.sort();
        assert!(busiest_second(&arrivals) > 20);
        // Paced by finishes, each place comes back a window after its send
        // finished: the slow send's place only at 116 + 1025 ms.
        let mut w = RateWindow::new(20, ms(25));
        for _ in 0..20 {
            assert_eq!(w.next_slot(t0), Slot::Now);
            w.started();
        }
        assert_eq!(w.next_slot(t0), Slot::AfterAFinish);
        for _ in 0..19 {
            w.finished(t0 + ms(1));
        }
        w.finished(t0 + ms(116));
        assert_eq!(w.next_slot(t0 + ms(200)), Slot::At(t0 + ms(1026)));
        for _ in 0..19 {
            assert_eq!(w.next_slot(t0 + ms(1026)), Slot::Now);
            w.started();
        }
        assert_eq!(w.next_slot(t0 + ms(1026)), Slot::At(t0 + ms(1141)));
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
