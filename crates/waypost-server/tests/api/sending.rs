//! Sending end to end through the real server and an in-process sandbox:
//! the window opened by an inbound message, idempotent retries, and the
//! database holding no plaintext.

use serde_json::{Value, json};
use waypost_sandbox::{RunningSandbox, Sandbox, SandboxConfig};
use waypost_store::Backend;

use crate::bearer::{ALL_SCOPES, Api, workspace_api};
use crate::helpers::{TestApp, assert_problem, spawn_app};
use crate::on_both_backends;

/// Posts a signed inbound text from `wa_id` to the channel's webhook, as Meta would.
pub async fn inbound_text(
    app: &TestApp,
    channel: &Value,
    app_secret: &str,
    wa_id: &str,
    wamid: &str,
    body: &str,
) {
    let payload = json!({"object": "whatsapp_business_account", "entry": [{"id": "200000000000001", "changes": [{
        "field": "messages", "value": {"messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550001111", "phone_number_id": channel["phone_number_id"]},
            "contacts": [{"profile": {"name": "Customer"}, "wa_id": wa_id}],
            "messages": [{"from": wa_id, "id": wamid, "timestamp": chrono::Utc::now().timestamp().to_string(),
                "type": "text", "text": {"body": body}}]}}]}]});
    let raw = serde_json::to_vec(&payload).unwrap();
    let res = app
        .client
        .post(format!(
            "{}/webhooks/whatsapp/{}",
            app.address,
            channel["id"].as_str().unwrap()
        ))
        .header(
            waypost_cloudapi::SIGNATURE_HEADER,
            waypost_cloudapi::sign(app_secret.as_bytes(), &raw),
        )
        .header("content-type", "application/json")
        .body(raw)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
}

async fn setup(app: &TestApp, email: &str) -> (Api, Value, RunningSandbox) {
    let mut config = SandboxConfig::default();
    config.webhooks.enabled = false;
    let sandbox = Sandbox::start(config).await.unwrap();
    let api = workspace_api(app, email, &ALL_SCOPES).await;
    let number = sandbox.numbers()[0].clone();
    let res = api
        .post(
            app,
            "/v1/channels",
            json!({"name": "main", "provider": "sandbox", "phone_number_id": number.id,
                "waba_id": number.waba_id, "access_token": number.access_token,
                "app_secret": number.app_secret, "verify_token": number.verify_token,
                "base_url": sandbox.base_url().to_string()}),
        )
        .await;
    assert_eq!(res.status(), 201);
    (api, res.json().await.unwrap(), sandbox)
}

