//! Usage reporting to Stripe under `kill -9` (issue #23): three workspaces,
//! each a Stripe customer, with billable messages on several closed days;
//! the server is killed three times while a meter event is in flight (Stripe
//! applied it, its answer not yet back) and restarted on the same database.
//! A fake Stripe keeps what Stripe keeps: one effect per meter event
//! `identifier`, the saved answer replayed for a repeated `Idempotency-Key`.
//! In the end every (customer, day, category) was applied exactly once with
//! its day's quantity, nothing else was, and the outbox holds every report
//! as sent.

use axum::Form;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{Duration as Days, NaiveTime, Utc};
use waypost_store::usage::{UsageBatch, UsageDelta};

use super::*;

const SECRET_KEY: &str = "sk_test_crash_0123456789";
const WEBHOOK_SECRET: &str = "whsec_crash_0123456789abcdef";
const CATEGORIES: [&str; 3] = ["marketing", "utility", "authentication"];
/// How long the fake holds each meter event's answer after applying it.
const HOLD_MS: u64 = 120;

/// A meter event Stripe applied: `(event_name, customer, value, timestamp)`.
type Effect = (String, String, String, String);

#[derive(Default)]
struct Ledger {
    /// Applied meter events by identifier: what billing sees.
    applied: BTreeMap<String, Effect>,
    /// The form of each idempotency key's first request, and its answer.
    keys: BTreeMap<String, (BTreeMap<String, String>, Value)>,
    requests: usize,
    /// Refusals a correct client never provokes: a key reused with other
    /// parameters, or an identifier sent again under a new key.
    violations: Vec<String>,
    /// Requests whose answer is being held.
    in_flight: usize,
}

type Shared = Arc<Mutex<Ledger>>;

/// Decrements `in_flight` however the held answer ends (sent or dropped with
/// the connection of a killed server).
struct Holding(Shared);

impl Drop for Holding {
    fn drop(&mut self) {
        self.0.lock().unwrap().in_flight -= 1;
    }
}

fn stripe_error(status: StatusCode, kind: &str, message: &str) -> Response {
    (
        status,
        axum::Json(json!({"error": {"type": kind, "message": message}})),
    )
        .into_response()
}

async fn meter_event(
    State(ledger): State<Shared>,
    headers: HeaderMap,
    Form(form): Form<BTreeMap<String, String>>,
) -> Response {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if header("authorization") != Some(&format!("Bearer {SECRET_KEY}")) {
        return stripe_error(
            StatusCode::UNAUTHORIZED,
            "invalid_request_error",
            "Invalid API Key provided.",
        );
    }
    let Some(key) = header("idempotency-key").map(str::to_owned) else {
        return stripe_error(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "Waypost always sends an Idempotency-Key.",
        );
    };
    let fields = [
        "event_name",
        "payload[stripe_customer_id]",
        "payload[value]",
        "identifier",
        "timestamp",
    ];
    if let Some(f) = fields
        .iter()
        .find(|f| form.get(**f).is_none_or(String::is_empty))
    {
        return stripe_error(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            &format!("Missing required param: {f}."),
        );
    }
    let answer = {
        let mut l = ledger.lock().unwrap();
        l.requests += 1;
        if let Some((first, answer)) = l.keys.get(&key).cloned() {
            if first != form {
                l.violations
                    .push(format!("key {key} reused with other parameters"));
                return stripe_error(
                    StatusCode::BAD_REQUEST,
                    "idempotency_error",
                    "Keys for idempotent requests can only be used with the same parameters.",
                );
            }
            // Stripe replays the saved answer; nothing is applied again.
            return axum::Json(answer).into_response();
        }
        let id = form["identifier"].clone();
        if l.applied.contains_key(&id) {
            l.violations
                .push(format!("identifier {id} sent again under key {key}"));
            return stripe_error(
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                "A meter event with this identifier already exists.",
            );
        }
        let effect = (
            form["event_name"].clone(),
            form["payload[stripe_customer_id]"].clone(),
            form["payload[value]"].clone(),
            form["timestamp"].clone(),
        );
        l.applied.insert(id.clone(), effect);
        let answer = json!({"object": "billing.meter_event", "identifier": id});
        l.keys.insert(key, (form, answer.clone()));
        l.in_flight += 1;
        answer
    };
    // Applied; the answer is slow to come back, so a kill can cut it off.
    let _holding = Holding(ledger.clone());
    tokio::time::sleep(Duration::from_millis(HOLD_MS)).await;
    axum::Json(answer).into_response()
}

