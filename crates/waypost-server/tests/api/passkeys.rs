//! WebAuthn passkeys driven by a software authenticator: registration, listing,
//! passwordless sign-in, passkeys as the second factor, replayed and forged
//! assertions, step-up and ownership for removal, and encryption at rest.

use chrono::Duration;
use serde_json::{Value, json};
use waypost_crypto::Aad;
use waypost_store::Backend;
use webauthn_authenticator_rs::WebauthnAuthenticator;
use webauthn_authenticator_rs::softpasskey::SoftPasskey;
use webauthn_rs::prelude::{
    COSEKeyType, CreationChallengeResponse, Passkey, PublicKeyCredential, RequestChallengeResponse,
    Url,
};

use crate::helpers::{TestApp, assert_problem, spawn_app};
use crate::on_both_backends;
use crate::setup::{contains, database_bytes};
use crate::users::*;

on_both_backends!(
    register_list_and_sign_in_without_password,
    replayed_and_forged_assertions_are_refused,
    unknown_emails_get_believable_options,
    passkey_completes_a_password_login,
    removal_needs_step_up_and_ownership,
    credentials_are_encrypted_at_rest,
);

type Authenticator = WebauthnAuthenticator<SoftPasskey>;

fn authenticator() -> Authenticator {
    // `true`: the soft authenticator reports user verification, which passkeys require.
    WebauthnAuthenticator::new(SoftPasskey::new(true))
}

/// The origin a browser on the app's pages would report.
fn origin(app: &TestApp) -> Url {
    app.state.config.webauthn().unwrap().1
}

/// Registers a passkey through the API; returns the passkey view.
async fn register(app: &TestApp, s: &Session, auth: &mut Authenticator, name: &str) -> Value {
    let res = s
        .post(app, "/v1/auth/passkeys/register/start", json!({}))
        .await;
    assert_eq!(res.status(), 200);
    let started: Value = res.json().await.unwrap();
    let options: CreationChallengeResponse =
        serde_json::from_value(started["options"].clone()).unwrap();
    let credential = auth.do_registration(origin(app), options).unwrap();
    let res = s
        .post(
            app,
            "/v1/auth/passkeys/register/finish",
            json!({"challenge_id": started["challenge_id"], "name": name, "credential": credential}),
        )
        .await;
    assert_eq!(res.status(), 201);
    res.json().await.unwrap()
}

async fn post(app: &TestApp, path: &str, body: Value) -> reqwest::Response {
    app.client
        .post(format!("{}{path}", app.address))
        .json(&body)
        .send()
        .await
        .unwrap()
}

/// Starts a passwordless sign-in; returns the challenge id and the options.
async fn login_start(app: &TestApp, email: &str) -> (String, Value) {
    let res = post(
        app,
        "/v1/auth/passkeys/login/start",
        json!({"email": email}),
    )
    .await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    (
        body["challenge_id"].as_str().unwrap().to_owned(),
        body["options"].clone(),
    )
}

fn assert_with(auth: &mut Authenticator, app: &TestApp, options: &Value) -> PublicKeyCredential {
    let options: RequestChallengeResponse = serde_json::from_value(options.clone()).unwrap();
    auth.do_authentication(origin(app), options).unwrap()
}

async fn login_finish(
    app: &TestApp,
    challenge_id: &str,
    credential: &PublicKeyCredential,
) -> reqwest::Response {
    post(
        app,
        "/v1/auth/passkeys/login/finish",
        json!({"challenge_id": challenge_id, "credential": credential}),
    )
    .await
}

/// A session from a successful sign-in response.
async fn session_from(res: reqwest::Response) -> Session {
    assert_eq!(res.status(), 200, "sign-in failed");
    let set_cookie = res.headers()["set-cookie"].to_str().unwrap().to_owned();
    let me: Value = res.json().await.unwrap();
    Session {
        cookie: set_cookie.split(';').next().unwrap().to_owned(),
        csrf: me["csrf_token"].as_str().unwrap().to_owned(),
        me,
        workspace: None,
    }
}