async fn wait_for_status(api: &Api, app: &TestApp, id: &str, want: &str) -> Value {
    for _ in 0..200 {
        let m: Value = api
            .get(app, &format!("/v1/messages/{id}"))
            .await
            .json()
            .await
            .unwrap();
        if m["status"] == want {
            return m;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("message {id} never reached {want}");
}

async fn send_inside_window_and_retry_idempotently(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let (api, channel, sandbox) = setup(&app, "window@example.com").await;
    let secret = sandbox.numbers()[0].app_secret.clone();
    let ch = channel["id"].as_str().unwrap();
    let body = json!({"channel_id": ch, "to": "+4915123456789", "type": "text", "text": {"body": "Your order ships today"}});
    // Window closed: refused.
    let p = assert_problem(api.post(&app, "/v1/messages", body.clone()).await, 422).await;
    assert_eq!(p["type"], "https://waypost.dev/problems/outside-window");
    // The customer writes; now the same message is accepted.
    inbound_text(
        &app,
        &channel,
        &secret,
        "4915123456789",
        "wamid.in1",
        "where is my order?",
    )
    .await;
    let headers = [("idempotency-key", "order-42")];
    let first = api
        .send(
            &app,
            reqwest::Method::POST,
            "/v1/messages",
            Some(body.clone()),
            &headers,
        )
        .await;
    assert_eq!(first.status(), 202);
    let first: Value = first.json().await.unwrap();
    assert_eq!(first["status"], "queued");
    let id = first["id"].as_str().unwrap();
    // A retry with the same key and body gets the same answer, and nothing new is queued.
    let again = api
        .send(
            &app,
            reqwest::Method::POST,
            "/v1/messages",
            Some(body.clone()),
            &headers,
        )
        .await;
    assert_eq!(again.status(), 202);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    assert_eq!(again.json::<Value>().await.unwrap()["id"], id);
    // Same key, different body: refused.
    let mut other = body.clone();
    other["text"]["body"] = json!("something else");
    let p = assert_problem(
        api.send(
            &app,
            reqwest::Method::POST,
            "/v1/messages",
            Some(other),
            &headers,
        )
        .await,
        422,
    )
    .await;
    assert_eq!(
        p["type"],
        "https://waypost.dev/problems/idempotency-key-reused"
    );
    let outbound: Value = api
        .get(&app, "/v1/messages?direction=outbound")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(outbound["data"].as_array().unwrap().len(), 1);
    // The dispatcher hands it to the provider exactly once.
    let sent = wait_for_status(&api, &app, id, "sent").await;
    assert!(
        sent["provider_message_id"]
            .as_str()
            .unwrap()
            .starts_with("wamid.")
    );
    let history: Vec<&str> = sent["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["status"].as_str().unwrap())
        .collect();
    assert_eq!(history.first(), Some(&"queued"));
    assert!(history.contains(&"sent"));
    let events = app
        .state
        .store
        .customer_events_after(&api.workspace_id.to_string(), 0, 100)
        .await
        .unwrap();
    let types: Vec<&str> = events.iter().map(|e| e.event_type.as_str()).collect();
    assert!(types.contains(&"message.received"), "{types:?}");
    assert!(types.contains(&"message.queued"), "{types:?}");
    assert!(types.contains(&"message.sent"), "{types:?}");

    // STOP opts the contact out; the next send is refused.
    inbound_text(
        &app,
        &channel,
        &secret,
        "4915123456789",
        "wamid.in2",
        "STOP",
    )
    .await;
    let p = assert_problem(api.post(&app, "/v1/messages", body).await, 422).await;
    assert_eq!(
        p["type"],
        "https://waypost.dev/problems/recipient-opted-out"
    );
}

async fn database_holds_no_plaintext(backend: Backend) {
    if backend != Backend::Sqlite {
        return; // The file scan needs the SQLite file; PostgreSQL shares the same code paths.
    }
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let (api, channel, sandbox) = setup(&app, "plain@example.com").await;
    let secret = sandbox.numbers()[0].app_secret.clone();
    let ws = api.workspace_id.to_string();
    // Keep content so that its encryption is exercised too.
    app.state
        .store
        .update_messaging_settings(
            &ws,
            &waypost_store::messaging::MessagingSettings {
                content_retention: "days:30".into(),
                shield_policy: "flag".into(),
            },
            waypost_core::NewAuditEvent::new(
                Some(api.workspace_id),
                waypost_core::Actor::System,
                "workspace.settings_changed",
            ),
        )
        .await
        .unwrap();
    inbound_text(
        &app,
        &channel,
        &secret,
        "4915187654321",
        "wamid.plain1",
        "my secret inbound words",
    )
    .await;
    let res = api
        .post(
            &app,
            "/v1/messages",
            json!({"channel_id": channel["id"], "to": "+4915187654321", "type": "text",
            "text": {"body": "confidential outbound words"}}),
        )
        .await;
    assert_eq!(res.status(), 202);
    let id = res.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    wait_for_status(&api, &app, &id, "sent").await;
    // Everything is on disk: checkpoint the WAL into the file, then scan every byte.
    let db_path = app.db.url.trim_start_matches("sqlite://").to_owned();
    let pool = sqlx::SqlitePool::connect(&app.db.url).await.unwrap();
    sqlx::query("PRAGMA wal_checkpoint(FULL)")
        .execute(&pool)
        .await
        .unwrap();
    let mut bytes = std::fs::read(&db_path).unwrap();
    if let Ok(wal) = std::fs::read(format!("{db_path}-wal")) {
        bytes.extend(wal);
    }
    let number = sandbox.numbers()[0].clone();
    for needle in [
        "4915187654321",
        "my secret inbound words",
        "confidential outbound words",
        number.access_token.as_str(),
        number.app_secret.as_str(),
        number.verify_token.as_str(),
        api.key.as_str(),
    ] {
        assert!(
            !bytes.windows(needle.len()).any(|w| w == needle.as_bytes()),
            "plaintext found in the database file"
        );
    }
}

on_both_backends!(
    send_inside_window_and_retry_idempotently,
    database_holds_no_plaintext
);
