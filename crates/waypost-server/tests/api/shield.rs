//! The shield's scan API: verdicts with reasons, batches, validation, scopes, usage
//! records that keep metadata but never the text, their purge, the operator lists and metrics.

use std::time::Duration;

use chrono::Duration as Days;
use serde_json::{Value, json};
use waypost_store::{Backend, ShieldScanRecord};

use crate::helpers::{TestApp, assert_problem, spawn_app, spawn_app_with};
use crate::on_both_backends;
use crate::users::*;

on_both_backends!(
    hostile_text_is_smishing_with_reasons_and_ham_is_ham,
    url_only_and_phone_only_are_scanned,
    batches_answer_in_order_within_limits,
    invalid_requests_are_422_naming_the_field,
    keys_need_the_shield_scan_scope,
    usage_is_recorded_without_the_text,
    old_usage_records_are_purged,
    operator_blocklist_is_loaded_and_reloaded,
    scans_are_counted_in_metrics,
);

const HOSTILE: &str =
    "URGENT! Your account has been suspended. Verify your details at paypa1-login.com/x now";
const HAM: &str = "Hey, are we still on for lunch tomorrow? I can pick you up at 12";

/// An owner with an API key holding `scopes`; returns the key.
async fn key_with(app: &TestApp, scopes: &[&str]) -> String {
    owner(app, "ana@example.com", "Acme").await;
    let s = login(app, "ana@example.com", PASSWORD).await;
    api_key(app, &s, json!({"name": "scanner", "scopes": scopes}))
        .await
        .1
}

async fn post(app: &TestApp, key: &str, path: &str, body: Value) -> reqwest::Response {
    app.client
        .post(format!("{}{path}", app.address))
        .bearer_auth(key)
        .json(&body)
        .send()
        .await
        .unwrap()
}

async fn scan_ok(app: &TestApp, key: &str, body: Value) -> Value {
    let res = post(app, key, "/v1/shield/scan", body).await;
    assert_eq!(res.status(), 200);
    res.json().await.unwrap()
}

