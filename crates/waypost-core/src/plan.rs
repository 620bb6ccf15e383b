//! Plans and quotas: what an operator's plan includes (monthly quotas on
//! usage counters, limits on what a workspace holds, features), a workspace's
//! billing status and what it may still do, and when a use crosses the 80 %
//! and 100 % warning levels.
//!
//! Monthly quotas count the usage counters of the calendar month (UTC):
//! `messages.<category>` counts `accepted.<category>` (outbound messages by the
//! category they are sent in), `shield.scans` and `assistant.tokens` their
//! counters. `channels`, `members` and `contacts` limit what a workspace
//! holds at once.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::str::FromStr;

use crate::usage::{ASSISTANT_TOKENS, PricingCategory, SHIELD_SCANS};

/// One limit of a plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Quota {
    /// Outbound messages per month sent in a category.
    Messages(PricingCategory),
    ShieldScans,
    AssistantTokens,
    /// Channels connected at once.
    Channels,
    /// Members (and pending invitations) at once.
    Members,
    /// Contacts at once. Only the business creating them is refused (the API,
    /// imports); contacts that write first are always added.
    Contacts,
}

impl Quota {
    /// The usage counter a monthly quota counts; `None` for limits on what is held.
    pub fn counter(self) -> Option<String> {
        match self {
            Self::Messages(c) => Some(format!("accepted.{c}")),
            Self::ShieldScans => Some(SHIELD_SCANS.to_owned()),
            Self::AssistantTokens => Some(ASSISTANT_TOKENS.to_owned()),
            Self::Channels | Self::Members | Self::Contacts => None,
        }
    }

    /// The quota counting a usage counter, if any does.
    pub fn for_counter(metric: &str) -> Option<Self> {
        match metric {
            SHIELD_SCANS => Some(Self::ShieldScans),
            ASSISTANT_TOKENS => Some(Self::AssistantTokens),
            m => m
                .strip_prefix("accepted.")
                .and_then(PricingCategory::parse)
                .map(Self::Messages),
        }
    }
}

impl fmt::Display for Quota {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Messages(c) => write!(f, "messages.{c}"),
            Self::ShieldScans => f.write_str("shield.scans"),
            Self::AssistantTokens => f.write_str("assistant.tokens"),
            Self::Channels => f.write_str("channels"),
            Self::Members => f.write_str("members"),
            Self::Contacts => f.write_str("contacts"),
        }
    }
}

impl FromStr for Quota {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "shield.scans" => Ok(Self::ShieldScans),
            "assistant.tokens" => Ok(Self::AssistantTokens),
            "channels" => Ok(Self::Channels),
            "members" => Ok(Self::Members),
            "contacts" => Ok(Self::Contacts),
            _ => s
                .strip_prefix("messages.")
                .and_then(PricingCategory::parse)
                .map(Self::Messages)
                .ok_or_else(|| {
                    format!("unknown quota `{}`", s.chars().take(40).collect::<String>())
                }),
        }
    }
}

/// A feature a plan may include.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Feature {
    Campaigns,
    Assistant,
}

impl Feature {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Campaigns => "campaigns",
            Self::Assistant => "assistant",
        }
    }
}

impl FromStr for Feature {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "campaigns" => Ok(Self::Campaigns),
            "assistant" => Ok(Self::Assistant),
            _ => Err(format!(
                "unknown feature `{}`",
                s.chars().take(40).collect::<String>()
            )),
        }
    }
}

/// What a plan includes. A quota that is absent is unlimited.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PlanLimits {
    pub quotas: BTreeMap<Quota, i64>,
    pub features: BTreeSet<Feature>,
}

impl PlanLimits {
    /// From quota and feature names as an operator writes them.
    pub fn parse(quotas: &BTreeMap<String, i64>, features: &[String]) -> Result<Self, String> {
        let mut out = Self::default();
        for (name, limit) in quotas {
            if *limit < 0 {
                return Err(format!("quota `{name}` must not be negative"));
            }
            out.quotas.insert(name.parse()?, *limit);
        }
        for f in features {
            out.features.insert(f.parse()?);
        }
        Ok(out)
    }

    pub fn quota_names(&self) -> BTreeMap<String, i64> {
        self.quotas
            .iter()
            .map(|(q, l)| (q.to_string(), *l))
            .collect()
    }

    pub fn feature_names(&self) -> Vec<String> {
        self.features
            .iter()
            .map(|f| f.as_str().to_owned())
            .collect()
    }
}

/// Where a workspace stands with its subscription. Data is never deleted by
/// any of these; `ReadOnly` and `Canceled` only stop new use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BillingStatus {
    Active,
    /// A payment failed; everything still works while the provider retries.
    PastDue,
    /// Retries are over; everything still works until the grace period ends.
    Grace,
    /// The grace period ended unpaid: reads only.
    ReadOnly,
    /// The subscription ended: reads only.
    Canceled,
}

impl BillingStatus {
    pub const ALL: [Self; 5] = [
        Self::Active,
        Self::PastDue,
        Self::Grace,
        Self::ReadOnly,
        Self::Canceled,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::PastDue => "past_due",
            Self::Grace => "grace",
            Self::ReadOnly => "read_only",
            Self::Canceled => "canceled",
        }
    }

    /// Whether the workspace may send, scan and create (reads are always allowed).
    pub const fn may_use(self) -> bool {
        matches!(self, Self::Active | Self::PastDue | Self::Grace)
    }
}

