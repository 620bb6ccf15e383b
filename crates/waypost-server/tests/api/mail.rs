//! Mail through a real SMTP server (aiosmtpd, see `smtp.rs`): password reset
//! (the same answer and time for unknown addresses), security notices,
//! invitations by mail, and retries while the SMTP server is down.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use waypost_store::Backend;

use crate::helpers::{TestApp, assert_problem, spawn_app_with};
use crate::mfa::{code, enrol};
use crate::on_both_backends;
use crate::smtp::{SmtpSink, free_port, link_in, mail_config, token_of};
use crate::users::*;

on_both_backends!(
    password_reset_by_mail,
    password_reset_asks_for_the_second_factor,
    security_notices_by_mail,
    invitation_by_mail_accepted_end_to_end,
    mail_waits_for_the_smtp_server_to_come_back,
    reset_pages_in_the_dashboard
);

const NEW_PASSWORD: &str = "amber-orchard-compass-31";

async fn ask_reset(app: &TestApp, email: &str) -> (reqwest::Response, Duration) {
    let started = Instant::now();
    let res = app
        .client
        .post(format!("{}/v1/auth/password-reset", app.address))
        .json(&json!({ "email": email }))
        .send()
        .await
        .unwrap();
    (res, started.elapsed())
}

async fn complete_reset(app: &TestApp, body: Value) -> reqwest::Response {
    app.client
        .post(format!("{}/v1/auth/password-reset/complete", app.address))
        .json(&body)
        .send()
        .await
        .unwrap()
}

async fn password_reset_by_mail(backend: Backend) {
    let Some(sink) = SmtpSink::start().await else {
        return;
    };
    let Some(app) = spawn_app_with(backend, mail_config(sink.port)).await else {
        return;
    };
    owner(&app, "ana@example.com", "Acme").await;
    let old = login(&app, "ana@example.com", PASSWORD).await;

    let (known, known_took) = ask_reset(&app, "Ana@Example.com").await;
    let (unknown, unknown_took) = ask_reset(&app, "nobody@example.com").await;
    assert_eq!(known.status(), 202);
    assert_eq!(unknown.status(), 202);
    let (known, unknown): (Value, Value) =
        (known.json().await.unwrap(), unknown.json().await.unwrap());
    assert_eq!(
        known, unknown,
        "the answer does not tell whether the account exists"
    );
    let floor = waypost_server::ops::password_reset::ANSWER_FLOOR;
    assert!(known_took >= floor && unknown_took >= floor);
    let gap = known_took.abs_diff(unknown_took);
    eprintln!("password reset answer time: known {known_took:?}, unknown {unknown_took:?}");
    assert!(
        gap < Duration::from_millis(250),
        "known {known_took:?} vs unknown {unknown_took:?}"
    );

    let mail = sink.wait_for_mail_to("ana@example.com", "Reset your").await;
    assert_eq!(mail.from, "Waypost <noreply@waypost.test>");
    let link = link_in(&mail);
    assert!(
        link.starts_with(&format!("{}/reset?token=", app.state.config.public_url())),
        "{link}"
    );
    assert!(mail.html.as_deref().unwrap().contains("<a href="));
    let token = token_of(&link);

    assert_problem(
        complete_reset(&app, json!({"token": "forged", "password": NEW_PASSWORD})).await,
        404,
    )
    .await;
    assert_problem(
        complete_reset(&app, json!({"token": token, "password": "short"})).await,
        422,
    )
    .await;
    let res = complete_reset(&app, json!({"token": token, "password": NEW_PASSWORD})).await;
    assert_eq!(res.status(), 204);
    assert_eq!(
        old.get(&app, "/v1/auth/me").await.status(),
        401,
        "every session ended"
    );
    let reused = complete_reset(&app, json!({"token": token, "password": NEW_PASSWORD})).await;
    assert_eq!(
        assert_problem(reused, 404).await["type"],
        "https://waypost.dev/problems/reset-link-invalid"
    );
    assert_problem(
        login_request(
            &app,
            json!({"email": "ana@example.com", "password": PASSWORD}),
        )
        .await,
        401,
    )
    .await;
    login(&app, "ana@example.com", NEW_PASSWORD).await;
    sink.wait_for_mail_to("ana@example.com", "password was changed")
        .await;
    assert!(
        sink.received()
            .iter()
            .all(|m| m.rcpt_tos.iter().all(|r| r != "nobody@example.com"))
    );

    // A link lasts 30 minutes.
    ask_reset(&app, "ana@example.com").await;
    let later = sink.wait_for(3).await;
    let token = token_of(&link_in(
        later
            .iter()
            .rev()
            .find(|m| m.subject.contains("Reset"))
            .unwrap(),
    ));
    app.clock.advance(chrono::Duration::minutes(31));
    assert_problem(
        complete_reset(
            &app,
            json!({"token": token, "password": "violet-canyon-ember-58"}),
        )
        .await,
        404,
    )
    .await;

    // Per address: three an hour, the same for unknown addresses.
    for _ in 0..3 {
        assert_eq!(ask_reset(&app, "ghost@example.com").await.0.status(), 202);
    }
    let (res, _) = ask_reset(&app, "ghost@example.com").await;
    assert_eq!(res.status(), 429);
    assert!(res.headers().contains_key("retry-after"));

    // Sent mail keeps no content; the audit log has the request.
    let sent = app.state.store.recent_mail(50).await.unwrap();
    assert!(sent.iter().all(|m| m.sent_at.is_some() && !m.content_kept));
    assert!(sent.iter().all(|m| !m.recipient_hint.contains("ana@")));
    let actions = audit_actions(&app, None).await;
    assert!(actions.contains(&"auth.password_reset_requested".to_owned()));
    assert!(actions.contains(&"auth.password_reset".to_owned()));
}

