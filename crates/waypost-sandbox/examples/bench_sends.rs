//! Load client for the sandbox: N keep-alive tasks send template messages
//! for D seconds and count accepted sends per second. The same client then
//! runs against a trivial axum handler returning a fixed JSON body (the
//! baseline), in the same process and run, in alternating rounds; the
//! medians and their ratio are printed.
//!
//! `cargo run --release -p waypost-sandbox --example bench_sends -- [SECS] [TASKS]`

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::Json;
use axum::routing::post;
use serde_json::json;
use waypost_sandbox::{Sandbox, SandboxConfig};

const ROUNDS: usize = 3;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

async fn load(url: String, token: String, secs: u64, tasks: usize) -> f64 {
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(tasks)
        .build()
        .expect("client");
    let ok = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    let mut handles = Vec::new();
    for t in 0..tasks {
        let (http, url, token, ok, stop) = (
            http.clone(),
            url.clone(),
            token.clone(),
            ok.clone(),
            stop.clone(),
        );
        handles.push(tokio::spawn(async move {
            let mut i: u64 = 0;
            while !stop.load(Ordering::Relaxed) {
                i += 1;
                let to = format!("1555{:03}{:06}", t, i % 1_000_000);
                let body = json!({"messaging_product":"whatsapp","to":to,"type":"template",
                    "template":{"name":"hello_world","language":{"code":"en_US"}}});
                let resp = http.post(&url).bearer_auth(&token).json(&body).send().await;
                if let Ok(r) = resp
                    && r.status().is_success()
                    && r.bytes().await.is_ok()
                {
                    ok.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_secs(secs)).await;
    stop.store(true, Ordering::Relaxed);
    for h in handles {
        let _ = h.await;
    }
    ok.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64()
}

async fn baseline_server() -> String {
    let app = axum::Router::new().route(
        "/{id}/messages",
        post(|| async {
            Json(json!({"messaging_product":"whatsapp",
                "contacts":[{"input":"15550000000","wa_id":"15550000000"}],
                "messages":[{"id":"wamid.HBgLMTU1NTAwMDAwMDAVAgARGBI5QTNDQTVCM0Q0Q0Q2RTY3RTcA"}]}))
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!(
        "http://{}/106540352242922/messages",
        listener.local_addr().expect("addr")
    );
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let secs: u64 = args.next().map(|s| s.parse()).transpose()?.unwrap_or(5);
    let tasks: usize = args.next().map(|s| s.parse()).transpose()?.unwrap_or(64);
    let mut config = SandboxConfig::default();
    config.webhooks.enabled = false;
    config.numbers[0].throughput = u32::MAX;
    config.numbers[0].messaging_tier = u32::MAX;
    config.limits.max_log = 10_000;
    let sb = Sandbox::start(config).await?;
    let token = sb.numbers()[0].access_token.clone();
    let sandbox_url = format!("{}/v21.0/{}/messages", sb.base_url(), sb.numbers()[0].id);
    let base_url = baseline_server().await;
    // Warm up both (connections, allocator).
    load(base_url.clone(), token.clone(), 1, tasks).await;
    load(sandbox_url.clone(), token.clone(), 1, tasks).await;
    // Alternate rounds so a busy neighbour moves both; report medians.
    let (mut base_runs, mut sb_runs) = (Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        base_runs.push(load(base_url.clone(), token.clone(), secs, tasks).await);
        sb_runs.push(load(sandbox_url.clone(), token.clone(), secs, tasks).await);
    }
    eprintln!("baseline rounds: {base_runs:.0?}\nsandbox rounds:  {sb_runs:.0?}");
    let (baseline, sandbox) = (median(base_runs), median(sb_runs));
    println!("| run | accepted sends/s |");
    println!("|---|---|");
    println!("| baseline (fixed JSON axum handler) | {baseline:.0} |");
    println!("| sandbox (POST /messages, template) | {sandbox:.0} |");
    println!("| ratio sandbox/baseline | {:.2} |", sandbox / baseline);
    println!(
        "\nMedians of {ROUNDS} alternating rounds; {tasks} keep-alive tasks, {secs} s per round, client and server in one process."
    );
    Ok(())
}
