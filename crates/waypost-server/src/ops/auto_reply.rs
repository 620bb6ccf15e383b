//! What an automated answer needs: the work item's context ([`Job`]) and
//! sending a text as an ordinary outbound message through `messages::accept`
//! (consent, window, shield), once per item and purpose (its idempotency key).

use sha2::{Digest, Sha256};
use waypost_cloudapi::OutboundContent;
use waypost_cloudapi::send::Text;
use waypost_store::automation::{AutomationWork, ConversationAutomation};

use super::Ctx;
use super::idempotency::IdempotencyKey;
use super::messages::{Answer, SendMessage, accept};
use crate::error::ApiError;
use crate::state::AppState;

/// One item's context: who, where, and what the customer wrote.
pub struct Job {
    pub ctx: Ctx,
    pub work: AutomationWork,
    pub conversation: ConversationAutomation,
    pub text: Option<zeroize::Zeroizing<String>>,
}

/// Sends `body` to the customer as an ordinary outbound message, once per item and purpose.
pub async fn send_text(
    state: &AppState,
    job: &Job,
    body: &str,
    purpose: &str,
) -> anyhow::Result<()> {
    let key = format!("automation:{}:{purpose}", job.work.id);
    let key = IdempotencyKey {
        request_hash: Sha256::digest(key.as_bytes()).to_vec(),
        key,
    };
    let req = SendMessage {
        channel_id: job.work.channel_id.clone(),
        to: None,
        user_id: None,
        contact_id: Some(job.work.contact_id.clone()),
        context: None,
        content: OutboundContent::Text(Text {
            body: body.to_owned(),
            preview_url: None,
        }),
        media_id: None,
    };
    match accept(state, &job.ctx, req, Some(&key)).await {
        Ok(Answer::Accepted(_)) | Ok(Answer::Replayed(_)) => Ok(()),
        // Refused by policy (opted out, window closed, shield): nothing to retry.
        Err(ApiError::Problem(p)) if p.status == 422 => {
            let slug = p.kind.rsplit('/').next().unwrap_or_default().to_owned();
            tracing::info!(reason = %slug, "automated reply refused by the send policy");
            metrics::counter!("waypost_automation_refused_total", "reason" => slug).increment(1);
            Ok(())
        }
        Err(e) => Err(anyhow::anyhow!("automated reply not accepted: {e}")),
    }
}
