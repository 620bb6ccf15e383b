//! A workspace with an API key and a sandbox channel whose webhooks point at
//! the app, for the dispatcher and inbound tests. The channel row is written
//! through the store because the sandbox needs the channel's inbound URL
//! before it starts.

use std::time::Duration;

use serde_json::{Value, json};
use waypost_core::audit::Actor;
use waypost_core::{ChannelId, NewAuditEvent, WorkspaceId};
use waypost_sandbox::{RunningSandbox, Sandbox, SandboxConfig};
use waypost_server::Config;
use waypost_server::messaging::{ChannelSecret, seal_secret};
use waypost_store::Backend;
use waypost_store::messaging::{ChannelRow, MessageRow, MessagingSettings};

use crate::helpers::{TestApp, spawn_app_with};
use crate::users::*;

pub const USER: &str = "4915112345678";

pub struct Fixture {
    pub app: TestApp,
    pub sandbox: RunningSandbox,
    pub key: String,
    pub ws: WorkspaceId,
    pub channel: ChannelRow,
}

/// Timings short enough for tests; the app clock is advanced while waiting.
pub fn fast_dispatch(c: &mut Config) {
    c.dispatch_poll_ms = 20;
    c.dispatch_lease_secs = 3;
    c.dispatch_reconcile_secs = 5;
    c.dispatch_request_timeout_secs = 1;
    c.dispatch_retry_base_ms = 100;
    c.dispatch_retry_max_secs = 2;
    c.dispatch_breaker_cooldown_secs = 1;
    c.rate_limit_ip_per_minute = 100_000;
    c.rate_limit_api_key_per_minute = 100_000;
}

pub async fn fixture(
    backend: Backend,
    config: impl FnOnce(&mut Config),
    sandbox: impl FnOnce(&mut SandboxConfig),
) -> Option<Fixture> {
    let app = spawn_app_with(backend, |c| {
        fast_dispatch(c);
        config(c);
    })
    .await?;
    let owner = owner(&app, "ops@example.com", "Acme").await;
    let session = login(&app, &owner.email, PASSWORD).await;
    let (_, key) = api_key(
        &app,
        &session,
        json!({"name": "sender", "scopes": ["messages:send", "messages:read", "contacts:read", "contacts:write", "templates:read", "templates:write", "webhooks:manage"]}),
    )
    .await;
    let channel_id = ChannelId::new().to_string();
    let mut sc = SandboxConfig::default();
    sc.numbers[0].webhook_url = Some(format!("{}/webhooks/whatsapp/{channel_id}", app.address));
    sc.webhooks.retry_base_ms = 50;
    sandbox(&mut sc);
    let sandbox = Sandbox::start(sc).await.expect("sandbox starts");
    let n = sandbox.numbers()[0].clone();
    let keys = &app.state.keys;
    let now = app.clock_now();
    let channel = ChannelRow {
        workspace_id: owner.workspace_id.to_string(),
        name: "Sandbox".into(),
        provider: "sandbox".into(),
        phone_number_id: n.id.clone(),
        waba_id: n.waba_id.clone(),
        access_token: seal_secret(
            keys,
            &channel_id,
            ChannelSecret::AccessToken,
            &n.access_token,
        ),
        app_secret: seal_secret(keys, &channel_id, ChannelSecret::AppSecret, &n.app_secret),
        verify_token: seal_secret(
            keys,
            &channel_id,
            ChannelSecret::VerifyToken,
            &n.verify_token,
        ),
        base_url: Some(sandbox.base_url().to_owned()),
        api_version: Some("v21.0".into()),
        throughput_mps: n.throughput as i64,
        created_at: now,
        updated_at: now,
        deleted_at: None,
        id: channel_id,
    };
    let audit = NewAuditEvent::new(Some(owner.workspace_id), Actor::System, "channel.created")
        .target("channel", channel.id.clone());
    app.state
        .store
        .create_channel(&channel, audit)
        .await
        .unwrap();
    Some(Fixture {
        app,
        sandbox,
        key,
        ws: owner.workspace_id,
        channel,
    })
}

impl Fixture {
    pub fn inbound_url(&self) -> String {
        format!("{}/webhooks/whatsapp/{}", self.app.address, self.channel.id)
    }

    async fn control(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut req = self
            .app
            .client
            .request(
                method,
                format!("{}/_sandbox{path}", self.sandbox.base_url()),
            )
            .bearer_auth(self.sandbox.control_token());
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req.send().await.unwrap();
        assert!(
            res.status().is_success(),
            "sandbox control {path}: {}",
            res.status()
        );
        res.json().await.unwrap()
    }

    /// A text from `from` to the business number, through the sandbox; returns its wamid.
    /// Keeps message content a week (the default keeps none).
    pub async fn keep_content(&self) {
        let settings = MessagingSettings {
            content_retention: "days:7".parse().unwrap(),
            shield_policy: "flag".parse().unwrap(),
        };
        let audit = NewAuditEvent::new(Some(self.ws), Actor::System, "workspace.updated");
        self.app
            .state
            .store
            .update_messaging_settings(&self.ws.to_string(), &settings, audit)
            .await
            .unwrap();
        self.app.state.lookups.refresh().await.unwrap();
    }

