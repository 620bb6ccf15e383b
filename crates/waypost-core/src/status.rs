//! The message state machine. Outbound messages move `queued → sending → sent
//! → delivered → read`, or to `failed`; inbound ones are `received`. Provider
//! webhooks arrive late and out of order, so a status only ever moves forward:
//! a late `delivered` never overwrites `read`, and a failure after delivery is
//! not believed.

use std::fmt;
use std::str::FromStr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MessageStatus {
    Queued,
    Sending,
    Sent,
    Delivered,
    Read,
    Failed,
    Received,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown message status")]
pub struct UnknownStatus;

impl MessageStatus {
    pub const ALL: [MessageStatus; 7] = [
        Self::Queued,
        Self::Sending,
        Self::Sent,
        Self::Delivered,
        Self::Read,
        Self::Failed,
        Self::Received,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Sending => "sending",
            Self::Sent => "sent",
            Self::Delivered => "delivered",
            Self::Read => "read",
            Self::Failed => "failed",
            Self::Received => "received",
        }
    }

    /// Order in which applying statuses moves a message forward (history reads
    /// in the order things happened when sorted by it).
    pub const fn rank(self) -> u8 {
        match self {
            Self::Queued => 0,
            Self::Sending => 1,
            Self::Sent => 2,
            Self::Delivered => 3,
            Self::Read => 4,
            Self::Failed => 5,
            Self::Received => 6,
        }
    }

    /// The statuses a message may move to `to` from; empty when nothing may.
    pub const fn allowed_from(to: MessageStatus) -> &'static [MessageStatus] {
        use MessageStatus::*;
        match to {
            Sending => &[Queued],
            Sent => &[Queued, Sending],
            Delivered => &[Queued, Sending, Sent],
            Read => &[Queued, Sending, Sent, Delivered],
            Failed => &[Queued, Sending, Sent],
            Queued | Received => &[],
        }
    }

    /// The status after `to` is reported: `to` when the machine allows the
    /// move, `None` when the report is stale or impossible.
    pub fn advance(self, to: MessageStatus) -> Option<MessageStatus> {
        Self::allowed_from(to).contains(&self).then_some(to)
    }

    /// No report moves a message out of this status.
    pub fn is_final(self) -> bool {
        Self::ALL.iter().all(|to| self.advance(*to).is_none())
    }
}

impl fmt::Display for MessageStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for MessageStatus {
    type Err = UnknownStatus;

    fn from_str(s: &str) -> Result<Self, UnknownStatus> {
        Self::ALL
            .into_iter()
            .find(|v| v.as_str() == s)
            .ok_or(UnknownStatus)
    }
}

#[cfg(test)]
mod tests {
    use super::MessageStatus::*;
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn names_round_trip() {
        for s in MessageStatus::ALL {
            assert_eq!(s.as_str().parse::<MessageStatus>(), Ok(s));
        }
        assert_eq!("READ".parse::<MessageStatus>(), Err(UnknownStatus));
    }

    #[test]
    fn late_and_impossible_reports_do_not_move_a_message() {
        assert_eq!(Read.advance(Delivered), None);
        assert_eq!(Delivered.advance(Failed), None);
        assert_eq!(Sent.advance(Failed), Some(Failed));
        assert_eq!(Queued.advance(Read), Some(Read));
        assert_eq!(Received.advance(Read), None);
        assert_eq!(Failed.advance(Sent), None);
        assert!(Read.is_final() && Failed.is_final() && Received.is_final());
        assert!(!Delivered.is_final());
    }

    fn status() -> impl Strategy<Value = MessageStatus> {
        prop::sample::select(MessageStatus::ALL.to_vec())
    }

    proptest! {
        /// Whatever order reports arrive in, a message never moves back, never
        /// fails after delivery, and ends where the furthest report took it.
        #[test]
        fn reports_in_any_order_only_move_forward(reports in prop::collection::vec(status(), 0..12)) {
            let mut at = Queued;
            let mut delivered = false;
            for to in reports {
                if let Some(next) = at.advance(to) {
                    prop_assert!(next.rank() > at.rank());
                    prop_assert!(!(delivered && next == Failed));
                    delivered |= matches!(next, Delivered | Read);
                    at = next;
                }
            }
        }
    }
}
