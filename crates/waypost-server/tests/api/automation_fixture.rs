//! A messaging fixture for automation: content kept (so tests read replies),
//! a fast automation worker, an admin API key that manages rules and the
//! assistant, and helpers to talk as a customer and read what came back.

use std::time::Duration;

use serde_json::{Value, json};
use waypost_store::Backend;

use crate::fake_llm::{FakeLlm, KEY, MODEL};
use crate::messaging_fixture::{Fixture, fixture};
use crate::users::{PASSWORD, api_key, login};

pub struct Auto {
    pub f: Fixture,
    pub admin: String,
}

pub async fn auto_fixture(backend: Backend) -> Option<Auto> {
    auto_fixture_polling(backend, 20).await
}

/// The fixture with the automation worker looking for work every `poll_ms`.
pub async fn auto_fixture_polling(backend: Backend, poll_ms: u64) -> Option<Auto> {
    let f = fixture(
        backend,
        |c| {
            c.automation_poll_ms = poll_ms;
            c.assistant_allow_private_targets = true;
        },
        |_| {},
    )
    .await?;
    f.keep_content().await;
    let session = login(&f.app, "ops@example.com", PASSWORD).await;
    let (_, admin) = api_key(
        &f.app,
        &session,
        json!({"name": "automation", "scopes": ["channels:manage", "messages:send", "messages:read", "contacts:read"]}),
    )
    .await;
    Some(Auto { f, admin })
}

impl Auto {
    pub async fn api(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut req = self
            .f
            .app
            .client
            .request(
                method.parse().unwrap(),
                format!("{}{path}", self.f.app.address),
            )
            .bearer_auth(&self.admin);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req.send().await.unwrap();
        let status = res.status().as_u16();
        (status, res.json().await.unwrap_or(Value::Null))
    }

    /// Waits until every inbound message's work item was handled.
    pub async fn drained(&self) {
        for _ in 0..400 {
            let n = self
                .f
                .app
                .state
                .store
                .automation_work_count(&self.f.ws.to_string())
                .await
                .unwrap();
            if n == 0 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("automation work never drained");
    }

    /// The customer `from` writes `text`; returns the conversation id once handled.
    pub async fn say(&self, from: &str, text: &str) -> String {
        let wamid = self.f.inject(from, text).await;
        let m = self.f.wait_inbound(&wamid).await;
        self.drained().await;
        self.f
            .app
            .state
            .store
            .conversation_automation(&self.f.channel.id, &m.contact_id)
            .await
            .unwrap()
            .expect("a conversation")
            .id
    }

    /// The texts the business sent in a conversation, oldest first.
    pub async fn replies(&self, conversation: &str) -> Vec<String> {
        let (status, page) = self
            .api(
                "GET",
                &format!("/v1/conversations/{conversation}/messages"),
                None,
            )
            .await;
        assert_eq!(status, 200, "{page}");
        page["data"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| m["direction"] == "outbound")
            .map(|m| {
                m["content"]["text"]["body"]
                    .as_str()
                    .unwrap_or("?")
                    .to_owned()
            })
            .collect()
    }

    pub async fn conversation(&self, id: &str) -> Value {
        let (status, v) = self
            .api("GET", &format!("/v1/conversations/{id}"), None)
            .await;
        assert_eq!(status, 200, "{v}");
        v
    }

    /// Turns the assistant on for the fixture's channel, pointed at `fake`.
    pub async fn enable_assistant(&self, fake: &FakeLlm, extra: Value) {
        let mut body = json!({
            "enabled": true,
            "base_url": fake.base_url,
            "model": MODEL,
            "api_key": KEY,
            "monthly_token_budget": 100_000,
            "max_retries": 2,
            "timeout_ms": 5_000,
            "fallback_message": "A colleague will reply soon.",
            "channels": [self.f.channel.id],
        });
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        let (status, v) = self.api("PUT", "/v1/assistant", Some(body)).await;
        assert_eq!(status, 200, "{v}");
        assert_eq!(v["api_key_set"], true);
        assert!(v.get("api_key").is_none(), "the key is never shown: {v}");
    }

    /// The audit events of one action in the workspace, newest last.
    pub async fn audit(&self, action: &str) -> Vec<Value> {
        let chain = waypost_core::audit::chain_name(Some(self.f.ws));
        self.f
            .app
            .state
            .store
            .audit_chain(&chain, 0, 10_000)
            .await
            .unwrap()
            .into_iter()
            .filter(|e| e.action == action)
            .map(|e| serde_json::from_str(&e.details).unwrap())
            .collect()
    }
}
