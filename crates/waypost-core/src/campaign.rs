//! Campaigns: one approved template broadcast to a segment. The rules a
//! pre-flight applies to each recipient live here: why a contact would be
//! skipped (the sending policy of [`crate::policy`], a missing phone for
//! authentication templates, parameters its profile cannot fill), and where
//! each template parameter comes from.

use serde::{Deserialize, Serialize};

use crate::policy::{Category, Recipient, Refusal, SendKind, check_send};

/// Where a campaign is in its life. Only drafts exist so far: starting is a later step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CampaignStatus {
    Draft,
}

impl CampaignStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            CampaignStatus::Draft => "draft",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        (s == "draft").then_some(CampaignStatus::Draft)
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
