//! The dispatcher: hands queued messages to the provider, exactly once.
//!
//! A supervisor holds a lease on each channel's rate limiter (table
//! `channel_leases`), so with several nodes on PostgreSQL one node at a time
//! sends for a number and the number's limit holds across the cluster; a dead
//! node's leases expire and move, and a node whose lease ran out (a renewal
//! stalled) stops calling the provider before another can take it. For each
//! owned channel a task claims due outbox rows in batches under a row lease,
//! marks each chunk's provider calls as started *before* making them (so a
//! crash leaves them in doubt, not silently resendable), waits for the
//! throughput window, the recipient's pair bucket and the circuit breaker,
//! sends with `biz_opaque_callback_data` = the message id, and records the
//! outcomes of the batch in one transaction.
//!
//! In-doubt sends (timeout, lost response, crash) are not resent until the
//! reconciliation period has passed without a status webhook carrying their
//! id; the inbound handler reconciles them when one arrives.

pub mod limits;
pub mod outcome;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use waypost_cloudapi::{CloudApiClient, OutboundMessage};
use waypost_crypto::Aad;
use waypost_store::dispatch::{SendOutcome, SendResult, StatusChange};
use waypost_store::messaging::{ChannelRow, OutboxRow};

use crate::messaging::client_config_for;
use crate::state::AppState;
use limits::{Admit, Breaker, PairLimits, RateWindow, Slot};
use outcome::CallResult;

/// Resolves when the lease (as renewed meanwhile) has ended.
async fn lease_end(lease_until: LeaseEnd) {
    loop {
        let until = *lease_until.lock().unwrap_or_else(|p| p.into_inner());
        if Instant::now() >= until {
            return;
        }
        tokio::time::sleep_until(until).await;
    }
}

/// Runs until `shutdown`: keeps channel leases and one sending task per owned channel.
pub async fn run(state: AppState, shutdown: CancellationToken) {
    if !state.config.dispatch_enabled {
        return;
    }
    let Some((owner, _claim)) = claim_identity(&state, &shutdown).await else {
        return;
    };
    let lease = Duration::from_secs(state.config.dispatch_lease_secs);
    let renew_every = (lease / 3).max(Duration::from_millis(200));
    // New channels are looked for every second, between renewals too.
    let tick = renew_every.min(Duration::from_secs(1));
    let mut renewed = Instant::now();
    let mut first = true;
    let mut tasks: HashMap<String, ChannelTask> = HashMap::new();
    let mut set = JoinSet::new();
    loop {
        let renew = first || renewed.elapsed() + tick / 2 >= renew_every;
        if renew {
            renewed = Instant::now();
            first = false;
        }
        let refreshed = refresh_leases(
            &state, &owner, lease, renew, &mut tasks, &mut set, &shutdown,
        )
        .await;
        if let Err(e) = refreshed {
            tracing::warn!(error = %e, "dispatcher: cannot refresh channel leases; retrying");
        }
        if renew {
            reconcile_unmatched(&state).await;
        }
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tokio::time::sleep(tick) => {}
        }
        while set.try_join_next().is_some() {}
    }
    for task in tasks.values() {
        task.cancel.cancel();
    }
    while set.join_next().await.is_some() {}
    for id in tasks.keys() {
        let _ = state.store.release_channel_lease(id, &owner).await;
    }
}

