//! The live event stream `GET /v1/events/stream`: delivery of inbound messages
//! within the latency bound, type filtering and workspace isolation, scope and
//! role refusals, resumption by `Last-Event-ID` (and `since`, and the gap
//! notice after a purge), heartbeats past the request timeout, and streams
//! ending when their key is revoked or their session ends.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use waypost_store::Backend;

use crate::helpers::{TestApp, assert_problem, spawn_app_with};
use crate::messaging_fixture::{Fixture, USER, fixture};
use crate::on_both_backends;
use crate::users::{PASSWORD, Session, api_key, login, member, owner};

on_both_backends!(
    message_received_arrives_live_with_its_webhook_body,
    types_filter_events_and_workspaces_are_isolated,
    scopes_roles_and_bad_requests_are_refused,
    resumption_replays_exactly_the_missed_events_then_continues,
    heartbeats_keep_an_idle_stream_open_past_the_request_timeout,
    revoked_keys_and_ended_sessions_end_their_streams,
);

/// One SSE frame as a client parses it.
#[derive(Debug, Default)]
struct Frame {
    id: Option<String>,
    event: Option<String>,
    data: Vec<String>,
    comments: Vec<String>,
    retry: Option<String>,
}

impl Frame {
    fn json(&self) -> Value {
        serde_json::from_str(&self.data.join("\n")).expect("data is JSON")
    }
}

/// Reads frames from a streaming response.
struct Sse {
    res: reqwest::Response,
    buf: String,
}

impl Sse {
    fn new(res: reqwest::Response) -> Self {
        assert_eq!(res.status(), 200);
        let h = res.headers();
        assert_eq!(h["content-type"], "text/event-stream");
        // The edge's `no-store` (stricter than SSE's usual `no-cache`) stays.
        assert_eq!(h["cache-control"], "no-store");
        assert_eq!(h["x-accel-buffering"], "no");
        Self {
            res,
            buf: String::new(),
        }
    }

    /// The next frame, or `None` if the stream ended or nothing came within `wait`.
    async fn frame(&mut self, wait: Duration) -> Option<Frame> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            if let Some(end) = self.buf.find("\n\n") {
                let raw: String = self.buf.drain(..end + 2).collect();
                return Some(parse(&raw));
            }
            let chunk = tokio::time::timeout_at(deadline, self.res.chunk()).await;
            match chunk {
                Ok(Ok(Some(bytes))) => self.buf.push_str(std::str::from_utf8(&bytes).unwrap()),
                _ => return None,
            }
        }
    }

    /// The next frame that is an event (skipping heartbeats).
    async fn event(&mut self, wait: Duration) -> Option<Frame> {
        let deadline = Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let f = self.frame(left).await?;
            if f.event.is_some() {
                return Some(f);
            }
        }
    }

    /// Events until none comes for `quiet`.
    async fn events_until_quiet(&mut self, quiet: Duration) -> Vec<Frame> {
        let mut out = Vec::new();
        while let Some(f) = self.event(quiet).await {
            out.push(f);
        }
        out
    }

    /// Whether the server ends the stream within `wait`.
    async fn ends_within(&mut self, wait: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            match tokio::time::timeout_at(deadline, self.res.chunk()).await {
                Ok(Ok(Some(_))) => continue,
                Ok(Ok(None)) | Ok(Err(_)) => return true,
                Err(_) => return false,
            }
        }
    }
}

fn parse(raw: &str) -> Frame {
    let mut f = Frame::default();
    for line in raw.lines().filter(|l| !l.is_empty()) {
        if let Some(c) = line.strip_prefix(':') {
            f.comments.push(c.trim().to_owned());
            continue;
        }
        let (name, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value).to_owned();
        match name {
            "id" => f.id = Some(value),
            "event" => f.event = Some(value),
            "data" => f.data.push(value),
            "retry" => f.retry = Some(value),
            other => panic!("unexpected field {other}"),
        }
    }
    f
}

const WAIT: Duration = Duration::from_secs(3);
const QUIET: Duration = Duration::from_millis(400);

/// Opens a stream with `key` at `query`, checking the opening `retry` frame.
async fn open(app: &TestApp, key: &str, query: &str, last_event_id: Option<&str>) -> Sse {
    let mut req = app
        .client
        .get(format!("{}/v1/events/stream{query}", app.address))
        .bearer_auth(key);
    if let Some(id) = last_event_id {
        req = req.header("last-event-id", id);
    }
    let mut sse = Sse::new(req.send().await.unwrap());
    let first = sse.frame(WAIT).await.expect("a first frame");
    assert_eq!(first.retry.as_deref(), Some("3000"), "{first:?}");
    sse
}

