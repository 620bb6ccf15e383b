//! The live event stream as an operation: one task per open stream turns the
//! process's event feed (see [`crate::event_feed`]) into [`Frame`]s for one
//! caller: its workspace, the types it may read, each event's webhook body.
//!
//! A stream that resumes (`Last-Event-ID` or `since`) first replays the
//! workspace's events after that id from the store, page by page, up to the
//! feed's watermark, then continues with the feed's events above it: no gap,
//! no duplicate. A stream that lags behind the feed catches up the same way.
//! If events after the requested id were purged (retention), the stream says
//! so first with a `stream.gap` event and starts at the oldest event kept.

use std::time::Duration;

use axum::http::StatusCode;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::mpsc;
use waypost_core::events::EventType;
use waypost_store::{CustomerEventRow, StoreError};

use super::event_access::StreamAccess;
use crate::error::{ApiError, Problem};
use crate::event_feed::{FeedEvent, Subscription, TooManyStreams};
use crate::state::AppState;

/// The reconnection delay every stream announces first.
pub const RETRY: Duration = Duration::from_millis(3000);
/// The event a stream sends when events after the requested id are gone.
pub const GAP_EVENT: &str = "stream.gap";
/// Events read from the store per page while replaying.
const PAGE: u32 = 200;
/// Frames queued for a client before the stream waits for it.
const FRAME_BUFFER: usize = 64;
/// How long a new stream waits for an idle feed to start.
const START_WAIT: Duration = Duration::from_secs(10);

/// What a stream sends; the HTTP layer writes it as Server-Sent Events.
#[derive(Debug, Clone, PartialEq)]
pub enum Frame {
    /// The client's reconnection delay.
    Retry(Duration),
    /// An event. `id` (the event's `seq`) is absent on stream notices and on
    /// late events, so the client's `Last-Event-ID` never moves backwards.
    Event {
        id: Option<i64>,
        event: String,
        data: String,
    },
}

/// Opens a stream for a cleared caller, resuming after `after` if given.
/// Answers 429 when the workspace already has as many streams as allowed.
pub fn open(
    state: &AppState,
    access: StreamAccess,
    after: Option<i64>,
) -> Result<mpsc::Receiver<Frame>, ApiError> {
    let workspace = access.workspace_id.to_string();
    let sub = state.event_feed.subscribe(&workspace).map_err(too_many)?;
    let (tx, rx) = mpsc::channel(FRAME_BUFFER);
    let recheck = Duration::from_millis(state.config.event_stream_recheck_ms);
    let catch_up =
        Duration::from_millis(state.config.event_stream_gap_grace_ms) + Duration::from_secs(1);
    let pump = Pump {
        state: state.clone(),
        access,
        workspace,
        sub,
        tx,
        cursor: 0,
        origin: 0,
        recheck,
        catch_up,
    };
    tokio::spawn(pump.run(after));
    Ok(rx)
}

fn too_many(e: TooManyStreams) -> ApiError {
    Problem::new(
        StatusCode::TOO_MANY_REQUESTS,
        "too-many-streams",
        "Too many event streams",
        format!(
            "This workspace already has {} open event streams on this server; close one (or share one stream between screens) and retry.",
            e.limit
        ),
    )
    .with("limit", e.limit.into())
    .into()
}

/// Why a stream ended.
enum Stop {
    ClientGone,
    Shutdown,
    Revoked,
    Failed(StoreError),
}

impl From<StoreError> for Stop {
    fn from(e: StoreError) -> Self {
        Stop::Failed(e)
    }
}

enum Wake {
    Event(std::sync::Arc<FeedEvent>),
    Lagged,
    Recheck,
    Stop(Stop),
}

struct Pump {
    state: AppState,
    access: StreamAccess,
    workspace: String,
    sub: Subscription,
    tx: mpsc::Sender<Frame>,
    /// The highest `seq` this stream has accounted for (delivered, skipped or replayed).
    cursor: i64,
    /// Where the stream started: late events above it have not been seen.
    origin: i64,
    recheck: Duration,
    catch_up: Duration,
}

impl Pump {
    async fn run(mut self, after: Option<i64>) {
        match self.serve(after).await {
            Stop::Failed(e) => {
                tracing::warn!(error = %e, "event stream ended: the store failed; the client will resume");
            }
            Stop::Revoked => {
                tracing::info!("event stream ended: its key or session is no longer valid")
            }
            Stop::ClientGone | Stop::Shutdown => {}
        }
    }

    async fn serve(&mut self, after: Option<i64>) -> Stop {
        let Some(watermark) = self.sub.watermark_at_least(0, START_WAIT).await else {
            tracing::warn!("event stream ended: the event feed did not start");
            return Stop::Shutdown;
        };
        // Sent after the start point is fixed: whatever a client does once it
        // sees the first frame happens "from now on".
        if let Err(stop) = self.send(Frame::Retry(RETRY)).await {
            return stop;
        }
        let started = match after {
            Some(n) => self.resume(n, watermark).await,
            None => {
                (self.cursor, self.origin) = (watermark, watermark);
                Ok(())
            }
        };
        if let Err(stop) = started {
            return stop;
        }
        self.live().await
    }