async fn audit_details(app: &TestApp, action: &str) -> Vec<Value> {
    let chain = waypost_core::audit::chain_name(None);
    app.state
        .store
        .audit_chain(&chain, 0, 10_000)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.action == action)
        .map(|e| serde_json::from_str(&e.details).unwrap())
        .collect()
}

async fn register_list_and_sign_in_without_password(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    owner(&app, "ana@example.com", "Acme").await;
    let s = login(&app, "ana@example.com", PASSWORD).await;
    let mut auth = authenticator();
    let created = register(&app, &s, &mut auth, "Laptop").await;
    assert!(created["id"].as_str().unwrap().starts_with("pk_"));
    assert_eq!(created["name"], "Laptop");
    assert!(created["last_used_at"].is_null());

    let list: Value = s.get(&app, "/v1/auth/passkeys").await.json().await.unwrap();
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(list[0]["id"], created["id"]);
    let me: Value = s.get(&app, "/v1/auth/me").await.json().await.unwrap();
    assert_eq!(me["mfa"]["passkeys"], 1);

    let (challenge_id, options) = login_start(&app, "ana@example.com").await;
    let credential = assert_with(&mut auth, &app, &options);
    let fresh = session_from(login_finish(&app, &challenge_id, &credential).await).await;
    assert_eq!(fresh.me["email"], "ana@example.com");
    let res = fresh.get(&app, "/v1/auth/sessions").await;
    assert_eq!(res.status(), 200, "the passkey session works");

    let list: Value = s.get(&app, "/v1/auth/passkeys").await.json().await.unwrap();
    assert!(list[0]["last_used_at"].is_string());
    assert_eq!(
        audit_details(&app, "mfa.passkey_added").await,
        vec![json!({"name": "Laptop"})]
    );
    let logins = audit_details(&app, "auth.login").await;
    assert_eq!(logins.last().unwrap()["method"], "passkey");
}

async fn replayed_and_forged_assertions_are_refused(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    owner(&app, "ana@example.com", "Acme").await;
    let s = login(&app, "ana@example.com", PASSWORD).await;
    let mut auth = authenticator();
    register(&app, &s, &mut auth, "Laptop").await;

    let (challenge_id, options) = login_start(&app, "ana@example.com").await;
    let credential = assert_with(&mut auth, &app, &options);
    session_from(login_finish(&app, &challenge_id, &credential).await).await;
    // The same answer again: the challenge was used up.
    let body = assert_problem(login_finish(&app, &challenge_id, &credential).await, 422).await;
    assert_eq!(
        body["type"],
        "https://waypost.dev/problems/invalid-challenge"
    );
    // The old answer to a new challenge: signed over the wrong challenge.
    let (next_id, _) = login_start(&app, "ana@example.com").await;
    let body = assert_problem(login_finish(&app, &next_id, &credential).await, 401).await;
    assert_eq!(
        body["type"],
        "https://waypost.dev/problems/invalid-credentials"
    );

    // A forged signature, repeatedly: each failure counts toward the lockout.
    let mut last = None;
    for _ in 0..4 {
        let (id, options) = login_start(&app, "ana@example.com").await;
        let mut forged = serde_json::to_value(assert_with(&mut auth, &app, &options)).unwrap();
        let signature = forged["response"]["signature"].as_str().unwrap().to_owned();
        let flipped = if signature.starts_with('A') { "B" } else { "A" };
        forged["response"]["signature"] = json!(format!("{flipped}{}", &signature[1..]));
        let forged: PublicKeyCredential = serde_json::from_value(forged).unwrap();
        last = Some(login_finish(&app, &id, &forged).await);
    }
    let body = assert_problem(last.unwrap(), 429).await;
    assert_eq!(body["type"], "https://waypost.dev/problems/account-locked");
    let reasons: Vec<Value> = audit_details(&app, "auth.login_failed")
        .await
        .into_iter()
        .map(|d| d["reason"].clone())
        .collect();
    let mut expected = vec![json!("unknown_challenge")];
    expected.extend(vec![json!("wrong_passkey"); 5]);
    assert_eq!(reasons, expected, "replay and forgeries are audited");
    // Locked: even a genuine assertion is refused now.
    let (id, options) = login_start(&app, "ana@example.com").await;
    let genuine = assert_with(&mut auth, &app, &options);
    assert_problem(login_finish(&app, &id, &genuine).await, 429).await;
}

