//! Dispatch benchmark: end-to-end sends per second from Waypost's outbox to
//! the sandbox, whose numbers are limited to `BENCH_LIMIT` messages/s each,
//! against the limit as measured in the same run (a bare client blasting an
//! identical sandbox). Run by `bench/dispatch.sh`; prints Markdown.
//!
//! For each scenario (`BENCH_NUMBERS`, default "1,10"): a fresh SQLite
//! database, `BENCH_MESSAGES` queued template messages per number (rotating
//! recipients so the pair limit never binds), the real `Application` with its
//! dispatcher; progress is read from the sandbox's log, which also reports the
//! highest number of sends it accepted per number in any one-second window
//! and every 130429 (throughput exceeded) answer it gave.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use waypost_cloudapi::OutboundMessage;
use waypost_cloudapi::template::TemplateMessage;
use waypost_core::audit::Actor;
use waypost_core::phone::E164;
use waypost_core::{ChannelId, MessageId, NewAuditEvent, WorkspaceId};
use waypost_crypto::{Aad, MasterKey};
use waypost_sandbox::{RunningSandbox, Sandbox, SandboxConfig};
use waypost_server::messaging::{ChannelSecret, new_contact_row, seal_secret};
use waypost_server::{Application, Config};
use waypost_store::messaging::{ChannelRow, MessageRow, NewOutboundMessage, OutboxRow};

fn env<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Recipients per number; 45 is the sandbox's pair burst.
const PER_RECIPIENT: usize = 40;

fn sandbox_config(numbers: usize, limit: u32, max_log: usize) -> SandboxConfig {
    let mut c = SandboxConfig::default();
    c.webhooks.enabled = false;
    c.limits.max_log = max_log;
    let template = c.numbers[0].clone();
    c.numbers = (0..numbers)
        .map(|i| {
            let mut n = template.clone();
            n.id = format!("{}", 106540352242000u64 + i as u64);
            n.access_token = format!("EAAbench{i}token");
            n.throughput = limit;
            n.messaging_tier = u32::MAX;
            n
        })
        .collect();
    c
}

async fn sandbox_log(client: &reqwest::Client, sb: &RunningSandbox, limit: usize) -> Value {
    client
        .get(format!("{}/_sandbox/log?limit={limit}", sb.base_url()))
        .bearer_auth(sb.control_token())
        .send()
        .await
        .expect("sandbox log")
        .json()
        .await
        .expect("sandbox log JSON")
}

fn hello(to: &str) -> OutboundMessage {
    let template: TemplateMessage = serde_json::from_value(json!({
        "name": "hello_world", "language": {"code": "en_US"}
    }))
    .expect("template");
    OutboundMessage::new(to, waypost_cloudapi::OutboundContent::Template(template))
}

