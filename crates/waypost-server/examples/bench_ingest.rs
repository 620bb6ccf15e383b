//! Inbound ingest benchmark (issue #17): signed provider webhooks per second
//! into `POST /webhooks/whatsapp/{channel_id}`, each a Meta `messages` change
//! with one inbound text under a wamid unique in the whole run, and their
//! latency percentiles. The baseline, in the same run and process, is a bare
//! axum endpoint that verifies the same `X-Hub-Signature-256` over the raw body
//! and commits one row in its own transaction (no batching across requests)
//! into the same kind of database. Rounds alternate so a busy neighbour moves
//! both.
//!
//! `cargo run --release -p waypost-server --example bench_ingest -- [SECS] [TASKS] [sqlite|postgres]...`
//! PostgreSQL needs `WAYPOST_TEST_POSTGRES_URL` (a database the bench may create databases from).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use waypost_cloudapi::SIGNATURE_HEADER;
use waypost_core::audit::Actor;
use waypost_core::{ChannelId, NewAuditEvent};
use waypost_server::messaging::{ChannelSecret, seal_secret};
use waypost_server::{Application, Config};
use waypost_store::Backend;
use waypost_store::messaging::ChannelRow;
use waypost_store::testing::TestDatabase;

const ROUNDS: usize = 3;
const CUSTOMERS: usize = 200;
const APP_SECRET: &str = "bench-app-secret-0123456789abcdef";
const PHONE_NUMBER_ID: &str = "106540352242922";
const WABA_ID: &str = "102290129340398";
/// Bodies built before a round when no rate is known yet; a round that uses them
/// up builds (and signs) the rest inside the load loop and says so.
const FIRST_ESTIMATE: f64 = 20_000.0;
/// The least rate bodies are built for (a cold warm-up round underestimates).
const MIN_ESTIMATE: f64 = 2_000.0;

struct Run {
    rate: f64,
    p50_ms: f64,
    p99_ms: f64,
    failed: usize,
    built_late: usize,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Signed webhook bodies, each with a wamid no other body in the run has.
struct Bodies {
    next_wamid: AtomicU64,
}

impl Bodies {
    /// One Meta-shaped `messages` webhook from customer `n` with one text, and its signature.
    fn build(&self, n: usize) -> (Bytes, String) {
        let seq = self.next_wamid.fetch_add(1, Ordering::Relaxed);
        let wa_id = format!("4915123{:06}", n % CUSTOMERS);
        let ts = chrono::Utc::now().timestamp();
        let body = format!(
            r#"{{"object":"whatsapp_business_account","entry":[{{"id":"{WABA_ID}","changes":[{{"field":"messages","value":{{"messaging_product":"whatsapp","metadata":{{"display_phone_number":"15550001234","phone_number_id":"{PHONE_NUMBER_ID}"}},"contacts":[{{"profile":{{"name":"Customer {n}"}},"wa_id":"{wa_id}"}}],"messages":[{{"from":"{wa_id}","id":"wamid.HBgNNDkxNTEyMzBCENCH{seq:016X}AA==","timestamp":"{ts}","type":"text","text":{{"body":"Hi, has my order {seq} shipped yet? Thanks"}}}}]}}}}]}}]}}"#
        );
        let signature = waypost_cloudapi::sign(APP_SECRET.as_bytes(), body.as_bytes());
        (Bytes::from(body), signature)
    }

