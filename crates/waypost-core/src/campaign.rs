//! Campaigns: one approved template broadcast to a segment. The rules a
//! pre-flight applies to each recipient live here: why a contact would be
//! skipped (the sending policy of [`crate::policy`], a missing phone for
//! authentication templates, parameters its profile cannot fill), and where
//! each template parameter comes from.

use serde::{Deserialize, Serialize};

use crate::policy::{Category, Recipient, Refusal, SendKind, check_send};

/// Where a campaign is in its life: a draft is started (now, or `scheduled` for
/// later), runs until every recipient was fed to the outbox, and can be paused,
/// resumed and cancelled on the way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CampaignStatus {
    Draft,
    Scheduled,
    Running,
    Paused,
    Completed,
    Cancelled,
}

/// What a person (or the sender, for `Pause`) asks of a campaign.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CampaignAction {
    Start,
    Pause,
    Resume,
    Cancel,
}

impl CampaignAction {
    pub fn as_str(self) -> &'static str {
        match self {
            CampaignAction::Start => "start",
            CampaignAction::Pause => "pause",
            CampaignAction::Resume => "resume",
            CampaignAction::Cancel => "cancel",
        }
    }
}

impl CampaignStatus {
    pub const ALL: [CampaignStatus; 6] = [
        CampaignStatus::Draft,
        CampaignStatus::Scheduled,
        CampaignStatus::Running,
        CampaignStatus::Paused,
        CampaignStatus::Completed,
        CampaignStatus::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            CampaignStatus::Draft => "draft",
            CampaignStatus::Scheduled => "scheduled",
            CampaignStatus::Running => "running",
            CampaignStatus::Paused => "paused",
            CampaignStatus::Completed => "completed",
            CampaignStatus::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == s)
    }

    /// The statuses `action` may be taken from.
    pub fn sources(action: CampaignAction) -> &'static [CampaignStatus] {
        use CampaignStatus::*;
        match action {
            CampaignAction::Start => &[Draft],
            CampaignAction::Pause => &[Scheduled, Running],
            CampaignAction::Resume => &[Paused],
            CampaignAction::Cancel => &[Draft, Scheduled, Running, Paused],
        }
    }

    /// Whether the sender feeds this campaign's recipients to the outbox.
    pub fn is_sending(self) -> bool {
        matches!(self, CampaignStatus::Scheduled | CampaignStatus::Running)
    }
}

/// Why a campaign paused; all but `Manual` are the sender's own decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PauseReason {
    Manual,
    /// Meta paused or disabled the template (low quality).
    TemplatePaused,
    /// The number's quality rating dropped to red.
    QualityRed,
    /// Recipients opt out (or block marketing) above the configured rate.
    OptOutRate,
}

impl PauseReason {
    pub fn as_str(self) -> &'static str {
        match self {
            PauseReason::Manual => "manual",
            PauseReason::TemplatePaused => "template_paused",
            PauseReason::QualityRed => "quality_red",
            PauseReason::OptOutRate => "opt_out_rate",
        }
    }
}

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

/// What became of one recipient, as the outcome export and counters show it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecipientOutcome {
    /// Not yet fed to the outbox.
    Pending,
    /// Left out, with a `SkipReason`.
    Skipped,
    /// Never fed: the campaign was cancelled first.
    Cancelled,
    Queued,
    Sent,
    Delivered,
    Read,
    /// With the provider's error code.
    Failed,
    /// Wrote back after the campaign's message.
    Replied,
    /// Opted out of the template's category since.
    OptedOut,
}

/// Meta's error for a recipient who stopped marketing messages from the business.
pub const MARKETING_BLOCKED_CODE: i64 = 131050;

