//! Automation rules: managing a channel's rules, and handling one inbound
//! message's work item after the webhook was acknowledged. The item was
//! written with the message (so a crash loses nothing) and is deleted once
//! handled; replies go out through `messages::accept` with an idempotency key
//! per item (so a retried item never answers twice). Only customers' own
//! messages create items: the business's echoes and its own replies never do.
//! A per-conversation cooldown stops rules from answering again and again.

use std::collections::HashMap;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use waypost_cloudapi::{InboundContent, InboundMessage};
use waypost_core::audit::Actor;
use waypost_core::automation::{
    self, Inbound, MAX_REPLY_LEN, Matcher, Rule, RuleActions, RuleKind, Schedule,
};
use waypost_core::{NewAuditEvent, WorkspaceId};
use waypost_crypto::{Aad, ContentKey};
use waypost_store::automation::{AutomationWork, RuleRow};
use waypost_store::messaging::{ChannelRow, ContactRow};

use super::Ctx;
use super::auto_reply::{Job, send_text};
use crate::error::{ApiError, unprocessable};
use crate::state::{AppState, RequestOrigin};

pub const WORK_TABLE: &str = "automation_work";
pub const WORK_COLUMN: &str = "sealed";

/// A rule as the API takes it.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewRule {
    pub channel_id: String,
    /// `welcome`, `away` or `keyword`.
    #[schema(pattern = "^(welcome|away|keyword)$")]
    pub kind: String,
    pub name: String,
    /// Higher wins when several rules match.
    #[serde(default)]
    pub priority: i64,
    /// Keyword rules: comma-separated words or phrases, or a regular expression.
    pub pattern: Option<String>,
    #[serde(default)]
    pub regex: bool,
    /// Away rules: the business hours outside which the rule answers.
    #[schema(value_type = Option<Object>)]
    pub schedule: Option<Schedule>,
    #[schema(value_type = Object)]
    pub actions: RuleActions,
}

/// A stored rule.
#[derive(Debug, Serialize, ToSchema)]
pub struct RuleView {
    pub id: String,
    pub channel_id: String,
    pub kind: String,
    pub name: String,
    pub priority: i64,
    pub pattern: Option<String>,
    pub regex: bool,
    #[schema(value_type = Option<Object>)]
    pub schedule: Option<serde_json::Value>,
    #[schema(value_type = Object)]
    pub actions: serde_json::Value,
    pub enabled: bool,
    pub created_at: DateTime<Utc>,
}

fn view(r: RuleRow) -> RuleView {
    RuleView {
        schedule: r.schedule.and_then(|s| serde_json::from_str(&s).ok()),
        actions: serde_json::from_str(&r.actions).unwrap_or_default(),
        id: r.id,
        channel_id: r.channel_id,
        kind: r.kind,
        name: r.name,
        priority: r.priority,
        pattern: r.pattern,
        regex: r.is_regex,
        enabled: r.enabled,
        created_at: r.created_at,
    }
}

fn check_actions(a: &RuleActions) -> Result<(), ApiError> {
    if a.reply.is_none() && a.tag.is_none() && a.assign_to.is_none() && !a.hand_to_assistant {
        return Err(unprocessable(
            "`actions` must reply, tag, assign or hand to the assistant",
        ));
    }
    if let Some(r) = &a.reply
        && (r.trim().is_empty() || r.len() > MAX_REPLY_LEN)
    {
        return Err(unprocessable(format!(
            "`actions.reply` must be 1 to {MAX_REPLY_LEN} characters"
        )));
    }
    if let Some(t) = &a.tag
        && (t.trim().is_empty() || t.len() > 64)
    {
        return Err(unprocessable("`actions.tag` must be 1 to 64 characters"));
    }
    Ok(())
}

