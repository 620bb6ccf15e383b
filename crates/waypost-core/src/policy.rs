//! The sending rules checked before a message is accepted: restriction,
//! opt-out and consent per category, and WhatsApp's 24-hour customer service
//! window for anything that is not a template.

use chrono::{DateTime, Duration, Utc};

/// How long after a customer's last message free-form messages may be sent.
pub const SERVICE_WINDOW: Duration = Duration::hours(24);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Category {
    Marketing,
    Utility,
    Authentication,
}

impl Category {
    pub fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_lowercase().as_str() {
            "marketing" => Some(Category::Marketing),
            "utility" => Some(Category::Utility),
            "authentication" => Some(Category::Authentication),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Category::Marketing => "marketing",
            Category::Utility => "utility",
            Category::Authentication => "authentication",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Consent {
    OptedIn,
    OptedOut,
}

impl Consent {
    pub fn parse(s: Option<&str>) -> Option<Self> {
        match s {
            Some("opted_in") => Some(Consent::OptedIn),
            Some("opted_out") => Some(Consent::OptedOut),
            _ => None,
        }
    }
}

/// What the rules need to know about a recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recipient {
    pub restricted: bool,
    pub marketing: Option<Consent>,
    pub utility: Option<Consent>,
    pub authentication: Option<Consent>,
    pub last_inbound_at: Option<DateTime<Utc>>,
}

impl Recipient {
    fn consent(&self, c: Category) -> Option<Consent> {
        match c {
            Category::Marketing => self.marketing,
            Category::Utility => self.utility,
            Category::Authentication => self.authentication,
        }
    }

    /// Opted out of everything (e.g. by replying STOP).
    pub fn opted_out_of_all(&self) -> bool {
        [self.marketing, self.utility, self.authentication]
            .iter()
            .all(|c| *c == Some(Consent::OptedOut))
    }

    /// Whether the 24-hour window is open at `now`.
    pub fn window_open(&self, now: DateTime<Utc>) -> bool {
        self.last_inbound_at
            .is_some_and(|t| t <= now && now - t < SERVICE_WINDOW)
    }
}

/// A free-form message (inside the window only) or a template of a category.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendKind {
    Session,
    Template(Category),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("the contact is restricted: no messages may be sent to it")]
    Restricted,
    #[error("the contact has opted out of {0}")]
    OptedOut(&'static str),
    #[error("marketing templates need the contact's marketing consent")]
    MarketingConsentRequired,
    #[error(
        "the 24-hour window is closed (no message from the contact in the last 24 hours); send an approved template instead"
    )]
    OutsideWindow,
}

/// The checks that refuse any message to this recipient, whatever it is.
pub fn check_recipient(recipient: &Recipient) -> Result<(), Refusal> {
    if recipient.restricted {
        return Err(Refusal::Restricted);
    }
    if recipient.opted_out_of_all() {
        return Err(Refusal::OptedOut("all messages"));
    }
    Ok(())
}

/// Checks a send against the rules; the first refusal wins.
pub fn check_send(
    recipient: &Recipient,
    kind: SendKind,
    now: DateTime<Utc>,
) -> Result<(), Refusal> {
    check_recipient(recipient)?;
    match kind {
        SendKind::Template(Category::Marketing) => match recipient.marketing {
            Some(Consent::OptedIn) => Ok(()),
            Some(Consent::OptedOut) => Err(Refusal::OptedOut("marketing")),
            None => Err(Refusal::MarketingConsentRequired),
        },
        SendKind::Template(c) => match recipient.consent(c) {
            Some(Consent::OptedOut) => Err(Refusal::OptedOut(c.as_str())),
            _ => Ok(()),
        },
        SendKind::Session if recipient.window_open(now) => Ok(()),
        SendKind::Session => Err(Refusal::OutsideWindow),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        "2026-11-27T12:00:00Z".parse().unwrap()
    }

    fn fresh() -> Recipient {
        Recipient {
            restricted: false,
            marketing: None,
            utility: None,
            authentication: None,
            last_inbound_at: None,
        }
    }

    #[test]
    fn the_window_decides_session_messages() {
        let mut r = fresh();
        assert_eq!(
            check_send(&r, SendKind::Session, now()),
            Err(Refusal::OutsideWindow)
        );
        r.last_inbound_at = Some(now() - Duration::hours(23));
        assert_eq!(check_send(&r, SendKind::Session, now()), Ok(()));
        r.last_inbound_at = Some(now() - Duration::hours(24));
        assert_eq!(
            check_send(&r, SendKind::Session, now()),
            Err(Refusal::OutsideWindow)
        );
        r.last_inbound_at = Some(now() + Duration::hours(1));
        assert_eq!(
            check_send(&r, SendKind::Session, now()),
            Err(Refusal::OutsideWindow)
        );
    }

    #[test]
    fn templates_follow_consent_per_category() {
        let mut r = fresh();
        let marketing = SendKind::Template(Category::Marketing);
        let utility = SendKind::Template(Category::Utility);
        assert_eq!(check_send(&r, utility, now()), Ok(()));
        assert_eq!(
            check_send(&r, marketing, now()),
            Err(Refusal::MarketingConsentRequired)
        );
        r.marketing = Some(Consent::OptedIn);
        assert_eq!(check_send(&r, marketing, now()), Ok(()));
        r.marketing = Some(Consent::OptedOut);
        assert_eq!(
            check_send(&r, marketing, now()),
            Err(Refusal::OptedOut("marketing"))
        );
        r.utility = Some(Consent::OptedOut);
        assert_eq!(
            check_send(&r, utility, now()),
            Err(Refusal::OptedOut("utility"))
        );
        assert_eq!(
            check_send(&r, SendKind::Template(Category::Authentication), now()),
            Ok(())
        );
    }

    #[test]
    fn stop_and_restriction_block_everything() {
        let mut r = fresh();
        r.last_inbound_at = Some(now());
        r.marketing = Some(Consent::OptedOut);
        r.utility = Some(Consent::OptedOut);
        r.authentication = Some(Consent::OptedOut);
        for kind in [SendKind::Session, SendKind::Template(Category::Utility)] {
            assert_eq!(
                check_send(&r, kind, now()),
                Err(Refusal::OptedOut("all messages"))
            );
        }
        let mut r = fresh();
        r.restricted = true;
        r.utility = Some(Consent::OptedIn);
        assert_eq!(
            check_send(&r, SendKind::Template(Category::Utility), now()),
            Err(Refusal::Restricted)
        );
    }
}