async fn password_reset_asks_for_the_second_factor(backend: Backend) {
    let Some(sink) = SmtpSink::start().await else {
        return;
    };
    let Some(app) = spawn_app_with(backend, mail_config(sink.port)).await else {
        return;
    };
    owner(&app, "ana@example.com", "Acme").await;
    let s = login(&app, "ana@example.com", PASSWORD).await;
    let (secret, _) = enrol(&app, &s).await;
    ask_reset(&app, "ana@example.com").await;
    let token = token_of(&link_in(
        &sink.wait_for_mail_to("ana@example.com", "Reset").await,
    ));
    let res = complete_reset(&app, json!({"token": token, "password": NEW_PASSWORD})).await;
    let problem = assert_problem(res, 401).await;
    assert_eq!(problem["type"], "https://waypost.dev/problems/mfa-required");
    assert!(problem["detail"].as_str().unwrap().contains("totp_code"));
    let res = complete_reset(
        &app,
        json!({"token": token, "password": NEW_PASSWORD, "totp_code": "000000"}),
    )
    .await;
    assert_problem(res, 401).await;
    app.clock.advance(chrono::Duration::seconds(30));
    let res = complete_reset(
        &app,
        json!({"token": token, "password": NEW_PASSWORD, "totp_code": code(&app, &secret)}),
    )
    .await;
    assert_eq!(res.status(), 204);
    assert_eq!(s.get(&app, "/v1/auth/me").await.status(), 401);
}