async fn stream_request(app: &TestApp, key: &str, query: &str) -> reqwest::Response {
    app.client
        .get(format!("{}/v1/events/stream{query}", app.address))
        .bearer_auth(key)
        .send()
        .await
        .unwrap()
}

fn inbound_text(wamid: &str, body: &str) -> Value {
    json!({
        "contacts": [{"profile": {"name": "Ana"}, "wa_id": USER}],
        "messages": [{"from": USER, "id": wamid, "timestamp": "1764230000", "type": "text", "text": {"body": body}}]
    })
}

/// The stored event with this event id, as `(seq, type)`.
async fn stored(f: &Fixture, event_id: &str) -> (i64, String) {
    let e = f
        .app
        .state
        .store
        .customer_event(&f.ws.to_string(), event_id)
        .await
        .unwrap();
    (e.seq, e.event_type)
}

async fn message_received_arrives_live_with_its_webhook_body(backend: Backend) {
    let Some(f) = fixture(backend, |c| c.dispatch_enabled = false, |_| {}).await else {
        return;
    };
    let mut sse = open(&f.app, &f.key, "?types=message.received", None).await;
    let mut latencies = Vec::new();
    for i in 0..3 {
        let wamid = format!("wamid.LIVE{i}");
        let body = f.messages_body(inbound_text(&wamid, "hello"));
        let res = f.post_webhook(&body, None).await;
        assert_eq!(res.status(), 200);
        let accepted = Instant::now();
        let frame = sse.event(WAIT).await.expect("message.received arrives");
        latencies.push(accepted.elapsed());
        assert_eq!(frame.event.as_deref(), Some("message.received"));
        let data = frame.json();
        assert_eq!(data["type"], "message.received");
        assert_eq!(data["data"]["wamid"], wamid.as_str());
        assert!(data["timestamp"].is_string(), "{data}");
        let event_id = data["id"].as_str().expect("the event id");
        assert!(event_id.starts_with("evt_"), "{event_id}");
        let (seq, kind) = stored(&f, event_id).await;
        assert_eq!(kind, "message.received");
        assert_eq!(frame.id, Some(seq.to_string()));
    }
    let worst = latencies.iter().max().unwrap();
    eprintln!("event stream latency after the webhook's 200: {latencies:?}");
    assert!(*worst <= Duration::from_secs(1), "{latencies:?}");
    let metrics = f.app.metrics().await.text().await.unwrap();
    // The gauge is process-wide (other tests may run in this process): present, at least.
    assert!(
        metrics.contains("waypost_event_streams_open"),
        "the open streams are counted"
    );
}

async fn types_filter_events_and_workspaces_are_isolated(backend: Backend) {
    let Some(f) = fixture(backend, |c| c.dispatch_enabled = false, |_| {}).await else {
        return;
    };
    let mut received_only = open(&f.app, &f.key, "?types=message.received", None).await;
    let mut everything = open(&f.app, &f.key, "", None).await;
    let other = owner(&f.app, "other@example.com", "Other").await;
    let other_session = login(&f.app, &other.email, PASSWORD).await;
    let (_, other_key) = api_key(
        &f.app,
        &other_session,
        json!({"name": "screen", "scopes": ["messages:read"]}),
    )
    .await;
    let mut other_ws = open(&f.app, &other_key, "", None).await;

    f.open_window(USER).await;
    let queued = f.send_ok(USER, "a reply").await;
    let first = received_only
        .event(WAIT)
        .await
        .expect("the inbound message");
    assert_eq!(first.event.as_deref(), Some("message.received"));
    let rest = received_only.events_until_quiet(QUIET).await;
    assert!(rest.is_empty(), "only message.received: {rest:?}");

    let all = everything.events_until_quiet(QUIET).await;
    let kinds: Vec<&str> = all.iter().filter_map(|e| e.event.as_deref()).collect();
    assert!(kinds.contains(&"message.received"), "{kinds:?}");
    let queued_frame = all
        .iter()
        .find(|e| e.event.as_deref() == Some("message.queued"))
        .expect("message.queued on the unfiltered stream");
    assert_eq!(queued_frame.json()["data"]["message_id"], queued.as_str());
    let ids: Vec<i64> = all
        .iter()
        .map(|e| e.id.as_ref().unwrap().parse().unwrap())
        .collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "ids increase: {ids:?}");

    let leaked = other_ws.events_until_quiet(QUIET).await;
    assert!(leaked.is_empty(), "another workspace's events: {leaked:?}");
}

