//! The live tail of customer events behind `GET /v1/events/stream`. One
//! poller per process reads every workspace's new events with one indexed
//! query (`seq > high`) every few tens of milliseconds and publishes them on a
//! broadcast channel; each open stream picks its workspace's events from it.
//! Reading the database rather than listening to this node's writes is what
//! makes an event committed by any node reach streams on every node.
//!
//! The poller starts with the first stream and stops when the last one ends.
//! Alongside the events it publishes a *watermark*: every event at or below it
//! has been published, so a stream can replay from the store up to the
//! watermark and take the rest from the channel without gap or duplicate.

pub mod sequencer;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{Notify, broadcast, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use waypost_store::{CustomerEventRow, Store};

use sequencer::{Release, Sequencer};

/// Rows one tail read returns at most; a full read is followed at once by another.
const TAIL_BATCH: u32 = 500;
/// Events the channel holds for a slow stream before it lags (and catches up from the store).
const CHANNEL_CAPACITY: usize = 1024;
/// How long a given-up hole is still watched for a late commit.
const WATCH_LATE: Duration = Duration::from_secs(30);
/// How far below the newest event the first read looks for transactions still in flight.
const START_LOOKBACK: i64 = 32;
/// The watermark before the poller has read the table.
const NOT_STARTED: i64 = -1;

/// Tunables, from the `event_stream_*` settings.
#[derive(Debug, Clone, Copy)]
pub struct FeedSettings {
    pub poll: Duration,
    pub gap_grace: Duration,
    pub max_per_workspace: usize,
}

impl FeedSettings {
    pub fn from_config(c: &crate::config::Config) -> Self {
        Self {
            poll: Duration::from_millis(c.event_stream_poll_ms.max(5)),
            gap_grace: Duration::from_millis(c.event_stream_gap_grace_ms),
            max_per_workspace: c.event_stream_max_per_workspace as usize,
        }
    }
}

/// One published event. `late`: its row committed after later rows had been
/// published (see [`sequencer`]).
#[derive(Debug)]
pub struct FeedEvent {
    pub row: CustomerEventRow,
    pub late: bool,
}

/// The workspace already has as many open streams as allowed.
#[derive(Debug, Clone, Copy)]
pub struct TooManyStreams {
    pub limit: usize,
}

#[derive(Default)]
struct Open {
    per_workspace: HashMap<String, usize>,
    total: usize,
    polling: bool,
}

pub struct Feed {
    store: Arc<dyn Store>,
    settings: FeedSettings,
    events: broadcast::Sender<Arc<FeedEvent>>,
    watermark: watch::Sender<i64>,
    wake: Notify,
    shutdown: CancellationToken,
    open: Mutex<Open>,
}

/// An open stream's view of the feed; dropping it closes the stream's slot.
pub struct Subscription {
    pub events: broadcast::Receiver<Arc<FeedEvent>>,
    watermark: watch::Receiver<i64>,
    pub shutdown: CancellationToken,
    _slot: Slot,
}

impl Subscription {
    /// The watermark once the poller has started; `None` if it does not within `wait`.
    pub async fn watermark_at_least(&mut self, floor: i64, wait: Duration) -> Option<i64> {
        let floor = floor.max(0);
        tokio::time::timeout(wait, self.watermark.wait_for(|w| *w >= floor))
            .await
            .ok()?
            .ok()
            .map(|w| *w)
    }

    /// The current watermark (everything at or below it has been published).
    pub fn watermark(&self) -> i64 {
        *self.watermark.borrow()
    }
}

struct Slot {
    feed: Arc<Feed>,
    workspace: String,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self.feed.lock();
        if let Some(n) = open.per_workspace.get_mut(&self.workspace) {
            *n -= 1;
            if *n == 0 {
                open.per_workspace.remove(&self.workspace);
            }
        }
        open.total -= 1;
        metrics::gauge!("waypost_event_streams_open").set(open.total as f64);
    }
}