async fn security_notices_by_mail(backend: Backend) {
    let Some(sink) = SmtpSink::start().await else {
        return;
    };
    let Some(app) = spawn_app_with(backend, mail_config(sink.port)).await else {
        return;
    };
    let ana = owner(&app, "ana@example.com", "Acme").await;
    let s = login(&app, "ana@example.com", PASSWORD).await;
    // The same network and device again: no notice.
    login(&app, "ana@example.com", PASSWORD).await;
    // A new device.
    let res = app
        .client
        .post(format!("{}/v1/auth/login", app.address))
        .header("user-agent", "Mozilla/5.0 (Elsewhere)")
        .json(&json!({"email": "ana@example.com", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let signin = sink
        .wait_for_mail_to("ana@example.com", "New sign-in")
        .await;
    assert!(signin.text().contains("Mozilla/5.0 (Elsewhere)"));
    assert!(signin.text().contains("127.0.0.1"));

    let (_, codes) = enrol(&app, &s).await;
    sink.wait_for_mail_to("ana@example.com", "verification added")
        .await;
    let body = json!({"email": "ana@example.com", "password": PASSWORD, "recovery_code": codes[0]});
    login_with(&app, body).await;
    let used = sink
        .wait_for_mail_to("ana@example.com", "recovery code")
        .await;
    assert!(used.text().contains("9 unused codes remain"));

    let s = s.in_workspace(ana.workspace_id);
    let res = s
        .post(
            &app,
            "/v1/api-keys",
            json!({"name": "ci deploy", "scopes": ["messages:send"]}),
        )
        .await;
    assert_eq!(res.status(), 201);
    let key = sink.wait_for_mail_to("ana@example.com", "API key").await;
    assert!(key.text().contains("ci deploy"));
    let created: Value = res.json().await.unwrap();
    assert!(
        !key.text().contains(created["key"].as_str().unwrap()),
        "the key itself is never mailed"
    );

    assert_eq!(s.delete(&app, "/v1/auth/mfa/totp").await.status(), 204);
    sink.wait_for_mail_to("ana@example.com", "verification removed")
        .await;

    let res = s
        .post(
            &app,
            "/v1/auth/password",
            json!({"current_password": PASSWORD, "new_password": NEW_PASSWORD}),
        )
        .await;
    assert_eq!(res.status(), 204);
    sink.wait_for_mail_to("ana@example.com", "password was changed")
        .await;
    let subjects: Vec<String> = sink.received().into_iter().map(|m| m.subject).collect();
    assert_eq!(
        subjects
            .iter()
            .filter(|s| s.contains("New sign-in"))
            .count(),
        1,
        "{subjects:?}"
    );
}

async fn invitation_by_mail_accepted_end_to_end(backend: Backend) {
    let Some(sink) = SmtpSink::start().await else {
        return;
    };
    let Some(app) = spawn_app_with(backend, mail_config(sink.port)).await else {
        return;
    };
    let ana = owner(&app, "ana@example.com", "Acme & Co").await;
    let s = login(&app, "ana@example.com", PASSWORD)
        .await
        .in_workspace(ana.workspace_id);
    let res = s
        .post(
            &app,
            "/v1/invitations",
            json!({"email": "newbie@example.com", "role": "agent"}),
        )
        .await;
    assert_eq!(res.status(), 201);
    let mail = sink.wait_for_mail_to("newbie@example.com", "invited").await;
    assert!(mail.subject.contains("Acme & Co"));
    assert!(mail.html.as_deref().unwrap().contains("Acme &amp; Co"));
    let link = link_in(&mail);
    assert!(link.contains("/invitations/accept?token="));
    // The mailed link opens the acceptance page…
    let page = app
        .client
        .get(link.replace(&app.state.config.public_url(), &app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    // …and its token accepts.
    let res = app
        .client
        .post(format!("{}/v1/invitations/accept", app.address))
        .json(&json!({"token": token_of(&link), "password": NEW_PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let newbie = login(&app, "newbie@example.com", NEW_PASSWORD).await;
    assert_eq!(newbie.me["memberships"][0]["role"], "agent");
    // The mailed link reached the address: it counts as confirmed.
    let id = newbie.me["user_id"].as_str().unwrap();
    assert!(
        app.state
            .store
            .email_verified_at(id)
            .await
            .unwrap()
            .is_some()
    );
}

async fn mail_waits_for_the_smtp_server_to_come_back(backend: Backend) {
    if !crate::smtp::available() {
        return;
    }
    let port = free_port();
    let Some(app) = spawn_app_with(backend, mail_config(port)).await else {
        return;
    };
    owner(&app, "ana@example.com", "Acme").await;
    assert_eq!(ask_reset(&app, "ana@example.com").await.0.status(), 202);
    // Nothing listens: the worker records failed attempts and keeps the content.
    let deadline = Instant::now() + Duration::from_secs(20);
    let failed = loop {
        let rows = app.state.store.recent_mail(10).await.unwrap();
        if let Some(m) = rows.first().filter(|m| m.attempts >= 1) {
            break m.clone();
        }
        assert!(Instant::now() < deadline, "no failed attempt recorded");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(failed.sent_at.is_none() && failed.failed_at.is_none() && failed.content_kept);
    assert_eq!(
        failed.last_error.as_deref(),
        Some("cannot reach or talk to the SMTP server")
    );
    // The retry waits its backoff (by the app's clock), then goes out.
    let sink = SmtpSink::start_on(port).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        sink.received().is_empty(),
        "not before the backoff has passed"
    );
    app.clock.advance(chrono::Duration::minutes(5));
    let mail = sink.wait_for_mail_to("ana@example.com", "Reset").await;
    assert!(link_in(&mail).contains("/reset?token="));
    // The sink has the mail before the worker records the send: wait for the record.
    let deadline = Instant::now() + Duration::from_secs(20);
    let sent = loop {
        let rows = app.state.store.recent_mail(10).await.unwrap();
        if rows[0].sent_at.is_some() {
            break rows[0].clone();
        }
        assert!(Instant::now() < deadline, "the send was never recorded");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(!sent.content_kept && sent.attempts >= 2);
}

async fn page_post(app: &TestApp, path: &str, form: &[(&str, &str)]) -> reqwest::Response {
    app.client
        .post(format!("{}{path}", app.address))
        .header("sec-fetch-site", "same-origin")
        .form(form)
        .send()
        .await
        .unwrap()
}

async fn reset_pages_in_the_dashboard(backend: Backend) {
    let Some(sink) = SmtpSink::start().await else {
        return;
    };
    let Some(app) = spawn_app_with(backend, mail_config(sink.port)).await else {
        return;
    };
    owner(&app, "ana@example.com", "Acme").await;
    let login_page = app.get("/login").await.text().await.unwrap();
    assert!(login_page.contains("href=\"/forgot\""));
    let page = app.get("/forgot").await;
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("action=\"/forgot\""));
    let cross = app
        .client
        .post(format!("{}/forgot", app.address))
        .header("sec-fetch-site", "cross-site")
        .form(&[("email", "ana@example.com")])
        .send()
        .await
        .unwrap();
    assert_eq!(cross.status(), 403);
    let sent = page_post(&app, "/forgot", &[("email", "ana@example.com")]).await;
    assert_eq!(sent.status(), 200);
    assert!(sent.text().await.unwrap().contains("on its way"));
    let link = link_in(&sink.wait_for_mail_to("ana@example.com", "Reset").await);
    let token = token_of(&link);
    let form = app.get(&format!("/reset?token={token}")).await;
    assert_eq!(form.status(), 200);
    let form = form.text().await.unwrap();
    assert!(form.contains("name=\"password_again\"") && !form.contains("name=\"code\""));
    let differ = page_post(
        &app,
        "/reset",
        &[
            ("token", &token),
            ("password", NEW_PASSWORD),
            ("password_again", "something-else-entirely"),
        ],
    )
    .await;
    assert_eq!(differ.status(), 422);
    assert!(
        differ
            .text()
            .await
            .unwrap()
            .contains("The two passwords differ.")
    );
    let done = page_post(
        &app,
        "/reset",
        &[
            ("token", &token),
            ("password", NEW_PASSWORD),
            ("password_again", NEW_PASSWORD),
        ],
    )
    .await;
    assert_eq!(done.status(), 303);
    assert_eq!(done.headers()["location"], "/login?reset=1");
    let notice = app.get("/login?reset=1").await.text().await.unwrap();
    assert!(notice.contains("Your password is changed"));
    assert_eq!(
        app.get(&format!("/reset?token={token}")).await.status(),
        404
    );
    login(&app, "ana@example.com", NEW_PASSWORD).await;
}
