//! The account holder's own rights: export of their account, and deletion
//! with a grace period and cancellation (refused to a workspace's last owner).

use chrono::Duration;
use serde_json::{Value, json};
use waypost_server::ops::account::run_due_deletions;
use waypost_store::Backend;

use crate::helpers::{assert_problem, spawn_app_with};
use crate::on_both_backends;
use crate::smtp::{SmtpSink, mail_config};
use crate::users::*;

on_both_backends!(
    self_export_lists_profile_memberships_sessions_and_audit,
    account_deletion_with_grace_and_cancellation
);

async fn self_export_lists_profile_memberships_sessions_and_audit(backend: Backend) {
    let Some(app) = spawn_app_with(backend, |_| {}).await else {
        return;
    };
    owner(&app, "ana@example.com", "Acme").await;
    let first = login(&app, "ana@example.com", PASSWORD).await;
    assert_eq!(
        first
            .post(&app, "/v1/auth/logout", json!({}))
            .await
            .status(),
        204
    );
    let s = login(&app, "ana@example.com", PASSWORD).await;
    let res = s.get(&app, "/v1/account/export").await;
    assert_eq!(res.status(), 200);
    let export: Value = res.json().await.unwrap();
    assert_eq!(export["profile"]["email"], "ana@example.com");
    assert_eq!(export["profile"]["totp_enabled"], false);
    assert_eq!(export["memberships"][0]["workspace_name"], "Acme");
    assert_eq!(export["memberships"][0]["role"], "owner");
    let sessions = export["sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 2, "revoked sessions are in it too");
    assert!(sessions.iter().any(|s| !s["revoked_at"].is_null()));
    let actions: Vec<&str> = export["audit_events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert!(
        actions.contains(&"auth.login") && actions.contains(&"auth.logout"),
        "{actions:?}"
    );
    assert!(
        audit_actions(&app, None)
            .await
            .contains(&"account.exported".to_owned())
    );

    app.clock.advance(Duration::minutes(10));
    let res = s.get(&app, "/v1/account/export").await;
    assert_eq!(
        assert_problem(res, 403).await["type"],
        "https://waypost.dev/problems/reauth-required"
    );
}

async fn account_deletion_with_grace_and_cancellation(backend: Backend) {
    let Some(sink) = SmtpSink::start().await else {
        return;
    };
    let Some(app) = spawn_app_with(backend, mail_config(sink.port)).await else {
        return;
    };
    let ana = owner(&app, "ana@example.com", "Acme").await;
    member(&app, ana.workspace_id, "bob@example.com", "agent").await;
    let a = login(&app, "ana@example.com", PASSWORD).await;
    let problem = assert_problem(a.post(&app, "/v1/account/deletion", json!({})).await, 409).await;
    assert_eq!(problem["type"], "https://waypost.dev/problems/last-owner");
    assert!(problem["detail"].as_str().unwrap().contains("Acme"));

    let b = login(&app, "bob@example.com", PASSWORD).await;
    let res = b.post(&app, "/v1/account/deletion", json!({})).await;
    assert_eq!(res.status(), 202);
    let due: Value = res.json().await.unwrap();
    let due: chrono::DateTime<chrono::Utc> = due["due_at"].as_str().unwrap().parse().unwrap();
    assert_eq!((due - app.clock_now()).num_days(), 14);
    let notice = sink
        .wait_for_mail_to("bob@example.com", "will be deleted")
        .await;
    assert!(notice.text().contains("cancel"));
    assert_eq!(b.delete(&app, "/v1/account/deletion").await.status(), 204);
    assert_problem(b.delete(&app, "/v1/account/deletion").await, 404).await;
    app.clock.advance(Duration::days(15));
    run_due_deletions(&app.state).await.unwrap();
    let b = login(&app, "bob@example.com", PASSWORD).await;
    assert!(
        waypost_server::emails::user_by_email(&app.state, "bob@example.com")
            .await
            .unwrap()
            .is_some(),
        "a cancelled deletion does not happen"
    );

    assert_eq!(
        b.post(&app, "/v1/account/deletion", json!({}))
            .await
            .status(),
        202
    );
    app.clock.advance(Duration::days(13));
    run_due_deletions(&app.state).await.unwrap();
    assert!(
        waypost_server::emails::user_by_email(&app.state, "bob@example.com")
            .await
            .unwrap()
            .is_some()
    );
    app.clock.advance(Duration::days(2));
    run_due_deletions(&app.state).await.unwrap();
    assert!(
        waypost_server::emails::user_by_email(&app.state, "bob@example.com")
            .await
            .unwrap()
            .is_none()
    );
    assert_problem(
        login_request(
            &app,
            json!({"email": "bob@example.com", "password": PASSWORD}),
        )
        .await,
        401,
    )
    .await;
    let members = app
        .state
        .store
        .list_members_sealed(&ana.workspace_id.to_string())
        .await
        .unwrap();
    assert_eq!(members.len(), 1);
    let actions = audit_actions(&app, None).await;
    for action in [
        "account.deletion_requested",
        "account.deletion_cancelled",
        "account.deleted",
    ] {
        assert!(
            actions.contains(&action.to_owned()),
            "{action}: {actions:?}"
        );
    }
}
