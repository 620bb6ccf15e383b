//! Group commit of accepted messages. Requests hand their fully built rows to
//! one writer task, which commits whatever has queued up meanwhile in a single
//! transaction and answers each request. Under load, one fsync covers hundreds
//! of messages; alone, a message waits for nobody.

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};
use waypost_store::messaging::{AcceptOutcome, NewOutboundMessage};
use waypost_store::{Store, StoreError};

/// Messages committed together at most; keeps one batch's statement under
/// SQLite's 32,766 placeholders (about 65 per message).
const MAX_BATCH: usize = 256;
/// Requests waiting for the writer at most; beyond it, senders wait (backpressure).
const QUEUE: usize = 8192;

type Reply = oneshot::Sender<Result<AcceptOutcome, StoreError>>;

/// The handle requests use to have their message written.
#[derive(Clone)]
pub struct Acceptor {
    queue: mpsc::Sender<(NewOutboundMessage, Reply)>,
}

impl Acceptor {
    /// Starts the writer task on the current runtime.
    pub fn start(store: Arc<dyn Store>) -> Self {
        let (queue, rx) = mpsc::channel(QUEUE);
        tokio::spawn(writer(store, rx));
        Self { queue }
    }

    /// Writes one message (with its outbox row, idempotency record, audit and
    /// customer events) and returns once it is committed.
    pub async fn accept(&self, message: NewOutboundMessage) -> Result<AcceptOutcome, StoreError> {
        let (tx, rx) = oneshot::channel();
        self.queue
            .send((message, tx))
            .await
            .map_err(|_| StoreError::Unavailable("the message writer has stopped".into()))?;
        rx.await
            .map_err(|_| StoreError::Unavailable("the message writer has stopped".into()))?
    }
}

async fn writer(store: Arc<dyn Store>, mut rx: mpsc::Receiver<(NewOutboundMessage, Reply)>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let (messages, replies): (Vec<_>, Vec<_>) = std::mem::take(&mut batch).into_iter().unzip();
        metrics::histogram!("waypost_accept_batch_size").record(messages.len() as f64);
        match store.accept_messages(&messages).await {
            Ok(outcomes) => {
                for (reply, outcome) in replies.into_iter().zip(outcomes) {
                    let _ = reply.send(Ok(outcome));
                }
            }
            // One bad message must not fail the others: write them one by one.
            Err(_) if messages.len() > 1 => {
                for (message, reply) in messages.into_iter().zip(replies) {
                    let result = store
                        .accept_messages(std::slice::from_ref(&message))
                        .await
                        .map(|mut o| o.pop().unwrap_or(AcceptOutcome::Accepted));
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
