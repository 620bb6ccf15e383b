//! The webhook deliverer, a continuous pipeline: fan new customer events out
//! to the endpoints that want them, lease due deliveries whenever this node
//! has room, make each attempt as its own task, and record finished attempts
//! in group commits (one transaction for whatever finished meanwhile). An
//! endpoint's concurrency counts this worker's open attempts (kept here) and
//! other workers' leases (in the database), so a slot is free again as soon
//! as its attempt ends; the node's own room, which bounds what waits to be
//! recorded, comes back once the attempt is recorded.
//!
//! Scheduling uses the application clock (tests move it); the signed
//! `webhook-timestamp` is wall-clock time, because receivers compare it with
//! theirs. A lease outlives the attempt timeout, so a node killed mid-attempt
//! leaves deliveries that another node (or the restarted one) picks up:
//! delivery is at least once, and `webhook-id` lets receivers deduplicate.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use rand::Rng;
use secrecy::ExposeSecret;
use tokio::sync::{Notify, Semaphore, mpsc};
use tokio_util::sync::CancellationToken;
use waypost_core::audit::Actor;
use waypost_core::events::EventType;
use waypost_core::{NewAuditEvent, WorkspaceId};
use waypost_crypto::webhook::{WebhookKey, signature_header};
use waypost_store::webhooks::{DeliveryNext, DueDelivery, WebhookAttemptOutcome};

use super::ssrf::{self, DnsFailed, GuardedResolver, Refused};
use crate::config::Config;
use crate::state::AppState;

/// Bytes of a response body read at most.
pub const RESPONSE_READ_LIMIT: usize = 4096;
/// Characters of the body kept in the attempt log.
const EXCERPT_CHARS: usize = 1024;
const FAN_OUT_BATCH: u32 = 1000;
const FAILING_BATCH: u32 = 100;
/// Attempts recorded in one transaction at most.
const RECORD_BATCH: usize = 512;
/// Tries to record a batch of attempts before leaving them to their leases.
const RECORD_TRIES: u32 = 3;
/// Events fanned out before the first refresh of the queue's planner
/// statistics; each later one waits until this node's total has doubled
/// (past that, the database's own statistics upkeep keeps pace).
const ANALYZE_AFTER: u64 = 5000;
/// How long a busy claimer waits for room to gather, so it leases in batches.
const CLAIM_GATHER: Duration = Duration::from_millis(10);

/// What the claimer, the attempts and the recorder share.
struct Pipeline {
    /// Names this worker's leases.
    worker: String,
    /// Attempts this node may have unrecorded.
    room: Semaphore,
    /// This worker's attempts in flight, by endpoint.
    open: Mutex<HashMap<String, u32>>,
    /// Attempts finished so far, and a wake-up for the claimer.
    finished: AtomicUsize,
    wake: Notify,
}

impl Pipeline {
    fn opened(&self, endpoint_id: &str) {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        *open.entry(endpoint_id.to_owned()).or_insert(0) += 1;
    }

    fn closed(&self, endpoint_id: &str) {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = open.get_mut(endpoint_id) {
            *n -= 1;
            if *n == 0 {
                open.remove(endpoint_id);
            }
        }
        drop(open);
        self.finished.fetch_add(1, Ordering::Release);
        self.wake.notify_one();
    }

    fn open_now(&self) -> HashMap<String, u32> {
        self.open.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// An attempt in flight; closing it frees its endpoint slot. If the attempt
/// panicked, nothing will be recorded, so its node room comes back here (the
/// delivery is attempted again when its lease ends).
struct Open<'a> {
    pipeline: &'a Pipeline,
    endpoint_id: &'a str,
}

impl Drop for Open<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.pipeline.room.add_permits(1);
        }
        self.pipeline.closed(self.endpoint_id);
    }
}

/// The delivery HTTP client: no redirects, no proxies, the SSRF-guarded
/// resolver, the configured timeout.
pub fn client(config: &Config) -> reqwest::Result<reqwest::Client> {
    client_with(config, ssrf::system_lookup())
}