/// The ceiling: 64 keep-alive tasks sending as fast as the sandbox answers, for `secs`.
async fn baseline(numbers: usize, limit: u32, secs: f64) -> f64 {
    let sb = Sandbox::start(sandbox_config(numbers, limit, 1000))
        .await
        .expect("sandbox");
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs_f64(secs);
    let mut tasks = Vec::new();
    for t in 0..64usize {
        let client = client.clone();
        let base = sb.base_url().to_owned();
        let n = sb.numbers()[t % numbers].clone();
        tasks.push(tokio::spawn(async move {
            let mut i = 0usize;
            while Instant::now() < deadline {
                let to = format!("49151{:08}", 10_000_000 + t * 1_000_000 + i);
                i += 1;
                let _ = client
                    .post(format!("{base}/v21.0/{}/messages", n.id))
                    .bearer_auth(&n.access_token)
                    .json(&hello(&to))
                    .send()
                    .await;
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    let log = sandbox_log(&client, &sb, 1).await;
    log["counters"]["accepted"].as_f64().unwrap_or(0.0) / secs
}

struct Outcome {
    rate: f64,
    total: usize,
    secs: f64,
    max_window: Vec<u64>,
    throttled: u64,
    other_rejections: u64,
}

async fn waypost_run(numbers: usize, limit: u32, per_number: usize) -> anyhow::Result<Outcome> {
    let total = numbers * per_number;
    let sb = Sandbox::start(sandbox_config(numbers, limit, total + 10)).await?;
    let dir = tempfile::tempdir()?;
    let master = MasterKey::generate();
    let config = Config {
        listen: "127.0.0.1:0".parse()?,
        data_dir: dir.path().to_path_buf(),
        database_url: Some(format!("sqlite://{}", dir.path().join("bench.db").display()).into()),
        master_key: Some(
            secrecy::ExposeSecret::expose_secret(&master.to_base64())
                .to_owned()
                .into(),
        ),
        log_level: "warn".into(),
        // The provider is the sandbox on 127.0.0.1.
        channel_allow_private_targets: true,
        ..Config::default()
    };
    let app = Application::build(config)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let state = app.state().clone();
    let store = &state.store;
    let keys = &state.keys;
    let now = chrono::Utc::now();
    let ws = WorkspaceId::new();
    store
        .create_workspace(
            &waypost_store::Workspace {
                id: ws,
                name: "Bench".into(),
                created_at: now,
                updated_at: now,
            },
            NewAuditEvent::new(Some(ws), Actor::System, "workspace.created"),
        )
        .await?;
    let ring = keys.current();
    let mut batch = Vec::new();
    for (k, n) in sb.numbers().iter().enumerate() {
        let id = ChannelId::new().to_string();
        let channel = ChannelRow {
            workspace_id: ws.to_string(),
            name: format!("bench {k}"),
            provider: "sandbox".into(),
            phone_number_id: n.id.clone(),
            waba_id: n.waba_id.clone(),
            access_token: seal_secret(keys, &id, ChannelSecret::AccessToken, &n.access_token),
            app_secret: seal_secret(keys, &id, ChannelSecret::AppSecret, &n.app_secret),
            verify_token: seal_secret(keys, &id, ChannelSecret::VerifyToken, &n.verify_token),
            base_url: Some(sb.base_url().to_owned()),
            api_version: Some("v21.0".into()),
            throughput_mps: limit as i64,
            created_at: now,
            updated_at: now,
            deleted_at: None,
            id: id.clone(),
        };
        store
            .create_channel(
                &channel,
                NewAuditEvent::new(Some(ws), Actor::System, "channel.created"),
            )
            .await?;
        let mut contacts = Vec::new();
        for r in 0..per_number.div_ceil(PER_RECIPIENT) {
            let phone = E164::parse(&format!("+49151{:08}", 10_000_000 + k * 100_000 + r))?;
            let row = new_contact_row(keys, &ws.to_string(), &phone, None, None, now);
            store
                .create_contact(
                    &row,
                    NewAuditEvent::new(Some(ws), Actor::System, "contact.created"),
                )
                .await?;
            contacts.push((row.id, phone));
        }
        for i in 0..per_number {
            let (contact_id, phone) = &contacts[i % contacts.len()];
            let mid = MessageId::new().to_string();
            let mut m = hello(phone.as_str());
            m.biz_opaque_callback_data = Some(mid.clone());
            let payload = ring.encrypt(
                Aad::new("outbox", "payload", &mid),
                &serde_json::to_vec(&m)?,
            );
            batch.push(NewOutboundMessage {
                message: MessageRow {
                    id: mid.clone(),
                    workspace_id: ws.to_string(),
                    channel_id: id.clone(),
                    contact_id: contact_id.clone(),
                    direction: "outbound".into(),
                    message_type: "template".into(),
                    template_name: Some("hello_world".into()),
                    template_language: Some("en_US".into()),
                    category: Some("utility".into()),
                    status: "queued".into(),
                    provider_message_id: None,
                    error_code: None,
                    error_title: None,
                    content: None,
                    content_expires_at: None,
                    shield_label: None,
                    provider_acceptance: None,
                    created_at: now,
                    updated_at: now,
                    country: None,
                },
                outbox: OutboxRow {
                    message_id: mid.clone(),
                    workspace_id: ws.to_string(),
                    channel_id: id.clone(),
                    contact_id: contact_id.clone(),
                    payload,
                    attempts: 0,
                    next_attempt_at: now,
                    deadline_at: now + chrono::Duration::hours(24),
                    lease_owner: None,
                    lease_until: None,
                    attempt_started_at: None,
                    last_error_code: None,
                    last_error_title: None,
                },
                idempotency: None,
                audit: NewAuditEvent::new(Some(ws), Actor::System, "message.queued")
                    .target("message", mid),
                events: vec![],
            });
            if batch.len() == 500 {
                store.accept_messages(&batch).await?;
                batch.clear();
            }
        }
    }
    if !batch.is_empty() {
        store.accept_messages(&batch).await?;
    }
    let shutdown = app.shutdown_token();
    let server = tokio::spawn(app.run_until_stopped());
    let client = reqwest::Client::new();
    let started = Instant::now();
    let mut samples: Vec<(f64, u64)> = Vec::new();
    loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let log = sandbox_log(&client, &sb, 1).await;
        let accepted = log["counters"]["accepted"].as_u64().unwrap_or(0);
        samples.push((started.elapsed().as_secs_f64(), accepted));
        if accepted as usize >= total || started.elapsed() > Duration::from_secs(600) {
            break;
        }
    }
    shutdown.cancel();
    let _ = server.await;
    // Steady state: from the first sample past 10 % to the first past 90 %.
    let at = |frac: f64| {
        samples
            .iter()
            .find(|(_, a)| *a as f64 >= frac * total as f64)
            .copied()
            .unwrap_or(*samples.last().expect("samples"))
    };
    let (t1, a1) = at(0.1);
    let (t2, a2) = at(0.9);
    let rate = (a2 - a1) as f64 / (t2 - t1).max(1e-9);
    let log = sandbox_log(&client, &sb, total + 10).await;
    let max_window = sb
        .numbers()
        .iter()
        .map(|n| log["max_rate_per_second"][&n.id].as_u64().unwrap_or(0))
        .collect();
    let sends = log["sends"].as_array().cloned().unwrap_or_default();
    let throttled = sends.iter().filter(|s| s["code"] == 130429).count() as u64;
    let other_rejections = sends
        .iter()
        .filter(|s| s["outcome"] == "rejected" && s["code"] != 130429)
        .count() as u64;
    let last = samples.last().expect("samples");
    Ok(Outcome {
        rate,
        total: last.1 as usize,
        secs: last.0,
        max_window,
        throttled,
        other_rejections,
    })
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> anyhow::Result<()> {
    let limit: u32 = env("BENCH_LIMIT", 1000);
    let per_number: usize = env("BENCH_MESSAGES", 5000);
    let scenarios: String = env("BENCH_NUMBERS", "1,10".to_owned());
    let baseline_secs: f64 = env("BENCH_BASELINE_SECS", 3.0);
    println!(
        "| numbers | limit msgs/s (total) | measured ceiling msgs/s (bare client) | Waypost msgs/s (10–90 %) | ratio to ceiling | ratio to limit | sent | seconds | max sends in any 1 s window per number | 130429 answers | other rejections |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|");
    for numbers in scenarios
        .split(',')
        .filter_map(|s| s.trim().parse::<usize>().ok())
    {
        let ceiling = baseline(numbers, limit, baseline_secs).await;
        let o = waypost_run(numbers, limit, per_number).await?;
        let total_limit = limit as f64 * numbers as f64;
        let windows = if o.max_window.len() <= 3 {
            format!("{:?}", o.max_window)
        } else {
            format!(
                "max {} / min {}",
                o.max_window.iter().max().unwrap_or(&0),
                o.max_window.iter().min().unwrap_or(&0)
            )
        };
        println!(
            "| {numbers} | {total_limit:.0} | {ceiling:.0} | {:.0} | {:.3} | {:.3} | {} | {:.1} | {windows} | {} | {} |",
            o.rate,
            o.rate / ceiling.max(1.0),
            o.rate / total_limit,
            o.total,
            o.secs,
            o.throttled,
            o.other_rejections,
        );
    }
    Ok(())
}
