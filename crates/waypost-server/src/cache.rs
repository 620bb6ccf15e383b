//! In-memory copies of the rows every send reads and that rarely change: API
//! keys, channels, workspace messaging settings, templates, whether a channel
//! has automation, and the set of active suspensions.
//!
//! The database bumps a generation counter (by trigger) in the same transaction
//! as any change to those tables, whoever makes it: this node, another node, the
//! CLI or a restore. [`Lookups::watch`] polls it every [`POLL`] and empties the
//! cache when it moves; this node's own changes empty it at once
//! ([`Lookups::invalidate`]). Copies are only served while the last poll is
//! younger than [`MAX_STALENESS`], so a stalled poller or an unreachable
//! database falls back to reading the store, and a revoked key stops working
//! on every node within a second.

use std::collections::{HashMap, HashSet};
use std::hash::Hash;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use waypost_store::identity::ApiKeyRecord;
use waypost_store::messaging::{ChannelRow, MessagingSettings, TemplateRef};
use waypost_store::{Store, StoreError};

/// How often the generation is read.
pub const POLL: Duration = Duration::from_millis(250);
/// How old the last successful poll may be for copies to be served.
pub const MAX_STALENESS: Duration = Duration::from_millis(750);
/// Entries per kind at most; a full map starts over (a bound, not an LRU).
const MAX_ENTRIES: usize = 10_000;

type Result<T> = std::result::Result<T, StoreError>;

#[derive(Default)]
struct Entries {
    /// Bumped by every invalidation, so a load that raced one is not kept.
    epoch: u64,
    generation: Option<i64>,
    checked_at: Option<Instant>,
    api_keys: HashMap<Vec<u8>, ApiKeyRecord>,
    channels: HashMap<(String, String), ChannelRow>,
    /// Live channels by id alone, as provider webhooks name them.
    channels_by_id: HashMap<String, ChannelRow>,
    settings: HashMap<String, MessagingSettings>,
    templates: HashMap<(String, String, String), TemplateRef>,
    /// Whether `(workspace, channel)` has automation: an enabled rule or the assistant.
    automation: HashMap<(String, String), bool>,
    /// Active suspensions as `(target kind, target id)`; loaded whole, since few are active.
    suspended: Option<Arc<HashSet<(String, String)>>>,
}

impl Entries {
    fn fresh(&self) -> bool {
        self.checked_at
            .is_some_and(|t| t.elapsed() <= MAX_STALENESS)
    }

    fn clear(&mut self) {
        self.epoch += 1;
        self.api_keys.clear();
        self.channels.clear();
        self.channels_by_id.clear();
        self.settings.clear();
        self.templates.clear();
        self.automation.clear();
        self.suspended = None;
    }
}

/// The cached lookups; cheap to share.
pub struct Lookups {
    store: Arc<dyn Store>,
    entries: RwLock<Entries>,
}