pub fn client_with(config: &Config, lookup: ssrf::Lookup) -> reqwest::Result<reqwest::Client> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .dns_resolver(Arc::new(GuardedResolver {
            policy: super::policy(config),
            lookup,
        }))
        .timeout(Duration::from_secs(config.webhook_timeout_secs.max(1)))
        .connect_timeout(Duration::from_secs(
            config.webhook_timeout_secs.clamp(1, 10),
        ))
        .user_agent(concat!("Waypost/", env!("CARGO_PKG_VERSION")))
        .pool_max_idle_per_host(config.webhook_endpoint_concurrency as usize)
        .build()
}

/// Runs until shutdown, then lets the attempts in flight finish and records them.
pub async fn run(state: AppState, shutdown: CancellationToken) {
    let client = match client(&state.config) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "webhook deliverer cannot build its HTTP client; webhooks are not delivered");
            return;
        }
    };
    let pipeline = Arc::new(Pipeline {
        worker: format!("wdl_{}", ulid::Ulid::new()),
        room: Semaphore::new(state.config.webhook_batch_size.max(1) as usize),
        open: Mutex::default(),
        finished: AtomicUsize::new(0),
        wake: Notify::new(),
    });
    // Attempts a busy claimer waits (briefly) to see finish before it leases again.
    let gather = (state.config.webhook_endpoint_concurrency as usize / 2).clamp(1, 64);
    let (outcomes, finished) = mpsc::unbounded_channel();
    let recorder = tokio::spawn(record_loop(state.clone(), finished, pipeline.clone()));
    let poll = Duration::from_millis(state.config.webhook_poll_interval_ms.max(10));
    let fan_out = tokio::spawn(fan_out_loop(
        state.clone(),
        pipeline.clone(),
        shutdown.clone(),
    ));
    let mut last_housekeeping: Option<Instant> = None;
    while !shutdown.is_cancelled() {
        let seen = pipeline.finished.load(Ordering::Acquire);
        let more = match claim(&state, &pipeline).await {
            Ok((due, more)) => {
                for d in due {
                    pipeline.opened(&d.endpoint_id);
                    let (state, client, outcomes, pipeline) = (
                        state.clone(),
                        client.clone(),
                        outcomes.clone(),
                        pipeline.clone(),
                    );
                    tokio::spawn(async move {
                        let outcome = {
                            let _open = Open {
                                pipeline: &pipeline,
                                endpoint_id: &d.endpoint_id,
                            };
                            attempt(&state, &client, &d).await
                        };
                        let _ = outcomes.send(outcome);
                    });
                }
                more
            }
            Err(e) => {
                tracing::warn!(error = format!("{e:#}"), "webhook claim failed; retrying");
                false
            }
        };
        if last_housekeeping.is_none_or(|t| t.elapsed() >= Duration::from_secs(10)) {
            last_housekeeping = Some(Instant::now());
            if let Err(e) = housekeeping(&state).await {
                tracing::warn!(error = format!("{e:#}"), "webhook housekeeping failed");
            }
        }
        if more {
            continue;
        }
        // Nothing more to lease now: wait for new work or room, gathering a
        // little so the next claim is a batch.
        tokio::select! {
            _ = shutdown.cancelled() => {}
            _ = pipeline.wake.notified() => {}
            _ = tokio::time::sleep(poll) => {}
        }
        let until = tokio::time::Instant::now() + CLAIM_GATHER;
        while pipeline.finished.load(Ordering::Acquire) - seen < gather
            && tokio::time::Instant::now() < until
        {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = pipeline.wake.notified() => {}
                _ = tokio::time::sleep_until(until) => {}
            }
        }
    }
    let _ = fan_out.await;
    drop(outcomes);
    let _ = recorder.await;
}

/// How often held inbound content is looked at for removal.
const STRIP_EVERY: Duration = Duration::from_secs(1);

