//! Passkeys from the dashboard, driven by a software authenticator the way the
//! page's script drives the browser's: added from Security → Passkeys (as a
//! discoverable credential, after step-up), renamed, used to sign in without a
//! password and as the second factor after one, refused when replayed or
//! started elsewhere, and removed only after re-authentication.

use serde_json::{Value, json};
use waypost_store::Backend;
use webauthn_authenticator_rs::WebauthnAuthenticator;
use webauthn_authenticator_rs::softpasskey::SoftPasskey;
use webauthn_rs::prelude::{CreationChallengeResponse, RequestChallengeResponse, Url};

use crate::dashboard::{cookies, csrf_of, form, location, page, sign_in};
use crate::helpers::{TestApp, spawn_app};
use crate::on_both_backends;
use crate::users::{PASSWORD, audit_actions, owner};

on_both_backends!(
    passkeys_are_added_renamed_used_and_removed_from_their_page,
    a_passkey_is_the_second_factor_after_the_password,
);

type Authenticator = WebauthnAuthenticator<SoftPasskey>;

/// The origin a browser on the app's pages would report.
fn origin(app: &TestApp) -> Url {
    app.state.config.webauthn().unwrap().1
}

async fn json_of(res: reqwest::Response) -> (u16, Value) {
    let status = res.status().as_u16();
    (status, res.json().await.unwrap())
}

/// A passkey added through the page's endpoints.
struct Enrolled {
    auth: Authenticator,
    /// The credential id, as the browser reports it.
    credential_id: Value,
    /// The WebAuthn user handle, which a discoverable credential returns.
    user_handle: Value,
}

async fn enrol(app: &TestApp, cookie: &str, csrf: &str, name: &str) -> Enrolled {
    let res = form(
        app,
        Some(cookie),
        "/security/passkeys/register/start",
        &[("csrf", csrf), ("name", name)],
    )
    .await;
    let (status, started) = json_of(res).await;
    assert_eq!(status, 200, "{started}");
    let selection = &started["options"]["publicKey"]["authenticatorSelection"];
    assert_eq!(
        selection["residentKey"], "required",
        "dashboard passkeys are discoverable"
    );
    // The software authenticator cannot store credentials; it signs the
    // same way, and the user handle a stored one returns is added below.
    let mut options = started["options"].clone();
    options["publicKey"]["authenticatorSelection"]["requireResidentKey"] = json!(false);
    let options: CreationChallengeResponse = serde_json::from_value(options).unwrap();
    let mut auth = WebauthnAuthenticator::new(SoftPasskey::new(true));
    let credential = auth.do_registration(origin(app), options).unwrap();
    let credential = serde_json::to_string(&credential).unwrap();
    let challenge_id = started["challenge_id"].as_str().unwrap();
    let res = form(
        app,
        Some(cookie),
        "/security/passkeys/register/finish",
        &[
            ("csrf", csrf),
            ("challenge_id", challenge_id),
            ("name", name),
            ("credential", &credential),
        ],
    )
    .await;
    let (status, done) = json_of(res).await;
    assert_eq!(status, 200, "{done}");
    assert!(
        done["redirect"]
            .as_str()
            .unwrap()
            .starts_with("/security/passkeys?added="),
        "{done}"
    );
    let credential: Value = serde_json::from_str(&credential).unwrap();
    Enrolled {
        auth,
        credential_id: credential["id"].clone(),
        user_handle: started["options"]["publicKey"]["user"]["id"].clone(),
    }
}

/// Answers sign-in options; with `handle`, as a discoverable credential does.
fn answer(app: &TestApp, e: &mut Enrolled, options: &Value, discoverable: bool) -> String {
    let mut options = options.clone();
    if discoverable {
        assert_eq!(
            options["publicKey"]["allowCredentials"],
            json!([]),
            "no account named"
        );
        assert!(options.get("mediation").is_none(), "a modal prompt");
        // A stored credential is found by the authenticator itself.
        options["publicKey"]["allowCredentials"] =
            json!([{ "type": "public-key", "id": e.credential_id }]);
    }
    let options: RequestChallengeResponse = serde_json::from_value(options).unwrap();
    let credential = e.auth.do_authentication(origin(app), options).unwrap();
    let mut credential = serde_json::to_value(credential).unwrap();
    if discoverable {
        credential["response"]["userHandle"] = e.user_handle.clone();
    }
    credential.to_string()
}

