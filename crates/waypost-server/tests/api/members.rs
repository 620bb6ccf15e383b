//! Invitations, just-in-time elevation and the workspace MFA requirement.

use chrono::Duration;
use serde_json::{Value, json};
use waypost_server::workers::lapse_elevations;
use waypost_store::Backend;

use crate::helpers::{assert_problem, spawn_app};
use crate::on_both_backends;
use crate::users::*;

on_both_backends!(
    invitations_are_one_time_and_expire,
    elevation_lapses_by_itself,
    workspaces_can_require_mfa
);

async fn invitations_are_one_time_and_expire(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let a = owner(&app, "ana@example.com", "Acme").await;
    let b = owner(&app, "bob@example.com", "Bobco").await;
    let s = login(&app, &a.email, PASSWORD).await;
    let res = s
        .post(
            &app,
            "/v1/invitations",
            json!({"email": "Newbie@Example.com", "role": "agent"}),
        )
        .await;
    assert_eq!(res.status(), 201);
    let inv: Value = res.json().await.unwrap();
    let token = inv["token"].as_str().unwrap().to_owned();
    assert!(inv["url"].as_str().unwrap().ends_with(&token));
    assert_eq!(inv["email"], "newbie@example.com");
    let listed: Vec<Value> = s.get(&app, "/v1/invitations").await.json().await.unwrap();
    assert!(
        listed[0].get("token").is_none() && listed[0].get("url").is_none(),
        "the link is shown once"
    );

    let accept = |token: String, password: &'static str| {
        app.client
            .post(format!("{}/v1/invitations/accept", app.address))
            .json(&json!({"token": token, "password": password}))
            .send()
    };
    assert_problem(accept("forged".into(), PASSWORD).await.unwrap(), 404).await;
    assert_eq!(accept(token.clone(), "weak").await.unwrap().status(), 422);
    assert_eq!(accept(token.clone(), PASSWORD).await.unwrap().status(), 201);
    assert_problem(accept(token, PASSWORD).await.unwrap(), 404).await;
    let newbie = login(&app, "newbie@example.com", PASSWORD).await;
    assert_eq!(newbie.me["memberships"][0]["role"], "agent");
    assert_eq!(
        s.post(
            &app,
            "/v1/invitations",
            json!({"email": "newbie@example.com", "role": "agent"})
        )
        .await
        .status(),
        409
    );

    // An existing user (Bob) accepts while signed in; expiry after seven days.
    let res = s
        .post(
            &app,
            "/v1/invitations",
            json!({"email": "bob@example.com", "role": "analyst"}),
        )
        .await;
    let bob_token = res.json::<Value>().await.unwrap()["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let res = s
        .post(
            &app,
            "/v1/invitations",
            json!({"email": "late@example.com", "role": "analyst"}),
        )
        .await;
    let late_token = res.json::<Value>().await.unwrap()["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let sb = login(&app, &b.email, PASSWORD).await;
    assert_problem(
        newbie
            .post(
                &app,
                "/v1/invitations/accept-signed-in",
                json!({"token": bob_token}),
            )
            .await,
        404,
    )
    .await;
    assert_eq!(
        sb.post(
            &app,
            "/v1/invitations/accept-signed-in",
            json!({"token": bob_token})
        )
        .await
        .status(),
        204
    );
    let bob_in_a = login(&app, &b.email, PASSWORD)
        .await
        .in_workspace(a.workspace_id);
    assert_eq!(bob_in_a.get(&app, "/v1/members").await.status(), 200);
    app.clock.advance(Duration::days(8));
    assert_problem(accept(late_token, PASSWORD).await.unwrap(), 404).await;

    let analyst = member(&app, a.workspace_id, "ali@example.com", "admin").await;
    let sa = login(&app, &analyst.email, PASSWORD).await;
    let res = sa
        .post(
            &app,
            "/v1/invitations",
            json!({"email": "boss@example.com", "role": "owner"}),
        )
        .await;
    assert_eq!(res.status(), 403, "admins cannot invite owners");
    let actions = audit_actions(&app, Some(a.workspace_id)).await;
    assert!(
        actions.iter().filter(|a| *a == "member.joined").count() == 2,
        "{actions:?}"
    );
}

async fn elevation_lapses_by_itself(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let a = owner(&app, "ana@example.com", "Acme").await;
    let dev = member(&app, a.workspace_id, "dev@example.com", "developer").await;
    let s = login(&app, &a.email, PASSWORD).await;
    let until = (app.clock_now() + Duration::hours(1)).to_rfc3339();
    let path = format!("/v1/members/{}/elevation", dev.user_id);
    assert_eq!(
        s.post(&app, &path, json!({"role": "admin", "until": until}))
            .await
            .status(),
        204
    );
    let too_long = (app.clock_now() + Duration::days(31)).to_rfc3339();
    assert_eq!(
        s.post(&app, &path, json!({"role": "admin", "until": too_long}))
            .await
            .status(),
        422
    );

    let sd = login(&app, &dev.email, PASSWORD).await;
    assert_eq!(
        sd.get(&app, "/v1/audit-events").await.status(),
        200,
        "elevated to admin"
    );
    let members: Vec<Value> = sd.get(&app, "/v1/members").await.json().await.unwrap();
    let me = members
        .iter()
        .find(|m| m["user_id"] == dev.user_id.as_str())
        .unwrap();
    assert_eq!(
        (me["role"].as_str(), me["elevated_role"].as_str()),
        (Some("developer"), Some("admin"))
    );

    app.clock.advance(Duration::minutes(61));
    let sd = login(&app, &dev.email, PASSWORD).await;
    assert_eq!(
        sd.get(&app, "/v1/audit-events").await.status(),
        403,
        "the elevation lapsed on time"
    );
    let lapsed = lapse_elevations(&app.state, &tokio_util::sync::CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(lapsed, 1);
    assert_eq!(
        lapse_elevations(&app.state, &tokio_util::sync::CancellationToken::new())
            .await
            .unwrap(),
        0
    );
    let actions = audit_actions(&app, Some(a.workspace_id)).await;
    assert!(
        actions.contains(&"member.elevated".to_owned())
            && actions.contains(&"member.elevation_lapsed".to_owned())
    );
    let s = login(&app, &a.email, PASSWORD).await;
    assert_problem(s.delete(&app, &path).await, 404).await;
}

async fn workspaces_can_require_mfa(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let a = owner(&app, "ana@example.com", "Acme").await;
    let dev = member(&app, a.workspace_id, "dev@example.com", "developer").await;
    let s = login(&app, &a.email, PASSWORD).await;
    let res = s
        .patch(&app, "/v1/workspace", json!({"require_mfa": true}))
        .await;
    assert_eq!(res.status(), 409, "the owner needs MFA first");
    // Enrol the owner's TOTP.
    let enrolment: Value = s
        .post(&app, "/v1/auth/mfa/totp", json!({}))
        .await
        .json()
        .await
        .unwrap();
    let uri = enrolment["otpauth_uri"].as_str().unwrap();
    let encoded = uri
        .split("secret=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap();
    let secret = waypost_crypto::totp::TotpSecret::from_bytes(
        totp_rs::Secret::Encoded(encoded.into()).to_bytes().unwrap(),
    );
    let code = waypost_crypto::totp::totp_code_at(&secret, app.clock_now().timestamp() as u64);
    assert_eq!(
        s.post(&app, "/v1/auth/mfa/totp/confirm", json!({"code": code}))
            .await
            .status(),
        200
    );
    let res = s
        .patch(&app, "/v1/workspace", json!({"require_mfa": true}))
        .await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.json::<Value>().await.unwrap()["require_mfa"], true);

    let sd = login(&app, &dev.email, PASSWORD).await;
    let body = assert_problem(sd.get(&app, "/v1/members").await, 403).await;
    assert_eq!(
        body["type"],
        "https://waypost.dev/problems/mfa-enrollment-required"
    );
    assert_eq!(
        sd.post(&app, "/v1/auth/mfa/totp", json!({})).await.status(),
        200,
        "enrolment stays open"
    );
    assert_eq!(s.get(&app, "/v1/members").await.status(), 200);
    assert!(
        audit_actions(&app, Some(a.workspace_id))
            .await
            .contains(&"workspace.settings_changed".to_owned())
    );
}
