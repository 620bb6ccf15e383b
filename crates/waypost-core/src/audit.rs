//! The audit event model and its hash chain.
//!
//! Events form one chain per workspace (plus a `system` chain for actions outside
//! any workspace). Each event stores the SHA-256 of the previous event and of
//! itself, computed over a length-prefixed encoding of every field, so editing,
//! deleting or reordering a stored event breaks the chain detectably. Hashing
//! lives here, in pure code, so the writer and any verifier agree byte for byte.

use chrono::{DateTime, SubsecRound, Utc};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::id::{AuditEventId, WorkspaceId};

/// The chain name for events that belong to no workspace.
pub const SYSTEM_CHAIN: &str = "system";

/// The previous-hash of the first event in a chain.
pub const GENESIS_HASH: [u8; 32] = [0; 32];

/// Who performed an action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", content = "id", rename_all = "snake_case")]
pub enum Actor {
    User(String),
    ApiKey(String),
    /// A platform operator, by operator token id.
    Operator(String),
    System,
}

impl Actor {
    pub fn kind(&self) -> &'static str {
        match self {
            Actor::User(_) => "user",
            Actor::ApiKey(_) => "api_key",
            Actor::Operator(_) => "operator",
            Actor::System => "system",
        }
    }

    pub fn id(&self) -> Option<&str> {
        match self {
            Actor::User(id) | Actor::ApiKey(id) | Actor::Operator(id) => Some(id),
            Actor::System => None,
        }
    }

    /// Rebuilds an actor from its stored columns.
    pub fn from_parts(kind: &str, id: Option<String>) -> Option<Self> {
        match (kind, id) {
            ("user", Some(id)) => Some(Actor::User(id)),
            ("api_key", Some(id)) => Some(Actor::ApiKey(id)),
            ("operator", Some(id)) => Some(Actor::Operator(id)),
            ("system", None) => Some(Actor::System),
            _ => None,
        }
    }
}

/// What a caller records; the writer adds id, chain position and hashes.
#[derive(Debug, Clone)]
pub struct NewAuditEvent {
    pub workspace_id: Option<WorkspaceId>,
    pub actor: Actor,
    pub action: String,
    pub target_type: Option<String>,
    pub target_id: Option<String>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub occurred_at: DateTime<Utc>,
    pub details: serde_json::Value,
    /// Mail the change sends (a notice, a one-time link): queued in the same
    /// transaction as the change and its audit record, never part of the hash.
    pub mail: Vec<crate::mail::QueuedMail>,
}

impl NewAuditEvent {
    /// An event happening now, with no target, origin or details yet.
    pub fn new(workspace_id: Option<WorkspaceId>, actor: Actor, action: impl Into<String>) -> Self {
        Self {
            workspace_id,
            actor,
            action: action.into(),
            target_type: None,
            target_id: None,
            ip: None,
            user_agent: None,
            occurred_at: Utc::now(),
            details: serde_json::Value::Object(Default::default()),
            mail: Vec::new(),
        }
    }

    /// Queues `mail` (one, or none when mail is off) with the change this event records.
    pub fn mail(mut self, mail: impl IntoIterator<Item = crate::mail::QueuedMail>) -> Self {
        self.mail.extend(mail);
        self
    }

    pub fn target(mut self, kind: impl Into<String>, id: impl Into<String>) -> Self {
        self.target_type = Some(kind.into());
        self.target_id = Some(id.into());
        self
    }

    pub fn origin(mut self, ip: Option<String>, user_agent: Option<String>) -> Self {
        self.ip = ip;
        self.user_agent = user_agent;
        self
    }

    pub fn details(mut self, details: serde_json::Value) -> Self {
        self.details = details;
        self
    }

    /// The chain this event belongs to.
    pub fn chain(&self) -> String {
        chain_name(self.workspace_id)
    }