async fn start_fake_stripe() -> (String, Shared) {
    let ledger = Shared::default();
    let app = axum::Router::new()
        .route("/v1/billing/meter_events", axum::routing::post(meter_event))
        .with_state(ledger.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (base, ledger)
}

/// Another workspace and owner through the CLI; returns its id.
fn bootstrap_workspace(c: &Cluster, n: usize) -> String {
    use std::io::Write;
    let mut boot = c
        .command()
        .args(["admin", "bootstrap", "--email"])
        .arg(format!("owner{n}@example.com"))
        .arg("--workspace")
        .arg(format!("Shop {n}"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    boot.stdin
        .take()
        .unwrap()
        .write_all(b"silver-otter-meadow-4417\n")
        .unwrap();
    let out = boot.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // "created workspace Shop n (ws_…) with owner …"
    stdout
        .split(['(', ')'])
        .find(|s| s.starts_with("ws_"))
        .unwrap_or_else(|| panic!("no workspace id in {stdout:?}"))
        .to_owned()
}

/// Stripe's `checkout.session.completed` for the workspace, signed and
/// delivered to the node: the workspace becomes customer `customer`.
async fn link_customer(c: &Cluster, node: &Node, ws: &str, customer: &str) {
    let body = serde_json::to_vec(&json!({
        "id": format!("evt_{customer}"), "object": "event", "type": "checkout.session.completed",
        "created": Utc::now().timestamp(), "livemode": false,
        "data": {"object": {"id": format!("cs_{customer}"), "object": "checkout.session",
            "customer": customer, "subscription": format!("sub_{customer}"),
            "client_reference_id": ws, "metadata": {"workspace_id": ws}}}
    }))
    .unwrap();
    let signature = waypost_crypto::stripe::sign(WEBHOOK_SECRET, Utc::now().timestamp(), &body);
    let res = c
        .http
        .post(format!("{}/stripe/webhook", node.base()))
        .header("content-type", "application/json")
        .header("stripe-signature", signature)
        .body(body)
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    let v: Value = res.json().await.unwrap_or(Value::Null);
    assert_eq!(status, 200, "{v}");
}

/// Waits until Stripe has applied `n` meter events and holds one's answer.
async fn wait_applied_and_holding(ledger: &Shared, n: usize, node: &Node) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        {
            let l = ledger.lock().unwrap();
            if l.applied.len() >= n && l.in_flight > 0 {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{} of {n} meter events applied:\n{}",
                l.applied.len(),
                node.logs()
            );
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

async fn usage_reports_each_period_once_across_kill_9(backend: Backend) {
    let started = Instant::now();
    let (stripe_base, ledger) = start_fake_stripe().await;
    let Some(c) = Cluster::new(
        backend,
        &[
            ("WAYPOST_STRIPE_SECRET_KEY", SECRET_KEY),
            ("WAYPOST_STRIPE_WEBHOOK_SECRET", WEBHOOK_SECRET),
            ("WAYPOST_STRIPE_API_BASE", &stripe_base),
            ("WAYPOST_STRIPE_POLL_SECS", "1"),
        ],
    )
    .await
    else {
        return;
    };
    let c = Arc::new(c);
    let mut workspaces = Vec::new();
    for n in 1..=3 {
        workspaces.push(bootstrap_workspace(&c, n));
    }
    let mut node = Node::new(&c, "node");
    node.start(&c).await;

    // Usage counted on past days, as the transactions of sends and status
    // webhooks would have left it: two channels' worth per day, plus
    // counters that are not billed. Reported: the closed days from 7 to 2
    // days ago; yesterday is still open to late statuses, 8 days is too old.
    let today = Utc::now().date_naive();
    let mut batch = UsageBatch::default();
    let mut expected: BTreeMap<String, Effect> = BTreeMap::new();
    for (w, ws) in workspaces.iter().enumerate() {
        let customer = format!("cus_crash{w}");
        for ago in 1..=8i64 {
            let day = (today - Days::days(ago)).to_string();
            for (k, category) in CATEGORIES.iter().enumerate() {
                let metric = format!("billable.{category}");
                let (a, b) = (ago * 10 + k as i64 + 1, w as i64 + 1);
                for (channel, amount) in [("ch_a", a), ("ch_b", b)] {
                    batch.deltas.push(UsageDelta {
                        workspace_id: ws.clone(),
                        channel_id: channel.into(),
                        day: day.clone(),
                        metric: metric.clone(),
                        amount,
                    });
                }
                if (2..=7).contains(&ago) {
                    let noon = (today - Days::days(ago))
                        .and_time(NaiveTime::from_hms_opt(12, 0, 0).unwrap())
                        .and_utc();
                    expected.insert(
                        format!("{ws}:{day}:{metric}"),
                        (
                            format!("waypost_{category}"),
                            customer.clone(),
                            (a + b).to_string(),
                            noon.timestamp().to_string(),
                        ),
                    );
                }
            }
            batch.deltas.push(UsageDelta {
                workspace_id: ws.clone(),
                channel_id: "ch_a".into(),
                day,
                metric: "priced.service".into(),
                amount: 5,
            });
        }
    }
    let store = waypost_store::connect(&c._db.url, &Default::default())
        .await
        .unwrap();
    store.record_usage(&batch).await.unwrap();
    for (w, ws) in workspaces.iter().enumerate() {
        link_customer(&c, &node, ws, &format!("cus_crash{w}")).await;
    }

    // Killed while Stripe holds the answer to an event it applied.
    let total = expected.len();
    let mut kills = Vec::new();
    for at in [4, total / 3, 2 * total / 3] {
        wait_applied_and_holding(&ledger, at, &node).await;
        node.kill9();
        kills.push(ledger.lock().unwrap().applied.len());
        node.start(&c).await;
    }

    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let mut unsent = 0;
        for ws in &workspaces {
            let rows = store.usage_reports(ws).await.unwrap();
            unsent += rows.iter().filter(|r| r.reported_at.is_none()).count();
            unsent += total / workspaces.len() - rows.len().min(total / workspaces.len());
        }
        if unsent == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{unsent} reports not sent:\n{}",
            node.logs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // A few more rounds of the worker: nothing is sent again.
    let requests_done = ledger.lock().unwrap().requests;
    tokio::time::sleep(Duration::from_millis(2500)).await;

    for ws in &workspaces {
        let rows = store.usage_reports(ws).await.unwrap();
        assert_eq!(
            rows.len(),
            total / workspaces.len(),
            "queued once: {rows:?}"
        );
    }
    let l = ledger.lock().unwrap();
    assert!(l.violations.is_empty(), "{:?}", l.violations);
    assert_eq!(
        l.requests, requests_done,
        "reports sent after all were sent"
    );
    let missing: Vec<_> = expected
        .keys()
        .filter(|k| !l.applied.contains_key(*k))
        .collect();
    let extra: Vec<_> = l
        .applied
        .keys()
        .filter(|k| !expected.contains_key(*k))
        .collect();
    assert!(missing.is_empty(), "never billed: {missing:?}");
    assert!(extra.is_empty(), "billed but not due: {extra:?}");
    assert_eq!(l.applied, expected, "each period billed with its quantity");
    // Once per (customer, day, category), whatever the identifiers.
    let mut per_period: BTreeMap<(&str, &str, &str), usize> = BTreeMap::new();
    for (name, customer, _, at) in l.applied.values() {
        *per_period.entry((customer, at, name)).or_default() += 1;
    }
    assert!(per_period.values().all(|n| *n == 1), "{per_period:?}");
    assert_eq!(per_period.len(), total);
    // Each kill cut an applied event's answer off: it was sent again after
    // the restart and answered from Stripe's saved answer.
    assert!(
        l.requests >= total + kills.len(),
        "{} requests for {total} reports",
        l.requests
    );
    eprintln!(
        "{backend:?}: {total} reports for {} customers; kills after {kills:?} applied; \
         {} requests; done in {:?}",
        workspaces.len(),
        l.requests,
        started.elapsed()
    );
}

on_both_backends!(usage_reports_each_period_once_across_kill_9);
