//! Templates through the real server with the sandbox as provider: create
//! (PENDING at the provider), validation and prohibited-content refusals as
//! problems, status from webhooks and from the sync (one event per change),
//! delete here and at the provider, and scopes.

use serde_json::{Value, json};
use waypost_core::WorkspaceId;
use waypost_sandbox::{RunningSandbox, Sandbox, SandboxConfig};
use waypost_server::messaging::client_for;
use waypost_store::Backend;
use waypost_store::messaging::ChannelRow;

use crate::helpers::{TestApp, spawn_app};
use crate::users::*;

mod api;
mod status;
mod sync_now;

struct Fixture {
    app: TestApp,
    sandbox: RunningSandbox,
    ws: WorkspaceId,
    /// Holds `templates:read` and `templates:write`.
    key: String,
    /// Holds `channels:manage`.
    admin_key: String,
}

async fn sandbox() -> RunningSandbox {
    let mut config = SandboxConfig::default();
    // Review never finishes by itself: tests move templates through the control API.
    config.webhooks.template_review_ms = 3_600_000;
    Sandbox::start(config).await.unwrap()
}

async fn fixture_on(app: TestApp, channels: usize) -> Fixture {
    let sandbox = sandbox().await;
    let account = owner(&app, "ana@example.com", "Acme").await;
    let s = login(&app, "ana@example.com", PASSWORD).await;
    let (_, key) = api_key(
        &app,
        &s,
        json!({"name": "tpl", "scopes": ["templates:read", "templates:write"]}),
    )
    .await;
    let (_, admin_key) = api_key(
        &app,
        &s,
        json!({"name": "admin", "scopes": ["channels:manage"]}),
    )
    .await;
    let f = Fixture {
        app,
        sandbox,
        ws: account.workspace_id,
        key,
        admin_key,
    };
    for _ in 0..channels {
        f.add_channel().await;
    }
    f
}

async fn fixture(backend: Backend) -> Option<Fixture> {
    Some(fixture_on(spawn_app(backend).await?, 1).await)
}

impl Fixture {
    /// A channel on the sandbox's WABA, created through the channels API.
    async fn add_channel(&self) -> String {
        let n = &self.sandbox.numbers()[0];
        let existing = self
            .app
            .state
            .store
            .list_channels(&self.ws.to_string())
            .await
            .unwrap();
        let res = self
            .app
            .client
            .post(format!("{}/v1/channels", self.app.address))
            .bearer_auth(&self.admin_key)
            .json(&json!({
                "name": "main",
                "provider": "sandbox",
                // Distinct per channel: a phone number id is unique in a workspace.
                "phone_number_id": format!("{}{}", n.id, existing.len()),
                "waba_id": n.waba_id,
                "access_token": n.access_token,
                "app_secret": n.app_secret,
                "verify_token": n.verify_token,
                "base_url": self.sandbox.base_url(),
                "api_version": "v23.0",
            }))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 201);
        let body: Value = res.json().await.unwrap();
        body["id"].as_str().unwrap().to_owned()
    }
}

fn template(name: &str, body: &str) -> Value {
    json!({
        "name": name,
        "language": "en_US",
        "category": "utility",
        "components": [
            {"type": "HEADER", "format": "TEXT", "text": "Order {{1}}", "example": {"header_text": ["#1042"]}},
            {"type": "BODY", "text": body, "example": {"body_text": [["Ana", "1042"]]}},
            {"type": "FOOTER", "text": "Acme Ltd"},
            {"type": "BUTTONS", "buttons": [
                {"type": "URL", "text": "Track", "url": "https://acme.example/t/{{1}}", "example": ["1042"]},
                {"type": "QUICK_REPLY", "text": "Stop updates"}
            ]}
        ]
    })
}

const BODY: &str = "Hi {{1}}, your order {{2}} has shipped.";

impl Fixture {
    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> reqwest::Response {
        let mut req = self
            .app
            .client
            .request(method, format!("{}{path}", self.app.address))
            .bearer_auth(&self.key);
        if let Some(b) = body {
            req = req.json(&b);
        }
        req.send().await.unwrap()
    }

    async fn create(&self, body: Value) -> reqwest::Response {
        self.send(reqwest::Method::POST, "/v1/templates", Some(body))
            .await
    }

    async fn create_ok(&self, name: &str) -> Value {
        let res = self.create(template(name, BODY)).await;
        assert_eq!(res.status(), 201);
        res.json().await.unwrap()
    }

    async fn get_json(&self, path: &str) -> Value {
        let res = self.send(reqwest::Method::GET, path, None).await;
        assert_eq!(res.status(), 200);
        res.json().await.unwrap()
    }

    /// Templates of the sandbox's WABA, by name.
    async fn provider_names(&self) -> Vec<String> {
        let channel = self
            .app
            .state
            .store
            .list_channels(&self.ws.to_string())
            .await
            .unwrap();
        let client = client_for(&self.app.state.keys, &self.app.state.config, &channel[0]).unwrap();
        let list = client
            .list_templates(&channel[0].waba_id, &Default::default())
            .await
            .unwrap();
        list.data.into_iter().filter_map(|t| t.name).collect()
    }

    /// Moves a template at the sandbox (no webhook: the number has no webhook URL).
    async fn provider_status(&self, provider_id: &str, status: &str, reason: &str) {
        let res = self
            .app
            .client
            .put(format!(
                "{}/_sandbox/templates/{provider_id}/status",
                self.sandbox.base_url()
            ))
            .bearer_auth(self.sandbox.control_token())
            .json(&json!({"status": status, "reason": reason}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
    }

    /// The `template.status_changed` events' data, oldest first.
    async fn status_events(&self) -> Vec<Value> {
        let rows = self
            .app
            .state
            .store
            .customer_events_after(&self.ws.to_string(), 0, 1000)
            .await
            .unwrap();
        let mut out = Vec::new();
        for row in rows
            .iter()
            .filter(|r| r.event_type == "template.status_changed")
        {
            let body = waypost_server::events::open(
                &self.app.state.keys,
                self.app.state.store.as_ref(),
                row,
            )
            .await
            .unwrap();
            assert_eq!(
                row.subject_id.as_deref(),
                body["data"]["template_id"].as_str()
            );
            out.push(body["data"].clone());
        }
        out
    }

    async fn channel(&self) -> ChannelRow {
        self.app
            .state
            .store
            .list_channels(&self.ws.to_string())
            .await
            .unwrap()
            .remove(0)
    }
}

/// A `message_template_status_update` change value as Meta sends it.
fn status_value(created: &Value, event: &str, reason: &str) -> Value {
    json!({
        "event": event,
        "message_template_id": created["provider_id"].as_str().unwrap().parse::<u64>().unwrap(),
        "message_template_name": created["name"],
        "message_template_language": created["language"],
        "reason": reason,
        "message_template_category": "UTILITY"
    })
}