    /// Seals the event at position `seq` after an event whose hash is `prev_hash`.
    pub fn seal(self, seq: i64, prev_hash: [u8; 32]) -> AuditEvent {
        let mut event = AuditEvent {
            id: AuditEventId::new(),
            chain: self.chain(),
            seq,
            workspace_id: self.workspace_id,
            actor: self.actor,
            action: self.action,
            target_type: self.target_type,
            target_id: self.target_id,
            ip: self.ip,
            user_agent: self.user_agent,
            // Both backends keep microseconds; hash what will be read back.
            occurred_at: self.occurred_at.trunc_subsecs(6),
            details: self.details.to_string(),
            prev_hash,
            hash: [0; 32],
        };
        event.hash = event.compute_hash();
        event
    }
}

pub fn chain_name(workspace_id: Option<WorkspaceId>) -> String {
    workspace_id.map_or_else(|| SYSTEM_CHAIN.to_owned(), |w| w.to_string())
}

/// A stored audit event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEvent {
    pub id: AuditEventId,
    pub chain: String,
    pub seq: i64,
    pub workspace_id: Option<WorkspaceId>,
    pub actor: Actor,
    pub action: String,
    pub target_type: Option<String>,
    pub target_id: Option<String>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub occurred_at: DateTime<Utc>,
    /// Compact JSON, exactly as hashed and stored.
    pub details: String,
    pub prev_hash: [u8; 32],
    pub hash: [u8; 32],
}

impl AuditEvent {
    /// SHA-256 over a length-prefixed encoding of every field but `hash`.
    pub fn compute_hash(&self) -> [u8; 32] {
        let mut h = Sha256::new();
        let mut field = |value: Option<&[u8]>| match value {
            None => h.update([0u8]),
            Some(bytes) => {
                h.update([1u8]);
                h.update((bytes.len() as u64).to_be_bytes());
                h.update(bytes);
            }
        };
        let workspace = self.workspace_id.map(|w| w.to_string());
        let occurred = format_time(self.occurred_at);
        field(Some(b"waypost-audit-v1"));
        field(Some(self.id.to_string().as_bytes()));
        field(Some(self.chain.as_bytes()));
        field(Some(&self.seq.to_be_bytes()));
        field(workspace.as_deref().map(str::as_bytes));
        field(Some(self.actor.kind().as_bytes()));
        field(self.actor.id().map(str::as_bytes));
        field(Some(self.action.as_bytes()));
        field(self.target_type.as_deref().map(str::as_bytes));
        field(self.target_id.as_deref().map(str::as_bytes));
        field(self.ip.as_deref().map(str::as_bytes));
        field(self.user_agent.as_deref().map(str::as_bytes));
        field(Some(occurred.as_bytes()));
        field(Some(self.details.as_bytes()));
        field(Some(&self.prev_hash));
        h.finalize().into()
    }
}

fn format_time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

/// What the retention purge signs when it cuts a chain: where the kept part
/// begins and the hash its first event links back to.
pub fn chain_start_message(
    chain: &str,
    seq: i64,
    prev_hash: &[u8],
    signed_at: DateTime<Utc>,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(128);
    out.extend_from_slice(b"waypost-audit-chain-start-v1\0");
    out.extend_from_slice(&(chain.len() as u64).to_be_bytes());
    out.extend_from_slice(chain.as_bytes());
    out.extend_from_slice(&seq.to_be_bytes());
    out.extend_from_slice(prev_hash);
    out.extend_from_slice(format_time(signed_at.trunc_subsecs(6)).as_bytes());
    out
}

/// The bytes an audit checkpoint signs: the chain, its head position and hash, and when.
pub fn checkpoint_message(
    chain: &str,
    seq: i64,
    hash: &[u8; 32],
    signed_at: DateTime<Utc>,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(128);
    out.extend_from_slice(b"waypost-audit-checkpoint-v1\0");
    out.extend_from_slice(&(chain.len() as u64).to_be_bytes());
    out.extend_from_slice(chain.as_bytes());
    out.extend_from_slice(&seq.to_be_bytes());
    out.extend_from_slice(hash);
    out.extend_from_slice(format_time(signed_at.trunc_subsecs(6)).as_bytes());
    out
}

/// The first problem found while walking a chain.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuditChainError {
    #[error("event {id} (seq {seq}): stored hash does not match its contents")]
    HashMismatch { id: String, seq: i64 },
    #[error("event {id} (seq {seq}): previous-hash does not match the event before it")]
    BrokenLink { id: String, seq: i64 },
    #[error("event {id}: expected seq {expected}, found {found} (missing or reordered events)")]
    Gap {
        id: String,
        expected: i64,
        found: i64,
    },
    #[error("event {id} is in chain {found}, expected {expected}")]
    WrongChain {
        id: String,
        expected: String,
        found: String,
    },
}

