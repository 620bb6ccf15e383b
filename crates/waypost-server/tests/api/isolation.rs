//! Tenant isolation: workspace B's sessions and keys never reach workspace A's
//! resources, and cannot tell them from resources that do not exist.

use serde_json::json;
use waypost_store::Backend;

use crate::helpers::{assert_problem, spawn_app};
use crate::on_both_backends;
use crate::users::*;

on_both_backends!(workspace_b_cannot_reach_workspace_a);

async fn workspace_b_cannot_reach_workspace_a(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let a = owner(&app, "ana@example.com", "Acme").await;
    let a_member = member(&app, a.workspace_id, "dev@example.com", "developer").await;
    let b = owner(&app, "bob@example.com", "Bobco").await;
    let sa = login(&app, &a.email, PASSWORD).await;
    let sb = login(&app, &b.email, PASSWORD).await;
    let (a_key_id, _) = api_key(&app, &sa, json!({"name": "a", "scopes": ["audit:read"]})).await;
    let (_, b_key) = api_key(
        &app,
        &sb,
        json!({"name": "b", "scopes": ["audit:read", "messages:send"]}),
    )
    .await;
    let a_session_id = {
        let list: Vec<serde_json::Value> = sa
            .get(&app, "/v1/auth/sessions")
            .await
            .json()
            .await
            .unwrap();
        list[0]["id"].as_str().unwrap().to_owned()
    };
    let a_invitation: serde_json::Value = sa
        .post(
            &app,
            "/v1/invitations",
            json!({"email": "new@example.com", "role": "agent"}),
        )
        .await
        .json()
        .await
        .unwrap();
    let a_invitation_id = a_invitation["id"].as_str().unwrap().to_owned();
    let until = (app.clock_now() + chrono::Duration::hours(1)).to_rfc3339();
    let missing_invitation = format!("inv_{}", ulid::Ulid::new());
    let missing_key = format!("key_{}", ulid::Ulid::new());
    let missing_user = format!("usr_{}", ulid::Ulid::new());

    // Every route that takes an id, asked by B's session for A's object and for nothing at all.
    let cases = [
        (
            "GET",
            format!("/v1/api-keys/{a_key_id}"),
            format!("/v1/api-keys/{missing_key}"),
            None,
        ),
        (
            "DELETE",
            format!("/v1/api-keys/{a_key_id}"),
            format!("/v1/api-keys/{missing_key}"),
            None,
        ),
        (
            "PATCH",
            format!("/v1/members/{}", a_member.user_id),
            format!("/v1/members/{missing_user}"),
            Some(json!({"role": "analyst"})),
        ),
        (
            "DELETE",
            format!("/v1/members/{}", a_member.user_id),
            format!("/v1/members/{missing_user}"),
            None,
        ),
        (
            "DELETE",
            format!("/v1/auth/sessions/{a_session_id}"),
            "/v1/auth/sessions/ses_missing".to_owned(),
            None,
        ),
        (
            "DELETE",
            format!("/v1/invitations/{a_invitation_id}"),
            format!("/v1/invitations/{missing_invitation}"),
            None,
        ),
        (
            "POST",
            format!("/v1/members/{}/elevation", a_member.user_id),
            format!("/v1/members/{missing_user}/elevation"),
            Some(json!({"role": "admin", "until": until})),
        ),
        (
            "DELETE",
            format!("/v1/members/{}/elevation", a_member.user_id),
            format!("/v1/members/{missing_user}/elevation"),
            None,
        ),
    ];
    for (method, foreign, missing, body) in &cases {
        for path in [foreign, missing] {
            let res = match (*method, body) {
                ("GET", _) => sb.get(&app, path).await,
                ("DELETE", _) => sb.delete(&app, path).await,
                ("POST", Some(b)) => sb.post(&app, path, b.clone()).await,
                (_, Some(b)) => sb.patch(&app, path, b.clone()).await,
                _ => unreachable!(),
            };
            let problem = assert_problem(res, 404).await;
            assert_eq!(
                problem["type"], "https://waypost.dev/problems/not-found",
                "{method} {path}"
            );
        }
        // B's API key gets the same answer for A's object as for a missing one.
        let key_res = |path: String| {
            let req = app
                .client
                .request(method.parse().unwrap(), format!("{}{path}", app.address))
                .bearer_auth(&b_key);
            let req = if let Some(b) = body { req.json(b) } else { req };
            req.send()
        };
        let foreign_res = key_res(foreign.clone()).await.unwrap();
        let missing_res = key_res(missing.clone()).await.unwrap();
        assert_eq!(
            foreign_res.status(),
            missing_res.status(),
            "{method} {foreign}"
        );
        assert!(foreign_res.status() == 404 || foreign_res.status() == 403);
    }
    // A's objects are untouched.
    let invitations: Vec<serde_json::Value> =
        sa.get(&app, "/v1/invitations").await.json().await.unwrap();
    assert!(
        invitations[0]["revoked_at"].is_null(),
        "A's invitation untouched"
    );
    assert_eq!(
        sa.get(&app, &format!("/v1/api-keys/{a_key_id}"))
            .await
            .status(),
        200
    );
    assert_eq!(sa.get(&app, "/v1/auth/me").await.status(), 200);
    let members: Vec<serde_json::Value> = sa.get(&app, "/v1/members").await.json().await.unwrap();
    assert_eq!(members.len(), 2);

    // Naming A's workspace in the header does not help B.
    let sb_in_a = login(&app, &b.email, PASSWORD)
        .await
        .in_workspace(a.workspace_id);
    assert_problem(sb_in_a.get(&app, "/v1/members").await, 404).await;
    // B's key sees only B's audit log.
    let page: serde_json::Value = bearer_get(&app, &b_key, "/v1/audit-events")
        .await
        .json()
        .await
        .unwrap();
    let text = page.to_string();
    assert!(
        !text.contains(&a.user_id) && !text.contains(&a_key_id),
        "A's events leaked to B"
    );
    assert!(text.contains(&b.user_id));
}
