//! Security → Workspace: the policies are changed from their page; bad input
//! and a refused change leave every policy as it was; agents cannot open it.

use waypost_core::{RetentionPolicy, ShieldPolicy};
use waypost_store::Backend;

use crate::dashboard::{csrf_of, form, page, sign_in};
use crate::messaging_fixture::fixture;
use crate::on_both_backends;
use crate::users::member;

on_both_backends!(
    workspace_policies_are_changed_from_their_page,
    the_workspace_is_exported_and_its_deletion_scheduled_from_the_page,
);

async fn workspace_policies_are_changed_from_their_page(backend: Backend) {
    let Some(f) = fixture(backend, |_| {}, |_| {}).await else {
        return;
    };
    let app = &f.app;
    let ws = f.ws.to_string();
    let owner = sign_in(app, "ops@example.com").await;
    let (status, html) = page(app, &owner, "/security/workspace").await;
    assert_eq!(status, 200);
    assert!(html.contains("Save policies"));
    let csrf = csrf_of(&html);
    let before = app.state.store.messaging_settings(&ws).await.unwrap();
    let submit = |fields: Vec<(&'static str, &'static str)>| {
        let owner = owner.clone();
        let csrf = csrf.clone();
        async move {
            let mut all = vec![("csrf", csrf.as_str())];
            all.extend(fields);
            form(app, Some(&owner), "/security/workspace", &all).await
        }
    };

    let res = submit(vec![
        ("retention", "days"),
        ("retention_days", "0"),
        ("shield_policy", "block"),
        ("visibility", "assigned"),
    ])
    .await;
    assert_eq!(res.status(), 422);
    assert!(
        res.text()
            .await
            .unwrap()
            .contains("`content_retention` must be")
    );

    // Requiring MFA without one's own second factor is refused, and nothing else changes.
    let res = submit(vec![
        ("require_mfa", "on"),
        ("retention", "days"),
        ("retention_days", "7"),
        ("shield_policy", "block"),
        ("visibility", "assigned"),
    ])
    .await;
    assert_eq!(res.status(), 422);
    assert!(
        res.text()
            .await
            .unwrap()
            .contains("Enable a second factor on your own account")
    );
    assert_eq!(
        app.state.store.messaging_settings(&ws).await.unwrap(),
        before
    );
    assert_eq!(
        app.state.store.conversation_visibility(&ws).await.unwrap(),
        "all"
    );

    let res = submit(vec![
        ("retention", "days"),
        ("retention_days", "7"),
        ("shield_policy", "block"),
        ("visibility", "assigned"),
    ])
    .await;
    assert_eq!(res.status(), 200);
    let html = res.text().await.unwrap();
    assert!(html.contains("Policies saved."), "{html}");
    let now = app.state.store.messaging_settings(&ws).await.unwrap();
    assert_eq!(now.content_retention, RetentionPolicy::Days(7));
    assert_eq!(now.shield_policy, ShieldPolicy::Block);
    assert_eq!(
        app.state.store.conversation_visibility(&ws).await.unwrap(),
        "assigned"
    );
    assert!(html.contains("value=\"7\""));

    let res = submit(vec![
        ("retention", "none"),
        ("shield_policy", "flag"),
        ("visibility", "all"),
    ])
    .await;
    assert_eq!(res.status(), 200);
    let now = app.state.store.messaging_settings(&ws).await.unwrap();
    assert_eq!(now.content_retention, RetentionPolicy::None);

    member(app, f.ws, "agent@example.com", "agent").await;
    let agent = sign_in(app, "agent@example.com").await;
    assert_eq!(page(app, &agent, "/security/workspace").await.0, 403);
    let (_, own) = page(app, &agent, "/security/sessions").await;
    assert!(
        !own.contains("href=\"/security/workspace\""),
        "no Workspace tab for agents"
    );
}

async fn the_workspace_is_exported_and_its_deletion_scheduled_from_the_page(backend: Backend) {
    let Some(f) = fixture(backend, |_| {}, |_| {}).await else {
        return;
    };
    let app = &f.app;
    let ws = f.ws.to_string();
    member(app, f.ws, "admin@example.com", "admin").await;
    let admin = sign_in(app, "admin@example.com").await;
    let (status, html) = page(app, &admin, "/security/workspace").await;
    assert_eq!(status, 200);
    assert!(html.contains("/security/workspace/export"));
    assert!(!html.contains("Delete this workspace"), "owners only");
    let res = form(
        app,
        Some(&admin),
        "/security/workspace/deletion",
        &[("csrf", &csrf_of(&html)), ("confirm", "Acme")],
    )
    .await;
    assert_eq!(res.status(), 403);

    let owner = sign_in(app, "ops@example.com").await;
    let res = app
        .client
        .get(format!("{}/security/workspace/export", app.address))
        .header("cookie", &owner)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(
        res.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .contains(&format!("waypost-{ws}.ndjson"))
    );
    let first = res.text().await.unwrap();
    let first: serde_json::Value = serde_json::from_str(first.lines().next().unwrap()).unwrap();
    assert_eq!(first["kind"], "workspace");
    assert_eq!(first["name"], "Acme");

    let (_, html) = page(app, &owner, "/security/workspace").await;
    assert!(html.contains("Delete this workspace"));
    let csrf = csrf_of(&html);
    let res = form(
        app,
        Some(&owner),
        "/security/workspace/deletion",
        &[("csrf", &csrf), ("confirm", "Acme Inc")],
    )
    .await;
    assert_eq!(res.status(), 422);
    assert!(res.text().await.unwrap().contains("must be the workspace"));
    assert!(
        app.state
            .store
            .workspace_deletion_due(&ws)
            .await
            .unwrap()
            .is_none()
    );
    let res = form(
        app,
        Some(&owner),
        "/security/workspace/deletion",
        &[("csrf", &csrf), ("confirm", "Acme")],
    )
    .await;
    assert_eq!(res.status(), 200);
    let html = res.text().await.unwrap();
    assert!(html.contains("will be deleted on"), "{html}");
    assert!(html.contains("Cancel the deletion"));
    assert!(
        app.state
            .store
            .workspace_deletion_due(&ws)
            .await
            .unwrap()
            .is_some()
    );
    let res = form(
        app,
        Some(&owner),
        "/security/workspace/deletion/cancel",
        &[("csrf", &csrf)],
    )
    .await;
    assert_eq!(res.status(), 200);
    assert!(
        res.text()
            .await
            .unwrap()
            .contains("The deletion was cancelled")
    );
    assert!(
        app.state
            .store
            .workspace_deletion_due(&ws)
            .await
            .unwrap()
            .is_none()
    );
}