fn codes(verdict: &Value) -> Vec<String> {
    verdict["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["code"].as_str().unwrap().to_owned())
        .collect()
}

async fn hostile_text_is_smishing_with_reasons_and_ham_is_ham(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let key = key_with(&app, &["shield:scan"]).await;
    let v = scan_ok(&app, &key, json!({ "text": HOSTILE })).await;
    assert_eq!(v["label"], "smishing", "{v}");
    assert!(v["score"].as_f64().unwrap() >= 0.9);
    assert!(codes(&v).contains(&"brand_lookalike".to_owned()), "{v}");
    assert!(v["reasons"][0]["detail"].as_str().unwrap().len() > 5);
    assert_eq!(v["urls"][0]["verdict"], "malicious");

    let v = scan_ok(&app, &key, json!({ "text": HAM })).await;
    assert_eq!(v["label"], "ham", "{v}");
    assert!(v["score"].as_f64().unwrap() < 0.5);
    assert!(v["reasons"].as_array().unwrap().is_empty(), "{v}");

    // Long messages are scanned on the blocking pool, with the same answer.
    let long = format!("{HAM} {}", "Thanks again for everything. ".repeat(30));
    assert!(long.len() > 512);
    let v = scan_ok(&app, &key, json!({ "text": long })).await;
    assert_eq!(v["label"], "ham", "{v}");
    let long_hostile = format!("{} {HOSTILE}", "Dear customer, ".repeat(40));
    let v = scan_ok(&app, &key, json!({ "text": long_hostile })).await;
    assert_eq!(v["label"], "smishing", "{v}");

    // A shortener alone is a reason, not a smishing verdict.
    let v = scan_ok(&app, &key, json!({ "text": "https://bit.ly/3Gx7aQp" })).await;
    assert_ne!(v["label"], "smishing", "{v}");
    assert!(codes(&v).contains(&"url_shortener".to_owned()), "{v}");

    // Signed-in members with a role that may scan use it too.
    let s = login(&app, "ana@example.com", PASSWORD).await;
    let res = s
        .post(&app, "/v1/shield/scan", json!({ "text": HAM }))
        .await;
    assert_eq!(res.status(), 200);
}

async fn url_only_and_phone_only_are_scanned(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let key = key_with(&app, &["shield:scan"]).await;
    let v = scan_ok(
        &app,
        &key,
        json!({ "url": "https://paypal.com.secure-login.xyz/signin" }),
    )
    .await;
    assert_eq!(v["label"], "smishing", "{v}");
    assert!(codes(&v).contains(&"brand_in_subdomain".to_owned()), "{v}");
    assert_eq!(v["urls"].as_array().unwrap().len(), 1);

    let v = scan_ok(
        &app,
        &key,
        json!({ "phone": "+234 803 123 4567", "recipient_region": "gb" }),
    )
    .await;
    assert_eq!(v["phones"].as_array().unwrap().len(), 1, "{v}");
    assert_eq!(v["phones"][0]["e164"], "+2348031234567");
    assert!(codes(&v).contains(&"foreign_number".to_owned()), "{v}");

    let v = scan_ok(&app, &key, json!({ "url": "https://bit.ly/3Gx7aQp" })).await;
    assert_ne!(v["label"], "smishing", "{v}");
    assert_eq!(v["urls"][0]["verdict"], "suspicious");
}

async fn batches_answer_in_order_within_limits(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let key = key_with(&app, &["shield:scan"]).await;
    let res = post(
        &app,
        &key,
        "/v1/shield/scan/batch",
        json!({ "items": [
            { "text": HAM },
            { "text": HOSTILE },
            { "url": "https://bit.ly/3Gx7aQp" },
        ]}),
    )
    .await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    let results = body["results"].as_array().unwrap();
    assert_eq!(results.len(), 3);
    assert_eq!(results[0]["label"], "ham");
    assert_eq!(results[1]["label"], "smishing");
    assert!(codes(&results[2]).contains(&"url_shortener".to_owned()));

    let hundred: Vec<Value> = (0..100)
        .map(|i| json!({ "text": format!("msg {i}") }))
        .collect();
    let res = post(
        &app,
        &key,
        "/v1/shield/scan/batch",
        json!({ "items": hundred }),
    )
    .await;
    assert_eq!(res.status(), 200);

    let too_many: Vec<Value> = (0..101).map(|_| json!({ "text": HAM })).collect();
    let res = post(
        &app,
        &key,
        "/v1/shield/scan/batch",
        json!({ "items": too_many }),
    )
    .await;
    let body = assert_problem(res, 422).await;
    assert_eq!(body["errors"][0]["pointer"], "/items");
    assert!(body["detail"].as_str().unwrap().contains("101"), "{body}");

    let res = post(&app, &key, "/v1/shield/scan/batch", json!({ "items": [] })).await;
    assert_problem(res, 422).await;
}

async fn invalid_requests_are_422_naming_the_field(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let key = key_with(&app, &["shield:scan"]).await;
    let body = assert_problem(post(&app, &key, "/v1/shield/scan", json!({})).await, 422).await;
    assert_eq!(body["type"], "https://waypost.dev/problems/validation");
    assert!(
        body["detail"].as_str().unwrap().contains("at least one"),
        "{body}"
    );

    for (request, pointer) in [
        (json!({ "text": "a".repeat(4097) }), "/text"),
        (
            json!({ "url": format!("https://a.example/{}", "a".repeat(2048)) }),
            "/url",
        ),
        (json!({ "phone": "1".repeat(65) }), "/phone"),
        (
            json!({ "text": "hi", "recipient_region": "GBR" }),
            "/recipient_region",
        ),
    ] {
        let body = assert_problem(post(&app, &key, "/v1/shield/scan", request).await, 422).await;
        assert_eq!(body["errors"][0]["pointer"], pointer, "{body}");
    }
    let res = post(
        &app,
        &key,
        "/v1/shield/scan/batch",
        json!({ "items": [{ "text": "ok" }, { "text": "ok" }, { "text": "a".repeat(4097) }] }),
    )
    .await;
    let body = assert_problem(res, 422).await;
    assert_eq!(body["errors"][0]["pointer"], "/items/2/text");
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .starts_with("`items.2.text`"),
        "{body}"
    );

    // Not JSON at all is a 400 from the body extractor, like every other route.
    let res = app
        .client
        .post(format!("{}/v1/shield/scan", app.address))
        .bearer_auth(&key)
        .header("content-type", "application/json")
        .send()
        .await
        .unwrap();
    assert_problem(res, 400).await;
}

