//! API keys: shown once, scoped, expiring, IP-restricted, revocable, rate-limited.

use chrono::Duration;
use serde_json::json;
use waypost_store::Backend;

use crate::helpers::{assert_problem, spawn_app, spawn_app_with, spawn_with};
use crate::on_both_backends;
use crate::users::*;

on_both_backends!(
    keys_are_shown_once_and_stored_hashed,
    scopes_are_enforced,
    expired_revoked_and_foreign_address_keys_are_refused,
    checksum_typos_are_refused_without_the_database,
    keys_are_rate_limited_with_headers,
    roles_limit_what_members_do,
    a_revoked_key_stops_working_on_every_node_within_a_second,
);

async fn keys_are_shown_once_and_stored_hashed(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let a = owner(&app, "ana@example.com", "Acme").await;
    let s = login(&app, "ana@example.com", PASSWORD).await;
    let res = s
        .post(
            &app,
            "/v1/api-keys",
            json!({"name": "ci", "scopes": ["audit:read", "messages:send"]}),
        )
        .await;
    assert_eq!(res.status(), 201);
    let created: serde_json::Value = res.json().await.unwrap();
    let key = created["key"].as_str().unwrap();
    assert!(
        key.starts_with("wp_live_") && key.len() == 8 + 32 + 6,
        "{key}"
    );
    assert!(key.starts_with(created["prefix"].as_str().unwrap()));
    let id = created["id"].as_str().unwrap();

    let listed: Vec<serde_json::Value> = s.get(&app, "/v1/api-keys").await.json().await.unwrap();
    assert_eq!(listed.len(), 1);
    assert!(
        listed[0].get("key").is_none(),
        "the key is never shown again"
    );
    assert!(!listed[0].to_string().contains(&key[8..]));

    let res = bearer_get(&app, key, "/v1/audit-events").await;
    assert_eq!(res.status(), 200);
    let page: serde_json::Value = res.json().await.unwrap();
    assert!(
        page["data"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["action"] == "api_key.created")
    );
    let one: serde_json::Value = s
        .get(&app, &format!("/v1/api-keys/{id}"))
        .await
        .json()
        .await
        .unwrap();
    assert!(one["last_used_at"].is_string(), "last use is recorded");
    assert_eq!(one["last_used_ip"], "127.0.0.1");

    let record = app
        .state
        .store
        .get_api_key(&a.workspace_id.to_string(), id)
        .await
        .unwrap();
    assert_ne!(record.key_hash, key.as_bytes());
    assert!(!String::from_utf8_lossy(&record.key_hash).contains(&key[8..20]));

    for bad in [
        json!({"name": "x", "scopes": ["messages:fly"]}),
        json!({"name": "x", "scopes": []}),
        json!({"name": "x", "scopes": ["audit:read"], "allowed_ips": ["10.0.0.0/99"]}),
    ] {
        let body = assert_problem(s.post(&app, "/v1/api-keys", bad).await, 422).await;
        assert!(body["detail"].as_str().unwrap().len() > 10);
    }
}

async fn scopes_are_enforced(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    owner(&app, "ana@example.com", "Acme").await;
    let s = login(&app, "ana@example.com", PASSWORD).await;
    let (_, key) = api_key(
        &app,
        &s,
        json!({"name": "sender", "scopes": ["messages:send"]}),
    )
    .await;
    let res = bearer_get(&app, &key, "/v1/audit-events").await;
    let body = assert_problem(res, 403).await;
    assert_eq!(
        body["type"],
        "https://waypost.dev/problems/insufficient-scope"
    );
    assert!(
        body["detail"].as_str().unwrap().contains("audit:read"),
        "{body}"
    );
    let res = bearer_get(&app, &key, "/v1/api-keys").await;
    assert_eq!(
        assert_problem(res, 403).await["type"],
        "https://waypost.dev/problems/session-required"
    );
}