impl FromStr for BillingStatus {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|b| b.as_str() == s)
            .ok_or_else(|| {
                format!(
                    "unknown billing status `{}`",
                    s.chars().take(40).collect::<String>()
                )
            })
    }
}

/// What a Stripe subscription status means for the workspace, given where it
/// stands: paying (`active`, `trialing`) is active; `past_due` is past due
/// (retries continue); `unpaid` (retries over) is the grace period, read-only
/// once it is over; `canceled`, `incomplete_expired` end it; `paused` is
/// read-only; `incomplete` (first payment pending) changes nothing.
pub fn status_for_subscription(
    stripe_status: &str,
    current: BillingStatus,
    grace_over: bool,
) -> BillingStatus {
    match stripe_status {
        "active" | "trialing" => BillingStatus::Active,
        "past_due" => BillingStatus::PastDue,
        "unpaid" if grace_over => BillingStatus::ReadOnly,
        "unpaid" => BillingStatus::Grace,
        "canceled" | "incomplete_expired" => BillingStatus::Canceled,
        "paused" => BillingStatus::ReadOnly,
        _ => current,
    }
}

/// Whether a status waits for its grace period to end (then becomes read-only).
pub const fn in_grace(status: BillingStatus) -> bool {
    matches!(status, BillingStatus::PastDue | BillingStatus::Grace)
}

/// The warning levels (percent of `limit`) that going from `before` to `after` crosses.
pub fn crossed_levels(before: i64, after: i64, limit: i64) -> Vec<u8> {
    [80u8, 100]
        .into_iter()
        .filter(|level| {
            // At or above `level` % of the limit, in integers: used * 100 >= limit * level.
            let reached =
                |used: i64| i128::from(used) * 100 >= i128::from(limit) * i128::from(*level);
            limit > 0 && !reached(before) && reached(after)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quota_names_round_trip() {
        for name in [
            "messages.marketing",
            "messages.service",
            "shield.scans",
            "assistant.tokens",
            "channels",
            "members",
            "contacts",
        ] {
            let q: Quota = name.parse().unwrap();
            assert_eq!(q.to_string(), name);
        }
        assert!("messages.bogus".parse::<Quota>().is_err());
        assert_eq!(Quota::Contacts.counter(), None);
        assert_eq!(
            Quota::Messages(PricingCategory::Utility)
                .counter()
                .as_deref(),
            Some("accepted.utility")
        );
        assert_eq!(
            Quota::for_counter("accepted.marketing"),
            Some(Quota::Messages(PricingCategory::Marketing))
        );
        assert_eq!(Quota::for_counter("messages.outbound.text"), None);
        assert_eq!(Quota::Channels.counter(), None);
    }

    #[test]
    fn limits_parse_and_refuse() {
        let quotas = BTreeMap::from([("messages.service".to_owned(), 5)]);
        let p = PlanLimits::parse(&quotas, &["campaigns".into()]).unwrap();
        assert_eq!(p.quotas[&Quota::Messages(PricingCategory::Service)], 5);
        assert!(p.features.contains(&Feature::Campaigns));
        assert!(PlanLimits::parse(&BTreeMap::from([("channels".to_owned(), -1)]), &[]).is_err());
        assert!(PlanLimits::parse(&BTreeMap::new(), &["teleport".into()]).is_err());
    }

    #[test]
    fn levels_are_crossed_once() {
        assert_eq!(crossed_levels(3, 4, 5), vec![80]);
        assert_eq!(crossed_levels(4, 5, 5), vec![100]);
        assert_eq!(crossed_levels(0, 5, 5), vec![80, 100]);
        assert!(crossed_levels(5, 6, 5).is_empty());
        assert!(crossed_levels(1, 2, 5).is_empty());
        assert!(crossed_levels(0, 1, 0).is_empty());
    }

    #[test]
    fn subscription_statuses_move_the_billing_status() {
        use BillingStatus::*;
        assert_eq!(status_for_subscription("active", ReadOnly, true), Active);
        assert_eq!(status_for_subscription("past_due", Active, false), PastDue);
        assert_eq!(status_for_subscription("unpaid", PastDue, false), Grace);
        assert_eq!(status_for_subscription("unpaid", Grace, true), ReadOnly);
        assert_eq!(status_for_subscription("canceled", Active, false), Canceled);
        assert_eq!(status_for_subscription("incomplete", Active, false), Active);
        assert!(in_grace(PastDue) && in_grace(Grace) && !in_grace(ReadOnly));
    }

    #[test]
    fn only_paying_or_recovering_workspaces_may_use() {
        assert!(BillingStatus::PastDue.may_use());
        assert!(BillingStatus::Grace.may_use());
        assert!(!BillingStatus::ReadOnly.may_use());
        assert!(!BillingStatus::Canceled.may_use());
        assert_eq!("grace".parse::<BillingStatus>(), Ok(BillingStatus::Grace));
    }
}
