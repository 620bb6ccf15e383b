//! Conversations: who sees which, and the changes agents make (assign, close,
//! reopen, labels, notes, read). Each change is compare-and-set on the
//! conversation's version and commits with its audit and customer event.

use chrono::{DateTime, Duration, Utc};
use waypost_core::auth::{Action, Role, Scope, role_allows};
use waypost_core::events::EventType;
use waypost_core::{Actor, NewAuditEvent};
use waypost_crypto::Aad;
use waypost_store::conversations::{
    ConversationFilter, ConversationRow, ConversationWrite, NoteRow,
};
use waypost_store::messaging::{ContactRow, MessageFilter, MessageRow};

use super::Ctx;
use crate::auth::Caller;
use crate::error::{ApiError, unprocessable};
use crate::messaging::{client_for, content_key};
use crate::state::AppState;

/// The customer-service window: free-form replies within 24 hours of the customer's last message.
pub const WINDOW: Duration = Duration::hours(24);
/// Longest label and note, and most labels per conversation.
pub const MAX_LABEL: usize = 50;
pub const MAX_LABELS: usize = 20;
pub const MAX_NOTE: usize = 4_000;

/// Who reads conversations: agents may be limited to their own.
#[derive(Debug, Clone)]
pub struct Viewer {
    /// The member's user id; `None` for API keys.
    pub user_id: Option<String>,
    pub role: Option<Role>,
    /// Whether numbers are shown in full: only to callers that may read contacts.
    pub full_numbers: bool,
}

impl Viewer {
    pub fn of(caller: &Caller, role: Option<Role>) -> Self {
        let full_numbers = match (caller, role) {
            (Caller::ApiKey(k), _) => k.scopes.contains(&Scope::ContactsRead),
            (_, Some(role)) => role_allows(role, Action::ContactsRead),
            _ => false,
        };
        Self {
            user_id: caller.session().ok().map(|s| s.user.id.to_string()),
            role,
            full_numbers,
        }
    }
}

/// A conversation with its labels and contact.
#[derive(Debug, Clone)]
pub struct Conversation {
    pub row: ConversationRow,
    pub labels: Vec<String>,
    pub contact: ContactRow,
}

impl Conversation {
    pub fn window_expires_at(&self) -> Option<DateTime<Utc>> {
        self.row.last_inbound_at.map(|t| t + WINDOW)
    }
}

/// `all` or `assigned` (agents see only conversations assigned to them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Visibility {
    All,
    Assigned,
}

impl Visibility {
    pub fn parse(s: &str) -> Result<Self, ApiError> {
        match s {
            "all" => Ok(Visibility::All),
            "assigned" => Ok(Visibility::Assigned),
            _ => Err(unprocessable(
                "`conversation_visibility` must be `all` or `assigned`",
            )),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Visibility::All => "all",
            Visibility::Assigned => "assigned",
        }
    }
}

/// The assignee an agent is limited to, if the workspace limits agents.
async fn forced_assignee(
    state: &AppState,
    workspace: &str,
    viewer: &Viewer,
) -> Result<Option<String>, ApiError> {
    if viewer.role != Some(Role::Agent) {
        return Ok(None);
    }
    let visibility = state.store.conversation_visibility(workspace).await?;
    Ok(match Visibility::parse(&visibility)? {
        Visibility::All => None,
        Visibility::Assigned => viewer.user_id.clone(),
    })
}

/// A page of conversations, most recent activity first.
pub async fn list(
    state: &AppState,
    workspace: &str,
    viewer: &Viewer,
    mut filter: ConversationFilter,
    limit: u32,
) -> Result<Vec<Conversation>, ApiError> {
    if let Some(me) = forced_assignee(state, workspace, viewer).await? {
        if matches!(&filter.assignee, Some(Some(other)) if *other != me)
            || filter.assignee == Some(None)
        {
            return Ok(Vec::new());
        }
        filter.assignee = Some(Some(me));
    }
    let rows = state
        .store
        .list_conversations(workspace, &filter, limit)
        .await?;
    complete(state, workspace, rows).await
}

/// One conversation the viewer may see; `NotFound` otherwise.
pub async fn get(
    state: &AppState,
    workspace: &str,
    viewer: &Viewer,
    id: &str,
) -> Result<Conversation, ApiError> {
    let row = state.store.get_conversation(workspace, id).await?;
    if let Some(me) = forced_assignee(state, workspace, viewer).await?
        && row.assignee_id.as_deref() != Some(me.as_str())
    {
        return Err(waypost_store::StoreError::NotFound("conversation").into());
    }
    Ok(complete(state, workspace, vec![row]).await?.remove(0))
}

async fn complete(
    state: &AppState,
    workspace: &str,
    rows: Vec<ConversationRow>,
) -> Result<Vec<Conversation>, ApiError> {
    let ids: Vec<String> = rows.iter().map(|r| r.id.clone()).collect();
    let labels = state.store.conversation_labels(&ids).await?;
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let contact = state.store.get_contact(workspace, &row.contact_id).await?;
        let labels = labels
            .iter()
            .filter(|(c, _)| *c == row.id)
            .map(|(_, l)| l.clone())
            .collect();
        out.push(Conversation {
            row,
            labels,
            contact,
        });
    }
    Ok(out)
}