impl Lookups {
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self {
            store,
            entries: RwLock::default(),
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Entries> {
        self.entries.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Entries> {
        self.entries.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Forgets every copy; call after this node changed a cached table.
    pub fn invalidate(&self) {
        self.write().clear();
    }

    /// Reads the generation once; empties the cache when it moved.
    pub async fn refresh(&self) -> Result<()> {
        let generation = self.store.cache_generation().await?;
        let mut entries = self.write();
        if entries.generation != Some(generation) {
            entries.clear();
            entries.generation = Some(generation);
        }
        entries.checked_at = Some(Instant::now());
        Ok(())
    }

    /// Polls the generation until shutdown. Without it nothing is served from memory.
    pub async fn watch(self: Arc<Self>, shutdown: CancellationToken) {
        let mut tick = tokio::time::interval(POLL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tick.tick() => {}
            }
            if let Err(e) = self.refresh().await {
                tracing::warn!(error = %e, "cannot read the cache generation; reading the store until it answers");
            }
        }
        self.write().checked_at = None;
    }

    async fn get_or_load<K, V, Fut>(
        &self,
        map: fn(&Entries) -> &HashMap<K, V>,
        map_mut: fn(&mut Entries) -> &mut HashMap<K, V>,
        key: K,
        load: impl FnOnce() -> Fut,
    ) -> Result<Option<V>>
    where
        K: Eq + Hash,
        V: Clone,
        Fut: std::future::Future<Output = Result<Option<V>>>,
    {
        let seen = {
            let entries = self.read();
            if !entries.fresh() {
                None
            } else if let Some(v) = map(&entries).get(&key) {
                return Ok(Some(v.clone()));
            } else {
                Some(entries.epoch)
            }
        };
        let Some(epoch) = seen else {
            return load().await;
        };
        let loaded = load().await?;
        if let Some(v) = &loaded {
            let mut entries = self.write();
            if entries.epoch == epoch && entries.fresh() {
                let m = map_mut(&mut entries);
                if m.len() >= MAX_ENTRIES {
                    m.clear();
                }
                m.insert(key, v.clone());
            }
        }
        Ok(loaded)
    }

    /// The API key with this keyed hash, revoked and expired ones included.
    pub async fn api_key(&self, hash: &[u8]) -> Result<Option<ApiKeyRecord>> {
        self.get_or_load(
            |e| &e.api_keys,
            |e| &mut e.api_keys,
            hash.to_vec(),
            || self.store.find_api_key(hash),
        )
        .await
    }

    /// Keeps the copy's last use current after the store recorded it.
    pub fn api_key_touched(&self, hash: &[u8], at: DateTime<Utc>, ip: Option<&str>) {
        if let Some(k) = self.write().api_keys.get_mut(hash) {
            k.last_used_at = Some(at);
            k.last_used_ip = ip.map(str::to_owned);
        }
    }

    /// A live channel of the workspace; `NotFound` otherwise.
    pub async fn channel(&self, workspace: &str, id: &str) -> Result<ChannelRow> {
        self.get_or_load(
            |e| &e.channels,
            |e| &mut e.channels,
            (workspace.to_owned(), id.to_owned()),
            || async { self.store.get_channel(workspace, id).await.map(Some) },
        )
        .await?
        .ok_or(StoreError::NotFound("channel"))
    }

    /// A live channel by id alone (provider webhooks); `NotFound` otherwise.
    pub async fn channel_by_id(&self, id: &str) -> Result<ChannelRow> {
        self.get_or_load(
            |e| &e.channels_by_id,
            |e| &mut e.channels_by_id,
            id.to_owned(),
            || async { self.store.channel_by_id(id).await.map(Some) },
        )
        .await?
        .ok_or(StoreError::NotFound("channel"))
    }

    pub async fn messaging_settings(&self, workspace: &str) -> Result<MessagingSettings> {
        self.get_or_load(
            |e| &e.settings,
            |e| &mut e.settings,
            workspace.to_owned(),
            || async { self.store.messaging_settings(workspace).await.map(Some) },
        )
        .await?
        .ok_or(StoreError::NotFound("workspace"))
    }

    /// The workspace's template of this name and language, if any.
    pub async fn template(
        &self,
        workspace: &str,
        name: &str,
        language: &str,
    ) -> Result<Option<TemplateRef>> {
        self.get_or_load(
            |e| &e.templates,
            |e| &mut e.templates,
            (workspace.to_owned(), name.to_owned(), language.to_owned()),
            || self.store.find_template(workspace, name, language),
        )
        .await
    }

    /// Whether inbound messages on the channel have anything to run: an
    /// enabled rule, or the workspace's assistant switched on for the channel.
    pub async fn automation_active(&self, workspace: &str, channel: &str) -> Result<bool> {
        let active = self
            .get_or_load(
                |e| &e.automation,
                |e| &mut e.automation,
                (workspace.to_owned(), channel.to_owned()),
                || async {
                    if !self.store.channel_rules(channel).await?.is_empty() {
                        return Ok(Some(true));
                    }
                    let assistant = self.store.assistant_settings(workspace).await?;
                    Ok(Some(assistant.is_some_and(|s| {
                        s.enabled
                            && serde_json::from_str::<Vec<String>>(&s.channels)
                                .is_ok_and(|c| c.iter().any(|c| c == channel))
                    })))
                },
            )
            .await?;
        Ok(active.unwrap_or(true))
    }

    /// The active suspensions, from memory while the cache is fresh.
    async fn suspensions(&self) -> Result<Arc<HashSet<(String, String)>>> {
        let epoch = {
            let entries = self.read();
            match (&entries.suspended, entries.fresh()) {
                (Some(set), true) => return Ok(set.clone()),
                (_, fresh) => fresh.then_some(entries.epoch),
            }
        };
        let set: Arc<HashSet<(String, String)>> =
            Arc::new(self.store.active_suspensions().await?.into_iter().collect());
        if let Some(epoch) = epoch {
            let mut entries = self.write();
            if entries.epoch == epoch && entries.fresh() {
                entries.suspended = Some(set.clone());
            }
        }
        Ok(set)
    }

    /// Whether any of `targets` (`(kind, id)`) is suspended.
    pub async fn suspended(&self, targets: &[(&str, &str)]) -> Result<bool> {
        let set = self.suspensions().await?;
        if set.is_empty() {
            return Ok(false);
        }
        Ok(targets
            .iter()
            .any(|(k, id)| set.contains(&((*k).to_owned(), (*id).to_owned()))))
    }

    /// How many copies are held, for tests and metrics.
    pub fn len(&self) -> usize {
        let e = self.read();
        e.api_keys.len()
            + e.channels.len()
            + e.channels_by_id.len()
            + e.settings.len()
            + e.templates.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