async fn unknown_emails_get_believable_options(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    owner(&app, "ana@example.com", "Acme").await;
    let (first_id, first) = login_start(&app, "nobody@example.com").await;
    let (_, again) = login_start(&app, "nobody@example.com").await;
    let (_, no_passkeys) = login_start(&app, "ana@example.com").await;
    let ids = |o: &Value| o["publicKey"]["allowCredentials"].clone();
    assert!(!ids(&first).as_array().unwrap().is_empty());
    assert_eq!(
        ids(&first),
        ids(&again),
        "the same fake credentials each time"
    );
    assert_ne!(ids(&first), ids(&no_passkeys));
    assert_ne!(
        first["publicKey"]["challenge"], again["publicKey"]["challenge"],
        "challenges are fresh"
    );
    for key in ["rpId", "userVerification", "timeout"] {
        assert_eq!(first["publicKey"][key], no_passkeys["publicKey"][key]);
    }
    // Any answer for an unknown account fails like a wrong one.
    let mut auth = authenticator();
    let s = login(&app, "ana@example.com", PASSWORD).await;
    register(&app, &s, &mut auth, "Laptop").await;
    let (_, options) = login_start(&app, "ana@example.com").await;
    let credential = assert_with(&mut auth, &app, &options);
    let body = assert_problem(login_finish(&app, &first_id, &credential).await, 401).await;
    assert_eq!(
        body["type"],
        "https://waypost.dev/problems/invalid-credentials"
    );
}

async fn passkey_completes_a_password_login(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    owner(&app, "ana@example.com", "Acme").await;
    let s = login(&app, "ana@example.com", PASSWORD).await;
    let mut auth = authenticator();
    register(&app, &s, &mut auth, "Laptop").await;

    let res = login_request(
        &app,
        json!({"email": "ana@example.com", "password": PASSWORD}),
    )
    .await;
    let problem = assert_problem(res, 401).await;
    assert_eq!(problem["type"], "https://waypost.dev/problems/mfa-required");
    assert_eq!(problem["methods"], json!(["passkey"]));
    let credential = assert_with(&mut auth, &app, &problem["options"]);
    let second = |id: &Value, credential: &PublicKeyCredential| {
        post(
            &app,
            "/v1/auth/login/passkey",
            json!({"challenge_id": id, "credential": credential}),
        )
    };
    // A passwordless challenge id does not finish a password login, nor the reverse.
    let (login_id, _) = login_start(&app, "ana@example.com").await;
    assert_problem(second(&json!(login_id), &credential).await, 422).await;
    assert_problem(
        login_finish(&app, problem["challenge_id"].as_str().unwrap(), &credential).await,
        422,
    )
    .await;

    let res = login_request(
        &app,
        json!({"email": "ana@example.com", "password": PASSWORD}),
    )
    .await;
    let problem = assert_problem(res, 401).await;
    let credential = assert_with(&mut auth, &app, &problem["options"]);
    let fresh = session_from(second(&problem["challenge_id"], &credential).await).await;
    assert_eq!(fresh.get(&app, "/v1/auth/me").await.status(), 200);
    let logins = audit_details(&app, "auth.login").await;
    assert_eq!(logins.last().unwrap()["second_factor"], "passkey");
    // A wrong password never reaches the passkey step.
    let res = login_request(
        &app,
        json!({"email": "ana@example.com", "password": "nope"}),
    )
    .await;
    let body = assert_problem(res, 401).await;
    assert_eq!(
        body["type"],
        "https://waypost.dev/problems/invalid-credentials"
    );
}

