//! The dashboard through plain HTTP, as a browser without JavaScript uses it:
//! strangers are sent to sign in; the password and TOTP steps (with a signed
//! note between them) open a session; forms without the CSRF token or from
//! other sites are refused; pages follow the same permissions as the API; the
//! inbox shows the customer's words and sends the reply; step-up sends the
//! member to re-authenticate; assets are content-addressed and immutable.

use reqwest::header::{HeaderMap, HeaderValue};
use waypost_store::Backend;

use crate::helpers::TestApp;
use crate::messaging_fixture::{USER, fixture};
use crate::mfa::{code, enrol};
use crate::on_both_backends;
use crate::users::{PASSWORD, login, member};

on_both_backends!(
    strangers_sign_in_first_and_forms_need_the_token,
    password_then_totp_opens_a_session,
    pages_follow_the_api_permissions,
    the_inbox_shows_what_the_customer_wrote_and_sends_the_reply,
    creating_a_key_after_the_step_up_window_asks_to_reauthenticate,
    an_invitation_link_opens_a_page_that_creates_the_account,
    a_workspace_that_requires_mfa_sends_members_to_enrol_first,
    templates_are_created_from_their_page_with_the_apis_checks,
    the_shield_and_audit_pages_answer_with_the_engines_findings,
);

/// A browser's form post from our own pages.
pub(crate) async fn form(
    app: &TestApp,
    cookie: Option<&str>,
    path: &str,
    fields: &[(&str, &str)],
) -> reqwest::Response {
    let mut h = HeaderMap::new();
    h.insert("sec-fetch-site", HeaderValue::from_static("same-origin"));
    if let Some(c) = cookie {
        h.insert("cookie", HeaderValue::from_str(c).unwrap());
    }
    app.client
        .post(format!("{}{path}", app.address))
        .headers(h)
        .form(fields)
        .send()
        .await
        .unwrap()
}

pub(crate) async fn page(app: &TestApp, cookie: &str, path: &str) -> (u16, String) {
    let res = app
        .client
        .get(format!("{}{path}", app.address))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap();
    (res.status().as_u16(), res.text().await.unwrap())
}

pub(crate) fn location(res: &reqwest::Response) -> String {
    res.headers()["location"].to_str().unwrap().to_owned()
}

pub(crate) fn cookies(res: &reqwest::Response) -> Vec<String> {
    res.headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().split(';').next().unwrap().to_owned())
        .collect()
}

/// Signs in through the form; returns the browser's cookie header.
pub(crate) async fn sign_in(app: &TestApp, email: &str) -> String {
    let res = form(
        app,
        None,
        "/login",
        &[("email", email), ("password", PASSWORD), ("next", "/inbox")],
    )
    .await;
    assert_eq!(res.status(), 303, "{:?}", res.text().await);
    assert_eq!(location(&res), "/inbox");
    cookies(&res).join("; ")
}

/// The CSRF token a page's forms carry.
pub(crate) fn csrf_of(html: &str) -> String {
    let at = html
        .find("name=\"csrf\" value=\"")
        .expect("a form with a CSRF token")
        + 19;
    html[at..].split('"').next().unwrap().to_owned()
}