impl RecipientOutcome {
    pub const ALL: [RecipientOutcome; 10] = [
        RecipientOutcome::Pending,
        RecipientOutcome::Skipped,
        RecipientOutcome::Cancelled,
        RecipientOutcome::Queued,
        RecipientOutcome::Sent,
        RecipientOutcome::Delivered,
        RecipientOutcome::Read,
        RecipientOutcome::Failed,
        RecipientOutcome::Replied,
        RecipientOutcome::OptedOut,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RecipientOutcome::Pending => "pending",
            RecipientOutcome::Skipped => "skipped",
            RecipientOutcome::Cancelled => "cancelled",
            RecipientOutcome::Queued => "queued",
            RecipientOutcome::Sent => "sent",
            RecipientOutcome::Delivered => "delivered",
            RecipientOutcome::Read => "read",
            RecipientOutcome::Failed => "failed",
            RecipientOutcome::Replied => "replied",
            RecipientOutcome::OptedOut => "opted_out",
        }
    }

    /// The outcome of a recipient row (`pending`, `queued`, `skipped`,
    /// `cancelled`) whose message, if any, has `message_status`. An opt-out
    /// since outranks a reply, which outranks the message's own status.
    pub fn of(
        row_state: &str,
        message_status: Option<&str>,
        replied: bool,
        opted_out: bool,
    ) -> RecipientOutcome {
        match row_state {
            "pending" => return RecipientOutcome::Pending,
            "skipped" => return RecipientOutcome::Skipped,
            "cancelled" => return RecipientOutcome::Cancelled,
            _ => {}
        }
        if opted_out {
            return RecipientOutcome::OptedOut;
        }
        if replied {
            return RecipientOutcome::Replied;
        }
        match message_status {
            Some("sent") => RecipientOutcome::Sent,
            Some("delivered") => RecipientOutcome::Delivered,
            Some("read") => RecipientOutcome::Read,
            Some("failed") => RecipientOutcome::Failed,
            _ => RecipientOutcome::Queued,
        }
    }

    /// Whether the provider has the message (it counts towards the sent total).
    pub fn was_sent(self) -> bool {
        matches!(
            self,
            RecipientOutcome::Sent
                | RecipientOutcome::Delivered
                | RecipientOutcome::Read
                | RecipientOutcome::Replied
                | RecipientOutcome::OptedOut
        )
    }
}

/// The value of one template parameter for a recipient.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum ParameterSource {
    /// A contact field: `name`.
    Field(ContactField),
    /// A custom attribute of the contact, by key.
    Attribute(String),
    /// The same text for everyone.
    Text(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ContactField {
    Name,
}

/// Why a recipient would not be sent the campaign.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SkipReason {
    /// A marketing template to a contact who never gave marketing consent.
    NoConsent,
    /// Opted out of the template's category (or of everything).
    OptedOut,
    /// Processing restricted (a data-subject request).
    Restricted,
    /// An authentication template to a contact known only by user id.
    NoPhone,
    /// A parameter's source is empty for this contact (no name, no such attribute).
    InvalidParameters,
    /// The send path refused it at send time for another reason (its `detail` is kept).
    Refused,
}

impl SkipReason {
    pub const ALL: [SkipReason; 5] = [
        SkipReason::NoConsent,
        SkipReason::OptedOut,
        SkipReason::Restricted,
        SkipReason::NoPhone,
        SkipReason::InvalidParameters,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            SkipReason::NoConsent => "no_consent",
            SkipReason::OptedOut => "opted_out",
            SkipReason::Restricted => "restricted",
            SkipReason::NoPhone => "no_phone",
            SkipReason::InvalidParameters => "invalid_parameters",
            SkipReason::Refused => "refused",
        }
    }
}