async fn expired_revoked_and_foreign_address_keys_are_refused(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let a = owner(&app, "ana@example.com", "Acme").await;
    let s = login(&app, "ana@example.com", PASSWORD).await;
    let expires = (app.clock_now() + Duration::hours(1)).to_rfc3339();
    let (_, expiring) = api_key(
        &app,
        &s,
        json!({"name": "short", "scopes": ["audit:read"], "expires_at": expires}),
    )
    .await;
    let (_, local) = api_key(
        &app,
        &s,
        json!({"name": "local", "scopes": ["audit:read"], "allowed_ips": ["127.0.0.0/8"]}),
    )
    .await;
    let (_, remote) = api_key(
        &app,
        &s,
        json!({"name": "remote", "scopes": ["audit:read"], "allowed_ips": ["192.0.2.0/24"]}),
    )
    .await;
    let (revoked_id, revoked) =
        api_key(&app, &s, json!({"name": "old", "scopes": ["audit:read"]})).await;

    assert_eq!(
        bearer_get(&app, &expiring, "/v1/audit-events")
            .await
            .status(),
        200
    );
    assert_eq!(
        bearer_get(&app, &local, "/v1/audit-events").await.status(),
        200
    );
    assert_problem(bearer_get(&app, &remote, "/v1/audit-events").await, 401).await;
    assert_eq!(
        s.delete(&app, &format!("/v1/api-keys/{revoked_id}"))
            .await
            .status(),
        204
    );
    assert_problem(bearer_get(&app, &revoked, "/v1/audit-events").await, 401).await;
    app.clock.advance(Duration::hours(2));
    let body = assert_problem(bearer_get(&app, &expiring, "/v1/audit-events").await, 401).await;
    assert_eq!(body["type"], "https://waypost.dev/problems/invalid-api-key");

    let events = app
        .state
        .store
        .audit_chain(
            &waypost_core::audit::chain_name(Some(a.workspace_id)),
            0,
            1000,
        )
        .await
        .unwrap();
    let rejections: Vec<_> = events
        .iter()
        .filter(|e| e.action == "api_key.rejected")
        .collect();
    let reasons: Vec<_> = rejections.iter().map(|e| e.details.clone()).collect();
    assert_eq!(rejections.len(), 3, "{reasons:?}");
    for (e, reason) in rejections
        .iter()
        .zip(["ip_not_allowed", "revoked", "expired"])
    {
        assert!(e.details.contains(reason), "{}", e.details);
        assert!(
            e.details.contains("wp_live_"),
            "the prefix identifies the key"
        );
    }
    for k in [&expiring, &local, &remote, &revoked] {
        assert!(
            events.iter().all(|e| !e.details.contains(&k[8..])),
            "audit never holds a key"
        );
    }
}

async fn checksum_typos_are_refused_without_the_database(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    owner(&app, "ana@example.com", "Acme").await;
    let s = login(&app, "ana@example.com", PASSWORD).await;
    let (_, key) = api_key(&app, &s, json!({"name": "k", "scopes": ["audit:read"]})).await;
    let mut typo: Vec<char> = key.chars().collect();
    typo[12] = if typo[12] == 'a' { 'b' } else { 'a' };
    let typo: String = typo.into_iter().collect();
    // With the database gone, only a check that needs no query can still answer 401.
    app.state.store.close().await;
    let res = bearer_get(&app, &typo, "/v1/audit-events").await;
    assert_eq!(
        assert_problem(res, 401).await["type"],
        "https://waypost.dev/problems/invalid-api-key"
    );
    let res = bearer_get(&app, "wp_live_short", "/v1/audit-events").await;
    assert_eq!(res.status(), 401);
    let res = bearer_get(&app, &key, "/v1/audit-events").await;
    assert_eq!(
        res.status(),
        500,
        "a well-formed key does need the database"
    );
}

async fn keys_are_rate_limited_with_headers(backend: Backend) {
    let Some(app) = spawn_app_with(backend, |c| c.rate_limit_api_key_per_minute = 3).await else {
        return;
    };
    owner(&app, "ana@example.com", "Acme").await;
    let s = login(&app, "ana@example.com", PASSWORD).await;
    let (_, key) = api_key(&app, &s, json!({"name": "k", "scopes": ["audit:read"]})).await;
    for remaining in [2, 1, 0] {
        let res = bearer_get(&app, &key, "/v1/audit-events").await;
        assert_eq!(res.status(), 200);
        assert_eq!(res.headers()["ratelimit-limit"], "3");
        assert_eq!(
            res.headers()["ratelimit-remaining"],
            remaining.to_string().as_str()
        );
        assert!(res.headers().contains_key("ratelimit-reset"));
    }
    let res = bearer_get(&app, &key, "/v1/audit-events").await;
    assert_eq!(res.status(), 429);
    assert!(
        res.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse::<u64>()
            .unwrap()
            >= 1
    );
    assert_problem(res, 429).await;
}

