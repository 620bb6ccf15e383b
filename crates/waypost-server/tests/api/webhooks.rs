//! Customer webhooks end to end: deliveries received by a real local HTTP
//! server and verified with the Python `standardwebhooks` package, retries on
//! the schedule across a restart, disabling, replay and resend, and SSRF
//! refusals at save and at delivery time.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use serde_json::{Value, json};
use waypost_core::WorkspaceId;
use waypost_core::events::EventType;
use waypost_server::Config;
use waypost_store::Backend;

use crate::helpers::{TestApp, assert_problem, spawn_app_with, spawn_with};
use crate::users::{PASSWORD, api_key, audit_actions, login, owner};

/// One request the receiver got.
#[derive(Debug, Clone)]
pub struct Received {
    pub headers: HeaderMap,
    pub body: String,
}

impl Received {
    fn id(&self) -> &str {
        self.headers["webhook-id"].to_str().unwrap()
    }
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap()
    }
}

/// A local webhook receiver answering with scripted statuses (then `fallback`).
#[derive(Clone)]
pub struct Receiver {
    pub url: String,
    pub port: u16,
    got: Arc<Mutex<Vec<Received>>>,
    script: Arc<Mutex<VecDeque<u16>>>,
    fallback: Arc<Mutex<u16>>,
    /// How long each answer takes.
    delay: Arc<Mutex<Duration>>,
    in_flight: Arc<AtomicUsize>,
    /// Most requests ever open at once.
    peak: Arc<AtomicUsize>,
}

async fn receive(
    State(r): State<Receiver>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, &'static str) {
    let open = r.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    r.peak.fetch_max(open, Ordering::SeqCst);
    let delay = *r.delay.lock().unwrap();
    tokio::time::sleep(delay).await;
    r.in_flight.fetch_sub(1, Ordering::SeqCst);
    r.got.lock().unwrap().push(Received {
        headers,
        body: String::from_utf8(body.to_vec()).unwrap(),
    });
    let status = r
        .script
        .lock()
        .unwrap()
        .pop_front()
        .unwrap_or(*r.fallback.lock().unwrap());
    (StatusCode::from_u16(status).unwrap(), "receiver says hi")
}

impl Receiver {
    pub async fn start(fallback: u16) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let r = Receiver {
            url: format!("http://127.0.0.1:{port}/hook"),
            port,
            got: Default::default(),
            script: Default::default(),
            fallback: Arc::new(Mutex::new(fallback)),
            delay: Default::default(),
            in_flight: Default::default(),
            peak: Default::default(),
        };
        let app = axum::Router::new()
            .route("/hook", axum::routing::post(receive))
            .with_state(r.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        r
    }

    pub fn script(&self, statuses: &[u16]) {
        self.script.lock().unwrap().extend(statuses);
    }

    pub fn answer_after(&self, delay: Duration) {
        *self.delay.lock().unwrap() = delay;
    }

    pub fn peak_in_flight(&self) -> usize {
        self.peak.load(Ordering::SeqCst)
    }

    pub fn received(&self) -> Vec<Received> {
        self.got.lock().unwrap().clone()
    }

