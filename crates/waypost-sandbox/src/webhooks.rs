//! Webhook delivery (of status progressions built in `statuses`, inbound
//! messages, template reviews). Events go through a bounded queue to one worker, which
//! does the GET verify handshake once per URL, signs each POST with
//! `X-Hub-Signature-256` over the exact bytes, retries failures with
//! exponential backoff, and applies webhook faults (drop, duplicate, delay,
//! reorder) with the seeded RNG.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rand::Rng;
use tokio::sync::{Semaphore, mpsc};
use tokio_util::sync::CancellationToken;
use waypost_cloudapi::webhook::{Entry, MessagesValue, Metadata};
use waypost_cloudapi::{Change, SIGNATURE_HEADER, WebhookPayload, sign};

use crate::config::{NumberConfig, SandboxConfig};
use crate::state::Inner;

/// Concurrent deliveries in flight.
const MAX_IN_FLIGHT: usize = 64;

/// One webhook POST to make.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub url: String,
    pub verify_token: String,
    pub app_secret: String,
    pub body: Arc<[u8]>,
}

#[derive(Clone)]
pub struct WebhookSender {
    tx: mpsc::Sender<Delivery>,
}

impl WebhookSender {
    /// Queues a delivery; a full queue counts as a dropped webhook.
    pub fn enqueue(&self, inner: &mut Inner, delivery: Delivery) {
        if self.tx.try_send(delivery).is_err() {
            inner.counters.webhooks_queue_full += 1;
        }
    }
}

pub fn now_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// A `phone_number_quality_update` change for `number` (`event`: `FLAGGED`,
/// `UNFLAGGED`, `DOWNGRADE` or `UPGRADE`).
pub fn quality_update(number: &NumberConfig, event: &str) -> WebhookPayload {
    WebhookPayload {
        object: "whatsapp_business_account".into(),
        entry: vec![Entry {
            id: number.waba_id.clone(),
            time: Some(now_secs() as i64),
            changes: vec![Change::Other {
                field: "phone_number_quality_update".into(),
                value: serde_json::json!({
                    "display_phone_number": number.display_number,
                    "event": event,
                    "current_limit": match number.messaging_tier {
                        0..=250 => "TIER_250",
                        251..=1_000 => "TIER_1K",
                        1_001..=10_000 => "TIER_10K",
                        10_001..=100_000 => "TIER_100K",
                        _ => "TIER_UNLIMITED",
                    },
                }),
            }],
        }],
    }
}

pub fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// A `messages` webhook for `number` with the given value parts.
pub fn messages_payload(number: &NumberConfig, value: MessagesValue) -> WebhookPayload {
    WebhookPayload {
        object: "whatsapp_business_account".into(),
        entry: vec![Entry {
            id: number.waba_id.clone(),
            time: None,
            changes: vec![Change::Messages(value)],
        }],
    }
}

pub fn metadata(number: &NumberConfig) -> Metadata {
    Metadata {
        display_phone_number: number.display_number.clone(),
        phone_number_id: number.id.clone(),
    }
}

/// Builds the delivery of `payload` to `number`'s webhook, if it has one
/// and webhooks are on.
pub fn delivery(
    config: &SandboxConfig,
    number: &NumberConfig,
    payload: &WebhookPayload,
) -> Option<Delivery> {
    let url = number
        .webhook_url
        .clone()
        .filter(|_| config.webhooks.enabled)?;
    let body = serde_json::to_vec(payload).ok()?;
    Some(Delivery {
        url,
        verify_token: number.verify_token.clone(),
        app_secret: number.app_secret.clone(),
        body: body.into(),
    })
}

