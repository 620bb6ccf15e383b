//! When and how fast a campaign may send: Meta's messaging tier (unique
//! users per rolling 24 hours), hours of the day, and a campaign's send
//! window (each recipient's local hours, quiet hours).

use serde::{Deserialize, Serialize};

/// Meta's messaging limit: unique users a number may start business-initiated
/// conversations with in a rolling 24 hours.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum MessagingTier {
    #[serde(rename = "250")]
    T250,
    #[serde(rename = "1k")]
    T1K,
    #[serde(rename = "10k")]
    T10K,
    #[serde(rename = "100k")]
    T100K,
    #[serde(rename = "unlimited")]
    Unlimited,
}

impl MessagingTier {
    pub const ALL: [MessagingTier; 5] = [
        MessagingTier::T250,
        MessagingTier::T1K,
        MessagingTier::T10K,
        MessagingTier::T100K,
        MessagingTier::Unlimited,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            MessagingTier::T250 => "250",
            MessagingTier::T1K => "1k",
            MessagingTier::T10K => "10k",
            MessagingTier::T100K => "100k",
            MessagingTier::Unlimited => "unlimited",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == s)
    }

    /// Unique users per rolling 24 hours; `None` for unlimited.
    pub fn limit(self) -> Option<i64> {
        match self {
            MessagingTier::T250 => Some(250),
            MessagingTier::T1K => Some(1_000),
            MessagingTier::T10K => Some(10_000),
            MessagingTier::T100K => Some(100_000),
            MessagingTier::Unlimited => None,
        }
    }
}

/// Hours of a day, `from` inclusive to `to` exclusive, wrapping past midnight
/// when `from > to` (21 to 8 is the night).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HourWindow {
    pub from_hour: u32,
    pub to_hour: u32,
}

impl HourWindow {
    pub fn parse(from_hour: u32, to_hour: u32) -> Result<Self, &'static str> {
        if from_hour > 23 || to_hour > 24 || from_hour == to_hour {
            return Err("hours are 0 to 23 (`to_hour` up to 24) and differ");
        }
        Ok(Self { from_hour, to_hour })
    }

    pub fn contains(self, hour: u32) -> bool {
        if self.from_hour < self.to_hour {
            (self.from_hour..self.to_hour).contains(&hour)
        } else {
            hour >= self.from_hour || hour < self.to_hour
        }
    }
}

/// When recipients may be sent: the campaign's schedule and optional quiet hours.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct SendWindow {
    /// Only within these hours of each recipient's own time zone (contacts
    /// without one use `fallback_time_zone`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recipient_hours: Option<HourWindow>,
    /// No sends within these hours of `quiet_time_zone`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quiet_hours: Option<HourWindow>,
    /// The zone of quiet hours and of recipients without one; UTC when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_zone: Option<String>,
}

impl SendWindow {
    fn zone(name: Option<&str>) -> chrono_tz::Tz {
        name.and_then(|n| n.parse().ok()).unwrap_or(chrono_tz::UTC)
    }

    /// `None` when a recipient in `recipient_zone` may be sent at `now`, else
    /// the next hour boundary at which it may (checked again then).
    pub fn next_allowed(
        &self,
        now: chrono::DateTime<chrono::Utc>,
        recipient_zone: Option<&str>,
    ) -> Option<chrono::DateTime<chrono::Utc>> {
        use chrono::{Timelike, Utc};
        let fallback = self.time_zone.as_deref();
        let ok_at = |t: chrono::DateTime<Utc>| {
            let recipient_ok = self.recipient_hours.is_none_or(|w| {
                w.contains(
                    t.with_timezone(&Self::zone(recipient_zone.or(fallback)))
                        .hour(),
                )
            });
            let quiet = self
                .quiet_hours
                .is_some_and(|w| w.contains(t.with_timezone(&Self::zone(fallback)).hour()));
            recipient_ok && !quiet
        };
        if ok_at(now) {
            return None;
        }
        // Zones differ from UTC by whole quarter hours: step to the next quarter.
        let mut t = now
            .with_second(0)
            .and_then(|t| t.with_nanosecond(0))
            .unwrap_or(now);
        t -= chrono::Duration::minutes(i64::from(t.minute() % 15));
        for _ in 0..(4 * 48) {
            t += chrono::Duration::minutes(15);
            if ok_at(t) {
                return Some(t);
            }
        }
        // Windows that never open (cannot pass `HourWindow::parse` and overlap fully):
        // look again in a day.
        Some(now + chrono::Duration::days(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn tiers_name_their_limits() {
        assert_eq!(MessagingTier::parse("1k").unwrap().limit(), Some(1000));
        assert_eq!(MessagingTier::parse("unlimited").unwrap().limit(), None);
        assert!(MessagingTier::parse("2k").is_none());
    }

    #[test]
    fn hour_windows_wrap_past_midnight() {
        let night = HourWindow::parse(21, 8).unwrap();
        assert!(night.contains(23) && night.contains(0) && night.contains(7));
        assert!(!night.contains(8) && !night.contains(20));
        assert!(HourWindow::parse(9, 9).is_err());
        assert!(HourWindow::parse(24, 9).is_err());
    }

    #[test]
    fn send_windows_follow_the_recipients_zone_and_quiet_hours() {
        let w = SendWindow {
            recipient_hours: Some(HourWindow::parse(9, 20).unwrap()),
            quiet_hours: None,
            time_zone: None,
        };
        // 07:10 UTC is 08:10 in Berlin (winter): wait until 09:00 Berlin = 08:00 UTC.
        let now = chrono::Utc.with_ymd_and_hms(2026, 1, 5, 7, 10, 0).unwrap();
        assert_eq!(
            w.next_allowed(now, Some("Europe/Berlin")),
            Some(chrono::Utc.with_ymd_and_hms(2026, 1, 5, 8, 0, 0).unwrap())
        );
        // 16:10 in Tokyo: inside 9–20.
        assert_eq!(w.next_allowed(now, Some("Asia/Tokyo")), None);
        let quiet = SendWindow {
            recipient_hours: None,
            quiet_hours: Some(HourWindow::parse(21, 8).unwrap()),
            time_zone: Some("UTC".into()),
        };
        assert_eq!(
            quiet.next_allowed(now, None),
            Some(chrono::Utc.with_ymd_and_hms(2026, 1, 5, 8, 0, 0).unwrap())
        );
        assert_eq!(SendWindow::default().next_allowed(now, None), None);
    }
}
