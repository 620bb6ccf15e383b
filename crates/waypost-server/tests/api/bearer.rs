//! A workspace with an all-scopes API key, and requests made with it.

use serde_json::{Value, json};
use waypost_core::WorkspaceId;

use crate::helpers::TestApp;
use crate::users::{PASSWORD, api_key, login, owner};

/// Every scope an API key can have.
pub const ALL_SCOPES: [&str; 12] = [
    "messages:send",
    "messages:read",
    "contacts:read",
    "contacts:write",
    "templates:read",
    "templates:write",
    "channels:manage",
    "webhooks:manage",
    "shield:scan",
    "audit:read",
    "privacy:manage",
    "campaigns:manage",
];

pub struct Api {
    pub key: String,
    pub workspace_id: WorkspaceId,
}

/// A new workspace (named after `email`) and an API key with `scopes`.
pub async fn workspace_api(app: &TestApp, email: &str, scopes: &[&str]) -> Api {
    let account = owner(app, email, &format!("ws-{email}")).await;
    let session = login(app, email, PASSWORD).await;
    let (_, key) = api_key(app, &session, json!({ "name": "test", "scopes": scopes })).await;
    Api {
        key,
        workspace_id: account.workspace_id,
    }
}

impl Api {
    pub async fn send(
        &self,
        app: &TestApp,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> reqwest::Response {
        let mut req = app
            .client
            .request(method, format!("{}{path}", app.address))
            .bearer_auth(&self.key);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        req.send().await.unwrap()
    }

    pub async fn post(&self, app: &TestApp, path: &str, body: Value) -> reqwest::Response {
        self.send(app, reqwest::Method::POST, path, Some(body), &[])
            .await
    }

    pub async fn get(&self, app: &TestApp, path: &str) -> reqwest::Response {
        self.send(app, reqwest::Method::GET, path, None, &[]).await
    }

    pub async fn patch(&self, app: &TestApp, path: &str, body: Value) -> reqwest::Response {
        self.send(app, reqwest::Method::PATCH, path, Some(body), &[])
            .await
    }

    pub async fn delete(&self, app: &TestApp, path: &str) -> reqwest::Response {
        self.send(app, reqwest::Method::DELETE, path, None, &[])
            .await
    }

    /// Creates a channel at `base_url` (a sandbox) and returns its JSON.
    pub async fn sandbox_channel(
        &self,
        app: &TestApp,
        base_url: &str,
        phone_number_id: &str,
    ) -> Value {
        let res = self
            .post(
                app,
                "/v1/channels",
                json!({
                    "name": "main",
                    "provider": "sandbox",
                    "phone_number_id": phone_number_id,
                    "waba_id": "200000000000001",
                    "access_token": "EAAG-test-access-token",
                    "app_secret": "test-app-secret",
                    "verify_token": "test-verify-token",
                    "base_url": base_url,
                }),
            )
            .await;
        assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());
        res.json().await.unwrap()
    }
}