    /// Waits until `n` requests arrived (panics after 15 s).
    pub async fn wait_for(&self, n: usize) -> Vec<Received> {
        for _ in 0..300 {
            let got = self.received();
            if got.len() >= n {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("expected {n} deliveries, got {}", self.received().len());
    }

    /// Asserts nothing more arrives for a while.
    pub async fn assert_stays_at(&self, n: usize) {
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert_eq!(self.received().len(), n, "unexpected delivery");
    }
}

fn local_targets(c: &mut Config) {
    c.webhook_allow_http = true;
    c.webhook_allow_private_targets = true;
    c.webhook_poll_interval_ms = 30;
    c.webhook_retry_jitter_percent = 0;
}

/// An owner's workspace and an API key with `webhooks:manage`.
async fn workspace(app: &TestApp) -> (WorkspaceId, String) {
    let a = owner(app, "ana@example.com", "Acme").await;
    let s = login(app, &a.email, PASSWORD).await;
    let (_, key) = api_key(
        app,
        &s,
        json!({"name": "hooks", "scopes": ["webhooks:manage"]}),
    )
    .await;
    (a.workspace_id, key)
}

async fn call(
    app: &TestApp,
    key: &str,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> reqwest::Response {
    let mut req = app
        .client
        .request(method.parse().unwrap(), format!("{}{path}", app.address))
        .bearer_auth(key);
    if let Some(body) = body {
        req = req.json(&body);
    }
    req.send().await.unwrap()
}

/// Creates an endpoint; returns `(id, secret)`.
async fn endpoint(app: &TestApp, key: &str, body: Value) -> (String, String) {
    let res = call(app, key, "POST", "/v1/webhook-endpoints", Some(body)).await;
    assert_eq!(res.status(), 201);
    let v: Value = res.json().await.unwrap();
    (
        v["id"].as_str().unwrap().into(),
        v["secret"].as_str().unwrap().into(),
    )
}

/// Records customer events as the messaging code does; returns their ids in order.
async fn emit(app: &TestApp, ws: WorkspaceId, events: &[(EventType, &str)]) -> Vec<String> {
    let ring = app.state.keys.current();
    let sealed: Vec<_> = events
        .iter()
        .map(|(t, subject)| {
            waypost_server::events::seal(
                &ring,
                ws,
                *t,
                Some((*subject).to_owned()),
                &json!({ "message_id": subject, "status": t.as_str() }),
                app.clock_now(),
            )
        })
        .collect();
    app.state
        .store
        .append_customer_events(&sealed)
        .await
        .unwrap();
    sealed.into_iter().map(|e| e.id).collect()
}

/// Verifies each `(secret, delivery)` with the Python `standardwebhooks`
/// package (an implementation that is not ours). The interpreter comes from
/// `STANDARDWEBHOOKS_PYTHON`; without it the check is skipped, except under CI.
fn verify_with_standardwebhooks(items: &[(String, Received)]) {
    if let Some((ok, stdout)) = run_standardwebhooks(items) {
        assert!(ok, "standardwebhooks refused a delivery: {stdout}");
    }
}

/// Runs the Python verifier: `Some((all verified, its output))`, or `None` when skipped.
fn run_standardwebhooks(items: &[(String, Received)]) -> Option<(bool, String)> {
    let Ok(python) = std::env::var("STANDARDWEBHOOKS_PYTHON") else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI=true but STANDARDWEBHOOKS_PYTHON is not set (.ci/run installs it)"
        );
        eprintln!("skipping standardwebhooks verification: STANDARDWEBHOOKS_PYTHON is not set");
        return None;
    };
    let docs: Vec<Value> = items
        .iter()
        .map(|(secret, r)| {
            let headers: serde_json::Map<String, Value> =
                ["webhook-id", "webhook-timestamp", "webhook-signature"]
                    .iter()
                    .map(|h| (h.to_string(), json!(r.headers[*h].to_str().unwrap())))
                    .collect();
            json!({ "secret": secret, "headers": headers, "body": r.body })
        })
        .collect();
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), serde_json::to_vec(&docs).unwrap()).unwrap();
    let script = r#"
import json, sys
from standardwebhooks.webhooks import Webhook
items = json.load(open(sys.argv[1]))
bad = 0
for it in items:
    try:
        Webhook(it["secret"]).verify(it["body"], it["headers"])
    except Exception as e:
        bad += 1
        print("NOT VERIFIED", it["headers"]["webhook-id"], repr(e))
print("standardwebhooks verified", len(items) - bad, "of", len(items))
sys.exit(1 if bad or not items else 0)
"#;
    let out = std::process::Command::new(python)
        .arg("-c")
        .arg(script)
        .arg(file.path())
        .output()
        .expect("the Python interpreter runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    eprintln!("{stdout}{}", String::from_utf8_lossy(&out.stderr));
    Some((out.status.success(), stdout.into_owned()))
}

