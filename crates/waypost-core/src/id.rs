//! Typed, prefixed identifiers (`ws_01J…`): a ULID behind a short prefix naming
//! the kind of object, so an id pasted into the wrong place is rejected at the
//! boundary instead of silently matching nothing.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Why a string is not a valid id of the expected kind.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("expected an id starting with `{expected}_`")]
    WrongPrefix { expected: &'static str },
    #[error("`{prefix}_` must be followed by a 26-character ULID")]
    Malformed { prefix: &'static str },
}

macro_rules! typed_id {
    ($(#[$meta:meta])* $name:ident, $prefix:literal) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(ulid::Ulid);

        impl $name {
            pub const PREFIX: &'static str = $prefix;

            /// A new id; ULIDs sort by creation time, which keeps indexes append-mostly.
            pub fn new() -> Self {
                Self(ulid::Ulid::new())
            }

            pub fn parse(s: &str) -> Result<Self, IdError> {
                let rest = s
                    .strip_prefix($prefix)
                    .and_then(|r| r.strip_prefix('_'))
                    .ok_or(IdError::WrongPrefix { expected: $prefix })?;
                ulid::Ulid::from_string(rest)
                    .map(Self)
                    .map_err(|_| IdError::Malformed { prefix: $prefix })
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}_{}", $prefix, self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(self, f)
            }
        }

        impl FromStr for $name {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, IdError> {
                Self::parse(s)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                Self::parse(&s).map_err(serde::de::Error::custom)
            }
        }
    };
}

typed_id!(
    /// A workspace (tenant).
    WorkspaceId,
    "ws"
);
typed_id!(
    /// One event in the audit log.
    AuditEventId,
    "aev"
);
typed_id!(
    /// A stored idempotency record.
    IdempotencyRecordId,
    "idem"
);

typed_id!(
    /// A customer event (what webhooks deliver).
    EventId,
    "evt"
);
typed_id!(
    /// A WhatsApp channel: one business phone number at a provider.
    ChannelId,
    "ch"
);
typed_id!(
    /// A contact (a customer's phone number) of a workspace.
    ContactId,
    "ct"
);
typed_id!(
    /// A message, outbound or inbound.
    MessageId,
    "msg"
);

typed_id!(
    /// A media file uploaded for sending or received from a customer.
    MediaId,
    "med"
);

typed_id!(
    /// A saved audience filter (segment) of a workspace.
    SegmentId,
    "seg"
);
typed_id!(
    /// A contact import (one uploaded CSV file).
    ImportId,
    "imp"
);

typed_id!(
    /// A campaign: a template broadcast to a segment.
    CampaignId,
    "cmp"
);

typed_id!(
    /// A message template.
    TemplateId,
    "tpl"
);
typed_id!(
    /// A customer webhook endpoint.
    WebhookEndpointId,
    "whep"
);
typed_id!(
    /// A platform operator's token (server-level, outside every workspace).
    OperatorTokenId,
    "opt"
);
typed_id!(
    /// A security incident in the platform's register.
    IncidentId,
    "inc"
);

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn round_trips_through_display_and_parse() {
        let id = WorkspaceId::new();
        let text = id.to_string();
        assert!(text.starts_with("ws_"));
        assert_eq!(text.len(), 3 + 26);
        assert_eq!(WorkspaceId::parse(&text).unwrap(), id);
    }

    #[test]
    fn rejects_wrong_prefix_and_garbage() {
        let other = AuditEventId::new().to_string();
        assert_eq!(
            WorkspaceId::parse(&other),
            Err(IdError::WrongPrefix { expected: "ws" })
        );
        assert_eq!(
            WorkspaceId::parse("ws_notaulid"),
            Err(IdError::Malformed { prefix: "ws" })
        );
        assert!(WorkspaceId::parse("wsx01J0000000000000000000000").is_err());
    }

    #[test]
    fn serde_uses_the_prefixed_form() {
        let id = WorkspaceId::new();
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(json, format!("\"{id}\""));
        let back: WorkspaceId = serde_json::from_str(&json).unwrap();
        assert_eq!(back, id);
        assert!(serde_json::from_str::<WorkspaceId>("\"aev_01J00000000000000000000000\"").is_err());
    }

    proptest! {
        #[test]
        fn parse_never_panics(s in ".*") {
            let _ = WorkspaceId::parse(&s);
        }
    }
}