async fn strangers_sign_in_first_and_forms_need_the_token(backend: Backend) {
    let Some(f) = fixture(backend, |_| {}, |_| {}).await else {
        return;
    };
    let app = &f.app;
    let res = app
        .client
        .get(format!("{}/inbox?filter=mine", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    assert_eq!(location(&res), "/login?next=%2Finbox%3Ffilter%3Dmine");
    let res = app
        .client
        .get(format!("{}/login", app.address))
        .send()
        .await
        .unwrap();
    let csp = res.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe"),
        "{csp}"
    );
    assert!(res.text().await.unwrap().contains("<h1>Sign in</h1>"));
    // A wrong password shows the form again with the reason, never which part was wrong.
    let res = form(
        app,
        None,
        "/login",
        &[
            ("email", "ops@example.com"),
            ("password", "wrong-password-123"),
        ],
    )
    .await;
    assert_eq!(res.status(), 401);
    assert!(
        res.text()
            .await
            .unwrap()
            .contains("The email or password is wrong.")
    );
    // Another site cannot post our sign-in form (login CSRF).
    let res = app
        .client
        .post(format!("{}/login", app.address))
        .header("sec-fetch-site", "cross-site")
        .form(&[("email", "ops@example.com"), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    let cookie = sign_in(app, "ops@example.com").await;
    let (status, html) = page(app, &cookie, "/inbox").await;
    assert_eq!(status, 200);
    let csrf = csrf_of(&html);
    // A form without the token is refused, and so is one with a forged token.
    let res = form(app, Some(&cookie), "/logout", &[]).await;
    assert_eq!(res.status(), 403);
    let res = form(app, Some(&cookie), "/logout", &[("csrf", "forged")]).await;
    assert_eq!(res.status(), 403);
    assert_eq!(page(app, &cookie, "/inbox").await.0, 200, "still signed in");
    let res = form(app, Some(&cookie), "/logout", &[("csrf", &csrf)]).await;
    assert_eq!(res.status(), 303);
    assert_eq!(page(app, &cookie, "/inbox").await.0, 303, "signed out");
    // Assets: hashed names, cached for a year; anything else is not found.
    let css = html
        .split("href=\"/assets/")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap();
    let res = app
        .client
        .get(format!("{}/assets/{css}", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(
        res.headers()["cache-control"],
        "public, max-age=31536000, immutable"
    );
    assert_eq!(res.headers()["content-type"], "text/css; charset=utf-8");
    let res = app
        .client
        .get(format!("{}/assets/app.css", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
}

async fn password_then_totp_opens_a_session(backend: Backend) {
    let Some(f) = fixture(backend, |_| {}, |_| {}).await else {
        return;
    };
    let app = &f.app;
    let session = login(app, "ops@example.com", PASSWORD).await;
    let (secret, _) = enrol(app, &session).await;
    let res = form(
        app,
        None,
        "/login",
        &[("email", "ops@example.com"), ("password", PASSWORD)],
    )
    .await;
    assert_eq!(res.status(), 200);
    let note = cookies(&res)
        .into_iter()
        .find(|c| c.starts_with("waypost_signin="))
        .expect("the note between the steps");
    assert!(!note.contains(PASSWORD));
    assert!(
        cookies(&res)
            .iter()
            .all(|c| !c.starts_with("waypost_session=")),
        "no session before the second factor"
    );
    assert!(res.text().await.unwrap().contains("Two-step verification"));
    // A wrong code, then a forged note, are refused; the right code signs in.
    app.clock.advance(chrono::Duration::seconds(30));
    let res = form(
        app,
        Some(&note),
        "/login/second-factor",
        &[("code", "000000")],
    )
    .await;
    assert_eq!(res.status(), 401);
    let forged = format!("{}x", note);
    let res = form(
        app,
        Some(&forged),
        "/login/second-factor",
        &[("code", &code(app, &secret))],
    )
    .await;
    assert_eq!(res.status(), 401);
    assert!(res.text().await.unwrap().contains("took too long"));
    let res = form(
        app,
        Some(&note),
        "/login/second-factor",
        &[("code", &code(app, &secret)), ("next", "/contacts")],
    )
    .await;
    assert_eq!(res.status(), 303);
    assert_eq!(location(&res), "/contacts");
    let cookie = cookies(&res)
        .into_iter()
        .filter(|c| !c.starts_with("waypost_signin="))
        .collect::<Vec<_>>()
        .join("; ");
    assert_eq!(page(app, &cookie, "/contacts").await.0, 200);
    // The note expires after five minutes.
    let res = form(
        app,
        None,
        "/login",
        &[("email", "ops@example.com"), ("password", PASSWORD)],
    )
    .await;
    let note = cookies(&res)
        .into_iter()
        .find(|c| c.starts_with("waypost_signin="))
        .unwrap();
    app.clock.advance(chrono::Duration::seconds(301));
    let res = form(
        app,
        Some(&note),
        "/login/second-factor",
        &[("code", &code(app, &secret))],
    )
    .await;
    assert_eq!(res.status(), 401);
}

async fn pages_follow_the_api_permissions(backend: Backend) {
    let Some(f) = fixture(backend, |_| {}, |_| {}).await else {
        return;
    };
    let app = &f.app;
    member(app, f.ws, "agent@example.com", "agent").await;
    let agent = sign_in(app, "agent@example.com").await;
    let (status, html) = page(app, &agent, "/inbox").await;
    assert_eq!(status, 200);
    assert!(
        !html.contains("/developers/keys"),
        "agents are not shown the key page"
    );
    let (status, html) = page(app, &agent, "/developers/keys").await;
    assert_eq!(status, 403);
    assert!(html.contains("have access to this"), "{html}");
    let csrf = csrf_of(&page(app, &agent, "/inbox").await.1);
    let res = form(
        app,
        Some(&agent),
        "/developers/keys",
        &[("csrf", &csrf), ("name", "x"), ("scope[]", "messages:read")],
    )
    .await;
    assert_eq!(res.status(), 403);
    assert_eq!(
        f.app
            .state
            .store
            .list_api_keys(&f.ws.to_string())
            .await
            .unwrap()
            .len(),
        1,
        "no key was made"
    );
    let owner = sign_in(app, "ops@example.com").await;
    let (status, html) = page(app, &owner, "/developers/keys").await;
    assert_eq!(status, 200);
    assert!(
        html.contains("sender"),
        "the owner sees the workspace's keys"
    );
}

async fn the_inbox_shows_what_the_customer_wrote_and_sends_the_reply(backend: Backend) {
    let Some(f) = fixture(backend, |_| {}, |_| {}).await else {
        return;
    };
    f.keep_content().await;
    let wamid = f.inject(USER, "Hi, is my order on its way?").await;
    f.wait_inbound(&wamid).await;
    let app = &f.app;
    let cookie = sign_in(app, "ops@example.com").await;
    let (status, html) = page(app, &cookie, "/inbox").await;
    assert_eq!(status, 200);
    assert!(html.contains(&format!("+{USER}")), "{html}");
    assert!(html.contains("Window open"));
    let id = html
        .split("href=\"/inbox/")
        .nth(1)
        .map(|s| s.split(['?', '"']).next().unwrap().to_owned());
    let id = id.expect("a link to the conversation");
    let (status, thread) = page(app, &cookie, &format!("/inbox/{id}/thread")).await;
    assert_eq!(status, 200);
    assert!(thread.contains("Hi, is my order on its way?"));
    let (_, html) = page(app, &cookie, &format!("/inbox/{id}")).await;
    let csrf = csrf_of(&html);
    let res = form(
        app,
        Some(&cookie),
        &format!("/inbox/{id}/reply"),
        &[
            ("csrf", &csrf),
            ("body", "Yes! It ships today."),
            ("idempotency", "dash-one"),
        ],
    )
    .await;
    assert_eq!(res.status(), 303, "{:?}", res.text().await);
    // The same form sent twice sends once.
    let res = form(
        app,
        Some(&cookie),
        &format!("/inbox/{id}/reply"),
        &[
            ("csrf", &csrf),
            ("body", "Yes! It ships today."),
            ("idempotency", "dash-one"),
        ],
    )
    .await;
    assert_eq!(res.status(), 303);
    let res = app
        .client
        .get(format!("{}/v1/messages?direction=outbound", app.address))
        .bearer_auth(&f.key)
        .send()
        .await
        .unwrap();
    let sent: serde_json::Value = res.json().await.unwrap();
    assert_eq!(sent["data"].as_array().unwrap().len(), 1, "{sent}");
    let (_, thread) = page(app, &cookie, &format!("/inbox/{id}/thread")).await;
    assert!(thread.contains("Yes! It ships today."));
    // An empty reply is refused with the reason, on the page.
    let res = form(
        app,
        Some(&cookie),
        &format!("/inbox/{id}/reply"),
        &[("csrf", &csrf), ("body", " "), ("idempotency", "dash-two")],
    )
    .await;
    assert_eq!(res.status(), 422);
    assert!(res.text().await.unwrap().contains("Write a message first."));
}

async fn creating_a_key_after_the_step_up_window_asks_to_reauthenticate(backend: Backend) {
    let Some(f) = fixture(backend, |_| {}, |_| {}).await else {
        return;
    };
    let app = &f.app;
    let cookie = sign_in(app, "ops@example.com").await;
    app.clock.advance(chrono::Duration::seconds(
        app.config.step_up_window_secs as i64 + 1,
    ));
    let csrf = csrf_of(&page(app, &cookie, "/developers/keys").await.1);
    let fields = [
        ("csrf", csrf.as_str()),
        ("name", "shop"),
        ("scope[]", "messages:read"),
        ("scope[]", "messages:send"),
        ("expires_days", "30"),
    ];
    let res = form(app, Some(&cookie), "/developers/keys", &fields).await;
    assert_eq!(res.status(), 303);
    assert_eq!(location(&res), "/reauth?next=%2Fdevelopers%2Fkeys");
    let res = form(
        app,
        Some(&cookie),
        "/reauth",
        &[
            ("csrf", &csrf),
            ("password", "wrong-password-123"),
            ("next", "/developers/keys"),
        ],
    )
    .await;
    assert_eq!(res.status(), 401);
    let res = form(
        app,
        Some(&cookie),
        "/reauth",
        &[
            ("csrf", &csrf),
            ("password", PASSWORD),
            ("next", "/developers/keys"),
        ],
    )
    .await;
    assert_eq!(res.status(), 303);
    assert_eq!(location(&res), "/developers/keys");
    let res = form(app, Some(&cookie), "/developers/keys", &fields).await;
    assert_eq!(res.status(), 201);
    let html = res.text().await.unwrap();
    let key = html
        .split("id=\"new-key\">")
        .nth(1)
        .unwrap()
        .split('<')
        .next()
        .unwrap()
        .to_owned();
    assert!(key.starts_with("wp_live_"), "{key}");
    let keys = app
        .state
        .store
        .list_api_keys(&f.ws.to_string())
        .await
        .unwrap();
    let made = keys.iter().find(|k| k.name == "shop").expect("the key");
    let mut scopes: Vec<&str> = made.scopes.split_whitespace().collect();
    scopes.sort();
    assert_eq!(scopes, ["messages:read", "messages:send"]);
    assert!(made.expires_at.is_some());
    // Revoked from the page, it stops working.
    let ok = app
        .client
        .get(format!("{}/v1/messages", app.address))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    let res = form(
        app,
        Some(&cookie),
        &format!("/developers/keys/{}/revoke", made.id),
        &[("csrf", &csrf)],
    )
    .await;
    assert_eq!(res.status(), 303);
    let refused = app
        .client
        .get(format!("{}/v1/messages", app.address))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);
}

async fn an_invitation_link_opens_a_page_that_creates_the_account(backend: Backend) {
    let Some(f) = fixture(backend, |_| {}, |_| {}).await else {
        return;
    };
    let app = &f.app;
    let owner = login(app, "ops@example.com", PASSWORD).await;
    let res = owner
        .post(
            app,
            "/v1/invitations",
            serde_json::json!({"email": "new.agent@example.com", "role": "agent"}),
        )
        .await;
    assert_eq!(res.status(), 201);
    let created: serde_json::Value = res.json().await.unwrap();
    let url = created["url"].as_str().unwrap();
    let path = &url[url.find("/invitations/accept").unwrap()..];
    let token = created["token"].as_str().unwrap();
    let res = app
        .client
        .get(format!("{}{path}", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let html = res.text().await.unwrap();
    assert!(
        html.contains("Join Acme") && html.contains("new.agent@example.com"),
        "{html}"
    );
    // Mismatched passwords and a weak password are refused on the page.
    let res = form(
        app,
        None,
        "/invitations/accept",
        &[
            ("token", token),
            ("password", PASSWORD),
            ("password_again", "other-password-123"),
        ],
    )
    .await;
    assert_eq!(res.status(), 422);
    assert!(
        res.text()
            .await
            .unwrap()
            .contains("The two passwords differ.")
    );
    let res = form(
        app,
        None,
        "/invitations/accept",
        &[
            ("token", token),
            ("password", "short"),
            ("password_again", "short"),
        ],
    )
    .await;
    assert_eq!(res.status(), 422);
    let res = form(
        app,
        None,
        "/invitations/accept",
        &[
            ("token", token),
            ("password", PASSWORD),
            ("password_again", PASSWORD),
        ],
    )
    .await;
    assert_eq!(res.status(), 303);
    assert_eq!(location(&res), "/login?joined=1");
    let cookie = sign_in(app, "new.agent@example.com").await;
    assert_eq!(page(app, &cookie, "/inbox").await.0, 200);
    // The link works once.
    let res = app
        .client
        .get(format!("{}{path}", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    let res = app
        .client
        .get(format!("{}/invitations/accept?token=forged", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
}

async fn a_workspace_that_requires_mfa_sends_members_to_enrol_first(backend: Backend) {
    let Some(f) = fixture(backend, |_| {}, |_| {}).await else {
        return;
    };
    let app = &f.app;
    let owner = login(app, "ops@example.com", PASSWORD).await;
    enrol(app, &owner).await;
    let res = owner
        .patch(
            app,
            "/v1/workspace",
            serde_json::json!({"require_mfa": true}),
        )
        .await;
    assert_eq!(res.status(), 200, "{:?}", res.text().await);
    member(app, f.ws, "agent@example.com", "agent").await;
    let cookie = sign_in(app, "agent@example.com").await;
    let res = app
        .client
        .get(format!("{}/inbox", app.address))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    assert_eq!(location(&res), "/security/mfa");
    let (status, html) = page(app, &cookie, "/security/mfa").await;
    assert_eq!(status, 200);
    let csrf = csrf_of(&html);
    let res = form(
        app,
        Some(&cookie),
        "/security/mfa",
        &[("csrf", &csrf), ("action", "enroll")],
    )
    .await;
    assert_eq!(res.status(), 200);
    let html = res.text().await.unwrap();
    assert!(html.contains("data:image/svg+xml;base64,"), "a QR code");
    let uri = html
        .split("id=\"otpauth\">")
        .nth(1)
        .unwrap()
        .split('<')
        .next()
        .unwrap()
        .replace("&amp;", "&");
    let secret = crate::mfa::secret_from_uri(&uri);
    let res = form(
        app,
        Some(&cookie),
        "/security/mfa",
        &[("csrf", &csrf), ("action", "confirm"), ("code", "000000")],
    )
    .await;
    assert_eq!(res.status(), 422);
    let res = form(
        app,
        Some(&cookie),
        "/security/mfa",
        &[
            ("csrf", &csrf),
            ("action", "confirm"),
            ("code", &code(app, &secret)),
        ],
    )
    .await;
    assert_eq!(res.status(), 200);
    let html = res.text().await.unwrap();
    let codes = html
        .split("id=\"recovery-codes\">")
        .nth(1)
        .unwrap()
        .split("</ul>")
        .next()
        .unwrap();
    assert_eq!(
        codes.matches("<li>").count(),
        10,
        "ten recovery codes, shown once"
    );
    assert_eq!(
        page(app, &cookie, "/inbox").await.0,
        200,
        "enrolled members reach the inbox"
    );
    let (_, html) = page(app, &cookie, "/security/mfa").await;
    assert!(
        !html.contains("recovery-codes"),
        "codes are not shown again"
    );
}

async fn templates_are_created_from_their_page_with_the_apis_checks(backend: Backend) {
    let Some(f) = fixture(backend, |_| {}, |_| {}).await else {
        return;
    };
    let app = &f.app;
    let cookie = sign_in(app, "ops@example.com").await;
    let (status, html) = page(app, &cookie, "/templates").await;
    assert_eq!(status, 200);
    assert!(html.contains("No templates yet"));
    let csrf = csrf_of(&html);
    let fields = |name: &'static str| {
        vec![
            ("csrf", csrf.clone()),
            ("name", name.to_owned()),
            ("language", "en_US".to_owned()),
            ("category", "utility".to_owned()),
            ("body", "Hello {{1}}, order {{2}} ships today.".to_owned()),
            ("examples", "Ana, A-1".to_owned()),
        ]
    };
    let post = |fields: Vec<(&'static str, String)>| {
        let cookie = cookie.clone();
        async move {
            let pairs: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
            form(app, Some(&cookie), "/templates", &pairs).await
        }
    };
    let res = post(fields("Order Update")).await;
    assert_eq!(res.status(), 422);
    let html = res.text().await.unwrap();
    assert!(
        html.contains("`name` may contain only lower-case letters"),
        "{html}"
    );
    assert!(
        html.contains("Hello {{1}}, order {{2}} ships today."),
        "the form keeps what was typed"
    );
    let res = post(fields("order_update_two")).await;
    assert_eq!(res.status(), 303, "{:?}", res.text().await);
    let rows = app
        .state
        .store
        .list_templates(&f.ws.to_string(), &Default::default(), 10)
        .await
        .unwrap();
    let row = rows
        .iter()
        .find(|t| t.name == "order_update_two")
        .expect("stored");
    let components: serde_json::Value = serde_json::from_str(&row.components).unwrap();
    assert_eq!(
        components[0]["example"]["body_text"],
        serde_json::json!([["Ana", "A-1"]])
    );
    let (_, html) = page(app, &cookie, "/templates").await;
    assert!(html.contains("data-template=\"order_update_two\""));
}

async fn the_shield_and_audit_pages_answer_with_the_engines_findings(backend: Backend) {
    let Some(f) = fixture(backend, |_| {}, |_| {}).await else {
        return;
    };
    let app = &f.app;
    let cookie = sign_in(app, "ops@example.com").await;
    let (status, html) = page(app, &cookie, "/shield").await;
    assert_eq!(status, 200);
    let csrf = csrf_of(&html);
    let text =
        "URGENT: your parcel is held, pay the 1.99 fee now at http://parcel-redelivery-fee.xyz/pay";
    let res = form(
        app,
        Some(&cookie),
        "/shield",
        &[("csrf", &csrf), ("text", text)],
    )
    .await;
    assert_eq!(res.status(), 200);
    let html = res.text().await.unwrap();
    assert!(
        html.contains("suspicious_tld") && !html.contains(">ham<"),
        "{html}"
    );
    let res = form(
        app,
        Some(&cookie),
        "/shield",
        &[("csrf", &csrf), ("text", &"a".repeat(5000))],
    )
    .await;
    assert_eq!(res.status(), 422);
    let (status, html) = page(app, &cookie, "/audit?verify=1").await;
    assert_eq!(status, 200);
    assert!(html.contains("The chain is intact"), "{html}");
    assert!(html.contains("api_key.created"));
    member(app, f.ws, "agent@example.com", "agent").await;
    let agent = sign_in(app, "agent@example.com").await;
    assert_eq!(page(app, &agent, "/audit").await.0, 403);
}