/// Removes the inbound content of events every endpoint has (or gave up on)
/// once the stream's reconnect hold has passed.
async fn strip_delivered_content(state: &AppState) {
    let hold = chrono::Duration::seconds(state.config.event_content_hold_secs as i64);
    let held_until = state.clock.now() - hold;
    loop {
        match state.store.strip_delivered_content(held_until, 1000).await {
            Ok(n) => {
                metrics::counter!("waypost_event_content_removed_total").increment(n);
                if n < 1000 {
                    return;
                }
            }
            Err(e) => {
                tracing::warn!(
                    error = format!("{e:#}"),
                    "cannot remove delivered event content"
                );
                return;
            }
        }
    }
}

/// Fans new customer events out to deliveries while there are any, then
/// polls; wakes the claimer when there is new work.
async fn fan_out_loop(state: AppState, pipeline: Arc<Pipeline>, shutdown: CancellationToken) {
    let poll = Duration::from_millis(state.config.webhook_poll_interval_ms.max(10));
    let (mut fanned_total, mut analyze_at) = (0, ANALYZE_AFTER);
    let mut next_strip = tokio::time::Instant::now();
    while !shutdown.is_cancelled() {
        if tokio::time::Instant::now() >= next_strip {
            next_strip = tokio::time::Instant::now() + STRIP_EVERY;
            strip_delivered_content(&state).await;
        }
        let fanned = match state
            .store
            .fan_out_customer_events(state.clock.now(), FAN_OUT_BATCH)
            .await
        {
            Ok(n) => n,
            Err(e) => {
                tracing::warn!(error = format!("{e:#}"), "webhook fan-out failed; retrying");
                0
            }
        };
        fanned_total += fanned;
        if fanned_total >= analyze_at {
            analyze_at = fanned_total * 2;
            if let Err(e) = state.store.refresh_webhook_queue_statistics().await {
                tracing::warn!(error = %e, "cannot refresh webhook queue statistics");
            }
        }
        if fanned > 0 {
            pipeline.wake.notify_one();
        } else {
            tokio::select! {
                _ = shutdown.cancelled() => {}
                _ = tokio::time::sleep(poll) => {}
            }
        }
    }
}

/// Leases as many due deliveries as this node has room for, at most two
/// endpoints' worth at a time; `true` with the deliveries when the claim was
/// full, so there may be more to lease at once.
async fn claim(state: &AppState, pipeline: &Pipeline) -> anyhow::Result<(Vec<DueDelivery>, bool)> {
    let config = &state.config;
    let per_endpoint = config.webhook_endpoint_concurrency.max(1);
    let want = pipeline
        .room
        .available_permits()
        .min(2 * per_endpoint as usize);
    if want == 0 {
        return Ok((Vec::new(), false));
    }
    // Only this loop takes room, so it is all there.
    pipeline.room.try_acquire_many(want as u32)?.forget();
    let now = state.clock.now();
    let lease = chrono::Duration::seconds(config.webhook_timeout_secs as i64 * 2 + 30);
    let due = state
        .store
        .claim_webhook_deliveries(
            now,
            now + lease,
            want as u32,
            per_endpoint,
            &pipeline.worker,
            &pipeline.open_now(),
        )
        .await;
    let got = due.as_ref().map_or(0, Vec::len);
    pipeline.room.add_permits(want - got);
    Ok((due?, got == want))
}

/// Records finished attempts in group commits, then gives their room back.
async fn record_loop(
    state: AppState,
    mut finished: mpsc::UnboundedReceiver<WebhookAttemptOutcome>,
    pipeline: Arc<Pipeline>,
) {
    let mut batch = Vec::with_capacity(RECORD_BATCH);
    while finished.recv_many(&mut batch, RECORD_BATCH).await > 0 {
        record(&state, &batch).await;
        pipeline.room.add_permits(batch.len());
        batch.clear();
        pipeline.wake.notify_one();
    }
}

