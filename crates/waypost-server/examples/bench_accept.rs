//! Acceptance benchmark: accepted `POST /v1/messages` per second and latency
//! percentiles, against a baseline in the same run: a bare axum endpoint that
//! parses the same JSON and group-commits one row per request into the same
//! kind of database (the durability ceiling). Client and servers share one
//! process; rounds alternate so a busy neighbour moves both.
//!
//! `cargo run --release -p waypost-server --example bench_accept -- [SECS] [TASKS] [sqlite|postgres]...`
//! PostgreSQL needs `WAYPOST_TEST_POSTGRES_URL` (a database the bench may create databases from).

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use serde_json::{Value, json};
use sqlx::Connection;
use tokio::sync::{mpsc, oneshot};
use waypost_core::NewAuditEvent;
use waypost_core::audit::Actor;
use waypost_core::auth::Scope;
use waypost_server::ops::api_keys::KeySpec;
use waypost_server::{Application, Config};
use waypost_store::Backend;
use waypost_store::testing::TestDatabase;

const ROUNDS: usize = 3;
const CONTACTS: usize = 200;

struct Run {
    rate: f64,
    p50_ms: f64,
    p99_ms: f64,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// `tasks` keep-alive clients post for `secs`; counts 202s and their latencies.
async fn load(url: String, key: String, bodies: Arc<Vec<Value>>, secs: u64, tasks: usize) -> Run {
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(tasks)
        .build()
        .expect("client");
    let deadline = Instant::now() + Duration::from_secs(secs);
    let start = Instant::now();
    let mut handles = Vec::new();
    for t in 0..tasks {
        let (http, url, key, bodies) = (http.clone(), url.clone(), key.clone(), bodies.clone());
        handles.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut i = 0usize;
            while Instant::now() < deadline {
                i += 1;
                let body = &bodies[(t * 7919 + i) % bodies.len()];
                let sent = Instant::now();
                let res = http
                    .post(&url)
                    .bearer_auth(&key)
                    .header(
                        "idempotency-key",
                        format!("bench-{t}-{i}-{}", ulid::Ulid::new()),
                    )
                    .json(body)
                    .send()
                    .await;
                if let Ok(r) = res {
                    let ok = r.status() == StatusCode::ACCEPTED;
                    if r.bytes().await.is_ok() && ok {
                        latencies.push(sent.elapsed().as_secs_f64() * 1000.0);
                    }
                }
            }
            latencies
        }));
    }
    let mut all = Vec::new();
    for h in handles {
        all.extend(h.await.expect("load task"));
    }
    let elapsed = start.elapsed().as_secs_f64();
    all.sort_by(f64::total_cmp);
    let pct = |p: f64| {
        if all.is_empty() {
            f64::NAN
        } else {
            all[((all.len() as f64 * p) as usize).min(all.len() - 1)]
        }
    };
    Run {
        rate: all.len() as f64 / elapsed,
        p50_ms: pct(0.50),
        p99_ms: pct(0.99),
    }
}

type Row = (String, String, String, String);

/// The baseline: parse the JSON, hand one row to a group-commit writer, answer 202.
async fn baseline(db: &TestDatabase) -> anyhow::Result<String> {
    let (tx, mut rx) = mpsc::channel::<(Row, oneshot::Sender<()>)>(8192);
    let url = db.url.clone();
    let create = "CREATE TABLE bench_messages (id TEXT PRIMARY KEY, channel_id TEXT NOT NULL, \
                  recipient TEXT NOT NULL, body TEXT NOT NULL)";
    macro_rules! writer {
        ($conn:expr) => {{
            let mut conn = $conn;
            sqlx::query(create).execute(&mut conn).await?;
            tokio::spawn(async move {
                let mut batch = Vec::new();
                while rx.recv_many(&mut batch, 512).await > 0 {
                    let mut t = conn.begin().await.expect("begin");
                    for ((id, ch, to, body), _) in &batch {
                        sqlx::query("INSERT INTO bench_messages VALUES ($1, $2, $3, $4)")
                            .bind(id)
                            .bind(ch)
                            .bind(to)
                            .bind(body)
                            .execute(&mut *t)
                            .await
                            .expect("insert");
                    }
                    t.commit().await.expect("commit");
                    for (_, reply) in batch.drain(..) {
                        let _ = reply.send(());
                    }
                }
            });
        }};
    }
    if url.starts_with("sqlite") {
        use std::str::FromStr;
        let options = sqlx::sqlite::SqliteConnectOptions::from_str(&url)?
            .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal)
            .synchronous(sqlx::sqlite::SqliteSynchronous::Normal)
            .create_if_missing(true);
        writer!(sqlx::SqliteConnection::connect_with(&options).await?);
    } else {
        writer!(sqlx::PgConnection::connect(&url).await?);
    }
    let app = axum::Router::new()
        .route(
            "/v1/messages",
            post(
                |State(tx): State<mpsc::Sender<(Row, oneshot::Sender<()>)>>,
                 Json(body): Json<Value>| async move {
                    let id = format!("msg_{}", ulid::Ulid::new());
                    let row = (
                        id.clone(),
                        body["channel_id"].as_str().unwrap_or("").to_owned(),
                        body["to"].as_str().unwrap_or("").to_owned(),
                        body["text"].to_string(),
                    );
                    let (done, wait) = oneshot::channel();
                    let _ = tx.send((row, done)).await;
                    let _ = wait.await;
                    (
                        StatusCode::ACCEPTED,
                        Json(json!({ "id": id, "status": "queued" })),
                    )
                },
            ),
        )
        .with_state(tx);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let address = format!("http://{}/v1/messages", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(address)
}

