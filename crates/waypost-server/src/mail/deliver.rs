//! The mail worker: leases due rows of the outbox, opens each sealed letter,
//! hands it to the SMTP server, and records the outcome. A refused or failed
//! attempt is retried with doubling delays ([`retry_delay`]) up to
//! [`MAX_ATTEMPTS`]; a permanent refusal (5xx) gives up at once. Either end
//! blanks the sealed content; the delivery records themselves are purged
//! after `mail_retention_days`. Errors recorded and logged carry the SMTP
//! status code only, never the server's text (it may echo the address).

use std::time::Duration;

use lettre::message::{Mailbox, MultiPart};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use secrecy::ExposeSecret;
use tokio_util::sync::CancellationToken;
use waypost_core::mail::{MAX_ATTEMPTS, retry_delay};
use waypost_crypto::Aad;
use waypost_store::mail::ClaimedMail;

use super::{COLUMN, Letter, TABLE};
use crate::state::AppState;

const BATCH: u32 = 20;
const LEASE_SECS: i64 = 120;
const PURGE_BATCH: u32 = 500;

type Transport = AsyncSmtpTransport<Tokio1Executor>;

/// Runs until `shutdown`; returns at once when no SMTP server is configured.
pub async fn run(state: AppState, shutdown: CancellationToken) {
    let Some(sender) = Sender::from_config(&state.config) else {
        return;
    };
    let poll = Duration::from_millis(state.config.mail_poll_ms);
    let mut last_purge = std::time::Instant::now() - Duration::from_secs(3600);
    loop {
        match send_due(&state, &sender).await {
            Ok(n) if n == BATCH as usize => continue,
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "mail step failed; retrying later"),
        }
        if last_purge.elapsed() >= Duration::from_secs(3600) {
            last_purge = std::time::Instant::now();
            purge(&state).await;
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(poll) => {}
        }
    }
}

/// The configured SMTP connection and sender address.
pub struct Sender {
    transport: Transport,
    from: Mailbox,
}

impl Sender {
    pub fn from_config(config: &crate::config::Config) -> Option<Self> {
        let url = config.smtp_url.as_ref()?;
        // Both were checked when the configuration loaded.
        let transport = Transport::from_url(url.expose_secret())
            .ok()?
            .timeout(Some(Duration::from_secs(30)))
            .build();
        let from = config.mail_from.as_deref()?.parse().ok()?;
        Some(Self { transport, from })
    }
}

/// Sends one batch of due mail; returns how many were claimed.
pub async fn send_due(state: &AppState, sender: &Sender) -> anyhow::Result<usize> {
    let now = state.clock.now();
    let claimed = state
        .store
        .claim_due_mail(now, now + chrono::Duration::seconds(LEASE_SECS), BATCH)
        .await?;
    for mail in &claimed {
        let outcome = match open(state, mail).await {
            Ok(letter) => send(sender, &letter).await,
            Err(e) => Err(Failure::permanent(e)),
        };
        let now = state.clock.now();
        match outcome {
            Ok(()) => {
                state.store.mark_mail_sent(&mail.id, now).await?;
                tracing::info!(mail = %mail.id, kind = %mail.kind, to = %mail.recipient_hint, "mail sent");
            }
            Err(f) => {
                let attempts = mail.attempts + 1;
                let retry_at = (!f.permanent && attempts < MAX_ATTEMPTS)
                    .then(|| now + retry_delay(mail.attempts, state.config.mail_retry_base_ms));
                state
                    .store
                    .mark_mail_failed(&mail.id, &f.reason, retry_at, now)
                    .await?;
                tracing::warn!(mail = %mail.id, kind = %mail.kind, to = %mail.recipient_hint,
                    attempts, error = %f.reason, given_up = retry_at.is_none(), "mail not sent");
            }
        }
    }
    Ok(claimed.len())
}

async fn open(state: &AppState, mail: &ClaimedMail) -> Result<Letter, String> {
    let sealed = mail.sealed.as_ref().ok_or("the sealed content is gone")?;
    let plain = state
        .keys
        .decrypt(
            state.store.as_ref(),
            Aad::new(TABLE, COLUMN, &mail.id),
            sealed,
        )
        .await
        .map_err(|_| "cannot decrypt the sealed content".to_owned())?;
    serde_json::from_slice(&plain).map_err(|_| "the sealed content is not a letter".to_owned())
}

struct Failure {
    reason: String,
    permanent: bool,
}

impl Failure {
    fn permanent(reason: String) -> Self {
        Self {
            reason,
            permanent: true,
        }
    }
}

async fn send(sender: &Sender, letter: &Letter) -> Result<(), Failure> {
    let to: Mailbox = letter
        .to
        .parse()
        .map_err(|_| Failure::permanent("the recipient address is not valid".into()))?;
    let message = Message::builder()
        .from(sender.from.clone())
        .to(to)
        .subject(&letter.subject)
        .multipart(MultiPart::alternative_plain_html(
            letter.text.clone(),
            letter.html.clone(),
        ))
        .map_err(|e| Failure::permanent(format!("cannot build the message: {e}")))?;
    sender
        .transport
        .send(message)
        .await
        .map(|_| ())
        .map_err(|e| Failure {
            reason: match e.status() {
                Some(code) => format!("the SMTP server answered {code}"),
                None if e.is_timeout() => "the SMTP server did not answer in time".into(),
                None => "cannot reach or talk to the SMTP server".into(),
            },
            permanent: e.is_permanent(),
        })
}

async fn purge(state: &AppState) {
    let before =
        state.clock.now() - chrono::Duration::days(state.config.mail_retention_days.into());
    loop {
        match state.store.purge_finished_mail(before, PURGE_BATCH).await {
            Ok(n) if n == PURGE_BATCH as u64 => continue,
            Ok(_) => return,
            Err(e) => {
                tracing::warn!(error = %e, "cannot purge old mail records; retrying later");
                return;
            }
        }
    }
}
