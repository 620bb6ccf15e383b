//! Trust and safety signal counters, batched in memory and flushed to the
//! store once a second ([`FLUSH_EVERY`]), so counting costs a request a hash
//! map update, never a database round trip. Counts are per minute per scope
//! (workspace, channel, API key, user, network). A crash loses at most the
//! last second's counts, which detection tolerates.
//!
//! With detection off (`WAYPOST_DETECTION=false`) every call is a no-op.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio_util::sync::CancellationToken;
use waypost_core::trust::ScopeKind;
use waypost_store::Store;
use waypost_store::trust::SignalDelta;

pub const FLUSH_EVERY: Duration = Duration::from_secs(1);
/// Distinct pending counters at most; beyond, new ones are dropped (and counted).
const MAX_PENDING: usize = 50_000;

type Key = (&'static str, String, String, i64);

#[derive(Default)]
pub struct Signals {
    enabled: bool,
    pending: Mutex<HashMap<Key, (Option<String>, i64)>>,
}

/// The unix minute of `at`.
pub fn minute_of(at: DateTime<Utc>) -> i64 {
    at.timestamp().div_euclid(60)
}

impl Signals {
    pub fn new(enabled: bool) -> Self {
        Self {
            enabled,
            pending: Mutex::default(),
        }
    }

    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// Adds `n` to `signal` of each scope at `at`'s minute.
    pub fn add(
        &self,
        at: DateTime<Utc>,
        workspace: Option<&str>,
        scopes: &[(ScopeKind, &str)],
        signal: &str,
        n: i64,
    ) {
        if !self.enabled || n == 0 {
            return;
        }
        let minute = minute_of(at);
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        for (kind, id) in scopes {
            let key = (kind.as_str(), (*id).to_owned(), signal.to_owned(), minute);
            let full = pending.len() >= MAX_PENDING;
            match pending.get_mut(&key) {
                Some(entry) => entry.1 += n,
                None if full => {
                    metrics::counter!("waypost_signals_dropped_total").increment(1);
                }
                None => {
                    pending.insert(key, (workspace.map(str::to_owned), n));
                }
            }
        }
    }

    /// A password or second-factor change of `user_id`.
    pub fn credential_changed(&self, at: DateTime<Utc>, user_id: &str) {
        let scope = [(ScopeKind::User, user_id)];
        self.add(
            at,
            None,
            &scope,
            waypost_core::trust::signal::CREDENTIAL_CHANGE,
            1,
        );
    }

    /// Writes what was counted since the last flush; on failure the counts are kept for the next.
    pub async fn flush(&self, store: &dyn Store) -> Result<usize, waypost_store::StoreError> {
        let taken = std::mem::take(&mut *self.pending.lock().unwrap_or_else(|e| e.into_inner()));
        if taken.is_empty() {
            return Ok(0);
        }
        let deltas: Vec<SignalDelta> = taken
            .iter()
            .map(|((kind, id, signal, minute), (ws, count))| SignalDelta {
                scope_kind: kind,
                scope_id: id.clone(),
                signal: signal.clone(),
                minute: *minute,
                workspace_id: ws.clone(),
                count: *count,
            })
            .collect();
        match store.add_signals(&deltas).await {
            Ok(()) => Ok(deltas.len()),
            Err(e) => {
                let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
                for (key, (ws, n)) in taken {
                    pending.entry(key).or_insert((ws, 0)).1 += n;
                }
                Err(e)
            }
        }
    }

    /// Flushes every second until shutdown, then once more.
    pub async fn run(self: Arc<Self>, store: Arc<dyn Store>, shutdown: CancellationToken) {
        if !self.enabled {
            return;
        }
        let mut tick = tokio::time::interval(FLUSH_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tick.tick() => {}
            }
            if let Err(e) = self.flush(store.as_ref()).await {
                tracing::warn!(error = %e, "cannot write signal counters; keeping them for the next flush");
            }
        }
        if let Err(e) = self.flush(store.as_ref()).await {
            tracing::warn!(error = %e, "cannot write the last signal counters");
        }
    }
}
