//! Trust and safety through HTTP: a removed member's sessions and keys stop,
//! `/metrics` needs an operator token (or the separate listener), suspensions
//! of keys (on every node within a second), channels (outbox held, sent after
//! reinstatement), users and workspaces, audited and refused as `suspended`.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use waypost_store::Backend;

use crate::helpers::{TestApp, assert_problem, spawn_app, spawn_app_with, spawn_with};
use crate::incidents::operator_token;
use crate::messaging_fixture::{USER, fixture};
use crate::on_both_backends;
use crate::users::*;

on_both_backends!(
    a_removed_members_sessions_and_keys_stop_working,
    metrics_need_an_operator_token_or_the_metrics_listener,
    a_suspended_key_stops_on_every_node_within_a_second,
    a_suspended_channel_holds_its_outbox_and_sends_after_reinstatement,
    user_and_workspace_suspensions_refuse_their_callers,
    owners_lift_key_suspensions_only_with_mfa,
);

pub async fn operator_post(
    app: &TestApp,
    token: &str,
    path: &str,
    body: Value,
) -> reqwest::Response {
    app.client
        .post(format!("{}{path}", app.address))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap()
}

pub async fn operator_delete(app: &TestApp, token: &str, path: &str) -> reqwest::Response {
    app.client
        .delete(format!("{}{path}", app.address))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

/// Asserts the answer is the bare `suspended` problem.
pub async fn assert_suspended(res: reqwest::Response) {
    let body = assert_problem(res, 403).await;
    assert_eq!(body["type"], "https://waypost.dev/problems/suspended");
    assert_eq!(body["detail"], "Suspended.", "no other detail: {body}");
}

async fn a_removed_members_sessions_and_keys_stop_working(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let a = owner(&app, "ana@example.com", "Acme").await;
    let dev = member(&app, a.workspace_id, "dev@example.com", "developer").await;
    let s_owner = login(&app, &a.email, PASSWORD).await;
    let s_dev = login(&app, &dev.email, PASSWORD).await;
    let (_, dev_key) = api_key(
        &app,
        &s_dev,
        json!({"name": "dev", "scopes": ["messages:read"]}),
    )
    .await;
    let (_, owner_key) = api_key(
        &app,
        &s_owner,
        json!({"name": "own", "scopes": ["messages:read"]}),
    )
    .await;
    assert_eq!(
        bearer_get(&app, &dev_key, "/v1/messages").await.status(),
        200
    );
    assert_eq!(s_dev.get(&app, "/v1/members").await.status(), 200);

    let res = s_owner
        .delete(&app, &format!("/v1/members/{}", dev.user_id))
        .await;
    assert_eq!(res.status(), 204);
    let body = assert_problem(bearer_get(&app, &dev_key, "/v1/messages").await, 401).await;
    assert_eq!(body["type"], "https://waypost.dev/problems/invalid-api-key");
    assert_problem(s_dev.get(&app, "/v1/members").await, 401).await;
    // Other members' keys and sessions are untouched.
    assert_eq!(
        bearer_get(&app, &owner_key, "/v1/messages").await.status(),
        200
    );
    assert_eq!(s_owner.get(&app, "/v1/members").await.status(), 200);
    let removed = app
        .state
        .store
        .audit_chain(
            &waypost_core::audit::chain_name(Some(a.workspace_id)),
            0,
            10_000,
        )
        .await
        .unwrap()
        .into_iter()
        .find(|e| e.action == "member.removed")
        .expect("removal audited");
    let details: Value = serde_json::from_str(&removed.details).unwrap();
    assert_eq!(details["api_keys_revoked"], 1);
    assert_eq!(details["sessions_revoked"], 1);
}

async fn metrics_need_an_operator_token_or_the_metrics_listener(backend: Backend) {
    let Some(app) = spawn_app_with(backend, |c| {
        c.metrics_listen = Some("127.0.0.1:0".parse().unwrap());
    })
    .await
    else {
        return;
    };
    let body = assert_problem(app.get("/metrics").await, 401).await;
    assert!(!body.to_string().contains("waypost_"), "{body}");
    owner(&app, "ana@example.com", "Acme").await;
    let s = login(&app, "ana@example.com", PASSWORD).await;
    let (_, key) = api_key(&app, &s, json!({"name": "k", "scopes": ["audit:read"]})).await;
    assert_problem(bearer_get(&app, &key, "/metrics").await, 403).await;
    assert_problem(s.get(&app, "/metrics").await, 403).await;
    assert_problem(bearer_get(&app, "wpo_not_a_token", "/metrics").await, 401).await;
    let res = app.metrics().await;
    assert_eq!(res.status(), 200);
    assert!(
        res.text()
            .await
            .unwrap()
            .contains("waypost_security_alerts_open")
    );
    assert_eq!(app.get("/healthz").await.status(), 200);
    assert_eq!(app.get("/readyz").await.status(), 200);

    let private = app.metrics_address.clone().expect("metrics listener bound");
    let res = app
        .client
        .get(format!("{private}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(
        res.text()
            .await
            .unwrap()
            .contains("waypost_http_requests_total")
    );
    let res = app
        .client
        .get(format!("{private}/v1/messages"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.status(),
        404,
        "the metrics listener serves nothing else"
    );
}

async fn a_suspended_key_stops_on_every_node_within_a_second(backend: Backend) {
    let Some(a) = spawn_app(backend).await else {
        return;
    };
    let mut config = a.config.clone();
    let dir = tempfile::tempdir().unwrap();
    config.data_dir = dir.path().to_path_buf();
    let b = spawn_with(config, a.db.clone(), std::sync::Arc::new(dir)).await;
    let acme = owner(&a, "ana@example.com", "Acme").await;
    let s = login(&a, "ana@example.com", PASSWORD).await;
    let (id, key) = api_key(&a, &s, json!({"name": "ci", "scopes": ["audit:read"]})).await;
    let ready = Instant::now();
    while b.state.lookups.is_empty() {
        assert_eq!(bearer_get(&b, &key, "/v1/audit-events").await.status(), 200);
        assert!(
            ready.elapsed() < Duration::from_secs(5),
            "node b never cached the key"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (_, op) = operator_token(&a).await;
    let res = operator_post(
        &a,
        &op,
        "/v1/operator/suspensions",
        json!({"target_kind": "api_key", "target_id": id, "workspace_id": acme.workspace_id.to_string(),
               "reason": "leaked in a public repository"}),
    )
    .await;
    assert_eq!(res.status(), 201);
    let suspended = Instant::now();
    assert_suspended(bearer_get(&a, &key, "/v1/audit-events").await).await;
    loop {
        let sent = suspended.elapsed();
        let res = bearer_get(&b, &key, "/v1/audit-events").await;
        if res.status() == 403 {
            assert_suspended(res).await;
            break;
        }
        assert_eq!(res.status(), 200);
        assert!(
            sent < Duration::from_secs(1),
            "node b served a suspended key {sent:?} later"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let again = operator_post(
        &a,
        &op,
        "/v1/operator/suspensions",
        json!({"target_kind": "api_key", "target_id": id, "workspace_id": acme.workspace_id.to_string(), "reason": "twice"}),
    )
    .await;
    assert_problem(again, 409).await;
    let listed: Vec<Value> = s
        .get(&a, "/v1/security/suspensions")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(listed[0]["target_id"], id.as_str());
    assert_eq!(listed[0]["reason"], "leaked in a public repository");

    let res = operator_delete(&a, &op, &format!("/v1/operator/suspensions/api_key/{id}")).await;
    assert_eq!(res.status(), 200);
    let lifted = Instant::now();
    loop {
        if bearer_get(&b, &key, "/v1/audit-events").await.status() == 200 {
            break;
        }
        assert!(
            lifted.elapsed() < Duration::from_secs(2),
            "node b kept refusing"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let actions = audit_actions(&a, Some(acme.workspace_id)).await;
    assert!(
        actions.contains(&"suspension.created".to_owned()),
        "{actions:?}"
    );
    assert!(
        actions.contains(&"suspension.lifted".to_owned()),
        "{actions:?}"
    );
}

async fn a_suspended_channel_holds_its_outbox_and_sends_after_reinstatement(backend: Backend) {
    let Some(f) = fixture(backend, |_| {}, |_| {}).await else {
        return;
    };
    f.open_window(USER).await;
    // Every call fails (retryably) until the channel is suspended.
    f.set_faults(json!({"error_5xx": 1.0})).await;
    let id = f.send_ok(USER, "held while suspended").await;
    let started = Instant::now();
    while f.sends_of(&id).await.is_empty() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "never attempted"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (_, op) = operator_token(&f.app).await;
    let res = operator_post(
        &f.app,
        &op,
        "/v1/operator/suspensions",
        json!({"target_kind": "channel", "target_id": f.channel.id, "workspace_id": f.ws.to_string(),
               "reason": "spam complaints"}),
    )
    .await;
    assert_eq!(res.status(), 201);
    f.set_faults(json!({})).await;
    assert_suspended(f.send_text(USER, "refused").await).await;
    // Past every retry time: the held message is neither sent nor dropped.
    let attempts = f.sends_of(&id).await.len();
    for _ in 0..15 {
        f.app.clock.advance(chrono::Duration::seconds(2));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // One attempt may have been in flight when the suspension landed.
    assert!(f.sends_of(&id).await.len() <= attempts + 1);
    assert!(!f.sends_of(&id).await.contains(&"accepted".to_owned()));
    assert_ne!(f.message(&id).await.status, "sent");
    assert!(
        f.app.state.store.outbox_row(&id).await.unwrap().is_some(),
        "the outbox keeps the message"
    );

    let path = format!("/v1/operator/suspensions/channel/{}", f.channel.id);
    assert_eq!(operator_delete(&f.app, &op, &path).await.status(), 200);
    f.wait_status(&id, &["sent", "delivered", "read"]).await;
    assert_eq!(
        f.sends_of(&id)
            .await
            .iter()
            .filter(|o| *o == "accepted")
            .count(),
        1
    );
    assert_eq!(f.send_text(USER, "after").await.status(), 202);
}

async fn user_and_workspace_suspensions_refuse_their_callers(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let acme = owner(&app, "ana@example.com", "Acme").await;
    let other = owner(&app, "bob@example.com", "Bobco").await;
    let s = login(&app, &acme.email, PASSWORD).await;
    let sb = login(&app, &other.email, PASSWORD).await;
    let (_, key) = api_key(&app, &s, json!({"name": "k", "scopes": ["audit:read"]})).await;
    let (_, op) = operator_token(&app).await;
    let suspend = |kind: &'static str, id: String| {
        operator_post(
            &app,
            &op,
            "/v1/operator/suspensions",
            json!({"target_kind": kind, "target_id": id, "reason": "verification"}),
        )
    };
    assert_eq!(
        suspend("workspace", acme.workspace_id.to_string())
            .await
            .status(),
        201
    );
    let wait = Instant::now();
    loop {
        let res = bearer_get(&app, &key, "/v1/audit-events").await;
        if res.status() == 403 {
            assert_suspended(res).await;
            break;
        }
        assert!(wait.elapsed() < Duration::from_secs(1));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_suspended(s.get(&app, "/v1/members").await).await;
    assert_eq!(
        sb.get(&app, "/v1/members").await.status(),
        200,
        "other workspaces work"
    );
    assert_eq!(
        operator_delete(
            &app,
            &op,
            &format!("/v1/operator/suspensions/workspace/{}", acme.workspace_id)
        )
        .await
        .status(),
        200
    );
    assert_eq!(suspend("user", other.user_id.clone()).await.status(), 201);
    assert_suspended(sb.get(&app, "/v1/members").await).await;
    assert_eq!(s.get(&app, "/v1/members").await.status(), 200);
    assert_problem(suspend("planet", "x".into()).await, 422).await;
    assert_problem(suspend("api_key", "key_nope".into()).await, 422).await;
    assert_problem(
        suspend("workspace", "ws_01J00000000000000000000000".into()).await,
        404,
    )
    .await;
    let all: Vec<Value> = app
        .client
        .get(format!("{}/v1/operator/suspensions", app.address))
        .bearer_auth(&op)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(all.len(), 2);
}

async fn owners_lift_key_suspensions_only_with_mfa(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let acme = owner(&app, "ana@example.com", "Acme").await;
    let s = login(&app, &acme.email, PASSWORD).await;
    let (id, key) = api_key(&app, &s, json!({"name": "k", "scopes": ["audit:read"]})).await;
    let (_, op) = operator_token(&app).await;
    let res = operator_post(
        &app,
        &op,
        "/v1/operator/suspensions",
        json!({"target_kind": "api_key", "target_id": id, "workspace_id": acme.workspace_id.to_string(), "reason": "burst"}),
    )
    .await;
    assert_eq!(res.status(), 201);
    let path = format!("/v1/security/suspensions/api_key/{id}");
    let body = assert_problem(s.delete(&app, &path).await, 403).await;
    assert!(
        body["detail"].as_str().unwrap().contains("second factor"),
        "{body}"
    );
    crate::mfa::enrol(&app, &s).await;
    assert_eq!(s.delete(&app, &path).await.status(), 200);
    let wait = Instant::now();
    while bearer_get(&app, &key, "/v1/audit-events").await.status() != 200 {
        assert!(wait.elapsed() < Duration::from_secs(1));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
