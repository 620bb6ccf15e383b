//! First run through the setup link, and secrets never stored in plaintext.

use serde_json::json;
use waypost_server::ops::setup::first_run_link;
use waypost_store::Backend;

use crate::helpers::{TestApp, spawn_app};
use crate::on_both_backends;
use crate::users::*;

on_both_backends!(
    setup_link_creates_the_first_owner_once,
    identity_secrets_are_not_stored_in_plaintext
);

async fn setup_link_creates_the_first_owner_once(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let link = first_run_link(&app.state)
        .await
        .unwrap()
        .expect("no user yet: a link");
    let token = link.split("token=").nth(1).unwrap().to_owned();
    let page = app.get(&format!("/setup?token={token}")).await;
    assert_eq!(page.status(), 200);
    assert!(
        page.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("default-src 'none'")
    );
    let html = page.text().await.unwrap();
    assert!(html.contains("<form") && html.contains(&token));

    let post = |token: String, password: &'static str| {
        app.client
            .post(format!("{}/setup", app.address))
            .form(&[
                ("token", token.as_str()),
                ("workspace", "Acme"),
                ("email", "ana@example.com"),
                ("password", password),
            ])
            .send()
    };
    assert_eq!(
        post(token.clone(), "password").await.unwrap().status(),
        422,
        "weak passwords are refused first"
    );
    assert_eq!(post("forged".into(), PASSWORD).await.unwrap().status(), 403);
    assert_eq!(post(token.clone(), PASSWORD).await.unwrap().status(), 201);
    assert_eq!(
        post(token, PASSWORD).await.unwrap().status(),
        403,
        "the link works once"
    );
    login(&app, "ana@example.com", PASSWORD).await;
    assert!(
        first_run_link(&app.state).await.unwrap().is_none(),
        "no link once a user exists"
    );
}

pub fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

/// Every byte of the SQLite files, or every row of the identity tables as JSON text.
pub async fn database_bytes(app: &TestApp) -> Vec<u8> {
    match app.state.store.backend() {
        Backend::Sqlite => {
            let path = std::path::PathBuf::from(app.db.url.trim_start_matches("sqlite://"));
            let mut all = std::fs::read(&path).unwrap();
            all.extend(std::fs::read(path.with_extension("db-wal")).unwrap_or_default());
            all
        }
        Backend::Postgres => {
            let pool = sqlx::PgPool::connect(&app.db.url).await.unwrap();
            let mut all = Vec::new();
            for table in [
                "workspaces",
                "users",
                "sessions",
                "api_keys",
                "recovery_codes",
                "setup_tokens",
                "audit_events",
                "passkeys",
                "webauthn_challenges",
            ] {
                let rows: Vec<String> =
                    sqlx::query_scalar(&format!("SELECT row_to_json(t)::text FROM {table} t"))
                        .fetch_all(&pool)
                        .await
                        .unwrap();
                for r in rows {
                    all.extend(r.into_bytes());
                }
            }
            all
        }
    }
}

async fn identity_secrets_are_not_stored_in_plaintext(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    owner(&app, "ana@example.com", "Acme").await;
    let s = login(&app, "ana@example.com", PASSWORD).await;
    let (_, key) = api_key(&app, &s, json!({"name": "k", "scopes": ["audit:read"]})).await;
    let enrolment: serde_json::Value = s
        .post(&app, "/v1/auth/mfa/totp", json!({}))
        .await
        .json()
        .await
        .unwrap();
    let uri = enrolment["otpauth_uri"].as_str().unwrap().to_owned();
    let secret_b32 = uri
        .split("secret=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap()
        .to_owned();
    let secret = waypost_crypto::totp::TotpSecret::from_bytes(
        totp_rs::Secret::Encoded(secret_b32.clone())
            .to_bytes()
            .unwrap(),
    );
    let code = waypost_crypto::totp::totp_code_at(&secret, app.clock_now().timestamp() as u64);
    let codes: serde_json::Value = s
        .post(&app, "/v1/auth/mfa/totp/confirm", json!({"code": code}))
        .await
        .json()
        .await
        .unwrap();
    let session_token = s.cookie.trim_start_matches("waypost_session=").to_owned();

    let bytes = database_bytes(&app).await;
    // Emails are sealed too now; the workspace name is kept in plaintext.
    assert!(contains(&bytes, "Acme"), "the scan sees plaintext columns");
    for (what, secret) in [
        ("email", "ana@example.com".to_owned()),
        ("password", PASSWORD.to_owned()),
        ("API key", key[8..].to_owned()),
        ("session token", session_token),
        ("TOTP secret", secret_b32),
        (
            "recovery code",
            codes["recovery_codes"][0].as_str().unwrap().to_owned(),
        ),
    ] {
        assert!(!contains(&bytes, &secret), "{what} stored in plaintext");
    }
}