async fn passkeys_are_added_renamed_used_and_removed_from_their_page(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let account = owner(&app, "ana@example.com", "Acme").await;
    let cookie = sign_in(&app, "ana@example.com").await;
    let (status, html) = page(&app, &cookie, "/security/passkeys").await;
    assert_eq!(status, 200);
    assert!(html.contains("No passkeys yet"), "{html}");
    let csrf = csrf_of(&html);

    // The start needs the form's token.
    let res = form(
        &app,
        Some(&cookie),
        "/security/passkeys/register/start",
        &[("name", "Laptop")],
    )
    .await;
    assert_eq!(res.status(), 403);

    let mut enrolled = enrol(&app, &cookie, &csrf, "Laptop").await;
    let (_, html) = page(&app, &cookie, "/security/passkeys?added=Laptop").await;
    assert!(html.contains("<strong>Laptop</strong>"), "{html}");
    assert!(
        html.contains("<span class=\"muted\">never</span>"),
        "not used yet: {html}"
    );
    let stored = app
        .state
        .store
        .list_passkeys(&account.user_id)
        .await
        .unwrap();
    assert_eq!(stored.len(), 1);
    let id = stored[0].id.clone();

    // Renamed; an empty name is refused with the API's words.
    let rename = format!("/security/passkeys/{id}/rename");
    let res = form(
        &app,
        Some(&cookie),
        &rename,
        &[("csrf", &csrf), ("name", "  ")],
    )
    .await;
    assert_eq!(res.status(), 422);
    assert!(res.text().await.unwrap().contains("printable characters"));
    let res = form(
        &app,
        Some(&cookie),
        &rename,
        &[("csrf", &csrf), ("name", "Work laptop")],
    )
    .await;
    assert_eq!(res.status(), 303);
    let (_, html) = page(&app, &cookie, &location(&res)).await;
    assert!(html.contains("<strong>Work laptop</strong>"), "{html}");

    // Passwordless: no email, the authenticator names the account.
    let cross = app
        .client
        .post(format!("{}/login/passkey/start", app.address))
        .header("sec-fetch-site", "cross-site")
        .send()
        .await
        .unwrap();
    assert_eq!(cross.status(), 403, "login CSRF refused");
    let (status, started) = json_of(form(&app, None, "/login/passkey/start", &[]).await).await;
    assert_eq!(status, 200, "{started}");
    let credential = answer(&app, &mut enrolled, &started["options"], true);
    let challenge_id = started["challenge_id"].as_str().unwrap();
    let fields = [
        ("challenge_id", challenge_id),
        ("credential", credential.as_str()),
        ("next", "/security/passkeys"),
    ];
    let res = form(&app, None, "/login/passkey/finish", &fields).await;
    let passwordless = cookies(&res).join("; ");
    let (status, done) = json_of(res).await;
    assert_eq!(status, 200, "{done}");
    assert_eq!(done["redirect"], "/security/passkeys");
    assert!(passwordless.contains("waypost_session="), "{passwordless}");
    let (status, html) = page(&app, &passwordless, "/security/passkeys").await;
    assert_eq!(status, 200, "the new session opens pages");
    assert!(
        !html.contains("<span class=\"muted\">never</span>"),
        "last use recorded: {html}"
    );
    // The same answer again is refused: the challenge is gone.
    let (status, again) = json_of(form(&app, None, "/login/passkey/finish", &fields).await).await;
    assert_eq!(status, 422, "{again}");
    assert!(
        audit_actions(&app, None)
            .await
            .contains(&"auth.login".to_owned())
    );

    // Removal needs a recent sign-in: first to re-authentication and back.
    app.clock.advance(chrono::Duration::seconds(
        app.config.step_up_window_secs as i64 + 1,
    ));
    let remove = format!("/security/passkeys/{id}/remove");
    let res = form(&app, Some(&cookie), &remove, &[("csrf", &csrf)]).await;
    assert_eq!(res.status(), 303);
    assert_eq!(location(&res), "/reauth?next=%2Fsecurity%2Fpasskeys");
    // Adding another asks the page's script to go there too.
    let (status, body) = json_of(
        form(
            &app,
            Some(&cookie),
            "/security/passkeys/register/start",
            &[("csrf", &csrf), ("name", "Phone")],
        )
        .await,
    )
    .await;
    assert_eq!(status, 403);
    assert_eq!(
        body["redirect"], "/reauth?next=%2Fsecurity%2Fpasskeys",
        "{body}"
    );
    // Without TOTP, the password alone no longer confirms: the passkey too, as the API asks.
    let (_, html) = page(&app, &cookie, "/reauth?next=%2Fsecurity%2Fpasskeys").await;
    assert!(html.contains("Confirm with passkey"), "{html}");
    let password_only = [
        ("csrf", csrf.as_str()),
        ("password", PASSWORD),
        ("next", "/security/passkeys"),
    ];
    let res = form(&app, Some(&cookie), "/reauth", &password_only).await;
    assert_eq!(res.status(), 401);
    let wrong = [("csrf", csrf.as_str()), ("password", "not-the-password-1")];
    let (status, _) =
        json_of(form(&app, Some(&cookie), "/reauth/passkey/start", &wrong).await).await;
    assert_eq!(status, 401);
    let (status, started) =
        json_of(form(&app, Some(&cookie), "/reauth/passkey/start", &password_only).await).await;
    assert_eq!(status, 200, "{started}");
    let credential = answer(&app, &mut enrolled, &started["options"], false);
    let mut confirm = password_only.to_vec();
    confirm.push(("challenge_id", started["challenge_id"].as_str().unwrap()));
    confirm.push(("credential", &credential));
    let (status, done) =
        json_of(form(&app, Some(&cookie), "/reauth/passkey/finish", &confirm).await).await;
    assert_eq!(status, 200, "{done}");
    assert_eq!(done["redirect"], "/security/passkeys");
    let res = form(&app, Some(&cookie), &remove, &[("csrf", &csrf)]).await;
    assert_eq!(res.status(), 303);
    assert_eq!(location(&res), "/security/passkeys?removed=1");
    assert_eq!(
        app.state
            .store
            .count_passkeys(&account.user_id)
            .await
            .unwrap(),
        0
    );
    // Removing it again finds nothing.
    let res = form(&app, Some(&cookie), &remove, &[("csrf", &csrf)]).await;
    assert_eq!(res.status(), 404);
    let actions = audit_actions(&app, None).await;
    for a in [
        "mfa.passkey_added",
        "mfa.passkey_renamed",
        "mfa.passkey_removed",
    ] {
        assert!(actions.contains(&a.to_owned()), "{a} in {actions:?}");
    }
}