impl Feed {
    pub fn new(store: Arc<dyn Store>, settings: FeedSettings) -> Arc<Self> {
        Arc::new(Self {
            store,
            settings,
            events: broadcast::channel(CHANNEL_CAPACITY).0,
            watermark: watch::channel(NOT_STARTED).0,
            wake: Notify::new(),
            shutdown: CancellationToken::new(),
            open: Mutex::default(),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Open> {
        self.open.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Opens a stream's slot in `workspace`, starting the poller if it is idle.
    pub fn subscribe(self: &Arc<Self>, workspace: &str) -> Result<Subscription, TooManyStreams> {
        let mut open = self.lock();
        let n = open.per_workspace.get(workspace).copied().unwrap_or(0);
        if n >= self.settings.max_per_workspace {
            return Err(TooManyStreams {
                limit: self.settings.max_per_workspace,
            });
        }
        *open.per_workspace.entry(workspace.to_owned()).or_default() += 1;
        open.total += 1;
        metrics::gauge!("waypost_event_streams_open").set(open.total as f64);
        // Subscribed under the lock: a poller deciding to stop sees this stream.
        let events = self.events.subscribe();
        if !open.polling && !self.shutdown.is_cancelled() {
            open.polling = true;
            tokio::spawn(self.clone().poll());
        }
        Ok(Subscription {
            events,
            watermark: self.watermark.subscribe(),
            shutdown: self.shutdown.clone(),
            _slot: Slot {
                feed: self.clone(),
                workspace: workspace.to_owned(),
            },
        })
    }

    /// Streams open on this node.
    pub fn open_streams(&self) -> usize {
        self.lock().total
    }

    /// Reads the tail now instead of at the next tick (after this node committed events).
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Ends every stream and the poller (server shutdown).
    pub fn close(&self) {
        self.shutdown.cancel();
    }

    /// Stops the poller when no stream is left; decided under the lock that
    /// `subscribe` takes, so a new stream either sees it running or starts another.
    fn stop_if_unused(&self) -> bool {
        let mut open = self.lock();
        if open.total == 0 || self.shutdown.is_cancelled() {
            open.polling = false;
            self.watermark.send_replace(NOT_STARTED);
            return true;
        }
        false
    }

    /// Waits for the next tick, a wake-up or shutdown; `false` on shutdown.
    async fn pause(&self, d: Duration) -> bool {
        tokio::select! {
            _ = self.shutdown.cancelled() => false,
            _ = self.wake.notified() => true,
            _ = tokio::time::sleep(d) => true,
        }
    }

    async fn poll(self: Arc<Self>) {
        let Some(mut seq) = self.start().await else {
            return;
        };
        loop {
            if self.stop_if_unused() {
                return;
            }
            let read = self
                .store
                .customer_events_tail(seq.high(), &seq.missing(), TAIL_BATCH)
                .await;
            let mut pause = self.settings.poll;
            match read {
                Ok(rows) => {
                    let full = rows.len() == TAIL_BATCH as usize;
                    let rows = rows.into_iter().map(|r| (r.seq, r)).collect();
                    for release in seq.ingest(rows, Instant::now()) {
                        let (row, late) = match release {
                            Release::InOrder(_, row) => (row, false),
                            Release::Late(_, row) => (row, true),
                        };
                        // No receiver is fine: streams may all be between reads.
                        let _ = self.events.send(Arc::new(FeedEvent { row, late }));
                    }
                    // After the events: a stream that reads the watermark has them queued.
                    self.watermark.send_replace(seq.watermark());
                    if full {
                        continue;
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "event stream: cannot read new events; retrying");
                    pause = Duration::from_secs(1);
                }
            }
            if !self.pause(pause).await {
                self.stop_if_unused();
                return;
            }
        }
    }

    /// The first read: start after the newest event, watching the numbers just
    /// below it that are missing (transactions still in flight).
    async fn start(&self) -> Option<Sequencer<CustomerEventRow>> {
        loop {
            if self.stop_if_unused() {
                return None;
            }
            match self.first_read().await {
                Ok(seq) => {
                    self.watermark.send_replace(seq.watermark());
                    return Some(seq);
                }
                Err(e) => {
                    tracing::warn!(error = %e, "event stream: cannot read the event table; retrying");
                }
            }
            if !self.pause(Duration::from_secs(1)).await {
                self.stop_if_unused();
                return None;
            }
        }
    }

    async fn first_read(&self) -> waypost_store::Result<Sequencer<CustomerEventRow>> {
        let high = match self.store.customer_event_seq_bounds().await? {
            Some((_, max)) => max,
            None => 0,
        };
        let from = (high - START_LOOKBACK).max(0);
        let present: std::collections::HashSet<i64> = self
            .store
            .customer_events_tail(from, &[], START_LOOKBACK as u32)
            .await?
            .into_iter()
            .map(|r| r.seq)
            .collect();
        let missing = (from + 1..=high).filter(|s| !present.contains(s));
        Ok(Sequencer::new(
            high,
            missing,
            Instant::now(),
            self.settings.gap_grace,
            WATCH_LATE,
        ))
    }
}
