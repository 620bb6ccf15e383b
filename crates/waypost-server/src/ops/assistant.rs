//! The AI assistant: a workspace's OpenAI-compatible provider (off by
//! default, enabled per channel), and its answer to one customer message.
//! Before any text leaves, the shield scans it (smishing is never forwarded)
//! and personal data is replaced by typed placeholders, restored in the reply
//! only where the model echoes them. The model answers from knowledge-base
//! passages or says it cannot, and the conversation goes to a person when the
//! customer asks for one, is upset, the model cannot or will not answer, the
//! turn cap or the monthly token budget is reached, or the provider fails
//! (after retries, with a fallback message). Prompts and completions are
//! never stored or logged; the audit log records model, tokens and redaction
//! counts.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use waypost_core::NewAuditEvent;
use waypost_core::assistant::{
    Handoff, budget_month, handoff_before_model, judge_answer, system_prompt,
};
use waypost_core::audit::Actor;
use waypost_core::pii;
use waypost_crypto::Aad;
use waypost_store::automation::AssistantSettingsRow;

use super::Ctx;
use super::auto_reply::{Job, send_text};
use crate::error::{ApiError, unprocessable};
use crate::guard::ssrf::{self, TargetPolicy};
use crate::llm::{self, ChatMessage, Provider};
use crate::state::AppState;

const TABLE: &str = "assistant_settings";
const KEY_COLUMN: &str = "api_key";
/// Passages given to the model.
const PASSAGES: u32 = 4;

/// The settings as the API takes them (the key is write-only).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AssistantInput {
    #[serde(default)]
    pub enabled: bool,
    /// The provider's base URL including `/v1`, e.g. `https://api.openai.com/v1`
    /// or `http://127.0.0.1:11434/v1` (Ollama).
    pub base_url: String,
    /// The model (Azure: the deployment name).
    pub model: String,
    /// The provider's API key; omitted keeps the stored one, `""` removes it.
    #[schema(value_type = Option<String>)]
    pub api_key: Option<SecretString>,
    /// `max_tokens` (default; Ollama, llama.cpp, vLLM) or `max_completion_tokens`.
    #[serde(default = "default_token_field")]
    pub token_field: String,
    #[serde(default = "default_reply_tokens")]
    pub max_reply_tokens: i64,
    /// Tokens (prompt + completion) the workspace may use per calendar month.
    pub monthly_token_budget: i64,
    /// Assistant answers per conversation before it goes to a person.
    #[serde(default = "default_turn_cap")]
    pub turn_cap: i64,
    #[serde(default = "default_timeout")]
    pub timeout_ms: i64,
    #[serde(default = "default_retries")]
    pub max_retries: i64,
    /// Sent when the conversation goes to a person.
    #[serde(default = "default_fallback")]
    pub fallback_message: String,
    /// The member handed-off conversations are assigned to; unset leaves them unassigned.
    pub handoff_assignee: Option<String>,
    /// The channels the assistant answers on.
    #[serde(default)]
    pub channels: Vec<String>,
}