/// Records attempts; on failure their leases run out and they are attempted again.
async fn record(state: &AppState, attempts: &[WebhookAttemptOutcome]) {
    let mut tries = 0;
    while let Err(e) = state.store.record_webhook_attempts(attempts).await {
        tries += 1;
        if tries == RECORD_TRIES {
            tracing::warn!(
                error = %e,
                attempts = attempts.len(),
                "cannot record webhook attempts; they are made again when their leases end"
            );
            return;
        }
        tokio::time::sleep(Duration::from_millis(200 * u64::from(tries))).await;
    }
    let mut gone: Vec<(&str, &str)> = attempts
        .iter()
        .filter(|a| a.status_code == Some(410))
        .map(|a| (a.endpoint_id.as_str(), a.workspace_id.as_str()))
        .collect();
    gone.sort_unstable();
    gone.dedup();
    for (endpoint_id, workspace_id) in gone {
        let reason = "the endpoint answered 410 Gone";
        if let Err(e) = disable(state, endpoint_id, workspace_id, reason).await {
            tracing::warn!(
                error = format!("{e:#}"),
                endpoint = endpoint_id,
                "cannot disable webhook endpoint"
            );
        }
    }
    if attempts.iter().any(|a| a.next != DeliveryNext::Succeeded)
        && let Err(e) = disable_failing(state).await
    {
        tracing::warn!(
            error = format!("{e:#}"),
            "cannot disable failing webhook endpoints"
        );
    }
}

/// Disables endpoints that have failed without a success for the whole window.
pub async fn disable_failing(state: &AppState) -> anyhow::Result<()> {
    let window = chrono::Duration::seconds(state.config.webhook_disable_after_secs as i64);
    let failing = state
        .store
        .webhook_endpoints_failing_since(state.clock.now() - window, FAILING_BATCH)
        .await?;
    for (endpoint_id, workspace_id) in failing {
        let days = state.config.webhook_disable_after_secs as f64 / 86400.0;
        let reason = format!("every delivery attempt failed for {days:.1} days");
        disable(state, &endpoint_id, &workspace_id, &reason).await?;
    }
    Ok(())
}

/// Disables an endpoint: audited, and an `endpoint.disabled` event for the
/// workspace's other endpoints, in one transaction.
async fn disable(
    state: &AppState,
    endpoint_id: &str,
    workspace_id: &str,
    reason: &str,
) -> anyhow::Result<()> {
    let ws = WorkspaceId::parse(workspace_id).map_err(|_| anyhow::anyhow!("bad workspace id"))?;
    let now = state.clock.now();
    let event = crate::events::seal(
        &state.keys.current(),
        ws,
        EventType::EndpointDisabled,
        Some(endpoint_id.to_owned()),
        &serde_json::json!({ "endpoint_id": endpoint_id, "reason": reason }),
        now,
    );
    let audit = NewAuditEvent::new(Some(ws), Actor::System, "webhook_endpoint.disabled")
        .target("webhook_endpoint", endpoint_id.to_owned())
        .details(serde_json::json!({ "reason": reason }));
    if state
        .store
        .disable_webhook_endpoint(endpoint_id, reason, now, &[event], audit)
        .await?
    {
        metrics::counter!("waypost_webhook_endpoints_disabled_total").increment(1);
        tracing::warn!(endpoint = endpoint_id, reason, "webhook endpoint disabled");
    }
    Ok(())
}

/// Queue metrics, every few seconds (old history goes with the retention purge).
async fn housekeeping(state: &AppState) -> anyhow::Result<()> {
    let now = state.clock.now();
    let stats = state.store.webhook_queue_stats().await?;
    metrics::gauge!("waypost_webhook_queue_depth_total")
        .set(stats.iter().map(|s| s.depth).sum::<i64>() as f64);
    for s in stats {
        let age = s
            .oldest_created_at
            .map(|t| (now - t).num_milliseconds().max(0) as f64 / 1000.0)
            .unwrap_or(0.0);
        metrics::gauge!("waypost_webhook_queue_depth", "endpoint" => s.endpoint_id.clone())
            .set(s.depth as f64);
        metrics::gauge!("waypost_webhook_oldest_pending_age_seconds", "endpoint" => s.endpoint_id)
            .set(age);
    }
    Ok(())
}

/// What one HTTP attempt produced.
struct Response {
    status: Option<u16>,
    excerpt: Option<String>,
    error_class: Option<&'static str>,
}