async fn removal_needs_step_up_and_ownership(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let ana = owner(&app, "ana@example.com", "Acme").await;
    member(&app, ana.workspace_id, "bob@example.com", "admin").await;
    let s = login(&app, "ana@example.com", PASSWORD).await;
    let mut auth = authenticator();
    let created = register(&app, &s, &mut auth, "Laptop").await;
    let path = format!("/v1/auth/passkeys/{}", created["id"].as_str().unwrap());

    let bob = login(&app, "bob@example.com", PASSWORD).await;
    assert_problem(bob.delete(&app, &path).await, 404).await;
    let bobs: Value = bob
        .get(&app, "/v1/auth/passkeys")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(bobs, json!([]), "each user sees only their own passkeys");

    app.clock.advance(Duration::minutes(6));
    for res in [
        s.delete(&app, &path).await,
        s.post(&app, "/v1/auth/passkeys/register/start", json!({}))
            .await,
    ] {
        let body = assert_problem(res, 403).await;
        assert_eq!(body["type"], "https://waypost.dev/problems/reauth-required");
    }
    // A passkey is a second factor, so step-up needs it along with the password.
    let res = s
        .post(&app, "/v1/auth/reauth", json!({"password": PASSWORD}))
        .await;
    let problem = assert_problem(res, 401).await;
    assert_eq!(problem["type"], "https://waypost.dev/problems/mfa-required");
    assert_eq!(problem["methods"], json!(["passkey"]));
    let credential = assert_with(&mut auth, &app, &problem["options"]);
    let step_up = json!({"password": PASSWORD, "challenge_id": problem["challenge_id"], "credential": credential});
    let res = s.post(&app, "/v1/auth/reauth", step_up.clone()).await;
    assert_eq!(res.status(), 204);
    let replayed = s.post(&app, "/v1/auth/reauth", step_up).await;
    assert_problem(replayed, 401).await;
    assert_eq!(s.delete(&app, &path).await.status(), 204);
    assert_problem(s.delete(&app, &path).await, 404).await;
    let list: Value = s.get(&app, "/v1/auth/passkeys").await.json().await.unwrap();
    assert_eq!(list, json!([]));
    assert_eq!(
        audit_details(&app, "mfa.passkey_removed").await.len(),
        1,
        "the removal is audited once"
    );
    // Without passkeys, the password alone signs in again.
    login(&app, "ana@example.com", PASSWORD).await;
}

async fn credentials_are_encrypted_at_rest(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let ana = owner(&app, "ana@example.com", "Acme").await;
    let s = login(&app, "ana@example.com", PASSWORD).await;
    let mut auth = authenticator();
    let created = register(&app, &s, &mut auth, "Laptop").await;
    // A pending ceremony's state is encrypted too.
    let (_, pending) = login_start(&app, "ana@example.com").await;
    let challenge = pending["publicKey"]["challenge"]
        .as_str()
        .unwrap()
        .to_owned();

    let records = app.state.store.list_passkeys(&ana.user_id).await.unwrap();
    let record = &records[0];
    assert_eq!(json!(record.id), created["id"]);
    let plain = app
        .state
        .keys
        .current()
        .decrypt(
            Aad::new("passkeys", "credential", &record.id),
            &record.credential,
        )
        .unwrap();
    let passkey: Passkey = serde_json::from_slice(&plain).unwrap();
    let COSEKeyType::EC_EC2(key) = &passkey.get_public_key().key else {
        panic!("the soft authenticator makes P-256 keys");
    };
    let x = key.x.to_vec();
    let x_b64 = json!(key.x).as_str().unwrap().to_owned();
    let credential_id = passkey.cred_id().to_vec();
    let credential_id_b64 = json!(passkey.cred_id()).as_str().unwrap().to_owned();
    assert!(x.len() == 32 && credential_id.len() >= 16);

    let db = database_bytes(&app).await;
    assert!(contains(&db, "Laptop"), "the scan sees plaintext columns");
    let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
    for (what, needle) in [
        ("credential id (base64url)", credential_id_b64),
        ("credential id (hex)", hex(&credential_id)),
        ("public key (hex)", hex(&x)),
        ("public key (base64url)", x_b64),
        ("serialised credential", "EC_EC2".to_owned()),
        ("pending challenge", challenge),
    ] {
        assert!(!contains(&db, &needle), "{what} stored in plaintext");
    }
    if backend == Backend::Sqlite {
        let raw = |b: &[u8]| db.windows(b.len()).any(|w| w == b);
        assert!(!raw(&credential_id), "raw credential id stored");
        assert!(!raw(&x), "raw public key stored");
    }
}
