//! Helpers for identity tests: creating owners and members, signing in, and a
//! cookie session that behaves like a same-origin browser.

use chrono::Utc;
use reqwest::header::{HeaderMap, HeaderValue};
use serde_json::{Value, json};
use waypost_core::audit::Actor;
use waypost_core::{NewAuditEvent, WorkspaceId};
use waypost_server::ops::{accounts, setup};
use waypost_store::identity::NewUser;

use crate::helpers::TestApp;

pub const PASSWORD: &str = "quiet-harbor-lantern-97";

pub struct Account {
    pub email: String,
    pub user_id: String,
    pub workspace_id: WorkspaceId,
}

pub async fn hash(app: &TestApp, password: &str) -> String {
    accounts::hash_new_password(&app.state, &password.to_owned().into(), &[])
        .await
        .unwrap()
}

/// A new workspace and its owner.
pub async fn owner(app: &TestApp, email: &str, workspace: &str) -> Account {
    let (workspace_id, user_id) = setup::create_owner(
        &app.state,
        workspace,
        email,
        hash(app, PASSWORD).await,
        Actor::System,
    )
    .await
    .unwrap();
    Account {
        email: email.into(),
        user_id,
        workspace_id,
    }
}

/// A new user in `workspace_id` with `role`.
pub async fn member(app: &TestApp, workspace_id: WorkspaceId, email: &str, role: &str) -> Account {
    let id = format!("usr_{}", ulid::Ulid::new());
    let user = NewUser {
        email: waypost_server::emails::seal(&app.state.keys, "users", &id, email),
        id,
        password_hash: hash(app, PASSWORD).await,
        now: Utc::now(),
        email_verified: false,
    };
    let event = NewAuditEvent::new(Some(workspace_id), Actor::System, "member.added")
        .target("user", user.id.clone());
    app.state
        .store
        .create_member(&workspace_id.to_string(), &user, role, event)
        .await
        .unwrap();
    Account {
        email: email.into(),
        user_id: user.id,
        workspace_id,
    }
}

/// A signed-in cookie session, sending same-origin fetch metadata like a browser page would.
pub struct Session {
    pub cookie: String,
    pub csrf: String,
    pub me: Value,
    pub workspace: Option<String>,
}

impl Session {
    fn headers(&self, unsafe_method: bool) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("cookie", HeaderValue::from_str(&self.cookie).unwrap());
        if unsafe_method {
            h.insert("sec-fetch-site", HeaderValue::from_static("same-origin"));
        }
        if let Some(ws) = &self.workspace {
            h.insert("waypost-workspace", HeaderValue::from_str(ws).unwrap());
        }
        h
    }

    pub async fn get(&self, app: &TestApp, path: &str) -> reqwest::Response {
        app.client
            .get(format!("{}{path}", app.address))
            .headers(self.headers(false))
            .send()
            .await
            .unwrap()
    }

    pub async fn post(&self, app: &TestApp, path: &str, body: Value) -> reqwest::Response {
        app.client
            .post(format!("{}{path}", app.address))
            .headers(self.headers(true))
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    pub async fn patch(&self, app: &TestApp, path: &str, body: Value) -> reqwest::Response {
        app.client
            .patch(format!("{}{path}", app.address))
            .headers(self.headers(true))
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    pub async fn delete(&self, app: &TestApp, path: &str) -> reqwest::Response {
        app.client
            .delete(format!("{}{path}", app.address))
            .headers(self.headers(true))
            .send()
            .await
            .unwrap()
    }

    pub fn in_workspace(mut self, ws: WorkspaceId) -> Self {
        self.workspace = Some(ws.to_string());
        self
    }
}

pub async fn login_request(app: &TestApp, body: Value) -> reqwest::Response {
    app.client
        .post(format!("{}/v1/auth/login", app.address))
        .json(&body)
        .send()
        .await
        .unwrap()
}

/// Signs in and returns the session; panics unless the login succeeds.
pub async fn login(app: &TestApp, email: &str, password: &str) -> Session {
    login_with(app, json!({ "email": email, "password": password })).await
}

pub async fn login_with(app: &TestApp, body: Value) -> Session {
    let res = login_request(app, body).await;
    assert_eq!(res.status(), 200, "login failed");
    let set_cookie = res.headers()["set-cookie"].to_str().unwrap().to_owned();
    let cookie = set_cookie.split(';').next().unwrap().to_owned();
    let me: Value = res.json().await.unwrap();
    Session {
        cookie,
        csrf: me["csrf_token"].as_str().unwrap().to_owned(),
        me,
        workspace: None,
    }
}

/// Creates an API key through the API and returns `(id, key)`.
pub async fn api_key(app: &TestApp, session: &Session, body: Value) -> (String, String) {
    let res = session.post(app, "/v1/api-keys", body).await;
    assert_eq!(res.status(), 201);
    let created: Value = res.json().await.unwrap();
    (
        created["id"].as_str().unwrap().to_owned(),
        created["key"].as_str().unwrap().to_owned(),
    )
}

pub async fn bearer_get(app: &TestApp, key: &str, path: &str) -> reqwest::Response {
    app.client
        .get(format!("{}{path}", app.address))
        .bearer_auth(key)
        .send()
        .await
        .unwrap()
}

/// Actions recorded in a workspace's chain (or the system chain for `None`).
pub async fn audit_actions(app: &TestApp, ws: Option<WorkspaceId>) -> Vec<String> {
    let chain = waypost_core::audit::chain_name(ws);
    app.state
        .store
        .audit_chain(&chain, 0, 10_000)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.action)
        .collect()
}
