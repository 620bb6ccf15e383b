//! Campaign benchmark: a `BENCH_RECIPIENTS` (100,000) recipient campaign to
//! one sandbox number limited to `BENCH_LIMIT` (1,000) messages/s, end to
//! end: the campaign sender feeds recipients through `ops::messages::accept`
//! (consent, template and shield checks, idempotency key, group commit) and
//! the dispatcher sends them. Reports the rate as a fraction of the limit and
//! of the ceiling a bare client measures on an identical sandbox in the same
//! run, and the most sends the sandbox accepted in any one-second window.
//! Run by `bench/campaign.sh`; prints Markdown.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use waypost_cloudapi::OutboundMessage;
use waypost_cloudapi::template::TemplateMessage;
use waypost_core::audit::Actor;
use waypost_core::{ChannelId, NewAuditEvent, WorkspaceId};
use waypost_crypto::MasterKey;
use waypost_sandbox::{RunningSandbox, Sandbox, SandboxConfig};
use waypost_server::messaging::{ChannelSecret, seal_secret};
use waypost_server::ops::Ctx;
use waypost_server::ops::campaign_runs::{StartCampaign, start};
use waypost_server::ops::campaigns::{CampaignParameters, NewCampaign, create_campaign, preflight};
use waypost_server::ops::contact_import::{ImportKey, import_contacts};
use waypost_server::ops::segments::{NewSegment, create_segment};
use waypost_server::state::RequestOrigin;
use waypost_server::{Application, Config};
use waypost_store::messaging::ChannelRow;
use waypost_store::templates::TemplateRow;

fn env<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

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

