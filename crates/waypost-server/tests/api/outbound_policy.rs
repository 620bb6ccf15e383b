//! A channel's `base_url` is where Waypost sends the channel's access token:
//! it is held to the webhook address policy when saved and again when Waypost
//! connects, and a check never shows what the remote end answered.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use waypost_core::audit::Actor;
use waypost_core::{ChannelId, NewAuditEvent};
use waypost_server::messaging::{ChannelSecret, seal_secret};
use waypost_store::Backend;
use waypost_store::messaging::ChannelRow;

use crate::bearer::{ALL_SCOPES, Api, workspace_api};
use crate::helpers::{TestApp, assert_problem, spawn_app, spawn_app_with};
use crate::on_both_backends;

static NEXT_NUMBER: AtomicUsize = AtomicUsize::new(1);
const INTERNAL_SECRET: &str = "internal-service-secret-body";

/// A loopback "internal service": counts connections and answers every request
/// with a Graph-shaped error whose text is a secret.
async fn internal_service() -> (u16, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = stream.read(&mut buf).await;
                let body = json!({"error": {"message": INTERNAL_SECRET, "code": 190}}).to_string();
                let res = format!(
                    "HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(res.as_bytes()).await;
            });
        }
    });
    (port, hits)
}

/// A channel row written straight to the store, as one saved before the policy
/// existed (or while the operator still allowed internal addresses) would be.
async fn stored_channel(app: &TestApp, api: &Api, base_url: &str) -> String {
    let id = ChannelId::new().to_string();
    let keys = &app.state.keys;
    let now = app.clock_now();
    let row = ChannelRow {
        workspace_id: api.workspace_id.to_string(),
        name: "old".into(),
        provider: "sandbox".into(),
        phone_number_id: format!("40000000000{}", NEXT_NUMBER.fetch_add(1, Ordering::SeqCst)),
        waba_id: "1".into(),
        access_token: seal_secret(keys, &id, ChannelSecret::AccessToken, "EAAG-token"),
        app_secret: seal_secret(keys, &id, ChannelSecret::AppSecret, "app-secret"),
        verify_token: seal_secret(keys, &id, ChannelSecret::VerifyToken, "verify"),
        base_url: Some(base_url.to_owned()),
        api_version: None,
        throughput_mps: 80,
        created_at: now,
        updated_at: now,
        deleted_at: None,
        id: id.clone(),
    };
    let audit = NewAuditEvent::new(Some(api.workspace_id), Actor::System, "channel.created")
        .target("channel", id.clone());
    app.state.store.create_channel(&row, audit).await.unwrap();
    id
}

fn channel(provider: &str, base_url: &str) -> Value {
    json!({"name": "c", "provider": provider, "phone_number_id": "300000000000001",
        "waba_id": "1", "access_token": "EAAG-token", "app_secret": "s", "verify_token": "v",
        "base_url": base_url})
}

async fn channel_base_urls_follow_the_address_policy(backend: Backend) {
    let Some(app) = spawn_app_with(backend, |c| c.channel_allow_private_targets = false).await
    else {
        return;
    };
    let api = workspace_api(&app, "ssrf@example.com", &ALL_SCOPES).await;
    let (port, hits) = internal_service().await;
    // Saving: loopback, private, metadata and mapped addresses are refused, naming the field.
    for (provider, url) in [
        ("sandbox", format!("http://127.0.0.1:{port}/")),
        ("sandbox", format!("http://localhost:{port}/")),
        ("cloud", "https://169.254.169.254/".to_owned()),
        ("cloud", "https://[::ffff:127.0.0.1]/".to_owned()),
        ("cloud", "https://10.0.0.7/".to_owned()),
        ("cloud", "https://metadata.google.internal/".to_owned()),
    ] {
        let res = api
            .post(&app, "/v1/channels", channel(provider, &url))
            .await;
        let p = assert_problem(res, 422).await;
        assert!(
            p["detail"].as_str().unwrap().contains("base_url"),
            "{url}: {p}"
        );
    }
    // Changing an existing channel to such an address is refused the same way.
    let public = stored_channel(&app, &api, "https://graph.facebook.com/").await;
    let res = api
        .patch(
            &app,
            &format!("/v1/channels/{public}"),
            json!({"base_url": format!("http://127.0.0.1:{port}/")}),
        )
        .await;
    assert_problem(res, 422).await;
    // Connecting: a stored channel aimed at loopback (by address or by name) is
    // never contacted, and the check says so without detail from the remote end.
    for url in [
        format!("http://127.0.0.1:{port}/"),
        format!("http://localhost:{port}/"),
    ] {
        let id = stored_channel(&app, &api, &url).await;
        let res = api
            .post(&app, &format!("/v1/channels/{id}/check"), json!({}))
            .await;
        assert_eq!(res.status(), 200);
        let check: Value = res.json().await.unwrap();
        assert_eq!(check["ok"], false, "{check}");
        let error = check["error"].as_str().unwrap();
        assert!(!error.contains(INTERNAL_SECRET), "{error}");
    }
    assert_eq!(
        hits.load(Ordering::SeqCst),
        0,
        "an internal address was contacted"
    );
}

async fn a_channel_check_never_echoes_the_remote_answer(backend: Backend) {
    // The test operator allows the loopback sandbox; what any server answers stays out.
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let api = workspace_api(&app, "echo@example.com", &ALL_SCOPES).await;
    let (port, hits) = internal_service().await;
    let created = api
        .sandbox_channel(
            &app,
            &format!("http://127.0.0.1:{port}/"),
            "300000000000002",
        )
        .await;
    let id = created["id"].as_str().unwrap();
    let res = api
        .post(&app, &format!("/v1/channels/{id}/check"), json!({}))
        .await;
    let check: Value = res.json().await.unwrap();
    assert!(hits.load(Ordering::SeqCst) >= 1);
    assert_eq!(check["ok"], false);
    assert_eq!(check["error_code"], 190);
    let text = check.to_string();
    assert!(!text.contains(INTERNAL_SECRET), "{text}");
}

on_both_backends!(
    channel_base_urls_follow_the_address_policy,
    a_channel_check_never_echoes_the_remote_answer
);
