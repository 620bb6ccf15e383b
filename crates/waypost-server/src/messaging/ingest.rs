//! Group commit of provider webhooks. A verified webhook's rows, fully built
//! and sealed by its request, go to one writer task, which commits whatever
//! has queued meanwhile in a single transaction (multi-row statements for the
//! messages of all of them) and answers each request after the commit, so the
//! provider's 200 still means "stored". Under load one commit covers many
//! webhooks; alone, a webhook waits for nobody.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use tokio::sync::{mpsc, oneshot};
use waypost_crypto::KeyRing;
use waypost_store::dispatch::StatusChange;
use waypost_store::inbound::{WebhookOutcome, WebhookWrite};
use waypost_store::{NewCustomerEvent, Store, StoreError};

use crate::guard::clock::Clock;
use crate::keys::Keys;

/// Seals a status change's customer event (the dispatcher's, passed in at
/// start-up so this module does not depend on the dispatcher).
pub type StatusSealer = fn(&KeyRing, &StatusChange, DateTime<Utc>) -> NewCustomerEvent;

/// Webhooks committed together at most.
const MAX_BATCH: usize = 256;
/// Webhooks waiting for the writer at most; beyond it, requests wait (backpressure).
const QUEUE: usize = 8192;

type Reply = oneshot::Sender<Result<WebhookOutcome, StoreError>>;

/// The handle webhook requests use to have their writes committed.
#[derive(Clone)]
pub struct Ingestor {
    queue: mpsc::Sender<(WebhookWrite, Reply)>,
}

impl Ingestor {
    /// Starts the writer task on the current runtime.
    pub fn start(
        store: Arc<dyn Store>,
        keys: Arc<Keys>,
        clock: Arc<dyn Clock>,
        sealer: StatusSealer,
    ) -> Self {
        let (queue, rx) = mpsc::channel(QUEUE);
        tokio::spawn(writer(store, keys, clock, sealer, rx));
        Self { queue }
    }

    /// Writes one webhook's messages and statuses; returns once committed.
    pub async fn record(&self, webhook: WebhookWrite) -> Result<WebhookOutcome, StoreError> {
        let stopped = || StoreError::Unavailable("the webhook writer has stopped".into());
        let (tx, rx) = oneshot::channel();
        self.queue
            .send((webhook, tx))
            .await
            .map_err(|_| stopped())?;
        rx.await.map_err(|_| stopped())?
    }
}

async fn writer(
    store: Arc<dyn Store>,
    keys: Arc<Keys>,
    clock: Arc<dyn Clock>,
    sealer: StatusSealer,
    mut rx: mpsc::Receiver<(WebhookWrite, Reply)>,
) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let (webhooks, replies): (Vec<_>, Vec<_>) = std::mem::take(&mut batch).into_iter().unzip();
        metrics::histogram!("waypost_ingest_batch_size").record(webhooks.len() as f64);
        let ring = keys.current();
        let now = clock.now();
        let seal = move |c: &StatusChange| sealer(&ring, c, now);
        match store.record_webhooks(&webhooks, &seal).await {
            Ok(outcomes) => {
                for (reply, outcome) in replies.into_iter().zip(outcomes) {
                    let _ = reply.send(Ok(outcome));
                }
            }
            // One bad webhook must not fail the others: write them one by one.
            Err(_) if webhooks.len() > 1 => {
                for (webhook, reply) in webhooks.into_iter().zip(replies) {
                    let result = store
                        .record_webhooks(std::slice::from_ref(&webhook), &seal)
                        .await
                        .map(|mut o| o.pop().unwrap_or_default());
                    let _ = reply.send(result);
                }
            }
            Err(e) => {
                if let Some(reply) = replies.into_iter().next() {
                    let _ = reply.send(Err(e));
                }
            }
        }
    }
}