/// Waypost on `db` with a sandbox channel and `CONTACTS` contacts whose 24-hour
/// window is open (each sent an inbound message through the signed webhook).
async fn waypost(
    db: &TestDatabase,
    dir: &std::path::Path,
) -> anyhow::Result<(String, String, Vec<Value>)> {
    let mut sandbox_config = waypost_sandbox::SandboxConfig::default();
    sandbox_config.webhooks.enabled = false;
    sandbox_config.numbers[0].throughput = u32::MAX;
    sandbox_config.numbers[0].messaging_tier = u32::MAX;
    let sandbox = waypost_sandbox::Sandbox::start(sandbox_config).await?;
    let number = sandbox.numbers()[0].clone();
    let sandbox_url = sandbox.base_url().to_string();
    let config = Config {
        listen: "127.0.0.1:0".parse()?,
        data_dir: dir.to_path_buf(),
        database_url: Some(db.url.clone().into()),
        master_key: Some(
            secrecy::ExposeSecret::expose_secret(
                &waypost_crypto::MasterKey::generate().to_base64(),
            )
            .to_owned()
            .into(),
        ),
        log_level: "error".into(),
        rate_limit_api_key_per_minute: u32::MAX / 2,
        rate_limit_ip_per_minute: u32::MAX / 2,
        // The provider is the sandbox on 127.0.0.1; the load comes from one address.
        channel_allow_private_targets: true,
        max_connections_per_ip: 100_000,
        max_connections: 100_000,
        // BENCH_DISPATCH=0 isolates acceptance from the dispatcher's share of the machine.
        dispatch_enabled: std::env::var("BENCH_DISPATCH").map_or(true, |v| v != "0"),
        // BENCH_DETECTION=0 turns trust and safety counting and detectors off (on by default),
        // to measure what detection costs the accept path.
        detection: std::env::var("BENCH_DETECTION").map_or(true, |v| v != "0"),
        ..Config::default()
    };
    let app = Application::build(config).await?;
    let state = app.state().clone();
    let base = format!("http://127.0.0.1:{}", app.port());
    tokio::spawn(async move {
        let _keep = sandbox;
        app.run_until_stopped().await
    });
    let (ws, _) = waypost_server::ops::setup::create_owner(
        &state,
        "bench",
        "bench@example.com",
        state.hasher.hash("bench-password-not-used"),
        Actor::System,
    )
    .await
    .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let now = state.clock.now();
    let scopes: Vec<String> = Scope::ALL.iter().map(|s| s.as_str().to_owned()).collect();
    let spec = KeySpec::parse("bench", &scopes, &[], None, now).map_err(|e| anyhow::anyhow!(e))?;
    let (key, record) = spec.mint(&state.keys.current(), &ws.to_string(), None, now);
    state
        .store
        .create_api_key(
            &record,
            NewAuditEvent::new(Some(ws), Actor::System, "api_key.created"),
        )
        .await?;
    let http = reqwest::Client::new();
    let channel: Value = http
        .post(format!("{base}/v1/channels"))
        .bearer_auth(&key)
        .json(
            &json!({"name": "bench", "provider": "sandbox", "phone_number_id": number.id,
            "waba_id": number.waba_id, "access_token": number.access_token,
            "app_secret": number.app_secret, "verify_token": number.verify_token,
            "base_url": sandbox_url, "throughput_mps": 10000}),
        )
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let channel_id = channel["id"].as_str().expect("channel id").to_owned();
    let mut bodies = Vec::new();
    for n in 0..CONTACTS {
        let wa_id = format!("4915123{n:06}");
        let payload = json!({"object": "whatsapp_business_account", "entry": [{"id": number.waba_id, "changes": [{
            "field": "messages", "value": {"messaging_product": "whatsapp",
                "metadata": {"display_phone_number": number.display_number, "phone_number_id": number.id},
                "contacts": [{"profile": {"name": "Bench"}, "wa_id": wa_id}],
                "messages": [{"from": wa_id, "id": format!("wamid.bench{n}"), "timestamp": now.timestamp().to_string(),
                    "type": "text", "text": {"body": "hello"}}]}}]}]});
        let raw = serde_json::to_vec(&payload)?;
        let res = http
            .post(format!("{base}/webhooks/whatsapp/{channel_id}"))
            .header(
                waypost_cloudapi::SIGNATURE_HEADER,
                waypost_cloudapi::sign(number.app_secret.as_bytes(), &raw),
            )
            .header("content-type", "application/json")
            .body(raw)
            .send()
            .await?;
        anyhow::ensure!(
            res.status().is_success(),
            "inbound webhook answered {}",
            res.status()
        );
        bodies.push(
            json!({"channel_id": channel_id, "to": format!("+{wa_id}"), "type": "text",
            "text": {"body": format!("Your order {n} ships today.")}}),
        );
    }
    Ok((format!("{base}/v1/messages"), key, bodies))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let secs: u64 = args.next().map(|s| s.parse()).transpose()?.unwrap_or(5);
    let tasks: usize = args.next().map(|s| s.parse()).transpose()?.unwrap_or(64);
    let mut backends: Vec<Backend> = args
        .map(|b| match b.as_str() {
            "sqlite" => Ok(Backend::Sqlite),
            "postgres" => Ok(Backend::Postgres),
            other => Err(anyhow::anyhow!("unknown backend {other}")),
        })
        .collect::<Result<_, _>>()?;
    if backends.is_empty() {
        backends = vec![Backend::Sqlite, Backend::Postgres];
    }
    println!("| backend | run | accepted/s | p50 ms | p99 ms |");
    println!("|---|---|---|---|---|");
    let mut ratios = Vec::new();
    for backend in backends {
        let (Some(base_db), Some(wp_db)) = (
            TestDatabase::create(backend).await,
            TestDatabase::create(backend).await,
        ) else {
            eprintln!("{}: database unavailable, skipped", backend.as_str());
            continue;
        };
        let dir = tempfile::tempdir()?;
        let base_url = baseline(&base_db).await?;
        let (wp_url, key, bodies) = waypost(&wp_db, dir.path()).await?;
        let bodies = Arc::new(bodies);
        load(base_url.clone(), key.clone(), bodies.clone(), 1, tasks).await;
        load(wp_url.clone(), key.clone(), bodies.clone(), 1, tasks).await;
        let (mut b, mut w) = (Vec::new(), Vec::new());
        for _ in 0..ROUNDS {
            b.push(load(base_url.clone(), key.clone(), bodies.clone(), secs, tasks).await);
            w.push(load(wp_url.clone(), key.clone(), bodies.clone(), secs, tasks).await);
        }
        let summary = |runs: &[Run]| {
            (
                median(runs.iter().map(|r| r.rate).collect()),
                median(runs.iter().map(|r| r.p50_ms).collect()),
                median(runs.iter().map(|r| r.p99_ms).collect()),
            )
        };
        let (br, bp50, bp99) = summary(&b);
        let (wr, wp50, wp99) = summary(&w);
        let name = backend.as_str();
        println!(
            "| {name} | baseline (bare axum + group commit) | {br:.0} | {bp50:.2} | {bp99:.2} |"
        );
        println!("| {name} | waypost POST /v1/messages | {wr:.0} | {wp50:.2} | {wp99:.2} |");
        ratios.push((name, wr / br));
    }
    println!();
    for (name, r) in ratios {
        println!("ratio waypost/baseline on {name}: {r:.2}");
    }
    println!(
        "\nMedians of {ROUNDS} alternating rounds; {tasks} keep-alive tasks, {secs} s per round, client and servers in one process; every request has a unique Idempotency-Key; dispatcher on: {}.",
        std::env::var("BENCH_DISPATCH").map_or(true, |v| v != "0")
    );
    Ok(())
}