    fn batch(&self, count: usize) -> Vec<(Bytes, String)> {
        (0..count).map(|i| self.build(i)).collect()
    }
}

/// `tasks` keep-alive clients post pre-built signed bodies for `secs`; counts
/// 200s and their latencies.
async fn load(url: &str, bodies: &Arc<Bodies>, expected_rate: f64, secs: u64, tasks: usize) -> Run {
    let count = (expected_rate.max(MIN_ESTIMATE) * secs as f64 * 1.5) as usize + tasks;
    let ready = Arc::new(bodies.batch(count));
    let taken = Arc::new(AtomicUsize::new(0));
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(tasks)
        .build()
        .expect("client");
    let deadline = Instant::now() + Duration::from_secs(secs);
    let start = Instant::now();
    let mut handles = Vec::new();
    for t in 0..tasks {
        let (http, url) = (http.clone(), url.to_owned());
        let (ready, taken, bodies) = (ready.clone(), taken.clone(), bodies.clone());
        handles.push(tokio::spawn(async move {
            let (mut latencies, mut failed, mut built_late) = (Vec::new(), 0usize, 0usize);
            while Instant::now() < deadline {
                let i = taken.fetch_add(1, Ordering::Relaxed);
                let (body, signature) = match ready.get(i) {
                    Some(b) => b.clone(),
                    None => {
                        built_late += 1;
                        bodies.build(t + i)
                    }
                };
                let sent = Instant::now();
                let res = http
                    .post(&url)
                    .header(SIGNATURE_HEADER, signature)
                    .header("content-type", "application/json")
                    .body(body)
                    .send()
                    .await;
                let ok = match res {
                    Ok(r) => {
                        let ok = r.status() == StatusCode::OK;
                        r.bytes().await.is_ok() && ok
                    }
                    Err(_) => false,
                };
                if ok {
                    latencies.push(sent.elapsed().as_secs_f64() * 1000.0);
                } else {
                    failed += 1;
                }
            }
            (latencies, failed, built_late)
        }));
    }
    let (mut all, mut failed, mut built_late) = (Vec::new(), 0, 0);
    for h in handles {
        let (l, f, b) = h.await.expect("load task");
        all.extend(l);
        failed += f;
        built_late += b;
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
        failed,
        built_late,
    }
}

/// The baseline: verify the signature over the raw body with the same function
/// Waypost uses, then `INSERT` one row (id, channel, body size) as its own
/// autocommit transaction, one per request; answer 200.
async fn baseline(db: &TestDatabase, pool_size: u32) -> anyhow::Result<String> {
    const CREATE: &str = "CREATE TABLE bench_inbound (id TEXT PRIMARY KEY, \
                          channel_id TEXT NOT NULL, bytes BIGINT NOT NULL)";
    const INSERT: &str = "INSERT INTO bench_inbound (id, channel_id, bytes) VALUES ($1, $2, $3)";
    macro_rules! serve {
        ($pool:expr, $ty:ty) => {{
            let pool = $pool;
            sqlx::query(CREATE).execute(&pool).await?;
            axum::Router::new()
                .route(
                    "/webhooks/whatsapp/{channel_id}",
                    post(
                        |State(pool): State<$ty>,
                         Path(channel_id): Path<String>,
                         headers: HeaderMap,
                         body: Bytes| async move {
                            let signature = headers
                                .get(SIGNATURE_HEADER)
                                .and_then(|v| v.to_str().ok())
                                .unwrap_or("");
                            if !waypost_cloudapi::verify_signature(
                                APP_SECRET.as_bytes(),
                                &body,
                                signature,
                            ) {
                                return StatusCode::UNAUTHORIZED;
                            }
                            // One statement in autocommit: one transaction per request,
                            // the least a durable write costs (no BEGIN/COMMIT hops).
                            let inserted = sqlx::query(INSERT)
                                .bind(format!("in_{}", ulid::Ulid::new()))
                                .bind(channel_id)
                                .bind(body.len() as i64)
                                .execute(&pool)
                                .await;
                            if inserted.is_err() {
                                return StatusCode::INTERNAL_SERVER_ERROR;
                            }
                            StatusCode::OK
                        },
                    ),
                )
                .with_state(pool)
        }};
    }
    let app = if db.url.starts_with("sqlite") {
        use std::str::FromStr;
        // Waypost's writer: one connection, WAL, synchronous=NORMAL, the same pragmas.
        let options = sqlx::sqlite::SqliteConnectOptions::from_str(&db.url)?
            .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal)
            .synchronous(sqlx::sqlite::SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true)
            .pragma("secure_delete", "on")
            .create_if_missing(true);
        let pool = sqlx::sqlite::SqlitePoolOptions::new()
            .max_connections(1)
            .test_before_acquire(false)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(options)
            .await?;
        serve!(pool, sqlx::SqlitePool)
    } else {
        // Waypost's pool size (`database_max_connections`).
        let pool = sqlx::postgres::PgPoolOptions::new()
            .max_connections(pool_size)
            .connect(&db.url)
            .await?;
        serve!(pool, sqlx::PgPool)
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let address = format!(
        "http://{}/webhooks/whatsapp/{}",
        listener.local_addr()?,
        ChannelId::new()
    );
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(address)
}

/// Waypost on `db`: a workspace, a channel whose app secret is `APP_SECRET`
/// (written through the store, secrets sealed), and `CUSTOMERS` contacts, each
/// created by a first signed webhook (not timed). Returns the webhook URL.
async fn waypost(db: &TestDatabase, dir: &std::path::Path) -> anyhow::Result<(String, u32)> {
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
        // Every load client connects from 127.0.0.1.
        max_connections_per_ip: 100_000,
        max_connections: 100_000,
        // As in bench_accept: the dispatcher runs (it has nothing to send here).
        dispatch_enabled: std::env::var("BENCH_DISPATCH").map_or(true, |v| v != "0"),
        ..Config::default()
    };
    let pool_size = config.database_max_connections;
    let app = Application::build(config).await?;
    let state = app.state().clone();
    let base = format!("http://127.0.0.1:{}", app.port());
    tokio::spawn(app.run_until_stopped());
    let (ws, _) = waypost_server::ops::setup::create_owner(
        &state,
        "bench",
        "bench@example.com",
        state.hasher.hash("bench-password-not-used"),
        Actor::System,
    )
    .await
    .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let channel_id = ChannelId::new().to_string();
    let now = state.clock.now();
    let seal = |which, value: &str| seal_secret(&state.keys, &channel_id, which, value);
    let channel = ChannelRow {
        workspace_id: ws.to_string(),
        name: "bench".into(),
        provider: "cloud".into(),
        phone_number_id: PHONE_NUMBER_ID.into(),
        waba_id: WABA_ID.into(),
        access_token: seal(ChannelSecret::AccessToken, "bench-access-token"),
        app_secret: seal(ChannelSecret::AppSecret, APP_SECRET),
        verify_token: seal(ChannelSecret::VerifyToken, "bench-verify-token"),
        base_url: None,
        api_version: Some("v21.0".into()),
        throughput_mps: 80,
        created_at: now,
        updated_at: now,
        deleted_at: None,
        id: channel_id.clone(),
    };
    let audit = NewAuditEvent::new(Some(ws), Actor::System, "channel.created")
        .target("channel", channel_id.clone());
    state.store.create_channel(&channel, audit).await?;
    let url = format!("{base}/webhooks/whatsapp/{channel_id}");
    let http = reqwest::Client::new();
    let first = Bodies {
        next_wamid: AtomicU64::new(u64::MAX / 2),
    };
    for (body, signature) in first.batch(CUSTOMERS) {
        let res = http
            .post(&url)
            .header(SIGNATURE_HEADER, signature)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await?;
        anyhow::ensure!(
            res.status() == StatusCode::OK,
            "inbound webhook answered {}",
            res.status()
        );
    }
    Ok((url, pool_size))
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
    let bodies = Arc::new(Bodies {
        next_wamid: AtomicU64::new(0),
    });
    println!("| backend | run | round | events/s | p50 ms | p99 ms | failed |");
    println!("|---|---|---|---:|---:|---:|---:|");
    let mut summaries = Vec::new();
    let mut late = 0;
    for backend in backends {
        let (Some(base_db), Some(wp_db)) = (
            TestDatabase::create(backend).await,
            TestDatabase::create(backend).await,
        ) else {
            eprintln!("{}: database unavailable, skipped", backend.as_str());
            continue;
        };
        let dir = tempfile::tempdir()?;
        let (wp_url, pool_size) = waypost(&wp_db, dir.path()).await?;
        let base_url = baseline(&base_db, pool_size).await?;
        let warm_b = load(&base_url, &bodies, FIRST_ESTIMATE, 1, tasks).await;
        let warm_w = load(&wp_url, &bodies, FIRST_ESTIMATE, 1, tasks).await;
        let (mut est_b, mut est_w) = (warm_b.rate, warm_w.rate);
        let (mut b, mut w) = (Vec::new(), Vec::new());
        let name = backend.as_str();
        let row = |run: &str, round: usize, r: &Run| {
            println!(
                "| {name} | {run} | {round} | {:.0} | {:.2} | {:.2} | {} |",
                r.rate, r.p50_ms, r.p99_ms, r.failed
            )
        };
        for round in 1..=ROUNDS {
            let rb = load(&base_url, &bodies, est_b, secs, tasks).await;
            row("baseline", round, &rb);
            let rw = load(&wp_url, &bodies, est_w, secs, tasks).await;
            row("waypost", round, &rw);
            (est_b, est_w) = (est_b.max(rb.rate), est_w.max(rw.rate));
            late += rb.built_late + rw.built_late;
            b.push(rb);
            w.push(rw);
        }
        let summary = |runs: &[Run]| {
            (
                median(runs.iter().map(|r| r.rate).collect()),
                median(runs.iter().map(|r| r.p50_ms).collect()),
                median(runs.iter().map(|r| r.p99_ms).collect()),
            )
        };
        let ratios = median(b.iter().zip(&w).map(|(b, w)| w.rate / b.rate).collect());
        summaries.push((name, summary(&b), summary(&w), ratios));
    }
    println!("\n| backend | run | events/s (median) | p50 ms | p99 ms |");
    println!("|---|---|---:|---:|---:|");
    for (name, (br, bp50, bp99), (wr, wp50, wp99), _) in &summaries {
        println!(
            "| {name} | baseline (bare axum, verify + 1-row commit) | {br:.0} | {bp50:.2} | {bp99:.2} |"
        );
        println!(
            "| {name} | waypost POST /webhooks/whatsapp/… | {wr:.0} | {wp50:.2} | {wp99:.2} |"
        );
    }
    println!();
    for (name, _, (wr, ..), ratio) in &summaries {
        let goal = if *name == "sqlite" {
            format!(
                "; goal ≥ 10,000/s and ≥ 0.5: {}",
                if *wr >= 10_000.0 && *ratio >= 0.5 {
                    "met"
                } else {
                    "NOT met"
                }
            )
        } else {
            String::new()
        };
        println!("median per-round ratio waypost/baseline on {name}: {ratio:.2}{goal}");
    }
    println!(
        "\nMedians of {ROUNDS} alternating rounds; {tasks} keep-alive tasks, {secs} s per round, client and servers in one process. \
         Each request is one signed Meta `messages` webhook with one inbound text under a wamid unique in the run (no duplicate short-cuts), \
         from {CUSTOMERS} customers created before the rounds. The baseline commits one row per request in its own transaction \
         (no batching across requests; SQLite: one writer connection in WAL mode with synchronous=NORMAL, as Waypost's). \
         Bodies built inside the timed loop (pool ran out): {late}. Dispatcher on: {}.",
        std::env::var("BENCH_DISPATCH").map_or(true, |v| v != "0")
    );
    Ok(())
}