async fn roles_limit_what_members_do(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let a = owner(&app, "ana@example.com", "Acme").await;
    let analyst = member(&app, a.workspace_id, "ali@example.com", "analyst").await;
    let admin = member(&app, a.workspace_id, "adm@example.com", "admin").await;
    let s_analyst = login(&app, &analyst.email, PASSWORD).await;
    let body = assert_problem(
        s_analyst
            .post(
                &app,
                "/v1/api-keys",
                json!({"name": "x", "scopes": ["audit:read"]}),
            )
            .await,
        403,
    )
    .await;
    assert_eq!(body["type"], "https://waypost.dev/problems/forbidden");
    assert_eq!(s_analyst.get(&app, "/v1/members").await.status(), 200);
    assert_eq!(s_analyst.get(&app, "/v1/audit-events").await.status(), 403);

    let s_admin = login(&app, &admin.email, PASSWORD).await;
    let res = s_admin
        .patch(
            &app,
            &format!("/v1/members/{}", analyst.user_id),
            json!({"role": "developer"}),
        )
        .await;
    assert_eq!(res.status(), 204);
    let res = s_admin
        .patch(
            &app,
            &format!("/v1/members/{}", analyst.user_id),
            json!({"role": "owner"}),
        )
        .await;
    assert_eq!(res.status(), 403, "nobody grants above their own role");

    let s_owner = login(&app, "ana@example.com", PASSWORD).await;
    let res = s_owner
        .patch(
            &app,
            &format!("/v1/members/{}", a.user_id),
            json!({"role": "admin"}),
        )
        .await;
    assert_eq!(
        assert_problem(res, 409).await["detail"],
        "a workspace must keep at least one owner"
    );
    assert_eq!(
        s_owner
            .delete(&app, &format!("/v1/members/{}", a.user_id))
            .await
            .status(),
        409
    );
    assert_eq!(
        s_owner
            .delete(&app, &format!("/v1/members/{}", analyst.user_id))
            .await
            .status(),
        204
    );
    let actions = audit_actions(&app, Some(a.workspace_id)).await;
    assert!(
        actions.contains(&"member.role_changed".to_owned())
            && actions.contains(&"member.removed".to_owned())
    );
}

/// Two nodes on one database, each caching keys in memory: a key revoked
/// through one is refused by the other within a second.
async fn a_revoked_key_stops_working_on_every_node_within_a_second(backend: Backend) {
    let Some(a) = spawn_app(backend).await else {
        return;
    };
    let mut config = a.config.clone();
    let dir = tempfile::tempdir().unwrap();
    config.data_dir = dir.path().to_path_buf();
    let b = spawn_with(config, a.db.clone(), std::sync::Arc::new(dir)).await;
    owner(&a, "ana@example.com", "Acme").await;
    let s = login(&a, "ana@example.com", PASSWORD).await;
    let (id, key) = api_key(&a, &s, json!({"name": "ci", "scopes": ["audit:read"]})).await;

    // Let node b's poller run once, so it serves keys from memory.
    let ready = std::time::Instant::now();
    while b.state.lookups.is_empty() {
        assert_eq!(bearer_get(&b, &key, "/v1/audit-events").await.status(), 200);
        assert!(
            ready.elapsed() < std::time::Duration::from_secs(5),
            "node b never cached the key"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(bearer_get(&b, &key, "/v1/audit-events").await.status(), 200);

    assert_eq!(
        s.delete(&a, &format!("/v1/api-keys/{id}")).await.status(),
        204
    );
    let revoked = std::time::Instant::now();
    assert_problem(bearer_get(&a, &key, "/v1/audit-events").await, 401).await;
    // Judged by when each request was sent, so a slow answer on a busy machine
    // does not count against the node.
    loop {
        let sent = revoked.elapsed();
        let status = bearer_get(&b, &key, "/v1/audit-events").await.status();
        if status == 401 {
            break;
        }
        assert_eq!(status, 200);
        assert!(
            sent < std::time::Duration::from_secs(1),
            "node b still accepted the revoked key {sent:?} after revocation"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}
