//! TOTP enrolment, login with a second factor, replay refusal, recovery codes.

use chrono::Duration;
use serde_json::{Value, json};
use waypost_crypto::totp::{TotpSecret, totp_code_at};
use waypost_store::Backend;

use crate::helpers::{TestApp, assert_problem, spawn_app};
use crate::on_both_backends;
use crate::users::*;

on_both_backends!(
    totp_enrolment_login_and_replay,
    recovery_codes_work_once,
    mfa_changes_need_step_up
);

pub fn secret_from_uri(uri: &str) -> TotpSecret {
    let encoded = uri
        .split("secret=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap();
    TotpSecret::from_bytes(
        totp_rs::Secret::Encoded(encoded.to_owned())
            .to_bytes()
            .unwrap(),
    )
}

pub fn code(app: &TestApp, secret: &TotpSecret) -> String {
    totp_code_at(secret, app.clock_now().timestamp() as u64)
}

/// Enrols TOTP for the session's user; returns the secret and the recovery codes.
pub async fn enrol(app: &TestApp, s: &Session) -> (TotpSecret, Vec<String>) {
    let res = s.post(app, "/v1/auth/mfa/totp", json!({})).await;
    assert_eq!(res.status(), 200);
    let enrolment: Value = res.json().await.unwrap();
    let uri = enrolment["otpauth_uri"].as_str().unwrap();
    assert!(
        uri.starts_with("otpauth://totp/") && uri.contains("issuer=Waypost"),
        "{uri}"
    );
    assert!(enrolment["qr_svg"].as_str().unwrap().contains("<svg"));
    let secret = secret_from_uri(uri);
    assert_problem(
        s.post(app, "/v1/auth/mfa/totp/confirm", json!({"code": "000000"}))
            .await,
        422,
    )
    .await;
    let res = s
        .post(
            app,
            "/v1/auth/mfa/totp/confirm",
            json!({"code": code(app, &secret)}),
        )
        .await;
    assert_eq!(res.status(), 200);
    let codes: Value = res.json().await.unwrap();
    let codes: Vec<String> = codes["recovery_codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(codes.len(), 10);
    (secret, codes)
}

async fn totp_enrolment_login_and_replay(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    owner(&app, "ana@example.com", "Acme").await;
    let s = login(&app, "ana@example.com", PASSWORD).await;
    let (secret, _) = enrol(&app, &s).await;
    let me: Value = s.get(&app, "/v1/auth/me").await.json().await.unwrap();
    assert_eq!(me["mfa"]["totp"], true);

    let res = login_request(
        &app,
        json!({"email": "ana@example.com", "password": PASSWORD}),
    )
    .await;
    assert_eq!(
        assert_problem(res, 401).await["type"],
        "https://waypost.dev/problems/mfa-required"
    );
    app.clock.advance(Duration::seconds(30));
    let now_code = code(&app, &secret);
    login_with(
        &app,
        json!({"email": "ana@example.com", "password": PASSWORD, "totp_code": now_code}),
    )
    .await;
    let replay = login_request(
        &app,
        json!({"email": "ana@example.com", "password": PASSWORD, "totp_code": now_code}),
    )
    .await;
    assert_problem(replay, 401).await;
    let wrong = login_request(
        &app,
        json!({"email": "ana@example.com", "password": PASSWORD, "totp_code": "123456"}),
    )
    .await;
    assert_eq!(wrong.status(), 401);
    app.clock.advance(Duration::seconds(30));
    login_with(
        &app,
        json!({"email": "ana@example.com", "password": PASSWORD, "totp_code": code(&app, &secret)}),
    )
    .await;
    let actions = audit_actions(&app, None).await;
    assert!(actions.contains(&"mfa.totp_enabled".to_owned()));
    assert!(
        actions.iter().filter(|a| *a == "auth.login_failed").count() >= 2,
        "{actions:?}"
    );
}

async fn recovery_codes_work_once(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    owner(&app, "ana@example.com", "Acme").await;
    let s = login(&app, "ana@example.com", PASSWORD).await;
    let (_, codes) = enrol(&app, &s).await;
    let body = json!({"email": "ana@example.com", "password": PASSWORD, "recovery_code": codes[3].to_uppercase()});
    let fresh = login_with(&app, body.clone()).await;
    assert_eq!(fresh.me["mfa"]["recovery_codes_left"], 9);
    assert_problem(login_request(&app, body).await, 401).await;
    let regenerated: Value = s
        .post(&app, "/v1/auth/mfa/recovery-codes", json!({}))
        .await
        .json()
        .await
        .unwrap();
    let new_codes = regenerated["recovery_codes"].as_array().unwrap();
    assert_eq!(new_codes.len(), 10);
    let old = json!({"email": "ana@example.com", "password": PASSWORD, "recovery_code": codes[4]});
    assert_eq!(
        login_request(&app, old).await.status(),
        401,
        "regeneration voids the old codes"
    );
}

async fn mfa_changes_need_step_up(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    owner(&app, "ana@example.com", "Acme").await;
    let s = login(&app, "ana@example.com", PASSWORD).await;
    let (secret, _) = enrol(&app, &s).await;
    app.clock.advance(Duration::minutes(10));
    let res = s.delete(&app, "/v1/auth/mfa/totp").await;
    assert_eq!(
        assert_problem(res, 403).await["type"],
        "https://waypost.dev/problems/reauth-required"
    );
    assert_eq!(
        s.post(&app, "/v1/auth/reauth", json!({"password": PASSWORD}))
            .await
            .status(),
        401,
        "TOTP is part of step-up"
    );
    let res = s
        .post(
            &app,
            "/v1/auth/reauth",
            json!({"password": PASSWORD, "totp_code": code(&app, &secret)}),
        )
        .await;
    assert_eq!(res.status(), 204);
    assert_eq!(s.delete(&app, "/v1/auth/mfa/totp").await.status(), 204);
    login(&app, "ana@example.com", PASSWORD).await;
    assert!(
        audit_actions(&app, None)
            .await
            .contains(&"mfa.totp_disabled".to_owned())
    );
}