/// Whether a recipient would be skipped, and why; the first reason wins, in
/// the order the send path would refuse (policy, then phone, then parameters).
pub fn skip_reason(
    recipient: &Recipient,
    category: Category,
    has_phone: bool,
    parameters_filled: bool,
) -> Option<SkipReason> {
    // Templates are not bound to the 24-hour window, so `now` does not matter here.
    let now = chrono::DateTime::<chrono::Utc>::MIN_UTC;
    match check_send(recipient, SendKind::Template(category), now) {
        Err(Refusal::Restricted) => return Some(SkipReason::Restricted),
        Err(Refusal::OptedOut(_)) => return Some(SkipReason::OptedOut),
        Err(Refusal::MarketingConsentRequired) => return Some(SkipReason::NoConsent),
        Err(Refusal::OutsideWindow) | Ok(()) => {}
    }
    if category == Category::Authentication && !has_phone {
        return Some(SkipReason::NoPhone);
    }
    (!parameters_filled).then_some(SkipReason::InvalidParameters)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::Consent;
    use chrono::TimeZone;

    #[test]
    fn actions_move_only_from_their_sources() {
        use CampaignStatus::*;
        assert_eq!(CampaignStatus::sources(CampaignAction::Start), &[Draft]);
        assert!(!CampaignStatus::sources(CampaignAction::Resume).contains(&Completed));
        assert!(!CampaignStatus::sources(CampaignAction::Cancel).contains(&Completed));
        for s in CampaignStatus::ALL {
            assert_eq!(CampaignStatus::parse(s.as_str()), Some(s));
        }
        assert!(Running.is_sending() && !Paused.is_sending());
    }

    #[test]
    fn outcomes_rank_opt_outs_over_replies_over_statuses() {
        use RecipientOutcome as O;
        assert_eq!(O::of("pending", None, false, true), O::Pending);
        assert_eq!(O::of("skipped", None, false, false), O::Skipped);
        assert_eq!(O::of("queued", Some("queued"), false, false), O::Queued);
        assert_eq!(O::of("queued", Some("read"), false, false), O::Read);
        assert_eq!(O::of("queued", Some("failed"), false, false), O::Failed);
        assert_eq!(O::of("queued", Some("delivered"), true, false), O::Replied);
        assert_eq!(O::of("queued", Some("delivered"), true, true), O::OptedOut);
        assert!(O::Replied.was_sent() && !O::Failed.was_sent() && !O::Queued.was_sent());
    }

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

    fn r(marketing: Option<Consent>, restricted: bool) -> Recipient {
        Recipient {
            restricted,
            marketing,
            utility: None,
            authentication: None,
            last_inbound_at: None,
        }
    }

    #[test]
    fn the_first_refusal_is_the_reason() {
        let m = Category::Marketing;
        assert_eq!(
            skip_reason(&r(Some(Consent::OptedIn), false), m, true, true),
            None
        );
        assert_eq!(
            skip_reason(&r(None, false), m, true, true),
            Some(SkipReason::NoConsent)
        );
        assert_eq!(
            skip_reason(&r(Some(Consent::OptedOut), false), m, true, false),
            Some(SkipReason::OptedOut)
        );
        assert_eq!(
            skip_reason(&r(Some(Consent::OptedIn), true), m, true, true),
            Some(SkipReason::Restricted)
        );
        assert_eq!(
            skip_reason(&r(Some(Consent::OptedIn), false), m, true, false),
            Some(SkipReason::InvalidParameters)
        );
        // Utility templates need no opt-in, authentication ones need a phone.
        assert_eq!(
            skip_reason(&r(None, false), Category::Utility, false, true),
            None
        );
        assert_eq!(
            skip_reason(&r(None, false), Category::Authentication, false, true),
            Some(SkipReason::NoPhone)
        );
    }

    #[test]
    fn parameter_sources_read_as_tagged_json() {
        let s: ParameterSource = serde_json::from_str(r#"{"attribute":"city"}"#).unwrap();
        assert_eq!(s, ParameterSource::Attribute("city".into()));
        let s: ParameterSource = serde_json::from_str(r#"{"field":"name"}"#).unwrap();
        assert_eq!(s, ParameterSource::Field(ContactField::Name));
        assert!(serde_json::from_str::<ParameterSource>(r#"{"field":"phone"}"#).is_err());
    }
}