fn api(e: waypost_server::error::ApiError) -> anyhow::Error {
    anyhow::anyhow!("{e:?}")
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> anyhow::Result<()> {
    let limit: u32 = env("BENCH_LIMIT", 1000);
    let total: usize = env("BENCH_RECIPIENTS", 100_000);
    let baseline_secs: f64 = env("BENCH_BASELINE_SECS", 3.0);
    let ceiling = baseline(1, limit, baseline_secs).await;

    let sb = Sandbox::start(sandbox_config(1, limit, total + 10)).await?;
    let dir = tempfile::tempdir()?;
    let master = MasterKey::generate();
    let config = Config {
        listen: "127.0.0.1:0".parse()?,
        data_dir: dir.path().to_path_buf(),
        database_url: Some(
            std::env::var("BENCH_POSTGRES_URL")
                .unwrap_or_else(|_| format!("sqlite://{}", dir.path().join("bench.db").display()))
                .into(),
        ),
        master_key: Some(
            secrecy::ExposeSecret::expose_secret(&master.to_base64())
                .to_owned()
                .into(),
        ),
        log_level: "warn".into(),
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
    let n = sb.numbers()[0].clone();
    let id = ChannelId::new().to_string();
    let channel = ChannelRow {
        workspace_id: ws.to_string(),
        name: "bench".into(),
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
    // The sandbox's own approved `hello_world` (utility, no parameters).
    store
        .create_template(
            &TemplateRow {
                id: waypost_core::TemplateId::new().to_string(),
                workspace_id: ws.to_string(),
                channel_id: id.clone(),
                name: "hello_world".into(),
                language: "en_US".into(),
                category: "utility".into(),
                components: json!([{"type": "BODY", "text": "Hello World"}]).to_string(),
                status: "APPROVED".into(),
                rejection_reason: None,
                provider_id: None,
                created_at: now,
                updated_at: now,
            },
            NewAuditEvent::new(Some(ws), Actor::System, "template.created"),
        )
        .await?;
    let ctx = Ctx::new(
        ws,
        Actor::System,
        RequestOrigin {
            ip: None,
            user_agent: None,
            rate_limit: None,
        },
    );
    let t = Instant::now();
    let mut csv = String::from("phone,tags\n");
    for i in 0..total {
        csv.push_str(&format!("+49151{:08},bench\n", 10_000_000 + i));
    }
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> = csv
        .into_bytes()
        .chunks(64 * 1024)
        .map(|c| Ok(c.to_vec()))
        .collect();
    import_contacts(
        &state,
        &ctx,
        ImportKey::parse("bench").map_err(api)?,
        futures_util::stream::iter(chunks),
        &mut |_| {},
    )
    .await
    .map_err(api)?;
    let import_secs = t.elapsed().as_secs_f64();
    let filter = serde_json::from_value(json!({"tags": ["bench"]}))?;
    let segment = create_segment(
        &state,
        &ctx,
        NewSegment::parse("Bench", filter).map_err(api)?,
    )
    .await
    .map_err(api)?;
    let campaign = create_campaign(
        &state,
        &ctx,
        NewCampaign::parse(
            "Bench",
            &segment.row.id,
            "hello_world",
            "en_US",
            CampaignParameters::default(),
        )
        .map_err(api)?,
    )
    .await
    .map_err(api)?;
    let t = Instant::now();
    let pre = preflight(&state, &ws.to_string(), &campaign.row.id)
        .await
        .map_err(api)?;
    let preflight_secs = t.elapsed().as_secs_f64();
    let t = Instant::now();
    start(
        &state,
        &ctx,
        &campaign.row.id,
        StartCampaign::parse(pre.eligible, None, None, None, None).map_err(api)?,
    )
    .await
    .map_err(api)?;
    let start_secs = t.elapsed().as_secs_f64();

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
        if accepted as usize >= pre.eligible as usize
            || started.elapsed() > Duration::from_secs(900)
        {
            break;
        }
    }
    shutdown.cancel();
    let _ = server.await;
    let sent = samples.last().map(|s| s.1).unwrap_or(0);
    // End to end: from the workers' start to the last send.
    let first_done = samples
        .iter()
        .find(|(_, a)| *a >= sent)
        .map(|s| s.0)
        .unwrap_or(0.0);
    let end_to_end = sent as f64 / first_done.max(1e-9);
    let at = |frac: f64| {
        samples
            .iter()
            .find(|(_, a)| *a as f64 >= frac * sent as f64)
            .copied()
            .unwrap_or(*samples.last().expect("samples"))
    };
    let ((t1, a1), (t2, a2)) = (at(0.1), at(0.9));
    let steady = (a2 - a1) as f64 / (t2 - t1).max(1e-9);
    let log = sandbox_log(&client, &sb, total + 10).await;
    let max_window = log["max_rate_per_second"][&n.id].as_u64().unwrap_or(0);
    let sends = log["sends"].as_array().cloned().unwrap_or_default();
    let throttled = sends.iter().filter(|s| s["code"] == 130429).count();
    let mut seen = std::collections::HashSet::new();
    let twice = sends
        .iter()
        .filter(|s| s["outcome"] == "accepted")
        .filter(|s| !seen.insert(s["to"].as_str().unwrap_or_default().to_owned()))
        .count();
    println!(
        "| recipients | eligible | limit msgs/s | ceiling msgs/s (bare client) | sent | seconds (workers start → last send) | end-to-end msgs/s | ratio to limit | 10–90 % msgs/s | ratio to ceiling | max sends in any 1 s window | 130429 answers | recipients sent twice |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    println!(
        "| {total} | {} | {limit} | {ceiling:.0} | {sent} | {first_done:.1} | {end_to_end:.0} | {:.3} | {steady:.0} | {:.3} | {max_window} | {throttled} | {twice} |",
        pre.eligible,
        end_to_end / limit as f64,
        end_to_end / ceiling.max(1.0),
    );
    println!();
    println!(
        "Set-up (not in the rate): import {import_secs:.1} s, pre-flight {preflight_secs:.1} s, start (recipients written) {start_secs:.1} s."
    );
    Ok(())
}