async fn webhook_deliveries_verify_with_standardwebhooks(backend: Backend) {
    let Some(app) = spawn_app_with(backend, local_targets).await else {
        return;
    };
    let (ws, key) = workspace(&app).await;
    let receiver = Receiver::start(200).await;
    let (id, secret) = endpoint(
        &app,
        &key,
        json!({"url": receiver.url, "description": "main"}),
    )
    .await;
    assert!(secret.starts_with("whsec_"));

    // The secret is shown once and stored encrypted.
    let listed: Value = call(&app, &key, "GET", "/v1/webhook-endpoints", None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(listed[0]["id"], id.as_str());
    assert!(!listed.to_string().contains("whsec_"), "{listed}");
    let stored = app
        .state
        .store
        .get_webhook_endpoint(&ws.to_string(), &id)
        .await
        .unwrap();
    assert!(
        !stored
            .secret
            .windows(10)
            .any(|w| secret.as_bytes().windows(10).any(|s| s == w))
    );

    let msg = "msg_01";
    let ids = emit(
        &app,
        ws,
        &[
            (EventType::MessageQueued, msg),
            (EventType::MessageSent, msg),
            (EventType::MessageDelivered, msg),
            (EventType::MessageRead, msg),
            (EventType::ContactOptedOut, "con_01"),
        ],
    )
    .await;
    let res = call(
        &app,
        &key,
        "POST",
        &format!("/v1/webhook-endpoints/{id}/test"),
        None,
    )
    .await;
    assert_eq!(res.status(), 202);
    let got = receiver.wait_for(6).await;
    for r in &got {
        assert_eq!(r.headers["content-type"], "application/json");
        assert!(
            r.headers["user-agent"]
                .to_str()
                .unwrap()
                .starts_with("Waypost/")
        );
        assert!(r.id().starts_with("evt_"));
        let body = r.json();
        assert!(
            body["type"].is_string() && body["timestamp"].is_string() && body["data"].is_object()
        );
    }
    // A message's events arrive in order.
    let order: Vec<&str> = got
        .iter()
        .map(|r| r.id())
        .filter(|i| ids[..4].contains(&i.to_string()))
        .collect();
    assert_eq!(
        order,
        ids[..4].iter().map(String::as_str).collect::<Vec<_>>()
    );
    assert!(got.iter().any(|r| r.json()["type"] == "webhook.test"));
    let mut items: Vec<(String, Received)> =
        got.iter().map(|r| (secret.clone(), r.clone())).collect();

    // After a rotation both secrets sign for 24 hours.
    let res = call(
        &app,
        &key,
        "POST",
        &format!("/v1/webhook-endpoints/{id}/rotate-secret"),
        None,
    )
    .await;
    assert_eq!(res.status(), 200);
    let new_secret = res.json::<Value>().await.unwrap()["secret"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(new_secret, secret);
    emit(&app, ws, &[(EventType::MessageFailed, "msg_02")]).await;
    let got = receiver.wait_for(7).await;
    let rotated = got[6].clone();
    assert_eq!(
        rotated.headers["webhook-signature"]
            .to_str()
            .unwrap()
            .split(' ')
            .count(),
        2
    );
    items.push((secret.clone(), rotated.clone()));
    items.push((new_secret.clone(), rotated));
    verify_with_standardwebhooks(&items);
    // Control: the verifier does refuse a changed body.
    let mut forged = items[0].clone();
    forged.1.body.push(' ');
    if let Some((ok, _)) = run_standardwebhooks(&[forged]) {
        assert!(!ok, "a forged delivery verified");
    }

    let page: Value = call(
        &app,
        &key,
        "GET",
        &format!("/v1/webhook-endpoints/{id}/attempts"),
        None,
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(page["data"].as_array().unwrap().len(), 7);
    assert!(
        page["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|a| a["succeeded"] == true && a["status_code"] == 200)
    );
    assert_eq!(page["data"][0]["response_excerpt"], "receiver says hi");
    let actions = audit_actions(&app, Some(ws)).await;
    for a in [
        "webhook_endpoint.created",
        "webhook_endpoint.secret_rotated",
    ] {
        assert!(actions.iter().any(|x| x == a), "{a} not audited");
    }
}

async fn webhook_retries_follow_the_schedule_survive_restart_and_stop(backend: Backend) {
    let Some(app) = spawn_app_with(backend, local_targets).await else {
        return;
    };
    let (ws, key) = workspace(&app).await;
    let receiver = Receiver::start(200).await;
    receiver.script(&[500, 500, 503]);
    let (id, _) = endpoint(&app, &key, json!({"url": receiver.url})).await;
    emit(&app, ws, &[(EventType::MessageSent, "msg_1")]).await;
    receiver.wait_for(1).await;
    app.clock.advance(chrono::Duration::seconds(4));
    receiver.assert_stays_at(1).await;
    app.clock.advance(chrono::Duration::seconds(1));
    receiver.wait_for(2).await;

    // Restart on the same database: the pending retry survives.
    let elapsed = app.clock_now() - chrono::Utc::now();
    let (config, db, dir) = (app.config.clone(), app.db.clone(), app.data_dir.clone());
    app.stop().await.unwrap();
    let app = spawn_with(config, db, dir).await;
    app.clock.advance(elapsed);
    app.clock.advance(chrono::Duration::seconds(299));
    receiver.assert_stays_at(2).await;
    app.clock.advance(chrono::Duration::seconds(1));
    receiver.wait_for(3).await;
    app.clock.advance(chrono::Duration::seconds(1800));
    let got = receiver.wait_for(4).await;
    assert!(
        got.iter().all(|r| r.id() == got[0].id()),
        "webhook-id is the same on every retry"
    );
    // Success ends the retries.
    app.clock.advance(chrono::Duration::hours(30));
    receiver.assert_stays_at(4).await;

    let page: Value = call(
        &app,
        &key,
        "GET",
        &format!("/v1/webhook-endpoints/{id}/attempts"),
        None,
    )
    .await
    .json()
    .await
    .unwrap();
    let statuses: Vec<i64> = page["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["status_code"].as_i64().unwrap())
        .collect();
    assert_eq!(statuses, [200, 503, 500, 500]);
    assert_eq!(page["data"][1]["error_class"], "http_status");
}

async fn webhook_deliveries_keep_type_filters_order_and_endpoint_concurrency(backend: Backend) {
    let Some(app) = spawn_app_with(backend, |c| {
        local_targets(c);
        c.webhook_endpoint_concurrency = 2;
    })
    .await
    else {
        return;
    };
    let (ws, key) = workspace(&app).await;
    let all = Receiver::start(200).await;
    all.answer_after(Duration::from_millis(80));
    let reads = Receiver::start(200).await;
    endpoint(&app, &key, json!({"url": all.url})).await;
    endpoint(
        &app,
        &key,
        json!({"url": reads.url, "event_types": ["message.read"]}),
    )
    .await;
    let messages: Vec<String> = (0..6).map(|i| format!("msg_{i}")).collect();
    let events: Vec<(EventType, &str)> = messages
        .iter()
        .flat_map(|m| {
            [
                (EventType::MessageDelivered, m.as_str()),
                (EventType::MessageRead, m.as_str()),
            ]
        })
        .collect();
    emit(&app, ws, &events).await;

    let got = all.wait_for(12).await;
    // Six messages could go at once; the endpoint's limit lets two.
    assert_eq!(all.peak_in_flight(), 2);
    for m in &messages {
        let types: Vec<Value> = got
            .iter()
            .map(Received::json)
            .filter(|b| b["data"]["message_id"] == m.as_str())
            .map(|b| b["type"].clone())
            .collect();
        assert_eq!(types, ["message.delivered", "message.read"], "{m}");
    }
    let got = reads.wait_for(6).await;
    assert!(got.iter().all(|r| r.json()["type"] == "message.read"));
    reads.assert_stays_at(6).await;
    all.assert_stays_at(12).await;
}

async fn webhook_retries_stop_when_the_schedule_is_used_up(backend: Backend) {
    let Some(app) = spawn_app_with(backend, |c| {
        local_targets(c);
        c.webhook_retry_schedule_secs = vec![5, 60];
    })
    .await
    else {
        return;
    };
    let (ws, key) = workspace(&app).await;
    let receiver = Receiver::start(500).await;
    endpoint(&app, &key, json!({"url": receiver.url})).await;
    emit(&app, ws, &[(EventType::MessageSent, "msg_1")]).await;
    receiver.wait_for(1).await;
    app.clock.advance(chrono::Duration::seconds(5));
    receiver.wait_for(2).await;
    app.clock.advance(chrono::Duration::seconds(60));
    receiver.wait_for(3).await;
    app.clock.advance(chrono::Duration::hours(1));
    receiver.assert_stays_at(3).await;
}

/// Waits until the endpoint's attempt log holds `n` attempts.
async fn recorded_attempts(app: &TestApp, key: &str, endpoint: &str, n: usize) {
    for _ in 0..200 {
        let page: Value = call(
            app,
            key,
            "GET",
            &format!("/v1/webhook-endpoints/{endpoint}/attempts"),
            None,
        )
        .await
        .json()
        .await
        .unwrap();
        if page["data"].as_array().is_some_and(|a| a.len() >= n) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("fewer than {n} attempts recorded for {endpoint}");
}

async fn webhook_endpoints_are_disabled_after_the_failure_window_and_on_410(backend: Backend) {
    let Some(app) = spawn_app_with(backend, local_targets).await else {
        return;
    };
    let (ws, key) = workspace(&app).await;
    let failing = Receiver::start(500).await;
    let healthy = Receiver::start(200).await;
    let gone = Receiver::start(410).await;
    let (failing_id, _) = endpoint(&app, &key, json!({"url": failing.url})).await;
    endpoint(&app, &key, json!({"url": healthy.url})).await;
    emit(&app, ws, &[(EventType::MessageSent, "msg_1")]).await;
    failing.wait_for(1).await;
    healthy.wait_for(1).await;
    // The clock moves only once the first failure is recorded: moved between the
    // attempt and its record, the failure would look 5 days old already.
    recorded_attempts(&app, &key, &failing_id, 1).await;

    app.clock
        .advance(chrono::Duration::days(5) + chrono::Duration::seconds(1));
    failing.wait_for(2).await;
    let got = healthy.wait_for(2).await;
    let notice = got[1].json();
    assert_eq!(notice["type"], "endpoint.disabled");
    assert_eq!(notice["data"]["endpoint_id"], failing_id.as_str());
    let view: Value = call(
        &app,
        &key,
        "GET",
        &format!("/v1/webhook-endpoints/{failing_id}"),
        None,
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(view["enabled"], false);
    assert!(view["disabled_reason"].as_str().unwrap().contains("failed"));
    assert!(
        audit_actions(&app, Some(ws))
            .await
            .iter()
            .any(|a| a == "webhook_endpoint.disabled")
    );
    // A disabled endpoint gets nothing more.
    app.clock.advance(chrono::Duration::hours(11));
    failing.assert_stays_at(2).await;

    // 410 Gone disables at once.
    let (gone_id, _) = endpoint(&app, &key, json!({"url": gone.url})).await;
    emit(&app, ws, &[(EventType::MessageSent, "msg_2")]).await;
    gone.wait_for(1).await;
    healthy.wait_for(4).await;
    let view: Value = call(
        &app,
        &key,
        "GET",
        &format!("/v1/webhook-endpoints/{gone_id}"),
        None,
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(view["enabled"], false);
    assert!(view["disabled_reason"].as_str().unwrap().contains("410"));

    // Re-enabling clears the record.
    let res = call(
        &app,
        &key,
        "PATCH",
        &format!("/v1/webhook-endpoints/{gone_id}"),
        Some(json!({"enabled": true})),
    )
    .await;
    let view: Value = res.json().await.unwrap();
    assert_eq!(
        (view["enabled"].clone(), view["disabled_reason"].clone()),
        (json!(true), Value::Null)
    );
}

async fn webhook_replay_redelivers_in_order_and_resend_repeats_one(backend: Backend) {
    let Some(app) = spawn_app_with(backend, local_targets).await else {
        return;
    };
    let (ws, key) = workspace(&app).await;
    let receiver = Receiver::start(200).await;
    let (id, secret) = endpoint(&app, &key, json!({"url": receiver.url})).await;
    let since = app.clock_now() - chrono::Duration::seconds(1);
    let subjects: Vec<String> = (0..12).map(|i| format!("msg_{i}")).collect();
    let events: Vec<(EventType, &str)> = subjects
        .iter()
        .map(|s| (EventType::MessageDelivered, s.as_str()))
        .collect();
    let ids = emit(&app, ws, &events).await;
    receiver.wait_for(12).await;

    let res = call(
        &app,
        &key,
        "POST",
        &format!("/v1/webhook-endpoints/{id}/replay"),
        Some(json!({"since": since})),
    )
    .await;
    assert_eq!(res.status(), 202);
    assert_eq!(res.json::<Value>().await.unwrap()["queued"], 12);
    let got = receiver.wait_for(24).await;
    let replayed: Vec<&str> = got[12..].iter().map(|r| r.id()).collect();
    assert_eq!(
        replayed,
        ids.iter().map(String::as_str).collect::<Vec<_>>(),
        "replay is in event order"
    );

    // Replays are rate limited.
    let res = call(
        &app,
        &key,
        "POST",
        &format!("/v1/webhook-endpoints/{id}/replay"),
        Some(json!({"since": since})),
    )
    .await;
    assert!(res.headers().contains_key("retry-after"));
    assert_problem(res, 429).await;

    let res = call(
        &app,
        &key,
        "POST",
        &format!("/v1/events/{}/resend", ids[3]),
        None,
    )
    .await;
    assert_eq!(res.status(), 202);
    let got = receiver.wait_for(25).await;
    assert_eq!(got[24].id(), ids[3]);
    let res = call(
        &app,
        &key,
        "POST",
        "/v1/events/evt_01JUNKJUNKJUNKJUNKJUNKJUNK/resend",
        None,
    )
    .await;
    assert_problem(res, 404).await;
    verify_with_standardwebhooks(
        &got.iter()
            .map(|r| (secret.clone(), r.clone()))
            .collect::<Vec<_>>(),
    );
}

async fn webhook_targets_are_checked_and_endpoints_managed(backend: Backend) {
    let Some(app) = spawn_app_with(backend, |_| {}).await else {
        return;
    };
    let (ws, key) = workspace(&app).await;
    for url in [
        "http://93.184.215.14/",
        "https://127.0.0.1/",
        "https://127.1/",
        "https://0x7f000001/",
        "https://2130706433/",
        "https://[::ffff:127.0.0.1]/",
        "https://[::1]/",
        "https://169.254.169.254/latest/meta-data/",
        "https://10.0.0.1/",
        "https://192.168.1.1/",
        "https://[fd00::1]/",
        "https://localhost/",
        "ftp://93.184.215.14/",
    ] {
        let res = call(
            &app,
            &key,
            "POST",
            "/v1/webhook-endpoints",
            Some(json!({"url": url})),
        )
        .await;
        let body = assert_problem(res, 422).await;
        assert_eq!(
            body["type"], "https://waypost.dev/problems/webhook-target-refused",
            "{url}"
        );
    }
    let res = call(
        &app,
        &key,
        "POST",
        "/v1/webhook-endpoints",
        Some(json!({"url": "https://93.184.215.14/", "event_types": ["message.lost"]})),
    )
    .await;
    assert_problem(res, 422).await;

    let (id, _) = endpoint(&app, &key, json!({"url": "https://93.184.215.14/hook", "event_types": ["message.read", "message.read"]})).await;
    let view: Value = call(
        &app,
        &key,
        "GET",
        &format!("/v1/webhook-endpoints/{id}"),
        None,
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(view["event_types"], json!(["message.read"]));
    assert!(view.get("secret").is_none());
    let res = call(
        &app,
        &key,
        "PATCH",
        &format!("/v1/webhook-endpoints/{id}"),
        Some(json!({"url": "https://10.1.2.3/"})),
    )
    .await;
    assert_problem(res, 422).await;
    let res = call(
        &app,
        &key,
        "PATCH",
        &format!("/v1/webhook-endpoints/{id}"),
        Some(json!({"description": "ops", "event_types": []})),
    )
    .await;
    let view: Value = res.json().await.unwrap();
    assert_eq!(
        (view["description"].clone(), view["event_types"].clone()),
        (json!("ops"), json!([]))
    );
    let res = call(
        &app,
        &key,
        "DELETE",
        &format!("/v1/webhook-endpoints/{id}"),
        None,
    )
    .await;
    assert_eq!(res.status(), 204);
    assert_problem(
        call(
            &app,
            &key,
            "GET",
            &format!("/v1/webhook-endpoints/{id}"),
            None,
        )
        .await,
        404,
    )
    .await;

    // Other scopes cannot manage webhooks.
    let s = login(&app, "ana@example.com", PASSWORD).await;
    let (_, reader) = api_key(&app, &s, json!({"name": "r", "scopes": ["audit:read"]})).await;
    assert_problem(
        call(&app, &reader, "GET", "/v1/webhook-endpoints", None).await,
        403,
    )
    .await;
    let actions = audit_actions(&app, Some(ws)).await;
    for a in [
        "webhook_endpoint.created",
        "webhook_endpoint.updated",
        "webhook_endpoint.deleted",
    ] {
        assert!(actions.iter().any(|x| x == a), "{a} not audited");
    }
}

/// A target saved while the operator allowed internal addresses is refused at
/// delivery once they are not: by the resolver for names, before connecting
/// for literal addresses. Nothing reaches the receiver.
async fn webhook_deliveries_check_the_address_actually_connected_to(backend: Backend) {
    let Some(app) = spawn_app_with(backend, local_targets).await else {
        return;
    };
    let (ws, key) = workspace(&app).await;
    let receiver = Receiver::start(200).await;
    let (by_name, _) = endpoint(
        &app,
        &key,
        json!({"url": format!("http://localhost:{}/hook", receiver.port)}),
    )
    .await;
    let (by_ip, _) = endpoint(&app, &key, json!({"url": receiver.url})).await;
    let (mut config, db, dir) = (app.config.clone(), app.db.clone(), app.data_dir.clone());
    app.stop().await.unwrap();
    config.webhook_allow_private_targets = false;
    let app = spawn_with(config, db, dir).await;
    emit(&app, ws, &[(EventType::MessageSent, "msg_1")]).await;
    for id in [by_name, by_ip] {
        let mut page = Value::Null;
        for _ in 0..200 {
            page = call(
                &app,
                &key,
                "GET",
                &format!("/v1/webhook-endpoints/{id}/attempts"),
                None,
            )
            .await
            .json()
            .await
            .unwrap();
            if !page["data"].as_array().unwrap().is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(page["data"][0]["error_class"], "ssrf_blocked", "{page}");
        assert_eq!(page["data"][0]["succeeded"], false);
    }
    assert!(receiver.received().is_empty());
}

crate::on_both_backends!(
    webhook_deliveries_verify_with_standardwebhooks,
    webhook_retries_follow_the_schedule_survive_restart_and_stop,
    webhook_retries_stop_when_the_schedule_is_used_up,
    webhook_deliveries_keep_type_filters_order_and_endpoint_concurrency,
    webhook_endpoints_are_disabled_after_the_failure_window_and_on_410,
    webhook_replay_redelivers_in_order_and_resend_repeats_one,
    webhook_targets_are_checked_and_endpoints_managed,
    webhook_deliveries_check_the_address_actually_connected_to,
);