/// Checks a contiguous run of one chain's events, in stored order.
///
/// `start` is the expected seq and previous hash of the first event
/// (`(1, GENESIS_HASH)` for a complete chain).
pub fn verify_chain(events: &[AuditEvent], start: (i64, [u8; 32])) -> Result<(), AuditChainError> {
    let (mut expected_seq, mut prev) = start;
    let chain = events.first().map(|e| e.chain.clone());
    for event in events {
        if Some(&event.chain) != chain.as_ref() {
            return Err(AuditChainError::WrongChain {
                id: event.id.to_string(),
                expected: chain.clone().unwrap_or_default(),
                found: event.chain.clone(),
            });
        }
        if event.seq != expected_seq {
            return Err(AuditChainError::Gap {
                id: event.id.to_string(),
                expected: expected_seq,
                found: event.seq,
            });
        }
        if event.compute_hash() != event.hash {
            return Err(AuditChainError::HashMismatch {
                id: event.id.to_string(),
                seq: event.seq,
            });
        }
        if event.prev_hash != prev {
            return Err(AuditChainError::BrokenLink {
                id: event.id.to_string(),
                seq: event.seq,
            });
        }
        prev = event.hash;
        expected_seq += 1;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn chain_of(n: usize) -> Vec<AuditEvent> {
        let ws = Some(WorkspaceId::new());
        let mut prev = GENESIS_HASH;
        (1..=n as i64)
            .map(|seq| {
                let e =
                    NewAuditEvent::new(ws, Actor::User(format!("usr_{seq}")), "workspace.updated")
                        .target("workspace", "ws_x")
                        .details(json!({"n": seq}))
                        .seal(seq, prev);
                prev = e.hash;
                e
            })
            .collect()
    }

    #[test]
    fn a_sealed_chain_verifies() {
        let events = chain_of(5);
        assert_eq!(verify_chain(&events, (1, GENESIS_HASH)), Ok(()));
        assert_eq!(events[1].prev_hash, events[0].hash);
    }

    #[test]
    fn editing_any_field_is_detected() {
        let mut events = chain_of(3);
        events[1].action = "workspace.deleted".into();
        assert!(matches!(
            verify_chain(&events, (1, GENESIS_HASH)),
            Err(AuditChainError::HashMismatch { seq: 2, .. })
        ));

        let mut events = chain_of(3);
        events[2].details = r#"{"n":99}"#.into();
        assert!(matches!(
            verify_chain(&events, (1, GENESIS_HASH)),
            Err(AuditChainError::HashMismatch { seq: 3, .. })
        ));
    }

    #[test]
    fn deleting_or_reordering_is_detected() {
        let mut events = chain_of(4);
        events.remove(1);
        assert!(matches!(
            verify_chain(&events, (1, GENESIS_HASH)),
            Err(AuditChainError::Gap {
                expected: 2,
                found: 3,
                ..
            })
        ));

        let mut events = chain_of(4);
        events.swap(1, 2);
        assert!(verify_chain(&events, (1, GENESIS_HASH)).is_err());
    }

    #[test]
    fn rehashing_an_edited_event_still_breaks_the_next_link() {
        let mut events = chain_of(3);
        events[1].action = "forged".into();
        events[1].hash = events[1].compute_hash();
        assert!(matches!(
            verify_chain(&events, (1, GENESIS_HASH)),
            Err(AuditChainError::BrokenLink { seq: 3, .. })
        ));
    }

    #[test]
    fn actor_round_trips_through_its_columns() {
        for actor in [
            Actor::User("usr_1".into()),
            Actor::ApiKey("key_1".into()),
            Actor::Operator("opt_1".into()),
            Actor::System,
        ] {
            let back = Actor::from_parts(actor.kind(), actor.id().map(str::to_owned));
            assert_eq!(back, Some(actor));
        }
        assert_eq!(Actor::from_parts("user", None), None);
    }
}
