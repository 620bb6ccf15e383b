//! A workspace's messaging policies: how long content is kept, and what the
//! shield does with a flagged outbound message. Stored as their text forms.

use std::fmt;
use std::str::FromStr;

/// Days a `days:N` policy may keep content, at most.
pub const MAX_RETENTION_DAYS: u16 = 3650;

/// Content retention: `none` (content only in transit) or `days:N`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RetentionPolicy {
    #[default]
    None,
    Days(u16),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("must be `none` or `days:N` with N from 1 to {MAX_RETENTION_DAYS}")]
pub struct InvalidRetention;

impl RetentionPolicy {
    /// Days content is kept; `None` when it is not kept.
    pub fn days(self) -> Option<i64> {
        match self {
            Self::None => None,
            Self::Days(n) => Some(i64::from(n)),
        }
    }
}

impl FromStr for RetentionPolicy {
    type Err = InvalidRetention;

    fn from_str(s: &str) -> Result<Self, InvalidRetention> {
        if s == "none" {
            return Ok(Self::None);
        }
        s.strip_prefix("days:")
            .and_then(|n| n.parse::<u16>().ok())
            .filter(|n| (1..=MAX_RETENTION_DAYS).contains(n))
            .map(Self::Days)
            .ok_or(InvalidRetention)
    }
}

impl fmt::Display for RetentionPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::None => f.write_str("none"),
            Self::Days(n) => write!(f, "days:{n}"),
        }
    }
}

/// What the shield does with outbound messages: `off`, `flag` (label them)
/// or `block` (refuse smishing, label spam).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ShieldPolicy {
    Off,
    #[default]
    Flag,
    Block,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("must be `off`, `flag` or `block`")]
pub struct InvalidShieldPolicy;

impl ShieldPolicy {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Off => "off",
            Self::Flag => "flag",
            Self::Block => "block",
        }
    }

    pub fn scans(self) -> bool {
        self != Self::Off
    }
}

impl FromStr for ShieldPolicy {
    type Err = InvalidShieldPolicy;

    fn from_str(s: &str) -> Result<Self, InvalidShieldPolicy> {
        [Self::Off, Self::Flag, Self::Block]
            .into_iter()
            .find(|p| p.as_str() == s)
            .ok_or(InvalidShieldPolicy)
    }
}

impl fmt::Display for ShieldPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retention_parses_and_prints() {
        assert_eq!("none".parse(), Ok(RetentionPolicy::None));
        assert_eq!("days:30".parse(), Ok(RetentionPolicy::Days(30)));
        assert_eq!(RetentionPolicy::Days(30).to_string(), "days:30");
        assert_eq!(RetentionPolicy::Days(30).days(), Some(30));
        assert_eq!(RetentionPolicy::None.days(), None);
        for bad in [
            "days:0",
            "days:3651",
            "days:x",
            "days:",
            "Days:3",
            "",
            "forever",
        ] {
            assert_eq!(
                bad.parse::<RetentionPolicy>(),
                Err(InvalidRetention),
                "{bad}"
            );
        }
    }

    #[test]
    fn shield_policy_parses_and_prints() {
        for p in [ShieldPolicy::Off, ShieldPolicy::Flag, ShieldPolicy::Block] {
            assert_eq!(p.as_str().parse(), Ok(p));
        }
        assert_eq!("BLOCK".parse::<ShieldPolicy>(), Err(InvalidShieldPolicy));
        assert!(!ShieldPolicy::Off.scans() && ShieldPolicy::Block.scans());
    }
}