/// Adds a rule to a channel of the workspace.
pub async fn create_rule(
    state: &AppState,
    ctx: &Ctx,
    input: NewRule,
) -> Result<RuleView, ApiError> {
    let kind = RuleKind::parse(&input.kind)
        .ok_or_else(|| unprocessable("`kind` must be `welcome`, `away` or `keyword`"))?;
    state
        .lookups
        .channel(&ctx.workspace, &input.channel_id)
        .await?;
    if input.name.trim().is_empty() || input.name.len() > 100 {
        return Err(unprocessable("`name` must be 1 to 100 characters"));
    }
    match kind {
        RuleKind::Keyword => {
            let pattern = input
                .pattern
                .as_deref()
                .ok_or_else(|| unprocessable("a keyword rule needs a `pattern`"))?;
            Matcher::new(pattern, input.regex).map_err(unprocessable)?;
        }
        RuleKind::Away => {
            let s = input
                .schedule
                .as_ref()
                .ok_or_else(|| unprocessable("an away rule needs a `schedule`"))?;
            s.check()
                .map_err(|e| unprocessable(format!("`schedule`: {e}")))?;
        }
        RuleKind::Welcome => {}
    }
    check_actions(&input.actions)?;
    if let Some(user) = &input.actions.assign_to
        && state
            .store
            .membership(&ctx.workspace, user)
            .await?
            .is_none()
    {
        return Err(unprocessable(
            "`actions.assign_to` is not a member of this workspace",
        ));
    }
    let now = state.clock.now();
    let row = RuleRow {
        id: format!("rule_{}", ulid::Ulid::new()),
        workspace_id: ctx.workspace.clone(),
        channel_id: input.channel_id,
        kind: kind.as_str().into(),
        name: input.name,
        priority: input.priority,
        pattern: input.pattern.filter(|_| kind == RuleKind::Keyword),
        is_regex: input.regex && kind == RuleKind::Keyword,
        schedule: match (&input.schedule, kind) {
            (Some(s), RuleKind::Away) => {
                Some(serde_json::to_string(s).map_err(anyhow::Error::from)?)
            }
            _ => None,
        },
        actions: serde_json::to_string(&input.actions).map_err(anyhow::Error::from)?,
        enabled: true,
        created_at: now,
        updated_at: now,
    };
    let audit = ctx
        .origin
        .stamp(NewAuditEvent::new(
            Some(ctx.workspace_id),
            ctx.actor.clone(),
            "automation.rule_created",
        ))
        .target("automation_rule", row.id.clone())
        .details(serde_json::json!({"kind": row.kind, "channel_id": row.channel_id}));
    state.store.create_rule(&row, audit).await?;
    state.lookups.invalidate();
    Ok(view(row))
}

pub async fn list_rules(state: &AppState, ctx: &Ctx) -> Result<Vec<RuleView>, ApiError> {
    Ok(state
        .store
        .list_rules(&ctx.workspace)
        .await?
        .into_iter()
        .map(view)
        .collect())
}

pub async fn delete_rule(state: &AppState, ctx: &Ctx, id: &str) -> Result<(), ApiError> {
    let audit = ctx
        .origin
        .stamp(NewAuditEvent::new(
            Some(ctx.workspace_id),
            ctx.actor.clone(),
            "automation.rule_deleted",
        ))
        .target("automation_rule", id.to_owned());
    state.store.delete_rule(&ctx.workspace, id, audit).await?;
    state.lookups.invalidate();
    Ok(())
}

