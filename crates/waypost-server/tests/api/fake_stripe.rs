//! A fake Stripe API on 127.0.0.1:0: checks each request's shape (bearer
//! secret key, form encoding, the parameters Checkout, the Billing Portal and
//! meter events need, an `Idempotency-Key`), replays the saved answer for a
//! repeated idempotency key as Stripe does, counts meter events by
//! identifier, and signs webhook events with Stripe's scheme for the tests to
//! deliver.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};

use crate::helpers::TestApp;

pub const SECRET_KEY: &str = "sk_test_fake_0123456789";
pub const WEBHOOK_SECRET: &str = "whsec_test_0123456789abcdef";

#[derive(Default)]
pub struct Seen {
    /// Every request: path and form parameters.
    pub requests: Vec<(String, BTreeMap<String, String>)>,
    /// Meter events recorded, by identifier: `(event_name, customer, value)`.
    pub meter_events: BTreeMap<String, Vec<(String, String, String)>>,
    /// Answers saved per idempotency key.
    answers: HashMap<String, Value>,
    /// The first meter event is recorded but answered too late (a lost answer).
    pub slow_first_meter_event: bool,
}

#[derive(Clone)]
struct Fake(Arc<Mutex<Seen>>);

pub struct FakeStripe {
    pub base_url: String,
    pub seen: Arc<Mutex<Seen>>,
}

fn error(status: StatusCode, message: &str) -> Response {
    (
        status,
        axum::Json(json!({"error": {"type": "invalid_request_error", "message": message}})),
    )
        .into_response()
}

fn required<'a>(form: &'a BTreeMap<String, String>, keys: &[&str]) -> Result<(), String> {
    for k in keys {
        if form.get(*k).is_none_or(|v: &'a String| v.is_empty()) {
            return Err(format!("Missing required param: {k}."));
        }
    }
    Ok(())
}

async fn handle(
    State(fake): State<Fake>,
    Path(path): Path<String>,
    headers: HeaderMap,
    body: String,
) -> Response {
    if headers.get("authorization").and_then(|v| v.to_str().ok())
        != Some(&format!("Bearer {SECRET_KEY}"))
    {
        return error(StatusCode::UNAUTHORIZED, "Invalid API Key provided.");
    }
    if !headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"))
    {
        return error(StatusCode::BAD_REQUEST, "Expected a form-encoded body.");
    }
    let Some(key) = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
    else {
        return error(
            StatusCode::BAD_REQUEST,
            "Waypost always sends an Idempotency-Key.",
        );
    };
    let form: BTreeMap<String, String> = serde_urlencoded::from_str(&body).unwrap_or_default();
    let mut slow = false;
    let answer = {
        let mut seen = fake.0.lock().unwrap();
        seen.requests.push((path.clone(), form.clone()));
        if let Some(saved) = seen.answers.get(&key) {
            return axum::Json(saved.clone()).into_response();
        }
        let answer = match path.as_str() {
            "checkout/sessions" => required(
                &form,
                &["mode", "line_items[0][price]", "line_items[0][quantity]", "success_url", "cancel_url", "client_reference_id"],
            )
            .and_then(|()| {
                (form["mode"] == "subscription")
                    .then(|| json!({"id": "cs_test_1", "object": "checkout.session",
                        "url": "https://checkout.stripe.test/c/pay/cs_test_1", "status": "open"}))
                    .ok_or_else(|| "mode must be subscription".to_owned())
            }),
            "billing_portal/sessions" => required(&form, &["customer", "return_url"]).map(|()| {
                json!({"id": "bps_1", "object": "billing_portal.session", "customer": form["customer"],
                    "url": "https://billing.stripe.test/p/session/bps_1"})
            }),
            "billing/meter_events" => required(
                &form,
                &["event_name", "payload[stripe_customer_id]", "payload[value]", "identifier", "timestamp"],
            )
            .map(|()| {
                let id = form["identifier"].clone();
                slow = seen.slow_first_meter_event && seen.meter_events.is_empty();
                seen.meter_events.entry(id.clone()).or_default().push((
                    form["event_name"].clone(),
                    form["payload[stripe_customer_id]"].clone(),
                    form["payload[value]"].clone(),
                ));
                json!({"object": "billing.meter_event", "identifier": id})
            }),
            _ => Err(format!("Unrecognized request URL (POST: /v1/{path}).")),
        };
        match answer {
            Ok(v) => {
                seen.answers.insert(key, v.clone());
                v
            }
            Err(message) => return error(StatusCode::BAD_REQUEST, &message),
        }
    };
    if slow {
        tokio::time::sleep(Duration::from_millis(1500)).await;
    }
    axum::Json(answer).into_response()
}

impl FakeStripe {
    pub async fn start() -> FakeStripe {
        let seen = Arc::new(Mutex::new(Seen::default()));
        let app = Router::new()
            .route("/v1/{*path}", post(handle))
            .with_state(Fake(seen.clone()));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base_url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        FakeStripe { base_url, seen }
    }

    /// The requests made to `path` (without `/v1/`).
    pub fn requests_to(&self, path: &str) -> Vec<BTreeMap<String, String>> {
        self.seen
            .lock()
            .unwrap()
            .requests
            .iter()
            .filter(|(p, _)| p == path)
            .map(|(_, f)| f.clone())
            .collect()
    }
}

/// A Stripe event of `kind` about `object`, as Stripe's JSON.
pub fn event(id: &str, kind: &str, object: Value) -> Vec<u8> {
    serde_json::to_vec(
        &json!({"id": id, "object": "event", "api_version": "2026-07-29.dahlia",
        "created": 1_780_000_000, "livemode": false, "type": kind, "data": {"object": object}}),
    )
    .unwrap()
}

/// Delivers `body` to the app's webhook, signed at `timestamp` with `secret`.
pub async fn deliver(app: &TestApp, body: &[u8], secret: &str, timestamp: i64) -> (u16, Value) {
    let res = app
        .client
        .post(format!("{}/stripe/webhook", app.address))
        .header("content-type", "application/json")
        .header(
            "stripe-signature",
            waypost_crypto::stripe::sign(secret, timestamp, body),
        )
        .body(body.to_vec())
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

/// Delivers a freshly signed event, as Stripe would now.
pub async fn send(app: &TestApp, id: &str, kind: &str, object: Value) -> (u16, Value) {
    let body = event(id, kind, object);
    deliver(app, &body, WEBHOOK_SECRET, app.clock_now().timestamp()).await
}