    pub async fn inject(&self, from: &str, text: &str) -> String {
        let v = self
            .control(
                reqwest::Method::POST,
                "/inbound",
                Some(json!({"from": from, "message": {"type": "text", "text": {"body": text}}})),
            )
            .await;
        v["id"].as_str().unwrap().to_owned()
    }

    pub async fn set_faults(&self, faults: Value) {
        self.control(reqwest::Method::PUT, "/faults", Some(faults))
            .await;
    }

    pub async fn set_user(&self, wa_id: &str, config: Value) {
        self.control(
            reqwest::Method::PUT,
            &format!("/users/{wa_id}"),
            Some(config),
        )
        .await;
    }

    pub async fn sandbox_log(&self) -> Value {
        self.control(reqwest::Method::GET, "/log?limit=100000", None)
            .await
    }

    /// Sends received by the sandbox for one message (by its callback data), with their outcomes.
    pub async fn sends_of(&self, message_id: &str) -> Vec<String> {
        let log = self.sandbox_log().await;
        log["sends"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s["biz_opaque_callback_data"] == message_id)
            .map(|s| s["outcome"].as_str().unwrap().to_owned())
            .collect()
    }

    /// Waits until the inbound message with `wamid` is stored.
    pub async fn wait_inbound(&self, wamid: &str) -> MessageRow {
        for _ in 0..200 {
            if let Some(m) = self
                .app
                .state
                .store
                .message_by_provider_id(&self.channel.id, wamid)
                .await
                .unwrap()
            {
                return m;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("inbound message never stored");
    }

    /// `POST /v1/messages` with a text to `to`.
    pub async fn send_text(&self, to: &str, body: &str) -> reqwest::Response {
        self.app
            .client
            .post(format!("{}/v1/messages", self.app.address))
            .bearer_auth(&self.key)
            .json(&json!({"channel_id": self.channel.id, "to": format!("+{to}"), "type": "text", "text": {"body": body}}))
            .send()
            .await
            .unwrap()
    }

    /// Sends a text and returns the accepted message id.
    pub async fn send_ok(&self, to: &str, body: &str) -> String {
        let res = self.send_text(to, body).await;
        let status = res.status();
        let v: Value = res.json().await.unwrap();
        assert_eq!(status, 202, "{v}");
        v["id"].as_str().unwrap().to_owned()
    }

    pub async fn message(&self, id: &str) -> MessageRow {
        self.app
            .state
            .store
            .get_message(&self.ws.to_string(), id)
            .await
            .unwrap()
    }

    /// Waits until the message's status is one of `wanted`, moving the app
    /// clock forward (5× real time) so backoffs and reconciliation periods pass.
    pub async fn wait_status(&self, id: &str, wanted: &[&str]) -> MessageRow {
        for _ in 0..600 {
            let m = self.message(id).await;
            if wanted.contains(&m.status.as_str()) {
                return m;
            }
            self.app.clock.advance(chrono::Duration::milliseconds(500));
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let m = self.message(id).await;
        panic!("message {id} stayed {} (wanted {wanted:?})", m.status);
    }

    /// Opens the 24 h window for `user` (an inbound message, stored).
    pub async fn open_window(&self, user: &str) {
        let wamid = self.inject(user, "hello").await;
        self.wait_inbound(&wamid).await;
    }

    /// Posts a webhook body signed with the channel's app secret (or `secret`).
    pub async fn post_webhook(&self, body: &Value, secret: Option<&str>) -> reqwest::Response {
        let bytes = serde_json::to_vec(body).unwrap();
        let secret = secret.unwrap_or(&self.sandbox.numbers()[0].app_secret);
        self.app
            .client
            .post(self.inbound_url())
            .header("content-type", "application/json")
            .header(
                waypost_cloudapi::SIGNATURE_HEADER,
                waypost_cloudapi::sign(secret.as_bytes(), &bytes),
            )
            .body(bytes)
            .send()
            .await
            .unwrap()
    }

    /// A `messages` webhook body for this channel's number.
    pub fn messages_body(&self, value: Value) -> Value {
        let n = &self.sandbox.numbers()[0];
        let mut value = value;
        value["messaging_product"] = json!("whatsapp");
        value["metadata"] =
            json!({"display_phone_number": n.display_number, "phone_number_id": n.id});
        json!({"object": "whatsapp_business_account", "entry": [{"id": n.waba_id, "changes": [{"field": "messages", "value": value}]}]})
    }

    pub async fn event_types(&self) -> Vec<String> {
        self.app
            .state
            .store
            .customer_events_after(&self.ws.to_string(), 0, 10_000)
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.event_type)
            .collect()
    }
}
