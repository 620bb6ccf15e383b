//! Campaigns: one approved template broadcast to a segment. The rules a
//! pre-flight applies to each recipient live here: why a contact would be
//! skipped (the sending policy of [`crate::policy`], a missing phone for
//! authentication templates, parameters its profile cannot fill), and where
//! each template parameter comes from.

use serde::{Deserialize, Serialize};

use crate::policy::{Category, Recipient, Refusal, SendKind, check_send};

pub use crate::pacing::{HourWindow, MessagingTier, SendWindow};

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

/// What a person (or the sender, for `Pause` and `Begin`) asks of a campaign.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CampaignAction {
    Start,
    Pause,
    Resume,
    Cancel,
    /// The sender, when a scheduled campaign's start time has come.
    Begin,
}

impl CampaignAction {
    pub fn as_str(self) -> &'static str {
        match self {
            CampaignAction::Start => "start",
            CampaignAction::Pause => "pause",
            CampaignAction::Resume => "resume",
            CampaignAction::Cancel => "cancel",
            CampaignAction::Begin => "begin",
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
            CampaignAction::Begin => &[Scheduled],
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
    /// The workspace's plan allows no more messages of the template's
    /// category this month (or its subscription is unpaid).
    QuotaExceeded,
}

impl PauseReason {
    pub fn as_str(self) -> &'static str {
        match self {
            PauseReason::Manual => "manual",
            PauseReason::TemplatePaused => "template_paused",
            PauseReason::QualityRed => "quality_red",
            PauseReason::OptOutRate => "opt_out_rate",
            PauseReason::QuotaExceeded => "quota_exceeded",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [
            PauseReason::Manual,
            PauseReason::TemplatePaused,
            PauseReason::QualityRed,
            PauseReason::OptOutRate,
            PauseReason::QuotaExceeded,
        ]
        .into_iter()
        .find(|r| r.as_str() == s)
    }

    /// Why the campaign stopped, for the people who run it.
    pub fn description(self) -> &'static str {
        match self {
            PauseReason::Manual => "A member paused it.",
            PauseReason::TemplatePaused => {
                "WhatsApp paused or disabled the template for low quality; resume once it is active again."
            }
            PauseReason::QualityRed => {
                "The number's quality rating dropped to red; sending more now risks the number."
            }
            PauseReason::OptOutRate => {
                "Too many recipients opted out or blocked marketing messages from this campaign."
            }
            PauseReason::QuotaExceeded => {
                "The workspace's plan allows no more of these messages this month; resume once the quota resets or is raised."
            }
        }
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

    #[test]
    fn pause_reasons_read_back_and_say_why() {
        for r in [
            PauseReason::Manual,
            PauseReason::TemplatePaused,
            PauseReason::QualityRed,
            PauseReason::OptOutRate,
            PauseReason::QuotaExceeded,
        ] {
            assert_eq!(PauseReason::parse(r.as_str()), Some(r));
            assert!(r.description().ends_with('.'));
        }
        assert_eq!(PauseReason::parse("tired"), None);
    }

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