/// Makes one attempt and decides what comes next.
async fn attempt(
    state: &AppState,
    client: &reqwest::Client,
    d: &DueDelivery,
) -> WebhookAttemptOutcome {
    let attempted_at = state.clock.now();
    let started = Instant::now();
    let response = match prepare(state, d, attempted_at).await {
        Ok((body, signature, timestamp)) => {
            send(state, client, d, body, signature, timestamp).await
        }
        Err(e) => {
            tracing::warn!(
                error = format!("{e:#}"),
                delivery = d.delivery_id,
                "cannot prepare webhook delivery"
            );
            Response {
                status: None,
                excerpt: None,
                error_class: Some("internal"),
            }
        }
    };
    let latency = started.elapsed();
    let succeeded = response.status.is_some_and(|s| (200..300).contains(&s));
    let outcome = if succeeded {
        "success"
    } else {
        response.error_class.unwrap_or("http_status")
    };
    metrics::counter!("waypost_webhook_deliveries_total", "outcome" => outcome).increment(1);
    metrics::histogram!("waypost_webhook_attempt_duration_seconds").record(latency.as_secs_f64());
    let next = if succeeded {
        DeliveryNext::Succeeded
    } else if response.status == Some(410) {
        DeliveryNext::Exhausted
    } else {
        next_attempt(&state.config, d.attempts as usize + 1, attempted_at)
    };
    WebhookAttemptOutcome {
        id: format!("wha_{}", ulid::Ulid::new()),
        delivery_id: d.delivery_id,
        endpoint_id: d.endpoint_id.clone(),
        workspace_id: d.workspace_id.clone(),
        event_id: d.event_id.clone(),
        attempted_at,
        status_code: response.status.map(i32::from),
        latency_ms: latency.as_millis() as i64,
        response_excerpt: response.excerpt,
        error_class: if succeeded {
            None
        } else {
            Some(response.error_class.unwrap_or("http_status").to_owned())
        },
        next,
    }
}

/// After `attempts_made` failed attempts: the next time, with jitter (never
/// earlier than the schedule), or exhausted when the schedule is used up.
pub fn next_attempt(config: &Config, attempts_made: usize, now: DateTime<Utc>) -> DeliveryNext {
    match config.webhook_retry_schedule_secs.get(attempts_made - 1) {
        None => DeliveryNext::Exhausted,
        Some(&delay) => {
            let delay_ms = delay.saturating_mul(1000);
            let jitter_max = delay_ms * u64::from(config.webhook_retry_jitter_percent) / 100;
            let jitter = if jitter_max > 0 {
                rand::rng().random_range(0..=jitter_max)
            } else {
                0
            };
            DeliveryNext::RetryAt(now + chrono::Duration::milliseconds((delay_ms + jitter) as i64))
        }
    }
}

/// The body, signature header and timestamp of a delivery.
async fn prepare(
    state: &AppState,
    d: &DueDelivery,
    now: DateTime<Utc>,
) -> anyhow::Result<(Vec<u8>, String, i64)> {
    let row = waypost_store::CustomerEventRow {
        seq: 0,
        id: d.event_id.clone(),
        workspace_id: d.workspace_id.clone(),
        event_type: d.event_type.clone(),
        subject_id: None,
        payload: d.payload.clone(),
        content: d.content.clone(),
        content_contact_id: d.content_contact_id.clone(),
        created_at: d.event_created_at,
        fanned_out_at: None,
    };
    let body =
        serde_json::to_vec(&crate::events::open(&state.keys, state.store.as_ref(), &row).await?)?;
    let store = state.store.as_ref();
    let secret =
        super::open_secret(&state.keys, store, &d.endpoint_id, super::SECRET, &d.secret).await?;
    let mut keys = vec![WebhookKey::parse(secret.expose_secret())?];
    if let (Some(prev), Some(until)) = (&d.previous_secret, d.previous_secret_expires_at)
        && until > now
    {
        let prev = super::open_secret(
            &state.keys,
            store,
            &d.endpoint_id,
            super::PREVIOUS_SECRET,
            prev,
        )
        .await?;
        keys.push(WebhookKey::parse(prev.expose_secret())?);
    }
    let timestamp = Utc::now().timestamp();
    let refs: Vec<&WebhookKey> = keys.iter().collect();
    Ok((
        body.clone(),
        signature_header(&refs, &d.event_id, timestamp, &body),
        timestamp,
    ))
}

