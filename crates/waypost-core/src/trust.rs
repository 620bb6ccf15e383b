//! Trust and safety rules: what can be suspended, how severe a finding is,
//! which signals are counted, and the detectors' thresholds and baselines.
//!
//! Detectors are pure functions over per-minute counts, so they are tested
//! here without a clock or a database. Baselines are exponentially weighted
//! moving averages (EWMA) with a floor: a scope with little or no history is
//! compared with the floor, never with zero, so a new workspace's first
//! campaign is not a "spike".

use std::fmt;
use std::str::FromStr;

/// What a suspension stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SuspensionTarget {
    ApiKey,
    Channel,
    User,
    Workspace,
}

impl SuspensionTarget {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::ApiKey => "api_key",
            Self::Channel => "channel",
            Self::User => "user",
            Self::Workspace => "workspace",
        }
    }

    /// Whether a workspace owner may lift it (after MFA re-authentication);
    /// user and workspace suspensions are lifted by operators only.
    pub const fn owner_may_lift(self) -> bool {
        matches!(self, Self::ApiKey | Self::Channel)
    }
}

impl fmt::Display for SuspensionTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown suspension target `{0}` (api_key, channel, user or workspace)")]
pub struct UnknownTarget(pub String);

impl FromStr for SuspensionTarget {
    type Err = UnknownTarget;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "api_key" => Self::ApiKey,
            "channel" => Self::Channel,
            "user" => Self::User,
            "workspace" => Self::Workspace,
            other => return Err(UnknownTarget(other.to_owned())),
        })
    }
}

/// How bad a finding is; `High` may suspend automatically where the workspace allows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Low,
    Medium,
    High,
}

impl Severity {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Low => "low",
            Self::Medium => "medium",
            Self::High => "high",
        }
    }
}

/// The scopes signals are counted for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ScopeKind {
    Workspace,
    Channel,
    ApiKey,
    User,
    /// A client network: the /24 of an IPv4 or the /48 of an IPv6 address.
    Network,
    /// A (network, user) pair, to count distinct accounts failing from one network.
    NetworkUser,
}

impl ScopeKind {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Workspace => "workspace",
            Self::Channel => "channel",
            Self::ApiKey => "api_key",
            Self::User => "user",
            Self::Network => "network",
            Self::NetworkUser => "network_user",
        }
    }
}

/// Signal names as stored. New networks and user agents are counted as
/// `net:<network>` and `ua:<hash>` signals of the user or key.
pub mod signal {
    pub const SEND: &str = "send";
    pub const PROVIDER_FAILURE: &str = "provider_failure";
    pub const SHIELD_FLAGGED: &str = "shield_flagged";
    pub const OPT_OUT: &str = "opt_out";
    pub const API_REQUEST: &str = "api_request";
    pub const DENIED_401: &str = "http_401";
    pub const DENIED_403: &str = "http_403";
    pub const LIMITED_429: &str = "http_429";
    pub const SIGN_IN: &str = "sign_in";
    pub const SIGN_IN_FAILURE: &str = "sign_in_failure";
    pub const CREDENTIAL_CHANGE: &str = "credential_change";
    pub const NETWORK_PREFIX: &str = "net:";
}

/// The client network of an address: `a.b.c.0/24` or the /48 of an IPv6 one.
pub fn network_of(ip: std::net::IpAddr) -> String {
    match ip {
        std::net::IpAddr::V4(v4) => {
            let o = v4.octets();
            format!("{}.{}.{}.0/24", o[0], o[1], o[2])
        }
        std::net::IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => network_of(std::net::IpAddr::V4(v4)),
            None => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}::/48", s[0], s[1], s[2])
            }
        },
    }
}

/// An exponentially weighted moving average of per-minute counts, decayed
/// lazily over minutes without a count.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Ewma {
    pub mean: f64,
    /// Minutes folded in so far.
    pub samples: i64,
    /// The last minute folded in (unix minutes).
    pub minute: i64,
}

impl Ewma {
    pub fn new(minute: i64) -> Self {
        Self {
            mean: 0.0,
            samples: 0,
            minute,
        }
    }