/// Both directions in order, after the message id `after`.
pub async fn messages(
    state: &AppState,
    c: &Conversation,
    after: Option<String>,
    limit: u32,
) -> Result<Vec<MessageRow>, ApiError> {
    let filter = MessageFilter {
        channel_id: Some(c.row.channel_id.clone()),
        contact_id: Some(c.row.contact_id.clone()),
        after,
        ..Default::default()
    };
    Ok(state
        .store
        .list_messages(&c.row.workspace_id, &filter, limit)
        .await?)
}

/// What a change does to a conversation.
#[derive(Debug, Clone)]
pub enum Change {
    /// To a member (user id) who may send, or `None` to unassign.
    Assign(Option<String>),
    Close,
    Reopen,
    /// Waiting on someone (the customer, another team); still open for the customer.
    Pending,
    Labels(Vec<String>),
    /// Sends the read receipt for the latest inbound message (and the typing indicator).
    Read {
        typing: bool,
    },
}

/// Applies `change`, audited and announced; returns the new state.
pub async fn change(
    state: &AppState,
    ctx: &Ctx,
    viewer: &Viewer,
    id: &str,
    change: Change,
) -> Result<Conversation, ApiError> {
    let current = get(state, &ctx.workspace, viewer, id).await?;
    let now = state.clock.now();
    let mut row = current.row.clone();
    let mut labels = None;
    let (event_type, action, detail) = match &change {
        Change::Assign(Some(user)) => {
            let role = state
                .store
                .membership_role(&ctx.workspace, user)
                .await?
                .and_then(|r| r.parse::<Role>().ok());
            if !role.is_some_and(|r| role_allows(r, Action::MessagesSend)) {
                return Err(unprocessable(
                    "`member_id` must be a member of this workspace who may send messages",
                ));
            }
            row.assignee_id = Some(user.clone());
            (
                EventType::ConversationAssigned,
                "conversation.assigned",
                serde_json::json!({"assignee_id": user}),
            )
        }
        Change::Assign(None) => {
            row.assignee_id = None;
            (
                EventType::ConversationUnassigned,
                "conversation.unassigned",
                serde_json::json!({}),
            )
        }
        Change::Close => {
            row.status = "closed".into();
            (
                EventType::ConversationClosed,
                "conversation.closed",
                serde_json::json!({}),
            )
        }
        Change::Reopen => {
            row.status = "open".into();
            (
                EventType::ConversationReopened,
                "conversation.reopened",
                serde_json::json!({}),
            )
        }
        Change::Pending => {
            row.status = "pending".into();
            (
                EventType::ConversationPending,
                "conversation.pending",
                serde_json::json!({}),
            )
        }
        Change::Labels(new) => {
            let clean = clean_labels(new)?;
            labels = Some(clean.clone());
            (
                EventType::ConversationLabelled,
                "conversation.labelled",
                serde_json::json!({"labels": clean}),
            )
        }
        Change::Read { typing } => {
            send_read_receipt(state, &ctx.workspace, &current, *typing).await?;
            row.unread_count = 0;
            (
                EventType::ConversationRead,
                "conversation.read",
                serde_json::json!({"typing_indicator": typing}),
            )
        }
    };
    row.updated_at = now;
    let mut data = serde_json::json!({
        "conversation_id": row.id,
        "channel_id": row.channel_id,
        "contact_id": row.contact_id,
        "status": row.status,
        "assignee_id": row.assignee_id,
        "by": actor_id(&ctx.actor),
    });
    data.as_object_mut()
        .expect("an object")
        .extend(detail.as_object().cloned().unwrap_or_default());
    let event = crate::events::seal(
        &state.keys.current(),
        ctx.workspace_id,
        event_type,
        Some(row.id.clone()),
        &data,
        now,
    );
    let audit = ctx.origin.stamp(
        NewAuditEvent::new(Some(ctx.workspace_id), ctx.actor.clone(), action)
            .target("conversation", row.id.clone())
            .details(detail),
    );
    state
        .store
        .write_conversation(&ConversationWrite {
            expected_version: current.row.version,
            conversation: row,
            labels,
            audit,
            events: vec![event],
        })
        .await?;
    get(state, &ctx.workspace, viewer, id).await
}

fn actor_id(actor: &Actor) -> serde_json::Value {
    serde_json::to_value(actor).unwrap_or(serde_json::Value::Null)
}

/// Trimmed, lower-cased, unique, sorted; each 1–50 characters of letters,
/// digits, `-`, `_`, `:` or `/`.
fn clean_labels(labels: &[String]) -> Result<Vec<String>, ApiError> {
    let mut out: Vec<String> = Vec::new();
    for l in labels {
        let l = l.trim().to_lowercase();
        let ok = !l.is_empty()
            && l.chars().count() <= MAX_LABEL
            && l.chars()
                .all(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | ':' | '/'));
        if !ok {
            return Err(unprocessable(format!(
                "each label is 1 to {MAX_LABEL} letters, digits, `-`, `_`, `:` or `/`"
            )));
        }
        if !out.contains(&l) {
            out.push(l);
        }
    }
    if out.len() > MAX_LABELS {
        return Err(unprocessable(format!(
            "at most {MAX_LABELS} labels per conversation"
        )));
    }
    out.sort();
    Ok(out)
}

