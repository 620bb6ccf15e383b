//! Webhook delivery throughput: how many signed deliveries per second the
//! deliverer gets through to a local receiver, with the receiver's own rate
//! as the baseline in the same run.
//!
//! - **Baseline:** a plain reqwest client with the same concurrency POSTs a
//!   body of the same size to the receiver as fast as it answers (no database,
//!   no signing, no encryption): the ceiling this machine and receiver allow.
//! - **Waypost:** the real application (release build, SQLite in a temporary
//!   directory, or PostgreSQL with `--postgres URL`) with one endpoint and N
//!   customer events recorded before the workers start; timed from start until
//!   the receiver has every delivery. Includes fan-out, leasing, decrypting the
//!   event and the secret, signing, the HTTP attempt and recording it.
//!
//! Baseline runs before and after; the mean of the two is reported.
//!
//! Usage: cargo run --release -p waypost-server --example bench_webhook_deliveries --
//!        [--events N] [--secs S] [--postgres URL]
#![forbid(unsafe_code)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use chrono::Utc;
use waypost_core::audit::Actor;
use waypost_core::events::EventType;
use waypost_core::{NewAuditEvent, WebhookEndpointId};
use waypost_crypto::MasterKey;
use waypost_server::{Application, Config};
use waypost_store::webhooks::WebhookEndpointRecord;

const CONCURRENCY: usize = 64;

async fn start_receiver(count: Arc<AtomicU64>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |_body: axum::body::Bytes| {
            let count = count.clone();
            async move {
                count.fetch_add(1, Ordering::Relaxed);
                "ok"
            }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://127.0.0.1:{port}/hook")
}

/// Requests/s the receiver answers for a plain client with the same concurrency.
async fn baseline(url: &str, secs: u64, body_len: usize) -> f64 {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(CONCURRENCY)
        .build()
        .unwrap();
    let body = vec![b'x'; body_len];
    let done = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(secs);
    let started = Instant::now();
    let tasks: Vec<_> = (0..CONCURRENCY)
        .map(|_| {
            let (client, url, body, done) =
                (client.clone(), url.to_owned(), body.clone(), done.clone());
            tokio::spawn(async move {
                while Instant::now() < deadline {
                    let res = client
                        .post(&url)
                        .header("content-type", "application/json")
                        .body(body.clone())
                        .send()
                        .await
                        .unwrap();
                    res.bytes().await.unwrap();
                    done.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64()
}

async fn waypost_run(
    url: &str,
    count: &AtomicU64,
    events: u64,
    postgres: Option<&str>,
) -> (f64, usize) {
    let dir = tempfile::tempdir().unwrap();
    let database_url = match postgres {
        Some(u) => u.to_owned(),
        None => format!("sqlite://{}", dir.path().join("waypost.db").display()),
    };
    let config = Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: dir.path().to_path_buf(),
        database_url: Some(database_url.into()),
        master_key: Some(
            secrecy::ExposeSecret::expose_secret(&MasterKey::generate().to_base64())
                .to_owned()
                .into(),
        ),
        webhook_allow_http: true,
        webhook_allow_private_targets: true,
        webhook_poll_interval_ms: 20,
        webhook_endpoint_concurrency: CONCURRENCY as u32,
        ..Config::default()
    };
    let app = Application::build(config)
        .await
        .expect("application builds");
    let state = app.state().clone();
    let ws = waypost_core::WorkspaceId::new();
    let now = Utc::now();
    state
        .store
        .create_workspace(
            &waypost_store::Workspace {
                id: ws,
                name: format!("bench-{ws}"),
                created_at: now,
                updated_at: now,
            },
            NewAuditEvent::new(Some(ws), Actor::System, "workspace.created"),
        )
        .await
        .unwrap();
    let id = WebhookEndpointId::new().to_string();
    let secret = waypost_crypto::webhook::generate_webhook_secret();
    let record = WebhookEndpointRecord::new(
        id.clone(),
        ws.to_string(),
        url.to_owned(),
        waypost_server::webhooks::seal_secret(&state.keys.current(), &id, "secret", &secret),
        now,
    );
    state
        .store
        .create_webhook_endpoint(
            &record,
            NewAuditEvent::new(Some(ws), Actor::System, "webhook_endpoint.created"),
        )
        .await
        .unwrap();
    let ring = state.keys.current();
    let mut body_len = 0;
    for chunk in 0..events.div_ceil(1000) {
        let batch: Vec<_> = (chunk * 1000..((chunk + 1) * 1000).min(events))
            .map(|i| {
                let data = serde_json::json!({ "message_id": format!("msg_{i:08}"), "status": "delivered" });
                body_len = data.to_string().len() + 80;
                waypost_server::events::seal(&ring, ws, EventType::MessageDelivered, Some(format!("msg_{i:08}")), &data, now)
            })
            .collect();
        state.store.append_customer_events(&batch).await.unwrap();
    }
    count.store(0, Ordering::Relaxed);
    let shutdown = app.shutdown_token();
    let started = Instant::now();
    let server = tokio::spawn(app.run_until_stopped());
    while count.load(Ordering::Relaxed) < events {
        if started.elapsed() > Duration::from_secs(600) {
            panic!(
                "only {} of {events} deliveries after 600 s",
                count.load(Ordering::Relaxed)
            );
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let rate = events as f64 / started.elapsed().as_secs_f64();
    shutdown.cancel();
    let _ = server.await;
    (rate, body_len)
}

#[tokio::main]
async fn main() {
    let mut events: u64 = 20_000;
    let mut secs: u64 = 5;
    let mut postgres = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--events" => {
                events = args
                    .next()
                    .and_then(|v| v.parse().ok())
                    .expect("--events N")
            }
            "--secs" => secs = args.next().and_then(|v| v.parse().ok()).expect("--secs S"),
            "--postgres" => postgres = Some(args.next().expect("--postgres URL")),
            other => panic!("unknown argument {other}"),
        }
    }
    let count = Arc::new(AtomicU64::new(0));
    let url = start_receiver(count.clone()).await;
    let before = baseline(&url, secs, 160).await;
    let (rate, body_len) = waypost_run(&url, &count, events, postgres.as_deref()).await;
    let after = baseline(&url, secs, body_len).await;
    let base = (before + after) / 2.0;
    let backend = if postgres.is_some() {
        "PostgreSQL"
    } else {
        "SQLite"
    };
    println!("| measure | value |");
    println!("|---|---:|");
    println!(
        "| receiver baseline (plain client, {CONCURRENCY} concurrent) | {base:.0} req/s ({before:.0} before, {after:.0} after) |"
    );
    println!(
        "| Waypost deliveries ({backend}, {events} events, {CONCURRENCY} in flight) | {rate:.0} deliveries/s |"
    );
    println!("| Waypost ÷ baseline | {:.2} |", rate / base);
    println!(
        "| goal ≥ 5,000 deliveries/s | {} |",
        if rate >= 5000.0 { "met" } else { "not met" }
    );
}