    /// Folds in `count` at `minute`, decaying over the empty minutes between.
    pub fn update(&mut self, minute: i64, count: f64, alpha: f64) {
        let gap = (minute - self.minute - 1).clamp(0, 100_000);
        self.mean *= (1.0 - alpha).powi(gap as i32);
        self.mean = alpha * count + (1.0 - alpha) * self.mean;
        self.samples += gap + 1;
        self.minute = minute;
    }
}

/// A spike detector: fires when a minute's count exceeds `factor` times the
/// baseline, the baseline being at least `floor`.
#[derive(Debug, Clone, Copy)]
pub struct SpikeRule {
    pub detector: &'static str,
    /// Smoothing of the baseline; 2/(N+1) for an N-minute horizon.
    pub alpha: f64,
    pub floor: f64,
    /// Above `factor × baseline`: medium.
    pub factor: f64,
    /// Above `high_factor × baseline`: high.
    pub high_factor: f64,
}

/// Send volume per workspace: baseline over ~6 hours, floor 500 per minute;
/// medium above 10×, high above 50×. A new workspace can send 5,000 a minute
/// (above Meta's default 80 per second) before it is flagged.
pub const SEND_SPIKE: SpikeRule = SpikeRule {
    detector: "send_volume_spike",
    alpha: 2.0 / 361.0,
    floor: 500.0,
    factor: 10.0,
    high_factor: 50.0,
};

/// API calls per key: baseline over ~6 hours, floor 300 per minute; medium
/// above 10× (3,000 a minute for a new key), high above 40×.
pub const API_BURST: SpikeRule = SpikeRule {
    detector: "api_call_burst",
    alpha: 2.0 / 361.0,
    floor: 300.0,
    factor: 10.0,
    high_factor: 40.0,
};

impl SpikeRule {
    /// The severity of `count` against `baseline` (before the baseline folds it in).
    pub fn judge(&self, count: f64, baseline: &Ewma) -> Option<Severity> {
        let base = baseline.mean.max(self.floor);
        if count > self.high_factor * base {
            Some(Severity::High)
        } else if count > self.factor * base {
            Some(Severity::Medium)
        } else {
            None
        }
    }

    pub fn threshold(&self, baseline: &Ewma) -> f64 {
        self.factor * baseline.mean.max(self.floor)
    }
}

/// A ratio detector over a sliding window: fires when at least `min_events`
/// bad events happened and they are at least `min_ratio` of the total (and
/// `factor` times the scope's usual ratio).
#[derive(Debug, Clone, Copy)]
pub struct RatioRule {
    pub detector: &'static str,
    pub window_minutes: i64,
    pub min_events: i64,
    pub min_ratio: f64,
    pub factor: f64,
    pub alpha: f64,
    pub high_ratio: f64,
}

/// Provider failures per channel in 15 minutes: at least 20 failures and 25 %
/// of sends (and 3× the usual rate); high at 60 %.
pub const FAILURE_RATE: RatioRule = RatioRule {
    detector: "failure_rate_jump",
    window_minutes: 15,
    min_events: 20,
    min_ratio: 0.25,
    factor: 3.0,
    alpha: 2.0 / 97.0,
    high_ratio: 0.6,
};

/// Opt-outs and blocks after sends per workspace in 60 minutes: at least 10
/// and 5 % of sends (and 3× the usual rate); high at 20 %.
pub const OPT_OUT_RATE: RatioRule = RatioRule {
    detector: "opt_out_rate_jump",
    window_minutes: 60,
    min_events: 10,
    min_ratio: 0.05,
    factor: 3.0,
    alpha: 2.0 / 97.0,
    high_ratio: 0.2,
};

/// Shield-flagged outbound per workspace in 60 minutes: at least 10 and 10 % of sends; high at 50 %.
pub const SHIELD_RATIO: RatioRule = RatioRule {
    detector: "shield_flag_ratio",
    window_minutes: 60,
    min_events: 10,
    min_ratio: 0.1,
    factor: 3.0,
    alpha: 2.0 / 97.0,
    high_ratio: 0.5,
};

impl RatioRule {
    pub fn judge(&self, bad: i64, total: i64, usual: &Ewma) -> Option<Severity> {
        if bad < self.min_events || total <= 0 {
            return None;
        }
        let ratio = bad as f64 / total as f64;
        if ratio < self.min_ratio || ratio < self.factor * usual.mean {
            return None;
        }
        Some(if ratio >= self.high_ratio {
            Severity::High
        } else {
            Severity::Medium
        })
    }
}