async fn send(
    state: &AppState,
    client: &reqwest::Client,
    d: &DueDelivery,
    body: Vec<u8>,
    signature: String,
    timestamp: i64,
) -> Response {
    let failed = |class: &'static str| Response {
        status: None,
        excerpt: None,
        error_class: Some(class),
    };
    // The resolver guards names; literal addresses are checked here, and the
    // whole URL again in case the operator's policy changed since it was saved.
    let policy = super::policy(&state.config);
    let url = match ssrf::check_url_syntax(&d.url, policy) {
        Ok(url) => url,
        Err(_) => return failed("ssrf_blocked"),
    };
    let literal = match url.host() {
        Some(url::Host::Ipv4(ip)) => Some(std::net::IpAddr::V4(ip)),
        Some(url::Host::Ipv6(ip)) => Some(std::net::IpAddr::V6(ip)),
        _ => None,
    };
    if literal.is_some_and(|ip| ssrf::check_ip(ip, policy).is_err()) {
        return failed("ssrf_blocked");
    }
    let result = client
        .post(url)
        .header("webhook-id", &d.event_id)
        .header("webhook-timestamp", timestamp.to_string())
        .header("webhook-signature", signature)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(body)
        .send()
        .await;
    let mut res = match result {
        Ok(res) => res,
        Err(e) => return failed(classify(&e)),
    };
    let status = res.status().as_u16();
    let mut read = Vec::new();
    let mut error_class = None;
    while read.len() < RESPONSE_READ_LIMIT {
        match res.chunk().await {
            Ok(Some(chunk)) => read.extend_from_slice(&chunk),
            Ok(None) => break,
            Err(e) => {
                error_class = Some(classify(&e));
                break;
            }
        }
    }
    read.truncate(RESPONSE_READ_LIMIT);
    let excerpt: String = String::from_utf8_lossy(&read)
        .chars()
        .take(EXCERPT_CHARS)
        .collect();
    let ok = (200..300).contains(&status);
    Response {
        status: Some(status),
        excerpt: (!excerpt.is_empty()).then_some(excerpt),
        error_class: if ok {
            None
        } else {
            Some(error_class.unwrap_or("http_status"))
        },
    }
}

/// The error class of a failed request: timeout, ssrf_blocked, dns, tls, connect or other.
pub fn classify(e: &reqwest::Error) -> &'static str {
    if e.is_timeout() {
        return "timeout";
    }
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    let mut tls = false;
    while let Some(s) = source {
        if s.downcast_ref::<Refused>().is_some() {
            return "ssrf_blocked";
        }
        if s.downcast_ref::<DnsFailed>().is_some() {
            return "dns";
        }
        if s.downcast_ref::<rustls::Error>().is_some() {
            tls = true;
        }
        let text = s.to_string().to_ascii_lowercase();
        if text.contains("certificate") || text.contains("tls handshake") {
            tls = true;
        }
        source = s.source();
    }
    if tls {
        "tls"
    } else if e.is_connect() {
        "connect"
    } else {
        "other"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_follow_the_schedule_then_stop() {
        let config = Config {
            webhook_retry_jitter_percent: 0,
            ..Config::default()
        };
        let now = Utc::now();
        let expected = [5, 300, 1800, 7200, 18000, 36000, 36000];
        for (i, secs) in expected.iter().enumerate() {
            assert_eq!(
                next_attempt(&config, i + 1, now),
                DeliveryNext::RetryAt(now + chrono::Duration::seconds(*secs))
            );
        }
        assert_eq!(next_attempt(&config, 8, now), DeliveryNext::Exhausted);
    }

    #[test]
    fn jitter_only_delays() {
        let config = Config::default();
        let now = Utc::now();
        for _ in 0..100 {
            let DeliveryNext::RetryAt(at) = next_attempt(&config, 2, now) else {
                panic!()
            };
            let secs = (at - now).num_milliseconds();
            assert!((300_000..=330_000).contains(&secs), "{secs}");
        }
    }
}
