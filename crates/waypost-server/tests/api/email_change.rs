//! Email verification and change through a real SMTP server: the address is
//! confirmed by its link; a change needs the new address's confirmation, the
//! old address is told and can undo it.

use serde_json::{Value, json};
use waypost_store::Backend;

use crate::helpers::{TestApp, assert_problem, spawn_app_with};
use crate::on_both_backends;
use crate::smtp::{SmtpSink, link_in, mail_config, token_of};
use crate::users::*;

on_both_backends!(email_verification_change_and_undo);

async fn confirm(app: &TestApp, token: &str) -> reqwest::Response {
    app.client
        .post(format!("{}/v1/account/email/confirm", app.address))
        .json(&json!({ "token": token }))
        .send()
        .await
        .unwrap()
}

async fn email_verification_change_and_undo(backend: Backend) {
    let Some(sink) = SmtpSink::start().await else {
        return;
    };
    let Some(app) = spawn_app_with(backend, mail_config(sink.port)).await else {
        return;
    };
    let ana = owner(&app, "ana@example.com", "Acme").await;
    owner(&app, "bob@example.com", "Bobco").await;
    let s = login(&app, "ana@example.com", PASSWORD).await;
    assert!(
        app.state
            .store
            .email_verified_at(&ana.user_id)
            .await
            .unwrap()
            .is_none()
    );

    // Verification of the current address.
    let res = s
        .post(&app, "/v1/account/email/verification", json!({}))
        .await;
    assert_eq!(res.status(), 202);
    let mail = sink
        .wait_for_mail_to("ana@example.com", "Confirm your address")
        .await;
    let link = link_in(&mail);
    assert!(link.contains("/account/email?token="));
    let page = app
        .get(&link.replace(&app.state.config.public_url(), ""))
        .await;
    assert_eq!(page.status(), 200);
    assert!(
        page.text()
            .await
            .unwrap()
            .contains("Confirm that ana@example.com")
    );
    assert!(
        app.state
            .store
            .email_verified_at(&ana.user_id)
            .await
            .unwrap()
            .is_none(),
        "opening the link changes nothing"
    );
    let token = token_of(&link);
    let done: Value = confirm(&app, &token).await.json().await.unwrap();
    assert_eq!(done["done"], "verify");
    assert!(
        app.state
            .store
            .email_verified_at(&ana.user_id)
            .await
            .unwrap()
            .is_some()
    );
    assert_problem(confirm(&app, &token).await, 404).await;

    // A change: nothing happens until the new address confirms.
    let taken = s
        .post(
            &app,
            "/v1/account/email",
            json!({"email": "bob@example.com"}),
        )
        .await;
    assert_problem(taken, 409).await;
    let res = s
        .post(
            &app,
            "/v1/account/email",
            json!({"email": "Ana.New@Example.com"}),
        )
        .await;
    assert_eq!(res.status(), 202);
    let told = sink
        .wait_for_mail_to("ana@example.com", "was asked for")
        .await;
    assert!(told.text().contains("ana.new@example.com"));
    let new_link = link_in(
        &sink
            .wait_for_mail_to("ana.new@example.com", "Confirm your address")
            .await,
    );
    login(&app, "ana@example.com", PASSWORD).await;
    let res = app
        .client
        .post(format!("{}/account/email", app.address))
        .header("sec-fetch-site", "same-origin")
        .form(&[("token", token_of(&new_link))])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.text().await.unwrap().contains("Address changed"));
    login(&app, "ana.new@example.com", PASSWORD).await;
    assert_problem(
        login_request(
            &app,
            json!({"email": "ana@example.com", "password": PASSWORD}),
        )
        .await,
        401,
    )
    .await;

    // The old address undoes it; every session ends.
    let changed = sink
        .wait_for_mail_to("ana@example.com", "was changed")
        .await;
    assert!(changed.text().contains("ana.new@example.com"));
    let done: Value = confirm(&app, &token_of(&link_in(&changed)))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(done["done"], "undo");
    assert_eq!(s.get(&app, "/v1/auth/me").await.status(), 401);
    login(&app, "ana@example.com", PASSWORD).await;
    sink.wait_for_mail_to("ana@example.com", "was restored")
        .await;
    let actions = audit_actions(&app, None).await;
    for action in [
        "account.email_verified",
        "account.email_change_requested",
        "account.email_changed",
        "account.email_change_undone",
    ] {
        assert!(
            actions.contains(&action.to_owned()),
            "{action}: {actions:?}"
        );
    }
}