/// This node's sending identity. Where it is stable (SQLite's one sender, or
/// `node_id` on PostgreSQL) the claim proves no live process uses it, so the
/// leases a crashed predecessor left are taken at once rather than after they
/// expire; until the claim is free (a predecessor still running) this waits.
async fn claim_identity(
    state: &AppState,
    shutdown: &CancellationToken,
) -> Option<(String, Option<waypost_store::node_lock::OwnerGuard>)> {
    let stable = state
        .store
        .sole_owner()
        .map(str::to_owned)
        .or_else(|| state.config.node_id.as_ref().map(|id| format!("node_{id}")));
    let Some(owner) = stable else {
        return Some((format!("node_{}", ulid::Ulid::new()), None));
    };
    let mut waiting = false;
    loop {
        match state.store.hold_owner(&owner).await {
            Ok(Some(claim)) => {
                match state.store.free_row_leases(&owner).await {
                    Ok(0) => {}
                    Ok(rows) => tracing::info!(
                        rows,
                        "dispatcher: took over the outbox rows a previous process left leased"
                    ),
                    // They expire by themselves.
                    Err(e) => {
                        tracing::warn!(error = %e, "dispatcher: cannot free a previous process's row leases")
                    }
                }
                return Some((owner, Some(claim)));
            }
            Ok(None) if !waiting => {
                waiting = true;
                tracing::warn!(owner = %owner, "dispatcher: another live process sends under this node's identity; waiting until it ends");
            }
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(error = %e, "dispatcher: cannot claim the node's identity; retrying")
            }
        }
        tokio::select! {
            _ = shutdown.cancelled() => return None,
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
}

/// Applies kept statuses whose message has become known since (old ones go
/// with the retention purge).
async fn reconcile_unmatched(state: &AppState) {
    let now = state.clock.now();
    let ring = state.keys.current();
    let seal = move |c: &StatusChange| outcome::status_event(&ring, c, now);
    match state.store.reconcile_unmatched(now, 500, &seal).await {
        Ok(0) => {}
        Ok(n) => tracing::info!(
            statuses = n,
            "dispatcher: applied statuses that arrived before their message id was known"
        ),
        Err(e) => {
            tracing::warn!(error = %e, "dispatcher: cannot reconcile kept statuses; retrying")
        }
    }
}

/// The supervisor's handle on one owned channel's sending task.
struct ChannelTask {
    channel: watch::Sender<ChannelRow>,
    /// The lease's end as last renewed: the task sends nothing after it,
    /// even before the supervisor learns that another node took over.
    lease_until: LeaseEnd,
    cancel: CancellationToken,
}

/// When this node's lease on a channel ends, on the monotonic clock (the
/// lease's length counted from just before its last renewal).
type LeaseEnd = Arc<Mutex<Instant>>;

async fn refresh_leases(
    state: &AppState,
    owner: &str,
    lease: Duration,
    renew: bool,
    tasks: &mut HashMap<String, ChannelTask>,
    set: &mut JoinSet<()>,
    shutdown: &CancellationToken,
) -> anyhow::Result<()> {
    let channels = state.store.all_channels().await?;
    let live: std::collections::HashSet<&str> = channels.iter().map(|c| c.id.as_str()).collect();
    tasks.retain(|id, task| {
        let keep = live.contains(id.as_str()) && !task.cancel.is_cancelled();
        if !keep {
            task.cancel.cancel();
        }
        keep
    });
    for channel in channels {
        if !renew && let Some(task) = tasks.get(&channel.id) {
            // Between renewals: only pass on a changed channel.
            if *task.channel.borrow() != channel {
                let _ = task.channel.send(channel);
            }
            continue;
        }
        let renewing = Instant::now();
        let now = state.clock.now();
        let until = now + chrono::Duration::from_std(lease)?;
        let held = state
            .store
            .acquire_channel_lease(&channel.id, owner, now, until)
            .await?;
        match (held, tasks.get(&channel.id)) {
            (true, Some(task)) => {
                *task.lease_until.lock().unwrap_or_else(|p| p.into_inner()) = renewing + lease;
                if *task.channel.borrow() != channel {
                    let _ = task.channel.send(channel);
                }
            }
            (true, None) => {
                let id = channel.id.clone();
                let (tx, rx) = watch::channel(channel);
                let cancel = shutdown.child_token();
                let lease_until = Arc::new(Mutex::new(renewing + lease));
                tracing::info!(channel_id = %id, "dispatcher: took the channel's sending lease");
                set.spawn(run_channel(
                    state.clone(),
                    owner.to_owned(),
                    rx,
                    lease_until.clone(),
                    cancel.clone(),
                ));
                tasks.insert(
                    id,
                    ChannelTask {
                        channel: tx,
                        lease_until,
                        cancel,
                    },
                );
            }
            (false, Some(_)) => {
                if let Some(task) = tasks.remove(&channel.id) {
                    tracing::info!(channel_id = %channel.id, "dispatcher: lost the channel's sending lease");
                    task.cancel.cancel();
                }
            }
            (false, None) => {}
        }
    }
    Ok(())
}

/// Everything one channel's task keeps between batches.
struct ChannelSender {
    state: AppState,
    owner: String,
    channel: ChannelRow,
    lease_until: LeaseEnd,
    client: Option<CloudApiClient>,
    window: RateWindow,
    pairs: PairLimits,
    breaker: Breaker,
    /// The previous batch's results being written while this one sends, and
    /// their message ids: a claim that takes one of them again (its row lease
    /// ran out first) leaves it to that write.
    recording: Option<Recording>,
}

struct Recording {
    task: tokio::task::JoinHandle<Result<(), waypost_store::StoreError>>,
    ids: std::collections::HashSet<String>,
}

async fn run_channel(
    state: AppState,
    owner: String,
    mut rx: watch::Receiver<ChannelRow>,
    lease_until: LeaseEnd,
    cancel: CancellationToken,
) {
    let c = &state.config;
    let channel = rx.borrow_and_update().clone();
    let mut sender = ChannelSender {
        window: RateWindow::new(
            channel.throughput_mps.clamp(1, u32::MAX as i64) as u32,
            Duration::from_millis(c.dispatch_rate_margin_ms),
        ),
        pairs: PairLimits::new(
            c.dispatch_pair_burst,
            Duration::from_millis(c.dispatch_pair_interval_ms),
        ),
        breaker: Breaker::new(
            c.dispatch_breaker_failures,
            Duration::from_secs(c.dispatch_breaker_cooldown_secs),
        ),
        client: None,
        channel,
        lease_until,
        owner,
        state: state.clone(),
        recording: None,
    };
    // Someone may have sent for this number within the last window: another
    // node, or (on SQLite too) the process before this one, which a restart
    // replaces within 0.2 s and whose sends this empty window does not count.
    tokio::select! {
        _ = cancel.cancelled() => return,
        _ = tokio::time::sleep(sender.window_len()) => {}
    }
    let poll = Duration::from_millis(state.config.dispatch_poll_ms.max(1));
    while !cancel.is_cancelled() {
        if rx.has_changed().unwrap_or(false) {
            sender.channel = rx.borrow_and_update().clone();
            sender.client = None;
            sender
                .window
                .set_limit(sender.channel.throughput_mps.clamp(1, u32::MAX as i64) as u32);
        }
        let worked = match sender.step(&cancel).await {
            Ok(n) => n,
            Err(e) => {
                tracing::warn!(channel_id = %sender.channel.id, error = %e, "dispatcher step failed; retrying");
                0
            }
        };
        if worked == 0 {
            if let Err(e) = sender.recorded().await {
                tracing::warn!(channel_id = %sender.channel.id, error = %e, "dispatcher: cannot record send results; the rows are retried after their lease");
            }
            tokio::select! {
                _ = cancel.cancelled() => break,
                _ = tokio::time::sleep(poll) => {}
            }
        }
    }
    if let Err(e) = sender.recorded().await {
        tracing::warn!(channel_id = %sender.channel.id, error = %e, "dispatcher: cannot record send results; the rows are retried after their lease");
    }
}

impl ChannelSender {
    /// Whether this node's lease on the channel still runs.
    fn lease_valid(&self) -> bool {
        Instant::now() < *self.lease_until.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn window_len(&self) -> Duration {
        Duration::from_secs(1) + Duration::from_millis(self.state.config.dispatch_rate_margin_ms)
    }

    fn client(&mut self) -> anyhow::Result<CloudApiClient> {
        if let Some(c) = &self.client {
            return Ok(c.clone());
        }
        let mut config = client_config_for(&self.state.keys, &self.state.config, &self.channel)?;
        config.request_timeout =
            Duration::from_secs(self.state.config.dispatch_request_timeout_secs.max(1));
        let client = CloudApiClient::new(config)?;
        self.client = Some(client.clone());
        Ok(client)
    }

    /// One batch: claim, send what may be sent, record. Returns rows handled.
    async fn step(&mut self, cancel: &CancellationToken) -> anyhow::Result<usize> {
        let probe = match self.breaker.admit(Instant::now()) {
            Admit::All => false,
            Admit::Probe => true,
            Admit::WaitUntil(t) => {
                tokio::select! {
                    _ = cancel.cancelled() => {}
                    _ = tokio::time::sleep_until(t) => {}
                }
                return Ok(0);
            }
        };
        let cfg = self.state.config.clone();
        let mps = self.window.effective_limit() as u32;
        let limit = if probe {
            1
        } else {
            cfg.dispatch_batch_size.min((mps / 2).max(1))
        };
        let now = self.state.clock.now();
        let lease = chrono::Duration::seconds(cfg.dispatch_lease_secs as i64);
        let rows = self
            .state
            .store
            .claim_outbox_batch(&self.channel.id, &self.owner, now, now + lease, limit)
            .await?;
        let rows: Vec<OutboxRow> = match &self.recording {
            Some(r) => rows
                .into_iter()
                .filter(|row| !r.ids.contains(&row.message_id))
                .collect(),
            None => rows,
        };
        if rows.is_empty() {
            return Ok(0);
        }
        let handled = rows.len();
        let reconcile = chrono::Duration::seconds(cfg.dispatch_reconcile_secs as i64);
        let mut results = Vec::with_capacity(rows.len());
        let mut ready = Vec::with_capacity(rows.len());
        for row in rows {
            if let Some(started) = row.attempt_started_at {
                if now < started + reconcile {
                    // In doubt: a status webhook naming it may still come.
                    results.push(result(
                        row,
                        SendOutcome::Defer {
                            next_attempt_at: started + reconcile,
                        },
                        now,
                    ));
                    continue;
                }
                tracing::info!(message_id = %row.message_id, "dispatcher: in-doubt send unconfirmed after the reconciliation period; sending again");
            }
            if now >= row.deadline_at {
                let title = row
                    .last_error_title
                    .clone()
                    .unwrap_or_else(|| "delivery deadline passed".into());
                let code = row.last_error_code;
                results.push(result(row, SendOutcome::Failed { code, title }, now));
                continue;
            }
            match self.pairs.take(&row.contact_id, Instant::now()) {
                Ok(()) => ready.push(row),
                Err(wait) => {
                    let next = now
                        + chrono::Duration::from_std(wait).unwrap_or(chrono::Duration::seconds(6));
                    results.push(result(
                        row,
                        SendOutcome::Defer {
                            next_attempt_at: next,
                        },
                        now,
                    ));
                }
            }
        }
        self.send_all(ready, &mut results, cancel).await;
        self.recorded().await?;
        count_failures(&self.state, &results, now);
        let ring = self.state.keys.current();
        let store = self.state.store.clone();
        let owner = self.owner.clone();
        let ids = results.iter().map(|r| r.row.message_id.clone()).collect();
        let task = tokio::spawn(async move {
            let seal =
                move |c: &StatusChange| outcome::status_event(&ring, c, c.occurred_at.max(now));
            store.record_send_results(&results, &owner, &seal).await
        });
        self.recording = Some(Recording { task, ids });
        Ok(handled)
    }

    /// Waits until the previous batch's results are written.
    async fn recorded(&mut self) -> anyhow::Result<()> {
        if let Some(r) = self.recording.take() {
            r.task.await??;
        }
        Ok(())
    }

    /// Sends in chunks of about 50 ms of throughput: each chunk is marked
    /// started in one transaction, then its calls start as the window allows.
    async fn send_all(
        &mut self,
        rows: Vec<OutboxRow>,
        results: &mut Vec<SendResult>,
        cancel: &CancellationToken,
    ) {
        let client = match self.client() {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(channel_id = %self.channel.id, error = %e, "dispatcher: cannot build the provider client");
                let now = self.state.clock.now();
                for row in rows {
                    let next = now + chrono::Duration::seconds(30);
                    results.push(result(
                        row,
                        SendOutcome::Retry {
                            next_attempt_at: next,
                            code: None,
                            title: Some("channel configuration invalid".into()),
                        },
                        now,
                    ));
                }
                return;
            }
        };
        let chunk_len = (self.window.effective_limit() / 20).max(1);
        let max_in_flight = self.state.config.dispatch_max_in_flight as usize;
        let mut calls: JoinSet<(OutboxRow, CallResult)> = JoinSet::new();
        let mut rows = rows.into_iter().peekable();
        while rows.peek().is_some() {
            let chunk: Vec<OutboxRow> = rows.by_ref().take(chunk_len).collect();
            if cancel.is_cancelled() || !self.lease_valid() {
                let now = self.state.clock.now();
                for row in chunk.into_iter().chain(rows.by_ref()) {
                    results.push(result(
                        row,
                        SendOutcome::Defer {
                            next_attempt_at: now,
                        },
                        now,
                    ));
                }
                break;
            }
            let ids: Vec<String> = chunk.iter().map(|r| r.message_id.clone()).collect();
            let started = self.state.clock.now();
            if let Err(e) = self
                .state
                .store
                .mark_attempts_started(&ids, &self.owner, started)
                .await
            {
                tracing::warn!(error = %e, "dispatcher: cannot mark attempts started; retrying later");
                for row in chunk.into_iter().chain(rows.by_ref()) {
                    results.push(result(
                        row,
                        SendOutcome::Defer {
                            next_attempt_at: started,
                        },
                        started,
                    ));
                }
                break;
            }
            for mut row in chunk {
                row.attempt_started_at = Some(started);
                row.attempts += 1;
                // Wait for room in the throughput window; collect finished calls meanwhile.
                loop {
                    while let Some(done) = calls.try_join_next() {
                        self.absorb(done, results);
                    }
                    let now = Instant::now();
                    match self.window.next_slot(now) {
                        Slot::Now if calls.len() < max_in_flight => break,
                        Slot::Now | Slot::AfterAFinish => match calls.join_next().await {
                            Some(done) => self.absorb(done, results),
                            // Nothing in flight holds a place: the window's count is off.
                            None => break,
                        },
                        Slot::At(t) => tokio::time::sleep_until(t).await,
                    }
                }
                if !self.lease_valid() {
                    // Marked started but never called: it waits out the
                    // reconciliation period like any in-doubt send.
                    let now = self.state.clock.now();
                    results.push(result(
                        row,
                        SendOutcome::Defer {
                            next_attempt_at: now,
                        },
                        now,
                    ));
                    continue;
                }
                let payload = match self.open_payload(&row).await {
                    Ok(p) => p,
                    Err(e) => {
                        tracing::error!(message_id = %row.message_id, error = %e, "dispatcher: cannot read the outbox payload");
                        let now = self.state.clock.now();
                        results.push(result(
                            row,
                            SendOutcome::Failed {
                                code: None,
                                title: "payload unreadable".into(),
                            },
                            now,
                        ));
                        continue;
                    }
                };
                let client = client.clone();
                let number = self.channel.phone_number_id.clone();
                let lease_until = self.lease_until.clone();
                self.window.started();
                calls.spawn(async move {
                    // A call still running when the lease ends is given up (in
                    // doubt), so a node that took the channel over cannot
                    // have its sends land in one window with ours.
                    tokio::select! {
                        answer = client.send_message(&number, &payload) => {
                            (row, outcome::classify(answer))
                        }
                        _ = lease_end(lease_until) => (row, CallResult::LeaseEnded),
                    }
                });
            }
        }
        while let Some(done) = calls.join_next().await {
            self.absorb(done, results);
        }
    }

    async fn open_payload(&self, row: &OutboxRow) -> anyhow::Result<OutboundMessage> {
        let plain = self
            .state
            .keys
            .decrypt(
                self.state.store.as_ref(),
                Aad::new("outbox", "payload", &row.message_id),
                &row.payload,
            )
            .await?;
        let mut message: OutboundMessage = serde_json::from_slice(&plain)?;
        message.biz_opaque_callback_data = Some(row.message_id.clone());
        Ok(message)
    }

    /// Turns a finished call into the row's outcome and feeds the channel's guards.
    fn absorb(
        &mut self,
        done: Result<(OutboxRow, CallResult), tokio::task::JoinError>,
        results: &mut Vec<SendResult>,
    ) {
        // Whatever the outcome, the call is over: its place in the window runs
        // from now (no earlier than when it really finished).
        self.window.finished(Instant::now());
        let Ok((row, call)) = done else {
            // A panicking call leaves its row leased and in doubt; it is retried after the reconciliation period.
            tracing::error!("dispatcher: a provider call panicked");
            return;
        };
        let cfg = &self.state.config;
        let now = self.state.clock.now();
        let instant = Instant::now();
        let channel_id = self.channel.id.as_str();
        let retry_at = |row: &OutboxRow, wait: Option<Duration>| -> DateTime<Utc> {
            let delay = match wait {
                Some(w) => chrono::Duration::from_std(w).unwrap_or(chrono::Duration::seconds(60)),
                None => outcome::backoff(
                    row.attempts,
                    Duration::from_millis(cfg.dispatch_retry_base_ms),
                    Duration::from_secs(cfg.dispatch_retry_max_secs),
                ),
            };
            now + delay
        };
        let give_up_or =
            |row: &OutboxRow, next: DateTime<Utc>, code: Option<i64>, title: String| {
                if next > row.deadline_at {
                    SendOutcome::Failed { code, title }
                } else {
                    SendOutcome::Retry {
                        next_attempt_at: next,
                        code,
                        title: Some(title),
                    }
                }
            };
        let outcome = match call {
            CallResult::Sent { wamid, acceptance } => {
                self.breaker.on_success();
                self.window.on_success();
                metrics::counter!("waypost_dispatch_sends_total", "outcome" => "sent").increment(1);
                SendOutcome::Sent { wamid, acceptance }
            }
            CallResult::Permanent { code, title } => {
                // The provider answered: the channel works.
                self.breaker.on_success();
                metrics::counter!("waypost_dispatch_sends_total", "outcome" => "failed")
                    .increment(1);
                SendOutcome::Failed { code, title }
            }
            CallResult::Transient { code, title } => {
                self.breaker.on_failure(instant);
                metrics::counter!("waypost_dispatch_sends_total", "outcome" => "retry")
                    .increment(1);
                tracing::info!(channel_id, message_id = %row.message_id, code, "dispatcher: transient provider error; retrying later");
                let next = retry_at(&row, None);
                give_up_or(&row, next, code, title)
            }
            CallResult::RateLimited {
                code,
                title,
                retry_after,
                pair,
            } => {
                metrics::counter!("waypost_dispatch_sends_total", "outcome" => "rate_limited")
                    .increment(1);
                let next = if pair {
                    self.pairs.drain(&row.contact_id, instant);
                    retry_at(
                        &row,
                        Some(
                            retry_after
                                .unwrap_or(Duration::from_millis(cfg.dispatch_pair_interval_ms)),
                        ),
                    )
                } else {
                    let pause = retry_after.unwrap_or(Duration::from_secs(1));
                    self.window.on_rate_limited(instant, pause);
                    tracing::warn!(
                        channel_id,
                        code,
                        "dispatcher: provider throughput limit hit; slowing this channel down"
                    );
                    retry_at(&row, Some(pause))
                };
                give_up_or(&row, next, code, title)
            }
            CallResult::LeaseEnded => {
                metrics::counter!("waypost_dispatch_sends_total", "outcome" => "in_doubt")
                    .increment(1);
                tracing::info!(channel_id, message_id = %row.message_id, "dispatcher: the channel's lease ended during a send; waiting for a status webhook");
                let next = row.attempt_started_at.unwrap_or(now)
                    + chrono::Duration::seconds(cfg.dispatch_reconcile_secs as i64);
                SendOutcome::InDoubt {
                    next_attempt_at: next,
                    title: "the channel's lease ended during the call".into(),
                }
            }
            CallResult::InDoubt(title) => {
                self.breaker.on_failure(instant);
                metrics::counter!("waypost_dispatch_sends_total", "outcome" => "in_doubt")
                    .increment(1);
                tracing::info!(channel_id, message_id = %row.message_id, reason = %title, "dispatcher: send in doubt; waiting for a status webhook");
                let next = row.attempt_started_at.unwrap_or(now)
                    + chrono::Duration::seconds(cfg.dispatch_reconcile_secs as i64);
                SendOutcome::InDoubt {
                    next_attempt_at: next,
                    title,
                }
            }
        };
        results.push(result(row, outcome, now));
    }
}

fn result(row: OutboxRow, outcome: SendOutcome, at: DateTime<Utc>) -> SendResult {
    SendResult { row, outcome, at }
}

/// Counts provider failures (all, and by error code) per channel and workspace for the detectors.
fn count_failures(state: &AppState, results: &[SendResult], now: chrono::DateTime<chrono::Utc>) {
    use waypost_core::trust::{ScopeKind, signal};
    if !state.signals.enabled() {
        return;
    }
    for r in results {
        let code = match &r.outcome {
            SendOutcome::Failed { code, .. } | SendOutcome::Retry { code, .. } => code,
            _ => continue,
        };
        let ws = r.row.workspace_id.as_str();
        let scopes = [
            (ScopeKind::Workspace, ws),
            (ScopeKind::Channel, r.row.channel_id.as_str()),
        ];
        state
            .signals
            .add(now, Some(ws), &scopes, signal::PROVIDER_FAILURE, 1);
        if let Some(code) = code {
            let by_code = format!("{}:{code}", signal::PROVIDER_FAILURE);
            state.signals.add(now, Some(ws), &scopes[1..], &by_code, 1);
        }
    }
}