/// The work item of an inbound message, its text sealed under the contact's key.
pub fn work_item(
    channel: &ChannelRow,
    contact: &ContactRow,
    message_id: &str,
    m: &InboundMessage,
    key: Option<&ContentKey>,
    sent_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> AutomationWork {
    let id = format!("aw_{}", ulid::Ulid::new());
    let text = match &m.content {
        InboundContent::Text(t) => Some(t.body.as_str()),
        InboundContent::Button(b) => Some(b.text.as_str()),
        _ => None,
    };
    AutomationWork {
        sealed: text
            .zip(key)
            .map(|(t, k)| k.encrypt(Aad::new(WORK_TABLE, WORK_COLUMN, &id), t.as_bytes())),
        id,
        workspace_id: channel.workspace_id.clone(),
        channel_id: channel.id.clone(),
        contact_id: contact.id.clone(),
        message_id: message_id.to_owned(),
        first_contact: contact.last_inbound_at.is_none(),
        sent_at,
        created_at: now,
        attempts: 0,
    }
}

fn system_ctx(workspace: &str) -> anyhow::Result<Ctx> {
    let id = WorkspaceId::parse(workspace).map_err(|e| anyhow::anyhow!("workspace id: {e:?}"))?;
    Ok(Ctx::new(
        id,
        Actor::System,
        RequestOrigin {
            ip: None,
            user_agent: None,
            rate_limit: None,
        },
    ))
}

/// Whether the customer's message is still inside its 24-hour window.
pub fn inside_window(sent_at: DateTime<Utc>, now: DateTime<Utc>) -> bool {
    now - sent_at < Duration::hours(24)
}

/// What one worker step has read of channels' rules and workspaces' assistant
/// settings, so a batch of items reads each once, and an item with neither to
/// run reads nothing more.
#[derive(Default)]
pub struct StepMemo {
    rules: HashMap<String, Vec<Rule>>,
    /// Whether the assistant answers on `(workspace, channel)`.
    assistant: HashMap<(String, String), bool>,
}

impl StepMemo {
    async fn rules(&mut self, state: &AppState, channel_id: &str) -> anyhow::Result<&[Rule]> {
        if !self.rules.contains_key(channel_id) {
            let rules = state
                .store
                .channel_rules(channel_id)
                .await?
                .into_iter()
                .filter_map(rule_of)
                .collect();
            self.rules.insert(channel_id.to_owned(), rules);
        }
        Ok(&self.rules[channel_id])
    }

    async fn assistant_on(
        &mut self,
        state: &AppState,
        workspace_id: &str,
        channel_id: &str,
    ) -> anyhow::Result<bool> {
        let key = (workspace_id.to_owned(), channel_id.to_owned());
        if let Some(on) = self.assistant.get(&key) {
            return Ok(*on);
        }
        let on = state
            .store
            .assistant_settings(workspace_id)
            .await?
            .is_some_and(|s| {
                let channels: Vec<String> = serde_json::from_str(&s.channels).unwrap_or_default();
                s.enabled && channels.iter().any(|c| c == channel_id)
            });
        self.assistant.insert(key, on);
        Ok(on)
    }
}

/// Handles one work item: the rules, then (if they let it) the assistant.
/// An error leaves the item to be retried; replies already accepted are not
/// sent again (their idempotency keys).
pub async fn handle(
    state: &AppState,
    work: AutomationWork,
    memo: &mut StepMemo,
) -> anyhow::Result<()> {
    let now = state.clock.now();
    if !inside_window(work.sent_at, now) {
        metrics::counter!("waypost_automation_skipped_total", "reason" => "outside_window")
            .increment(1);
        return Ok(());
    }
    let has_rules = !memo.rules(state, &work.channel_id).await?.is_empty();
    if !has_rules
        && !memo
            .assistant_on(state, &work.workspace_id, &work.channel_id)
            .await?
    {
        return Ok(());
    }
    let Some(conversation) = state
        .store
        .conversation_automation(&work.channel_id, &work.contact_id)
        .await?
    else {
        return Ok(());
    };
    let contact = state
        .store
        .get_contact(&work.workspace_id, &work.contact_id)
        .await?;
    let text = match (
        &work.sealed,
        crate::messaging::content_key(&state.keys, &contact)?,
    ) {
        (Some(sealed), Some(key)) => {
            let plain = key
                .decrypt(Aad::new(WORK_TABLE, WORK_COLUMN, &work.id), sealed)
                .map_err(|e| anyhow::anyhow!("automation work item does not open: {e}"))?;
            Some(zeroize::Zeroizing::new(
                String::from_utf8_lossy(&plain).into_owned(),
            ))
        }
        _ => None,
    };
    let job = Job {
        ctx: system_ctx(&work.workspace_id)?,
        work,
        conversation,
        text,
    };
    let rules = memo.rules(state, &job.work.channel_id).await?;
    let inbound = Inbound {
        text: job.text.as_deref().map(String::as_str),
        first_contact: job.work.first_contact,
        at: now,
    };
    let to_assistant = match automation::choose(rules, &inbound) {
        Some(rule) => {
            let rule = rule.clone();
            fire(state, &job, &rule, now).await?
        }
        None => true,
    };
    if to_assistant && job.text.is_some() {
        super::assistant::respond(state, &job).await?;
    }
    Ok(())
}

fn rule_of(r: RuleRow) -> Option<Rule> {
    let kind = RuleKind::parse(&r.kind)?;
    Some(Rule {
        matcher: match &r.pattern {
            Some(p) => Some(Matcher::new(p, r.is_regex).ok()?),
            None => None,
        },
        schedule: r
            .schedule
            .as_deref()
            .and_then(|s| serde_json::from_str(s).ok()),
        actions: serde_json::from_str(&r.actions).ok()?,
        priority: r.priority,
        id: r.id,
        kind,
    })
}

/// Applies a matching rule; returns whether the assistant may answer too.
async fn fire(
    state: &AppState,
    job: &Job,
    rule: &Rule,
    now: DateTime<Utc>,
) -> anyhow::Result<bool> {
    let a = &rule.actions;
    let conv = &job.conversation.id;
    if a.tag.is_some() || a.assign_to.is_some() {
        let audit = NewAuditEvent::new(
            Some(job.ctx.workspace_id),
            Actor::System,
            "automation.rule_applied",
        )
        .target("conversation", conv.clone())
        .details(serde_json::json!({"rule_id": rule.id, "tag": a.tag, "assign_to": a.assign_to}));
        state
            .store
            .apply_rule_actions(conv, a.tag.as_deref(), a.assign_to.as_deref(), now, audit)
            .await?;
    }
    if let Some(reply) = &a.reply {
        let cooldown = Duration::seconds(state.config.automation_cooldown_secs as i64);
        if state
            .store
            .take_reply_slot(conv, now, now - cooldown)
            .await?
        {
            send_text(state, job, reply, "rule").await?;
            metrics::counter!("waypost_automation_replies_total", "kind" => rule.kind.as_str())
                .increment(1);
        } else {
            metrics::counter!("waypost_automation_skipped_total", "reason" => "cooldown")
                .increment(1);
        }
    }
    // An assigned conversation is a person's; the assistant stays out of it.
    Ok(a.hand_to_assistant && a.assign_to.is_none())
}