async fn scopes_roles_and_bad_requests_are_refused(backend: Backend) {
    let Some(app) = spawn_app_with(backend, |c| c.event_stream_max_per_workspace = 2).await else {
        return;
    };
    let acme = owner(&app, "owner@example.com", "Acme").await;
    let session = login(&app, &acme.email, PASSWORD).await;
    let key = |scopes: &[&str]| {
        let body = json!({"name": "k", "scopes": scopes});
        let (app, session) = (&app, &session);
        async move { api_key(app, session, body).await.1 }
    };
    let sender = key(&["messages:send"]).await;
    let reader = key(&["messages:read"]).await;

    let res = stream_request(&app, &sender, "?types=message.received").await;
    let p = assert_problem(res, 403).await;
    assert_eq!(p["event_type"], "message.received");
    assert_eq!(p["required_scope"], "messages:read");
    // Without `types`, a key that can read nothing is refused too.
    assert_problem(stream_request(&app, &sender, "").await, 403).await;
    let res = stream_request(&app, &reader, "?types=message.received,contact.opted_out").await;
    let p = assert_problem(res, 403).await;
    assert_eq!(p["event_type"], "contact.opted_out");
    assert!(
        p["detail"].as_str().unwrap().contains("contacts:read"),
        "{p}"
    );

    let res = stream_request(&app, &reader, "?types=message.received,message.lost").await;
    let p = assert_problem(res, 422).await;
    assert_eq!(p["unknown_types"], json!(["message.lost"]));
    assert!(
        p["detail"].as_str().unwrap().contains("message.lost"),
        "{p}"
    );
    let res = stream_request(&app, &reader, "?since=evt_123").await;
    assert_problem(res, 422).await;
    let res = app
        .client
        .get(format!("{}/v1/events/stream", app.address))
        .send()
        .await
        .unwrap();
    assert_problem(res, 401).await;

    // A member's role decides as the API does: an analyst reads messages, not webhooks.
    let analyst = member(&app, acme.workspace_id, "analyst@example.com", "analyst").await;
    let analyst = login(&app, &analyst.email, PASSWORD).await;
    let res = session_stream(&app, &analyst, "?types=webhook.test").await;
    let p = assert_problem(res, 403).await;
    assert_eq!(p["event_type"], "webhook.test");
    // The cookie session (what a browser's EventSource sends) opens a stream.
    let _screen = Sse::new(session_stream(&app, &analyst, "?types=message.received").await);
    let _bot = open(&app, &reader, "", None).await;
    // The workspace's limit (2 here) is reached: 429.
    let p = assert_problem(stream_request(&app, &reader, "").await, 429).await;
    assert_eq!(p["limit"], 2);
}

async fn session_stream(app: &TestApp, session: &Session, query: &str) -> reqwest::Response {
    app.client
        .get(format!("{}/v1/events/stream{query}", app.address))
        .header("cookie", &session.cookie)
        .send()
        .await
        .unwrap()
}

fn ids(frames: &[Frame]) -> Vec<i64> {
    frames
        .iter()
        .map(|e| e.id.as_ref().expect("an id").parse().unwrap())
        .collect()
}