    async fn resume(&mut self, requested: i64, mut watermark: i64) -> Result<(), Stop> {
        if requested > watermark {
            // Another node may have published further; wait for this one to get there.
            match self.sub.watermark_at_least(requested, self.catch_up).await {
                Some(w) => watermark = w,
                None => {
                    // An id this database never issued (another server, a restore): start now.
                    self.gap(requested, watermark).await?;
                    (self.cursor, self.origin) = (watermark, watermark);
                    return Ok(());
                }
            }
        }
        let mut from = requested;
        let bounds = self.state.store.customer_event_seq_bounds().await?;
        if let Some((oldest, _)) = bounds
            && requested < oldest - 1
        {
            self.gap(requested, oldest - 1).await?;
            from = oldest - 1;
        }
        (self.cursor, self.origin) = (from, from);
        self.replay(watermark).await
    }

    async fn gap(&self, requested: i64, resumed: i64) -> Result<(), Stop> {
        let data = serde_json::json!({"requested_after": requested, "resumed_after": resumed});
        self.send(Frame::Event {
            id: None,
            event: GAP_EVENT.into(),
            data: data.to_string(),
        })
        .await
    }

    /// Sends the workspace's events in `(cursor, upto]` from the store.
    async fn replay(&mut self, upto: i64) -> Result<(), Stop> {
        loop {
            let rows = self
                .state
                .store
                .customer_events_after(&self.workspace, self.cursor, PAGE)
                .await?;
            let full = rows.len() == PAGE as usize;
            for row in rows {
                if row.seq > upto {
                    self.cursor = upto;
                    return Ok(());
                }
                self.cursor = row.seq;
                self.deliver(&row, true).await?;
            }
            if !full {
                self.cursor = self.cursor.max(upto);
                return Ok(());
            }
        }
    }

    async fn live(&mut self) -> Stop {
        let start = tokio::time::Instant::now() + self.recheck;
        let mut recheck = tokio::time::interval_at(start, self.recheck);
        loop {
            let wake = tokio::select! {
                _ = self.sub.shutdown.cancelled() => Wake::Stop(Stop::Shutdown),
                _ = self.tx.closed() => Wake::Stop(Stop::ClientGone),
                _ = recheck.tick() => Wake::Recheck,
                got = self.sub.events.recv() => match got {
                    Ok(event) => Wake::Event(event),
                    Err(RecvError::Lagged(_)) => Wake::Lagged,
                    Err(RecvError::Closed) => Wake::Stop(Stop::Shutdown),
                },
            };
            let step = match wake {
                Wake::Stop(stop) => return stop,
                Wake::Recheck if !self.access.still_valid(&self.state).await => {
                    return Stop::Revoked;
                }
                Wake::Recheck => Ok(()),
                Wake::Event(event) => self.on_event(&event).await,
                // The channel dropped events for this slow stream: read them from the store.
                Wake::Lagged => {
                    let upto = self.sub.watermark();
                    self.replay(upto).await
                }
            };
            if let Err(stop) = step {
                return stop;
            }
        }
    }

    async fn on_event(&mut self, event: &FeedEvent) -> Result<(), Stop> {
        let row = &event.row;
        if event.late {
            if row.seq > self.origin && row.workspace_id == self.workspace {
                self.deliver(row, false).await?;
            }
            return Ok(());
        }
        if row.seq <= self.cursor {
            return Ok(());
        }
        self.cursor = row.seq;
        if row.workspace_id == self.workspace {
            self.deliver(row, true).await?;
        }
        Ok(())
    }

    /// Sends one event of the workspace if the stream carries its type.
    async fn deliver(&self, row: &CustomerEventRow, with_id: bool) -> Result<(), Stop> {
        let wanted = row
            .event_type
            .parse::<EventType>()
            .is_ok_and(|t| self.access.types.contains(&t));
        if !wanted {
            return Ok(());
        }
        let mut body = match crate::events::open(&self.state.keys, self.state.store.as_ref(), row)
            .await
        {
            Ok(body) => body,
            Err(_) => {
                // Crypto-shredded (erased contact) or unreadable: nothing to show.
                tracing::debug!(event_id = %row.id, event_type = %row.event_type, "event stream: skipping an event that cannot be opened");
                return Ok(());
            }
        };
        if let Some(fields) = body.as_object_mut() {
            // The webhook's `webhook-id`: consumers of both can deduplicate.
            fields.insert("id".into(), row.id.clone().into());
        }
        self.send(Frame::Event {
            id: with_id.then_some(row.seq),
            event: row.event_type.clone(),
            data: body.to_string(),
        })
        .await
    }

    async fn send(&self, frame: Frame) -> Result<(), Stop> {
        tokio::select! {
            sent = self.tx.send(frame) => sent.map_err(|_| Stop::ClientGone),
            _ = self.sub.shutdown.cancelled() => Err(Stop::Shutdown),
        }
    }
}