async fn a_passkey_is_the_second_factor_after_the_password(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    owner(&app, "ana@example.com", "Acme").await;
    let cookie = sign_in(&app, "ana@example.com").await;
    let csrf = csrf_of(&page(&app, &cookie, "/security/passkeys").await.1);
    let mut enrolled = enrol(&app, &cookie, &csrf, "Laptop").await;

    let res = form(
        &app,
        None,
        "/login",
        &[
            ("email", "ana@example.com"),
            ("password", PASSWORD),
            ("next", "/inbox"),
        ],
    )
    .await;
    assert_eq!(res.status(), 200, "a second step, not a session yet");
    let note = cookies(&res).join("; ");
    assert!(note.contains("waypost_signin="), "{note}");
    let html = res.text().await.unwrap();
    assert!(html.contains("Use my passkey"), "{html}");
    assert!(
        !html.contains("Code from your authenticator app"),
        "no TOTP without an app"
    );

    // Without the password step's note there is nothing to answer.
    let (status, _) =
        json_of(form(&app, None, "/login/passkey/second-factor/start", &[]).await).await;
    assert_eq!(status, 401);
    let (status, started) =
        json_of(form(&app, Some(&note), "/login/passkey/second-factor/start", &[]).await).await;
    assert_eq!(status, 200, "{started}");
    assert_eq!(
        started["options"]["publicKey"]["allowCredentials"][0]["id"],
        enrolled.credential_id
    );
    let credential = answer(&app, &mut enrolled, &started["options"], false);
    let fields = [
        ("challenge_id", started["challenge_id"].as_str().unwrap()),
        ("credential", credential.as_str()),
        ("next", "/inbox"),
    ];
    // A garbled answer is refused without spending the challenge.
    let garbled = [fields[0], ("credential", "{}"), ("next", "/inbox")];
    let (status, body) = json_of(
        form(
            &app,
            Some(&note),
            "/login/passkey/second-factor/finish",
            &garbled,
        )
        .await,
    )
    .await;
    assert_eq!(status, 422, "{body}");
    let res = form(
        &app,
        Some(&note),
        "/login/passkey/second-factor/finish",
        &fields,
    )
    .await;
    let session = cookies(&res).join("; ");
    let (status, done) = json_of(res).await;
    assert_eq!(status, 200, "{done}");
    assert_eq!(done["redirect"], "/inbox");
    assert!(session.contains("waypost_session="), "{session}");
    assert_eq!(page(&app, &session, "/inbox").await.0, 200);
}