/// Starts the delivery worker; it stops with `cancel`.
pub fn spawn_worker(
    inner: Arc<Mutex<Inner>>,
    config: Arc<SandboxConfig>,
    cancel: CancellationToken,
) -> WebhookSender {
    let (tx, mut rx) = mpsc::channel::<Delivery>(config.webhooks.queue_capacity.max(1));
    let mut http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_millis(config.webhooks.timeout_ms));
    if let Some(pem) = &config.webhooks.trusted_certificate_pem {
        match reqwest::Certificate::from_pem(pem.as_bytes()) {
            Ok(cert) => http = http.add_root_certificate(cert),
            Err(e) => {
                tracing::warn!(error = %e, "sandbox: trusted_certificate_pem is not a PEM certificate")
            }
        }
    }
    let http = http.build().unwrap_or_default();
    let worker = Worker {
        inner,
        config,
        http,
        in_flight: Arc::new(Semaphore::new(MAX_IN_FLIGHT)),
    };
    tokio::spawn(async move {
        let mut held: Option<Delivery> = None;
        loop {
            let d = tokio::select! {
                () = cancel.cancelled() => break,
                d = rx.recv() => match d { Some(d) => d, None => break },
            };
            let (drop, duplicate, delay, reorder) = worker.roll_faults();
            if drop {
                continue;
            }
            if reorder && held.is_none() {
                held = Some(d);
                continue;
            }
            let copies = if duplicate { 2 } else { 1 };
            for _ in 0..copies {
                worker.spawn_delivery(d.clone(), delay).await;
            }
            if let Some(h) = held.take() {
                worker.spawn_delivery(h, None).await;
            }
        }
    });
    WebhookSender { tx }
}

#[derive(Clone)]
struct Worker {
    inner: Arc<Mutex<Inner>>,
    config: Arc<SandboxConfig>,
    http: reqwest::Client,
    in_flight: Arc<Semaphore>,
}

impl Worker {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// (drop, duplicate, delay, reorder); always four draws.
    fn roll_faults(&self) -> (bool, bool, Option<Duration>, bool) {
        let mut inner = self.lock();
        let f = inner.faults.clone();
        let drop = inner.roll(f.webhook_drop);
        let dup = inner.roll(f.webhook_duplicate);
        let delay = inner.roll(f.webhook_delay);
        let reorder = inner.roll(f.webhook_reorder);
        let c = &mut inner.counters;
        if drop {
            c.webhooks_dropped += 1;
            return (true, false, None, false);
        }
        c.webhooks_duplicated += u64::from(dup);
        c.webhooks_reordered += u64::from(reorder);
        let delay = if delay {
            c.webhooks_delayed += 1;
            let max = f.webhook_delay_ms.max(1);
            Some(Duration::from_millis(inner.rng.random_range(0..=max)))
        } else {
            None
        };
        (false, dup, delay, reorder)
    }

    async fn spawn_delivery(&self, d: Delivery, delay: Option<Duration>) {
        let Ok(permit) = self.in_flight.clone().acquire_owned().await else {
            return;
        };
        let this = self.clone();
        tokio::spawn(async move {
            if let Some(delay) = delay {
                tokio::time::sleep(delay).await;
            }
            this.deliver_with_retries(&d).await;
            drop(permit);
        });
    }

    async fn deliver_with_retries(&self, d: &Delivery) {
        let max = self.config.webhooks.max_attempts.max(1);
        for attempt in 0..max {
            if attempt > 0 {
                let backoff = self
                    .config
                    .webhooks
                    .retry_base_ms
                    .saturating_mul(1 << (attempt - 1).min(16))
                    .min(self.config.webhooks.retry_max_ms);
                tokio::time::sleep(Duration::from_millis(backoff)).await;
            }
            if self.verified(d).await && self.post(d).await {
                self.lock().counters.webhooks_delivered += 1;
                return;
            }
            self.lock().counters.webhooks_failed_attempts += 1;
        }
        self.lock().counters.webhooks_given_up += 1;
    }

    /// The GET handshake Meta does before using a new callback URL.
    async fn verified(&self, d: &Delivery) -> bool {
        let challenge = {
            let mut inner = self.lock();
            if inner.verified_urls.contains(&d.url) {
                return true;
            }
            inner
                .rng
                .random_range(1_000_000_000u64..10_000_000_000)
                .to_string()
        };
        let resp = self
            .http
            .get(&d.url)
            .query(&[
                ("hub.mode", "subscribe"),
                ("hub.verify_token", d.verify_token.as_str()),
                ("hub.challenge", challenge.as_str()),
            ])
            .send()
            .await;
        let ok = match resp {
            Ok(r) if r.status().as_u16() == 200 => r.text().await.is_ok_and(|t| t == challenge),
            _ => false,
        };
        if ok {
            self.lock().verified_urls.insert(d.url.clone());
        }
        ok
    }

    async fn post(&self, d: &Delivery) -> bool {
        let signature = sign(d.app_secret.as_bytes(), &d.body);
        self.http
            .post(&d.url)
            .header("content-type", "application/json")
            .header(SIGNATURE_HEADER, signature)
            .body(d.body.to_vec())
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
    }
}