/// Credential stuffing: sign-in failures for at least 5 distinct accounts from
/// one network within 10 minutes (high at 20).
pub const STUFFING_WINDOW_MINUTES: i64 = 10;
pub const STUFFING_MIN_ACCOUNTS: usize = 5;
pub const STUFFING_HIGH_ACCOUNTS: usize = 20;

pub fn judge_stuffing(distinct_accounts: usize) -> Option<Severity> {
    if distinct_accounts >= STUFFING_HIGH_ACCOUNTS {
        Some(Severity::High)
    } else if distinct_accounts >= STUFFING_MIN_ACCOUNTS {
        Some(Severity::Medium)
    } else {
        None
    }
}

/// A user seen from a network new to them (not in the last 30 days) within 24
/// hours after a password or second-factor change: high (possible takeover).
pub const NEW_NETWORK_AFTER_CHANGE_MINUTES: i64 = 24 * 60;

/// Bot-like sign-in timing: sign-in attempts in at least 30 of the last 60
/// minutes with nearly constant per-minute counts (coefficient of variation
/// below 0.25). People do not sign in every other minute for an hour.
pub const BOT_WINDOW_MINUTES: i64 = 60;
pub const BOT_MIN_ACTIVE_MINUTES: usize = 30;
pub const BOT_MAX_VARIATION: f64 = 0.25;

/// `counts`: attempts in each active minute of the window.
pub fn judge_bot_timing(counts: &[i64]) -> Option<Severity> {
    if counts.len() < BOT_MIN_ACTIVE_MINUTES {
        return None;
    }
    let n = counts.len() as f64;
    let mean = counts.iter().sum::<i64>() as f64 / n;
    let var = counts
        .iter()
        .map(|&c| (c as f64 - mean).powi(2))
        .sum::<f64>()
        / n;
    (var.sqrt() / mean < BOT_MAX_VARIATION).then_some(Severity::Medium)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ewma_decays_over_gaps_and_floors_protect_new_scopes() {
        let mut e = Ewma::new(0);
        for m in 1..=100 {
            e.update(m, 100.0, SEND_SPIKE.alpha);
        }
        assert!(e.mean > 20.0 && e.mean < 100.0, "{}", e.mean);
        let before = e.mean;
        e.update(1000, 0.0, SEND_SPIKE.alpha);
        assert!(e.mean < before / 10.0);
        let fresh = Ewma::new(0);
        assert_eq!(SEND_SPIKE.judge(4_999.0, &fresh), None);
        assert_eq!(SEND_SPIKE.judge(5_001.0, &fresh), Some(Severity::Medium));
        assert_eq!(SEND_SPIKE.judge(25_001.0, &fresh), Some(Severity::High));
    }

    #[test]
    fn ratios_need_volume_and_a_jump() {
        let usual = Ewma::new(0);
        assert_eq!(FAILURE_RATE.judge(5, 10, &usual), None);
        assert_eq!(FAILURE_RATE.judge(30, 100, &usual), Some(Severity::Medium));
        assert_eq!(FAILURE_RATE.judge(70, 100, &usual), Some(Severity::High));
        let noisy = Ewma {
            mean: 0.2,
            samples: 100,
            minute: 0,
        };
        assert_eq!(FAILURE_RATE.judge(30, 100, &noisy), None);
    }

    #[test]
    fn bot_timing_and_stuffing() {
        assert_eq!(judge_bot_timing(&[2; 40]), Some(Severity::Medium));
        assert_eq!(judge_bot_timing(&[2; 10]), None);
        let human: Vec<i64> = (0..40).map(|i| if i % 3 == 0 { 9 } else { 1 }).collect();
        assert_eq!(judge_bot_timing(&human), None);
        assert_eq!(judge_stuffing(4), None);
        assert_eq!(judge_stuffing(5), Some(Severity::Medium));
        assert_eq!(judge_stuffing(25), Some(Severity::High));
    }

    #[test]
    fn networks() {
        assert_eq!(network_of("203.0.113.7".parse().unwrap()), "203.0.113.0/24");
        assert_eq!(
            network_of("::ffff:203.0.113.7".parse().unwrap()),
            "203.0.113.0/24"
        );
        assert_eq!(
            network_of("2001:db8:1:2::5".parse().unwrap()),
            "2001:db8:1::/48"
        );
    }
}