async fn keys_need_the_shield_scan_scope(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let key = key_with(&app, &["messages:send"]).await;
    for path in ["/v1/shield/scan", "/v1/shield/scan/batch"] {
        let res = post(&app, &key, path, json!({ "text": HAM })).await;
        let body = assert_problem(res, 403).await;
        assert_eq!(
            body["type"],
            "https://waypost.dev/problems/insufficient-scope"
        );
        assert!(
            body["detail"].as_str().unwrap().contains("shield:scan"),
            "{body}"
        );
        assert_eq!(body["required_scope"], "shield:scan");
    }
    let res = app
        .client
        .post(format!("{}/v1/shield/scan", app.address))
        .json(&json!({ "text": HAM }))
        .send()
        .await
        .unwrap();
    assert_problem(res, 401).await;
    // Analysts may not scan.
    let ws = app
        .state
        .store
        .find_workspace_by_name("Acme")
        .await
        .unwrap()
        .id;
    member(&app, ws, "ola@example.com", "analyst").await;
    let s = login(&app, "ola@example.com", PASSWORD).await;
    let res = s
        .post(&app, "/v1/shield/scan", json!({ "text": HAM }))
        .await;
    assert_problem(res, 403).await;
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

/// Every byte the database holds for the shield's table (SQLite: the files themselves).
async fn database_bytes(app: &TestApp) -> Vec<u8> {
    match app.state.store.backend() {
        Backend::Sqlite => {
            let path = std::path::PathBuf::from(app.db.url.trim_start_matches("sqlite://"));
            let mut all = std::fs::read(&path).unwrap();
            all.extend(std::fs::read(path.with_extension("db-wal")).unwrap_or_default());
            all
        }
        Backend::Postgres => {
            let pool = sqlx::PgPool::connect(&app.db.url).await.unwrap();
            let rows: Vec<String> =
                sqlx::query_scalar("SELECT row_to_json(t)::text FROM shield_scans t")
                    .fetch_all(&pool)
                    .await
                    .unwrap();
            rows.concat().into_bytes()
        }
    }
}

async fn usage_is_recorded_without_the_text(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let key = key_with(&app, &["shield:scan"]).await;
    let secret_text = "Zebra-quartz-771 verify at paypa1-login.com/secret-path-9932";
    let secret_url = "https://example.org/private-url-path-5521";
    let secret_phone = "+44 7700 900481";
    scan_ok(
        &app,
        &key,
        json!({ "text": secret_text, "url": secret_url, "phone": secret_phone }),
    )
    .await;
    let res = post(
        &app,
        &key,
        "/v1/shield/scan/batch",
        json!({ "items": [{ "text": HAM }, { "text": "Mango-harbour-4410 see you soon" }] }),
    )
    .await;
    assert_eq!(res.status(), 200);

    let ws = app
        .state
        .store
        .find_workspace_by_name("Acme")
        .await
        .unwrap()
        .id;
    let rows: Vec<ShieldScanRecord> = app
        .state
        .store
        .recent_shield_scans(&ws.to_string(), 10)
        .await
        .unwrap();
    assert_eq!(rows.len(), 3);
    let single = rows.iter().find(|r| !r.batch).unwrap();
    assert_eq!(single.label, "smishing");
    assert!(single.score >= 0.89, "{}", single.score);
    assert_eq!(
        (single.text_len, single.url_len, single.phone_len),
        (
            secret_text.chars().count() as i64,
            secret_url.len() as i64,
            secret_phone.len() as i64
        )
    );
    assert_eq!(single.actor_type, "api_key");
    assert!(single.actor_id.as_deref().unwrap().starts_with("key_"));
    assert_eq!(rows.iter().filter(|r| r.batch).count(), 2);
    assert!(
        rows.iter()
            .any(|r| r.batch && r.label == "ham" && r.text_len == HAM.len() as i64)
    );

    let bytes = database_bytes(&app).await;
    assert!(
        contains(&bytes, "smishing"),
        "the scan sees the stored rows"
    );
    for secret in [
        "Zebra-quartz-771",
        "secret-path-9932",
        "private-url-path-5521",
        "900481",
        "Mango-harbour-4410",
    ] {
        assert!(!contains(&bytes, secret), "`{secret}` reached the database");
    }
}

fn record(ws: &str, age_days: i64, now: chrono::DateTime<chrono::Utc>) -> ShieldScanRecord {
    ShieldScanRecord {
        id: format!("scan_{}", ulid::Ulid::new()),
        workspace_id: ws.to_owned(),
        actor_type: "system".into(),
        actor_id: None,
        label: "ham".into(),
        score: 0.1,
        text_len: 5,
        url_len: 0,
        phone_len: 0,
        batch: false,
        created_at: now - Days::days(age_days),
    }
}

async fn old_usage_records_are_purged(backend: Backend) {
    let Some(app) = spawn_app_with(backend, |c| c.retention_interval_secs = 1).await else {
        return;
    };
    let key = key_with(&app, &["shield:scan"]).await;
    let ws = app
        .state
        .store
        .find_workspace_by_name("Acme")
        .await
        .unwrap()
        .id
        .to_string();
    let store = &app.state.store;

    // The store purges strictly older rows, in bounded batches.
    let now = app.clock_now();
    let old: Vec<ShieldScanRecord> = (0..3).map(|_| record(&ws, 120, now)).collect();
    store.record_shield_scans(&old).await.unwrap();
    store
        .record_shield_scans(&[record(&ws, 89, now)])
        .await
        .unwrap();
    let cutoff = now - Days::days(90);
    assert_eq!(store.purge_shield_scans(cutoff, 2).await.unwrap(), 2);
    assert_eq!(store.purge_shield_scans(cutoff, 2).await.unwrap(), 1);
    assert_eq!(store.purge_shield_scans(cutoff, 2).await.unwrap(), 0);
    assert_eq!(store.recent_shield_scans(&ws, 10).await.unwrap().len(), 1);

    // The retention worker purges what is older than 90 days by the application clock.
    scan_ok(&app, &key, json!({ "text": HAM })).await;
    assert_eq!(store.recent_shield_scans(&ws, 10).await.unwrap().len(), 2);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        store.recent_shield_scans(&ws, 10).await.unwrap().len(),
        2,
        "recent rows stay"
    );
    app.clock.advance(Days::days(90) + Days::minutes(1));
    let mut left = usize::MAX;
    for _ in 0..50 {
        left = store.recent_shield_scans(&ws, 10).await.unwrap().len();
        if left == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(left, 0, "the worker purged rows past the retention period");
}

async fn operator_blocklist_is_loaded_and_reloaded(backend: Backend) {
    let lists = tempfile::tempdir().unwrap();
    let block = lists.path().join("block.txt");
    std::fs::write(&block, "friendly-bakery.com\n").unwrap();
    let path = block.clone();
    let Some(app) = spawn_app_with(backend, move |c| {
        c.key_rotation_interval_secs = 1;
        c.shield_blocklist_file = Some(path);
    })
    .await
    else {
        return;
    };
    let key = key_with(&app, &["shield:scan"]).await;
    let v = scan_ok(
        &app,
        &key,
        json!({ "text": "Fresh bread at friendly-bakery.com/menu" }),
    )
    .await;
    assert_eq!(v["label"], "smishing");
    assert!(codes(&v).contains(&"blocklisted".to_owned()), "{v}");
    let v = scan_ok(
        &app,
        &key,
        json!({ "text": "Fresh fish at honest-fishmonger.com/menu" }),
    )
    .await;
    assert!(!codes(&v).contains(&"blocklisted".to_owned()), "{v}");

    std::fs::write(&block, "honest-fishmonger.com\n").unwrap();
    let later = std::time::SystemTime::now() + Duration::from_secs(5);
    std::fs::File::options()
        .write(true)
        .open(&block)
        .unwrap()
        .set_modified(later)
        .unwrap();
    let mut reloaded = false;
    for _ in 0..50 {
        let v = scan_ok(
            &app,
            &key,
            json!({ "text": "Fresh fish at honest-fishmonger.com/menu" }),
        )
        .await;
        if codes(&v).contains(&"blocklisted".to_owned()) {
            reloaded = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        reloaded,
        "the maintenance worker reloads a changed blocklist"
    );

    // A list that cannot be read stops start-up, naming the setting.
    let mut config = app.config.clone();
    config.shield_blocklist_file = Some(lists.path().join("missing.txt"));
    let err = waypost_server::Application::build(config)
        .await
        .err()
        .expect("start-up fails");
    assert!(
        err.0.starts_with("WAYPOST_SHIELD_BLOCKLIST_FILE:"),
        "{}",
        err.0
    );
}

async fn scans_are_counted_in_metrics(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let key = key_with(&app, &["shield:scan"]).await;
    scan_ok(&app, &key, json!({ "text": HOSTILE })).await;
    let text = app.metrics().await.text().await.unwrap();
    assert!(
        text.lines()
            .any(|l| l.starts_with("waypost_shield_scans_total{label=\"smishing\"}")),
        "{text}"
    );
    assert!(
        text.contains("waypost_shield_scan_duration_seconds_bucket{le=\"0.00001\"}"),
        "fine buckets for scan latency: {text}"
    );
}
