//! Latency of `POST /v1/shield/scan` against a running Waypost, with `GET /healthz` (the same
//! server, connection, middleware and rate limiter, but no auth, JSON, scan or database write)
//! measured in the same run as the baseline. Requests go one at a time over one keep-alive
//! connection, alternating scan and baseline so both see the same conditions; scans cycle
//! through the messages of the data files (or a built-in sample). Text is never printed.
//!
//! Usage: cargo run --release -p waypost-server --example bench_scan_latency --
//!        --base http://127.0.0.1:8080 --key wp_live_… [--requests N] [--data FILE.tsv]…
#![forbid(unsafe_code)]

use std::time::{Duration, Instant};

use serde_json::json;

const BUILT_IN: &[&str] = &[
    "are we still on for lunch tomorrow? text me when you leave",
    "URGENT! Your mobile was awarded a £2000 bonus. Call 09064019788 now to claim",
    "Your parcel is held at our depot, pay the £1.99 fee at paypa1-login.com/x",
    "Check out the photos https://bit.ly/3Gx7aQp",
];

struct Args {
    base: String,
    key: String,
    requests: usize,
    data: Vec<String>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        base: "http://127.0.0.1:8080".into(),
        key: String::new(),
        requests: 5000,
        data: Vec::new(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut value = || it.next().ok_or(format!("{a} needs a value"));
        match a.as_str() {
            "--base" => args.base = value()?,
            "--key" => args.key = value()?,
            "--requests" => {
                args.requests = value()?.parse().map_err(|e| format!("--requests: {e}"))?
            }
            "--data" => args.data.push(value()?),
            other => return Err(format!("unknown argument {other}")),
        }
    }
    if args.key.is_empty() {
        return Err("--key is required (an API key with the shield:scan scope)".into());
    }
    Ok(args)
}

struct Stats {
    p50: f64,
    p90: f64,
    p99: f64,
    max: f64,
    mean: f64,
}

/// Percentiles in microseconds (nearest rank).
fn stats(mut samples: Vec<Duration>) -> Stats {
    samples.sort();
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    let at = |p: f64| {
        us(samples[((p * samples.len() as f64).ceil() as usize).clamp(1, samples.len()) - 1])
    };
    Stats {
        p50: at(0.50),
        p90: at(0.90),
        p99: at(0.99),
        max: us(*samples.last().expect("samples")),
        mean: samples.iter().map(|d| us(*d)).sum::<f64>() / samples.len() as f64,
    }
}

async fn timed(req: reqwest::RequestBuilder) -> Result<Duration, Box<dyn std::error::Error>> {
    let start = Instant::now();
    let res = req.send().await?;
    let status = res.status();
    res.bytes().await?;
    let took = start.elapsed();
    if !status.is_success() {
        return Err(format!("unexpected status {status}").into());
    }
    Ok(took)
}

fn row(name: &str, n: usize, s: &Stats) {
    println!(
        "| {name} | {n} | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} |",
        s.p50, s.p90, s.p99, s.max, s.mean
    );
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = parse_args()?;
    let mut texts: Vec<String> = Vec::new();
    for path in &args.data {
        texts.extend(waypost_shield::load_tsv(path)?.into_iter().map(|e| e.text));
    }
    if texts.is_empty() {
        texts = BUILT_IN.iter().map(|s| s.to_string()).collect();
    }
    texts.retain(|t| !t.trim().is_empty() && t.chars().count() <= 4096);

    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(1)
        .build()?;
    let health = format!("{}/healthz", args.base);
    let scan = format!("{}/v1/shield/scan", args.base);
    let batch = format!("{}/v1/shield/scan/batch", args.base);
    let scan_req = |i: usize| {
        client
            .post(&scan)
            .bearer_auth(&args.key)
            .json(&json!({ "text": texts[i % texts.len()] }))
    };

    // Warm-up: connection, allocator, lazily built tables.
    for i in 0..200 {
        timed(client.get(&health)).await?;
        timed(scan_req(i)).await?;
    }
    let (mut base, mut scans) = (Vec::new(), Vec::new());
    for i in 0..args.requests {
        base.push(timed(client.get(&health)).await?);
        scans.push(timed(scan_req(i)).await?);
    }
    let batches = (args.requests / 50).max(10);
    let mut batch_lat = Vec::new();
    for b in 0..batches {
        let items: Vec<_> = (0..100)
            .map(|j| json!({ "text": texts[(b * 100 + j) % texts.len()] }))
            .collect();
        let req = client
            .post(&batch)
            .bearer_auth(&args.key)
            .json(&json!({ "items": items }));
        batch_lat.push(timed(req).await?);
    }

    let (b, s, bt) = (stats(base), stats(scans), stats(batch_lat));
    println!(
        "{} messages; sequential requests over one keep-alive connection, scan and baseline alternating.\n",
        texts.len()
    );
    println!("| request | n | p50 µs | p90 µs | p99 µs | max µs | mean µs |");
    println!("|---|---:|---:|---:|---:|---:|---:|");
    row("`GET /healthz` (baseline)", args.requests, &b);
    row("`POST /v1/shield/scan`", args.requests, &s);
    row("`POST /v1/shield/scan/batch` (100 messages)", batches, &bt);
    println!(
        "\nscan ÷ baseline: p50 {:.2}×, p99 {:.2}×; batch of 100: {:.1} µs per message at p50",
        s.p50 / b.p50,
        s.p99 / b.p99,
        bt.p50 / 100.0
    );
    Ok(())
}