async fn resumption_replays_exactly_the_missed_events_then_continues(backend: Backend) {
    let Some(f) = fixture(backend, |c| c.dispatch_enabled = false, |_| {}).await else {
        return;
    };
    f.open_window(USER).await;
    let q = "?types=message.queued";
    let mut sse = open(&f.app, &f.key, q, None).await;
    let a = f.send_ok(USER, "a").await;
    let first = sse.event(WAIT).await.expect("message.queued");
    assert_eq!(first.json()["data"]["message_id"], a.as_str());
    let last_seen = first.id.clone().unwrap();
    drop(sse);

    let mut missed = Vec::new();
    for body in ["b", "c", "d"] {
        missed.push(f.send_ok(USER, body).await);
    }
    let mut resumed = open(&f.app, &f.key, q, Some(&last_seen)).await;
    let replayed = resumed.events_until_quiet(QUIET).await;
    let got: Vec<String> = replayed
        .iter()
        .map(|e| e.json()["data"]["message_id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(got, missed, "exactly the missed events, in order");
    let replay_ids = ids(&replayed);
    assert!(replay_ids.windows(2).all(|w| w[0] < w[1]), "{replay_ids:?}");
    // Then live, with no duplicate.
    let e = f.send_ok(USER, "e").await;
    let live = resumed.events_until_quiet(QUIET).await;
    assert_eq!(live.len(), 1, "{live:?}");
    assert_eq!(live[0].json()["data"]["message_id"], e.as_str());
    assert!(ids(&live)[0] > *replay_ids.last().unwrap());

    // `since` does the same when there is no header (and the header wins over it).
    let mut by_query = open(&f.app, &f.key, &format!("{q}&since={last_seen}"), None).await;
    assert_eq!(by_query.events_until_quiet(QUIET).await.len(), 4);
    let newest = live[0].id.clone().unwrap();
    let mut header_wins = open(&f.app, &f.key, &format!("{q}&since=0"), Some(&newest)).await;
    assert!(header_wins.events_until_quiet(QUIET).await.is_empty());

    // Events purged since the client's id: a gap notice, then what is kept.
    let oldest_kept: i64 = replay_ids[1];
    purge_events_up_to(&f.app, oldest_kept - 1).await;
    let mut gapped = open(&f.app, &f.key, q, Some(&last_seen)).await;
    let notice = gapped.event(WAIT).await.expect("the gap notice");
    assert_eq!(notice.event.as_deref(), Some("stream.gap"));
    assert_eq!(notice.id, None);
    assert_eq!(
        notice.json(),
        json!({"requested_after": last_seen.parse::<i64>().unwrap(), "resumed_after": oldest_kept - 1})
    );
    let after_gap = gapped.events_until_quiet(QUIET).await;
    assert_eq!(
        ids(&after_gap),
        [replay_ids[1], replay_ids[2], ids(&live)[0]]
    );
}

async fn purge_events_up_to(app: &TestApp, seq: i64) {
    let sql = format!("DELETE FROM customer_events WHERE seq <= {seq}");
    match app.state.store.backend() {
        Backend::Sqlite => {
            let pool = sqlx::SqlitePool::connect(&app.db.url).await.unwrap();
            sqlx::raw_sql(&sql).execute(&pool).await.unwrap();
        }
        Backend::Postgres => {
            let pool = sqlx::PgPool::connect(&app.db.url).await.unwrap();
            sqlx::raw_sql(&sql).execute(&pool).await.unwrap();
        }
    }
}

async fn heartbeats_keep_an_idle_stream_open_past_the_request_timeout(backend: Backend) {
    let Some(app) = spawn_app_with(backend, |c| {
        c.event_stream_heartbeat_ms = 100;
        c.request_timeout_secs = 1;
    })
    .await
    else {
        return;
    };
    let acme = owner(&app, "owner@example.com", "Acme").await;
    let session = login(&app, &acme.email, PASSWORD).await;
    let (_, key) = api_key(
        &app,
        &session,
        json!({"name": "k", "scopes": ["messages:read"]}),
    )
    .await;
    let mut sse = open(&app, &key, "", None).await;
    let started = Instant::now();
    let mut pings = 0;
    // Generous waits: two cores shared by parallel tests delay timers.
    while started.elapsed() < Duration::from_millis(1600) {
        let f = sse
            .frame(Duration::from_secs(1))
            .await
            .expect("a heartbeat");
        assert!(f.event.is_none(), "{f:?}");
        pings += f.comments.iter().filter(|c| *c == "ping").count();
    }
    // Still open well past the 1 s request timeout, and pinged while idle.
    assert!(pings >= 4, "{pings} heartbeats in 1.6 s");
}

async fn revoked_keys_and_ended_sessions_end_their_streams(backend: Backend) {
    let Some(app) = spawn_app_with(backend, |c| c.event_stream_recheck_ms = 100).await else {
        return;
    };
    let acme = owner(&app, "owner@example.com", "Acme").await;
    let session = login(&app, &acme.email, PASSWORD).await;
    let (id, key) = api_key(
        &app,
        &session,
        json!({"name": "k", "scopes": ["messages:read"]}),
    )
    .await;
    let mut keyed = open(&app, &key, "", None).await;
    let other = login(&app, &acme.email, PASSWORD).await;
    let mut signed_in = Sse::new(session_stream(&app, &other, "").await);
    assert!(!keyed.ends_within(Duration::from_millis(300)).await);

    let res = session.delete(&app, &format!("/v1/api-keys/{id}")).await;
    assert!(res.status().is_success(), "{}", res.status());
    assert!(
        keyed.ends_within(Duration::from_secs(2)).await,
        "revoked key's stream ended"
    );
    assert_problem(stream_request(&app, &key, "").await, 401).await;

    assert!(!signed_in.ends_within(Duration::from_millis(200)).await);
    let res = other.post(&app, "/v1/auth/logout", json!({})).await;
    assert!(res.status().is_success(), "{}", res.status());
    assert!(
        signed_in.ends_within(Duration::from_secs(2)).await,
        "ended session's stream ended"
    );
}