fn default_token_field() -> String {
    "max_tokens".into()
}
fn default_reply_tokens() -> i64 {
    400
}
fn default_turn_cap() -> i64 {
    10
}
fn default_timeout() -> i64 {
    20_000
}
fn default_retries() -> i64 {
    2
}
fn default_fallback() -> String {
    "Thanks for your message. A member of our team will get back to you shortly.".into()
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AssistantView {
    pub enabled: bool,
    pub base_url: String,
    pub model: String,
    /// Whether a key is stored (it is never shown).
    pub api_key_set: bool,
    pub token_field: String,
    pub max_reply_tokens: i64,
    pub monthly_token_budget: i64,
    pub turn_cap: i64,
    pub timeout_ms: i64,
    pub max_retries: i64,
    pub fallback_message: String,
    pub handoff_assignee: Option<String>,
    pub channels: Vec<String>,
    /// `YYYY-MM` and the tokens used in it.
    pub usage_month: String,
    pub tokens_used: i64,
}

pub(crate) fn view(r: AssistantSettingsRow) -> AssistantView {
    AssistantView {
        enabled: r.enabled,
        api_key_set: r.api_key.is_some(),
        channels: serde_json::from_str(&r.channels).unwrap_or_default(),
        base_url: r.base_url,
        model: r.model,
        token_field: r.token_field,
        max_reply_tokens: r.max_reply_tokens,
        monthly_token_budget: r.monthly_token_budget,
        turn_cap: r.turn_cap,
        timeout_ms: r.timeout_ms,
        max_retries: r.max_retries,
        fallback_message: r.fallback_message,
        handoff_assignee: r.handoff_assignee,
        usage_month: r.usage_month,
        tokens_used: r.tokens_used,
    }
}

/// Where the provider may be: public HTTPS, or internal/plain HTTP when the operator allows it.
fn policy(state: &AppState) -> TargetPolicy {
    TargetPolicy {
        allow_http: state.config.assistant_allow_private_targets,
        allow_private: state.config.assistant_allow_private_targets,
    }
}

pub async fn settings(state: &AppState, ctx: &Ctx) -> Result<AssistantView, ApiError> {
    let row = state.store.assistant_settings(&ctx.workspace).await?;
    row.map(view)
        .ok_or_else(|| waypost_store::StoreError::NotFound("assistant settings").into())
}

fn in_range(name: &str, v: i64, lo: i64, hi: i64) -> Result<(), ApiError> {
    if v < lo || v > hi {
        return Err(unprocessable(format!(
            "`{name}` must be between {lo} and {hi}"
        )));
    }
    Ok(())
}

/// Creates or replaces the workspace's assistant settings.
pub async fn put_settings(
    state: &AppState,
    ctx: &Ctx,
    input: AssistantInput,
) -> Result<AssistantView, ApiError> {
    ssrf::check_url_syntax(&input.base_url, policy(state))
        .map_err(|r| unprocessable(format!("`base_url` is refused: {r}")))?;
    if input.model.trim().is_empty() || input.model.len() > 200 {
        return Err(unprocessable("`model` must be 1 to 200 characters"));
    }
    if !matches!(
        input.token_field.as_str(),
        "max_tokens" | "max_completion_tokens"
    ) {
        return Err(unprocessable(
            "`token_field` must be `max_tokens` or `max_completion_tokens`",
        ));
    }
    in_range("max_reply_tokens", input.max_reply_tokens, 16, 16_384)?;
    in_range(
        "monthly_token_budget",
        input.monthly_token_budget,
        0,
        1_000_000_000_000,
    )?;
    in_range("turn_cap", input.turn_cap, 1, 1000)?;
    in_range("timeout_ms", input.timeout_ms, 500, 600_000)?;
    in_range("max_retries", input.max_retries, 0, 10)?;
    if input.fallback_message.trim().is_empty() || input.fallback_message.len() > 1024 {
        return Err(unprocessable(
            "`fallback_message` must be 1 to 1024 characters",
        ));
    }
    for c in &input.channels {
        state.lookups.channel(&ctx.workspace, c).await?;
    }
    if let Some(user) = &input.handoff_assignee
        && state
            .store
            .membership(&ctx.workspace, user)
            .await?
            .is_none()
    {
        return Err(unprocessable(
            "`handoff_assignee` is not a member of this workspace",
        ));
    }
    let old = state.store.assistant_settings(&ctx.workspace).await?;
    let api_key = match &input.api_key {
        Some(k) if secrecy::ExposeSecret::expose_secret(k).is_empty() => None,
        Some(k) => Some(state.keys.current().encrypt(
            Aad::new(TABLE, KEY_COLUMN, &ctx.workspace),
            secrecy::ExposeSecret::expose_secret(k).as_bytes(),
        )),
        None => old.as_ref().and_then(|o| o.api_key.clone()),
    };
    let now = state.clock.now();
    let row = AssistantSettingsRow {
        workspace_id: ctx.workspace.clone(),
        enabled: input.enabled,
        base_url: input.base_url.trim().to_owned(),
        model: input.model,
        api_key,
        token_field: input.token_field,
        max_reply_tokens: input.max_reply_tokens,
        monthly_token_budget: input.monthly_token_budget,
        turn_cap: input.turn_cap,
        timeout_ms: input.timeout_ms,
        max_retries: input.max_retries,
        fallback_message: input.fallback_message,
        handoff_assignee: input.handoff_assignee,
        channels: serde_json::to_string(&input.channels).map_err(anyhow::Error::from)?,
        usage_month: old
            .as_ref()
            .map(|o| o.usage_month.clone())
            .unwrap_or_default(),
        tokens_used: old.as_ref().map_or(0, |o| o.tokens_used),
        updated_at: now,
    };
    let audit = ctx
        .origin
        .stamp(NewAuditEvent::new(
            Some(ctx.workspace_id),
            ctx.actor.clone(),
            "assistant.configured",
        ))
        .target("workspace", ctx.workspace.clone())
        .details(serde_json::json!({
            "enabled": row.enabled, "model": row.model, "channels": input.channels.len(),
            "api_key_changed": input.api_key.is_some(),
        }));
    state.store.put_assistant_settings(&row, audit).await?;
    state.lookups.invalidate();
    Ok(view(row))
}

/// An agent hands a conversation back to the assistant.
pub async fn resume(state: &AppState, ctx: &Ctx, conversation_id: &str) -> Result<(), ApiError> {
    let audit = ctx
        .origin
        .stamp(NewAuditEvent::new(
            Some(ctx.workspace_id),
            ctx.actor.clone(),
            "assistant.resumed",
        ))
        .target("conversation", conversation_id.to_owned());
    Ok(state
        .store
        .resume_assistant(&ctx.workspace, conversation_id, state.clock.now(), audit)
        .await?)
}

fn provider(state: &AppState, s: &AssistantSettingsRow) -> anyhow::Result<Provider> {
    let api_key = match &s.api_key {
        Some(sealed) => {
            let plain = state
                .keys
                .current()
                .decrypt(Aad::new(TABLE, KEY_COLUMN, &s.workspace_id), sealed)
                .map_err(|e| anyhow::anyhow!("the assistant's API key does not open: {e}"))?;
            Some(SecretString::from(String::from_utf8(plain.to_vec())?))
        }
        None => None,
    };
    Ok(Provider {
        base_url: s.base_url.clone(),
        model: s.model.clone(),
        api_key,
        token_field: s.token_field.clone(),
        max_reply_tokens: s.max_reply_tokens.clamp(16, 16_384) as u32,
        timeout: Duration::from_millis(s.timeout_ms.max(1) as u64),
        max_retries: s.max_retries.clamp(0, 10) as u32,
        policy: policy(state),
    })
}

/// Words worth searching for: no placeholders, no short or common words.
fn search_terms(redacted: &str) -> Vec<String> {
    const COMMON: &[&str] = &[
        "the", "and", "for", "you", "your", "are", "was", "what", "when", "where", "which", "who",
        "how", "can", "could", "would", "does", "did", "have", "has", "with", "this", "that",
        "there", "from", "about", "please", "hello", "thanks", "want", "need", "know", "tell",
    ];
    // Placeholders (`[PHONE_1]`) are not words of the question.
    let mut plain = String::with_capacity(redacted.len());
    let mut inside = false;
    for ch in redacted.chars() {
        match ch {
            '[' => inside = true,
            ']' => {
                inside = false;
                plain.push(' ');
            }
            _ if inside => {}
            _ => plain.push(ch),
        }
    }
    let mut terms: Vec<String> = Vec::new();
    for token in plain.split(|c: char| !c.is_alphanumeric()) {
        let t = token.to_lowercase();
        if t.chars().count() >= 3 && !COMMON.contains(&t.as_str()) && !terms.contains(&t) {
            terms.push(t);
        }
    }
    terms.truncate(16);
    terms
}

/// Answers one customer message, or hands the conversation to a person.
pub async fn respond(state: &AppState, job: &Job) -> anyhow::Result<()> {
    let Some(text) = job.text.as_deref() else {
        return Ok(());
    };
    let Some(s) = state
        .store
        .assistant_settings(&job.work.workspace_id)
        .await?
    else {
        return Ok(());
    };
    let channels: Vec<String> = serde_json::from_str(&s.channels).unwrap_or_default();
    if !s.enabled || !channels.contains(&job.work.channel_id) {
        return Ok(());
    }
    let c = &job.conversation;
    if c.assistant_paused || c.assignee_id.is_some() {
        metrics::counter!("waypost_assistant_quiet_total").increment(1);
        return Ok(());
    }
    // The shield first: a smishing text never reaches the model.
    let verdict = state
        .shield
        .scan(&waypost_shield::ScanInput::text(text.to_owned()));
    if verdict.label == waypost_shield::Label::Smishing {
        return hand_off(state, job, &s, Handoff::Smishing).await;
    }
    if let Some(h) = handoff_before_model(text) {
        return hand_off(state, job, &s, h).await;
    }
    if c.assistant_turns >= s.turn_cap {
        return hand_off(state, job, &s, Handoff::TurnCap).await;
    }
    let now = state.clock.now();
    let month = budget_month(now);
    let used = if s.usage_month == month {
        s.tokens_used
    } else {
        0
    };
    // The workspace's own budget, then its plan: the feature and the month's token quota.
    let plan_allows = state
        .quotas
        .check_feature(&s.workspace_id, waypost_core::plan::Feature::Assistant)
        .and_then(|()| {
            state.quotas.check(
                &s.workspace_id,
                waypost_core::usage::ASSISTANT_TOKENS,
                1,
                now,
            )
        });
    if used >= s.monthly_token_budget || plan_allows.is_err() {
        return hand_off(state, job, &s, Handoff::BudgetExhausted).await;
    }
    let redaction = pii::redact(text);
    for (kind, n) in redaction.counts() {
        metrics::counter!("waypost_assistant_redactions_total", "kind" => kind.as_str())
            .increment(u64::from(*n));
    }
    let passages = state
        .store
        .search_knowledge(&s.workspace_id, &search_terms(&redaction.text), PASSAGES)
        .await?;
    let messages = [
        ChatMessage {
            role: "system",
            content: system_prompt(&passages),
        },
        ChatMessage {
            role: "user",
            content: redaction.text.clone(),
        },
    ];
    let started = Instant::now();
    let answer = llm::complete(&provider(state, &s)?, &messages).await;
    metrics::histogram!("waypost_assistant_latency_seconds")
        .record(started.elapsed().as_secs_f64());
    let answer = match answer {
        Ok(a) => a,
        Err(e) => {
            tracing::warn!(error = %e, conversation = %c.id, "assistant provider failed; handing off");
            return hand_off(state, job, &s, Handoff::ProviderFailed).await;
        }
    };
    let tokens = (answer.usage.prompt_tokens + answer.usage.completion_tokens) as i64;
    state
        .store
        .charge_assistant_tokens(&s.workspace_id, &job.work.channel_id, &month, tokens, now)
        .await?;
    super::plans::record_use(
        state,
        &s.workspace_id,
        waypost_core::usage::ASSISTANT_TOKENS,
        tokens,
    )
    .await;
    metrics::counter!("waypost_assistant_tokens_total", "kind" => "prompt")
        .increment(answer.usage.prompt_tokens);
    metrics::counter!("waypost_assistant_tokens_total", "kind" => "completion")
        .increment(answer.usage.completion_tokens);
    let reply = match judge_answer(
        answer.content.as_deref(),
        answer.refusal.as_deref(),
        answer.finish_reason.as_deref(),
    ) {
        Ok(reply) => redaction.restore(&reply),
        Err(h) => return hand_off(state, job, &s, h).await,
    };
    send_text(state, job, &reply, "assistant").await?;
    state.store.count_assistant_turn(&c.id).await?;
    metrics::counter!("waypost_assistant_answers_total").increment(1);
    let redactions: serde_json::Map<String, serde_json::Value> = redaction
        .counts()
        .iter()
        .map(|(k, n)| (k.as_str().to_owned(), (*n).into()))
        .collect();
    // What happened, never what was said.
    let audit = NewAuditEvent::new(
        Some(job.ctx.workspace_id),
        Actor::System,
        "assistant.answered",
    )
    .target("conversation", c.id.clone())
    .details(serde_json::json!({
        "model": s.model,
        "prompt_tokens": answer.usage.prompt_tokens,
        "completion_tokens": answer.usage.completion_tokens,
        "redactions": redactions,
        "passages": passages.len(),
        "attempts": answer.attempts,
        "latency_ms": started.elapsed().as_millis() as u64,
    }));
    state.store.record_assistant_audit(audit).await?;
    Ok(())
}

/// The assistant goes quiet in the conversation, which goes to the workspace's
/// handoff member (or the unassigned queue); the customer hears the fallback
/// message, unless the message was smishing.
async fn hand_off(
    state: &AppState,
    job: &Job,
    s: &AssistantSettingsRow,
    why: Handoff,
) -> anyhow::Result<()> {
    if why != Handoff::Smishing {
        send_text(state, job, &s.fallback_message, "handoff").await?;
    }
    let now: DateTime<Utc> = state.clock.now();
    let audit = NewAuditEvent::new(
        Some(job.ctx.workspace_id),
        Actor::System,
        "assistant.handed_off",
    )
    .target("conversation", job.conversation.id.clone())
    .details(serde_json::json!({"reason": why.as_str(), "assignee": s.handoff_assignee}));
    state
        .store
        .hand_off_conversation(
            &job.conversation.id,
            s.handoff_assignee.as_deref(),
            now,
            audit,
        )
        .await?;
    metrics::counter!("waypost_assistant_handoffs_total", "reason" => why.as_str()).increment(1);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn search_terms_skip_placeholders_and_common_words() {
        let t = search_terms("What are your opening hours? Call me at [PHONE_1] please");
        assert_eq!(t, vec!["opening", "hours", "call"]);
    }
}