async fn send_read_receipt(
    state: &AppState,
    workspace: &str,
    c: &Conversation,
    typing: bool,
) -> Result<(), ApiError> {
    let Some(wamid) = &c.row.last_inbound_wamid else {
        return Err(unprocessable(
            "the customer has not written in this conversation yet; there is nothing to mark as read",
        ));
    };
    let channel = state
        .store
        .get_channel(workspace, &c.row.channel_id)
        .await?;
    let client = client_for(&state.keys, &state.config, &channel).map_err(ApiError::Internal)?;
    client
        .mark_as_read(&channel.phone_number_id, wamid, typing)
        .await
        .map_err(|e| {
            crate::error::Problem::new(
                axum::http::StatusCode::BAD_GATEWAY,
                "provider-error",
                "The provider refused the read receipt",
                format!("The provider answered: {e}"),
            )
        })?;
    Ok(())
}

/// Adds an internal note, encrypted under the contact's key and kept as long
/// as the workspace keeps content. Refused when it keeps none.
pub async fn add_note(
    state: &AppState,
    ctx: &Ctx,
    viewer: &Viewer,
    id: &str,
    body: &str,
) -> Result<NoteRow, ApiError> {
    let body = body.trim();
    if body.is_empty() || body.chars().count() > MAX_NOTE {
        return Err(unprocessable(format!(
            "`body` must be 1 to {MAX_NOTE} characters"
        )));
    }
    let c = get(state, &ctx.workspace, viewer, id).await?;
    let settings = state.store.messaging_settings(&ctx.workspace).await?;
    let Some(days) = settings.content_retention.days() else {
        return Err(crate::error::Problem::new(
            axum::http::StatusCode::CONFLICT,
            "content-not-retained",
            "This workspace keeps no content",
            "Notes are content about a customer and follow the workspace's content retention, which is `none`; set `content_retention` to `days:N` to keep notes.",
        )
        .into());
    };
    let Some(key) = content_key(&state.keys, &c.contact).map_err(ApiError::Internal)? else {
        return Err(waypost_store::StoreError::NotFound("contact").into());
    };
    let now = state.clock.now();
    let note_id = format!("note_{}", ulid::Ulid::new());
    let note = NoteRow {
        body: key.encrypt(
            Aad::new("conversation_notes", "body", &note_id),
            body.as_bytes(),
        ),
        id: note_id,
        workspace_id: ctx.workspace.clone(),
        conversation_id: c.row.id.clone(),
        contact_id: c.row.contact_id.clone(),
        author_id: viewer.user_id.clone(),
        created_at: now,
        expires_at: now + Duration::days(days),
    };
    let event = crate::events::seal(
        &state.keys.current(),
        ctx.workspace_id,
        EventType::ConversationNoteAdded,
        Some(c.row.id.clone()),
        &serde_json::json!({"conversation_id": c.row.id, "note_id": note.id, "by": actor_id(&ctx.actor)}),
        now,
    );
    let audit = ctx.origin.stamp(
        NewAuditEvent::new(
            Some(ctx.workspace_id),
            ctx.actor.clone(),
            "conversation.note_added",
        )
        .target("conversation", c.row.id.clone())
        .details(serde_json::json!({"note_id": note.id})),
    );
    state
        .store
        .add_conversation_note(&note, audit, &[event])
        .await?;
    Ok(note)
}

/// The kept notes, decrypted; notes of an erased contact are gone with its key.
pub async fn notes(
    state: &AppState,
    workspace: &str,
    viewer: &Viewer,
    id: &str,
) -> Result<Vec<(NoteRow, String)>, ApiError> {
    let c = get(state, workspace, viewer, id).await?;
    let Some(key) = content_key(&state.keys, &c.contact).map_err(ApiError::Internal)? else {
        return Ok(Vec::new());
    };
    let rows = state
        .store
        .conversation_notes(workspace, id, state.clock.now())
        .await?;
    Ok(rows
        .into_iter()
        .filter_map(|n| {
            let plain = key
                .decrypt(Aad::new("conversation_notes", "body", &n.id), &n.body)
                .ok()?;
            let text = String::from_utf8(plain.to_vec()).ok()?;
            Some((n, text))
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_cleaned_and_checked() {
        let got = clean_labels(&[" VIP ".into(), "billing".into(), "vip".into()]).unwrap();
        assert_eq!(got, vec!["billing".to_owned(), "vip".to_owned()]);
        assert!(clean_labels(&["".into()]).is_err());
        assert!(clean_labels(&["has space".into()]).is_err());
        assert!(clean_labels(&["x".repeat(51)]).is_err());
        let many: Vec<String> = (0..21).map(|i| format!("l{i}")).collect();
        assert!(clean_labels(&many).is_err());
    }
}
