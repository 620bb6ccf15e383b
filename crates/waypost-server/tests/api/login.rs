//! Login, lockout, throttling, sessions, password change, CSRF and step-up.

use chrono::Duration;
use serde_json::json;
use waypost_store::Backend;

use crate::helpers::{assert_problem, spawn_app, spawn_app_with};
use crate::on_both_backends;
use crate::users::*;

on_both_backends!(
    login_sets_a_strict_cookie_and_me_answers,
    unknown_email_and_wrong_password_answer_alike,
    fifth_failure_locks_and_lockouts_double,
    unknown_accounts_lock_like_real_ones,
    login_attempts_are_throttled_per_address,
    sessions_expire_when_idle_and_absolutely,
    sessions_are_listed_and_revoked,
    password_change_ends_other_sessions,
    cookie_requests_from_other_sites_are_refused,
    sensitive_actions_need_recent_authentication,
    imported_bcrypt_hashes_are_upgraded_on_login,
);

async fn login_sets_a_strict_cookie_and_me_answers(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let a = owner(&app, "ana@example.com", "Acme").await;
    let res = login_request(
        &app,
        json!({"email": "ANA@example.com ", "password": PASSWORD}),
    )
    .await;
    assert_eq!(res.status(), 200);
    let cookie = res.headers()["set-cookie"].to_str().unwrap().to_owned();
    for attr in ["waypost_session=", "HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(cookie.contains(attr), "{cookie}");
    }
    assert!(
        !cookie.contains("Secure"),
        "plain HTTP without a trusted proxy: no Secure flag"
    );
    let token = cookie
        .split(';')
        .next()
        .unwrap()
        .trim_start_matches("waypost_session=");
    assert_eq!(token.len(), 43, "256-bit token in base64url");

    let session = login(&app, "ana@example.com", PASSWORD).await;
    let me: serde_json::Value = session.get(&app, "/v1/auth/me").await.json().await.unwrap();
    assert_eq!(me["user_id"], a.user_id.as_str());
    assert_eq!(me["memberships"][0]["role"], "owner");
    assert_eq!(me["mfa"]["totp"], false);

    let proxied = app
        .client
        .post(format!("{}/v1/auth/login", app.address))
        .header("x-forwarded-proto", "https")
        .json(&json!({"email": "ana@example.com", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert!(
        !proxied.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .contains("Secure"),
        "proxy headers untrusted by default"
    );
    assert!(
        audit_actions(&app, None)
            .await
            .iter()
            .filter(|a| *a == "auth.login")
            .count()
            >= 2
    );
}

async fn unknown_email_and_wrong_password_answer_alike(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    owner(&app, "ana@example.com", "Acme").await;
    let wrong = login_request(
        &app,
        json!({"email": "ana@example.com", "password": "not-the-password-1"}),
    )
    .await;
    let wrong = assert_problem(wrong, 401).await;
    let unknown = login_request(
        &app,
        json!({"email": "nobody@example.com", "password": "not-the-password-1"}),
    )
    .await;
    let unknown = assert_problem(unknown, 401).await;
    assert_eq!(wrong["type"], unknown["type"]);
    assert_eq!(wrong["detail"], unknown["detail"]);
    let malformed = assert_problem(
        login_request(&app, json!({"email": "not an email", "password": "x"})).await,
        401,
    )
    .await;
    assert_eq!(malformed["detail"], wrong["detail"]);
    let actions = audit_actions(&app, None).await;
    assert_eq!(
        actions.iter().filter(|a| *a == "auth.login_failed").count(),
        3,
        "{actions:?}"
    );
}

async fn fifth_failure_locks_and_lockouts_double(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    owner(&app, "ana@example.com", "Acme").await;
    let attempt =
        |pw: &'static str| login_request(&app, json!({"email": "ana@example.com", "password": pw}));
    for _ in 0..4 {
        assert_eq!(attempt("wrong-password-123").await.status(), 401);
    }
    let fifth = attempt("wrong-password-123").await;
    assert_eq!(fifth.status(), 429, "the 5th failure locks");
    let retry: i64 = fifth.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((890..=900).contains(&retry), "15 minutes: {retry}");
    let body = assert_problem(attempt(PASSWORD).await, 429).await;
    assert_eq!(
        body["type"], "https://waypost.dev/problems/account-locked",
        "the right password does not bypass a lock"
    );

    app.clock.advance(Duration::minutes(16));
    for _ in 0..4 {
        assert_eq!(attempt("wrong-password-123").await.status(), 401);
    }
    let second = attempt("wrong-password-123").await;
    let retry: i64 = second.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        (1790..=1800).contains(&retry),
        "the second lockout lasts 30 minutes: {retry}"
    );

    app.clock.advance(Duration::minutes(31));
    assert_eq!(attempt(PASSWORD).await.status(), 200);
    let actions = audit_actions(&app, None).await;
    assert_eq!(actions.iter().filter(|a| *a == "auth.locked").count(), 2);
}

async fn unknown_accounts_lock_like_real_ones(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    for i in 1..=5 {
        let res = login_request(
            &app,
            json!({"email": "ghost@example.com", "password": "wrong-password-123"}),
        )
        .await;
        assert_eq!(res.status(), if i < 5 { 401 } else { 429 });
    }
    let res = login_request(
        &app,
        json!({"email": "ghost@example.com", "password": "wrong-password-123"}),
    )
    .await;
    assert_eq!(res.status(), 429);
    assert!(res.headers().contains_key("retry-after"));
    assert_eq!(
        assert_problem(res, 429).await["type"],
        "https://waypost.dev/problems/account-locked"
    );
}

async fn login_attempts_are_throttled_per_address(backend: Backend) {
    let Some(app) = spawn_app_with(backend, |c| c.rate_limit_login_per_ip_per_minute = 3).await
    else {
        return;
    };
    for attempt in 0..3 {
        let res = login_request(
            &app,
            json!({"email": "x@example.com", "password": "whatever-password"}),
        )
        .await;
        assert_eq!(res.status(), 401);
        // The headers describe the sign-in quota, not the per-address API quota.
        assert_eq!(res.headers()["ratelimit-limit"], "3");
        assert_eq!(
            res.headers()["ratelimit-remaining"],
            (2 - attempt).to_string().as_str()
        );
    }
    let res = login_request(
        &app,
        json!({"email": "y@example.com", "password": "whatever-password"}),
    )
    .await;
    assert_eq!(res.status(), 429);
    for h in [
        "retry-after",
        "ratelimit-limit",
        "ratelimit-remaining",
        "ratelimit-reset",
    ] {
        assert!(res.headers().contains_key(h), "missing {h}");
    }
    assert_eq!(res.headers()["ratelimit-remaining"], "0");
}

async fn sessions_expire_when_idle_and_absolutely(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    owner(&app, "ana@example.com", "Acme").await;
    let s = login(&app, "ana@example.com", PASSWORD).await;
    app.clock.advance(Duration::minutes(29));
    assert_eq!(
        s.get(&app, "/v1/auth/me").await.status(),
        200,
        "activity within 30 minutes keeps it"
    );
    app.clock.advance(Duration::minutes(29));
    assert_eq!(s.get(&app, "/v1/auth/me").await.status(), 200);
    app.clock.advance(Duration::minutes(31));
    let body = assert_problem(s.get(&app, "/v1/auth/me").await, 401).await;
    assert_eq!(body["type"], "https://waypost.dev/problems/session-expired");

    let s = login(&app, "ana@example.com", PASSWORD).await;
    for _ in 0..(12 * 60 / 20 - 1) {
        app.clock.advance(Duration::minutes(20));
        assert_eq!(s.get(&app, "/v1/auth/me").await.status(), 200);
    }
    app.clock.advance(Duration::minutes(21));
    assert_eq!(
        s.get(&app, "/v1/auth/me").await.status(),
        401,
        "12 hours is the absolute limit"
    );
}

async fn sessions_are_listed_and_revoked(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    owner(&app, "ana@example.com", "Acme").await;
    let laptop = login(&app, "ana@example.com", PASSWORD).await;
    let phone = login(&app, "ana@example.com", PASSWORD).await;
    let tablet = login(&app, "ana@example.com", PASSWORD).await;
    let list: Vec<serde_json::Value> = laptop
        .get(&app, "/v1/auth/sessions")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list.len(), 3);
    assert_eq!(list.iter().filter(|s| s["current"] == true).count(), 1);
    assert!(list.iter().all(|s| s["ip"] == "127.0.0.1"
        && s["created_at"].is_string()
        && s["last_seen_at"].is_string()));

    let phone_list: Vec<serde_json::Value> = phone
        .get(&app, "/v1/auth/sessions")
        .await
        .json()
        .await
        .unwrap();
    let phone_id = phone_list.iter().find(|s| s["current"] == true).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        laptop
            .delete(&app, &format!("/v1/auth/sessions/{phone_id}"))
            .await
            .status(),
        204
    );
    assert_eq!(
        phone.get(&app, "/v1/auth/me").await.status(),
        401,
        "revoked at once"
    );
    assert_problem(
        laptop
            .delete(&app, &format!("/v1/auth/sessions/{phone_id}"))
            .await,
        404,
    )
    .await;

    assert_eq!(laptop.delete(&app, "/v1/auth/sessions").await.status(), 204);
    assert_eq!(tablet.get(&app, "/v1/auth/me").await.status(), 401);
    assert_eq!(
        laptop.get(&app, "/v1/auth/me").await.status(),
        200,
        "the current session stays"
    );
    assert_eq!(
        laptop
            .post(&app, "/v1/auth/logout", json!({}))
            .await
            .status(),
        204
    );
    assert_eq!(laptop.get(&app, "/v1/auth/me").await.status(), 401);
}

async fn password_change_ends_other_sessions(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    owner(&app, "ana@example.com", "Acme").await;
    let here = login(&app, "ana@example.com", PASSWORD).await;
    let elsewhere = login(&app, "ana@example.com", PASSWORD).await;
    let new_password = "amber-falcon-orchard-2031";
    let res = here
        .post(
            &app,
            "/v1/auth/password",
            json!({"current_password": "wrong-password-1", "new_password": new_password}),
        )
        .await;
    assert_problem(res, 401).await;
    for weak in ["short", "password1234", "aaaaaaaaaaaaaaaa"] {
        let res = here
            .post(
                &app,
                "/v1/auth/password",
                json!({"current_password": PASSWORD, "new_password": weak}),
            )
            .await;
        let body = assert_problem(res, 422).await;
        assert_eq!(body["type"], "https://waypost.dev/problems/weak-password");
        assert!(
            !body.to_string().contains(weak),
            "the password is not echoed"
        );
    }
    let res = here
        .post(
            &app,
            "/v1/auth/password",
            json!({"current_password": PASSWORD, "new_password": new_password}),
        )
        .await;
    assert_eq!(res.status(), 204);
    assert_eq!(elsewhere.get(&app, "/v1/auth/me").await.status(), 401);
    assert_eq!(here.get(&app, "/v1/auth/me").await.status(), 200);
    assert_eq!(
        login_request(
            &app,
            json!({"email": "ana@example.com", "password": PASSWORD})
        )
        .await
        .status(),
        401
    );
    login(&app, "ana@example.com", new_password).await;
    assert!(
        audit_actions(&app, None)
            .await
            .contains(&"auth.password_changed".to_owned())
    );
}

async fn cookie_requests_from_other_sites_are_refused(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    owner(&app, "ana@example.com", "Acme").await;
    let s = login(&app, "ana@example.com", PASSWORD).await;
    let url = format!("{}/v1/auth/sessions", app.address);
    let send = |headers: Vec<(&'static str, String)>| {
        let mut req = app.client.delete(&url).header("cookie", &s.cookie);
        for (k, v) in headers {
            req = req.header(k, v);
        }
        req.send()
    };
    let cross = send(vec![("sec-fetch-site", "cross-site".into())])
        .await
        .unwrap();
    assert_eq!(
        assert_problem(cross, 403).await["type"],
        "https://waypost.dev/problems/csrf"
    );
    let evil = send(vec![("origin", "https://evil.example".into())])
        .await
        .unwrap();
    assert_eq!(evil.status(), 403);
    let bare = send(vec![]).await.unwrap();
    assert_eq!(bare.status(), 403, "no Origin and no token");
    let bad_token = send(vec![("x-csrf-token", "forged".into())]).await.unwrap();
    assert_eq!(bad_token.status(), 403);
    let with_token = send(vec![("x-csrf-token", s.csrf.clone())]).await.unwrap();
    assert_eq!(with_token.status(), 204);
    // The same host under another scheme is another origin.
    let other_scheme = app.address.replace("http://", "https://");
    let https = send(vec![("origin", other_scheme)]).await.unwrap();
    assert_eq!(https.status(), 403, "https origin on a plain HTTP server");
    let same_origin = send(vec![("origin", app.address.clone())]).await.unwrap();
    assert_eq!(same_origin.status(), 204);
    let get = app
        .client
        .get(format!("{}/v1/auth/me", app.address))
        .header("cookie", &s.cookie)
        .header("sec-fetch-site", "cross-site")
        .send()
        .await
        .unwrap();
    assert_eq!(get.status(), 200, "safe methods are not CSRF-checked");
}

async fn sensitive_actions_need_recent_authentication(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    owner(&app, "ana@example.com", "Acme").await;
    let s = login(&app, "ana@example.com", PASSWORD).await;
    let body = json!({"name": "ci", "scopes": ["audit:read"]});
    assert_eq!(
        s.post(&app, "/v1/api-keys", body.clone()).await.status(),
        201,
        "a fresh login counts"
    );
    app.clock.advance(Duration::minutes(6));
    let res = s.post(&app, "/v1/api-keys", body.clone()).await;
    assert_eq!(
        assert_problem(res, 403).await["type"],
        "https://waypost.dev/problems/reauth-required"
    );
    assert_problem(
        s.post(
            &app,
            "/v1/auth/reauth",
            json!({"password": "wrong-password-1"}),
        )
        .await,
        401,
    )
    .await;
    assert_eq!(
        s.post(&app, "/v1/auth/reauth", json!({"password": PASSWORD}))
            .await
            .status(),
        204
    );
    assert_eq!(s.post(&app, "/v1/api-keys", body).await.status(), 201);
    assert!(
        audit_actions(&app, None)
            .await
            .contains(&"auth.reauthenticated".to_owned())
    );
}

async fn imported_bcrypt_hashes_are_upgraded_on_login(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let a = owner(&app, "ana@example.com", "Acme").await;
    // Cost 4 keeps the test fast; real imports use cost 12 or more and verify the same way.
    let legacy = bcrypt::hash("legacy-harbor-pass-77", 4).unwrap();
    app.state
        .store
        .set_password_hash(&a.user_id, &legacy)
        .await
        .unwrap();
    login(&app, "ana@example.com", "legacy-harbor-pass-77").await;
    let user = waypost_server::emails::user(&app.state, &a.user_id)
        .await
        .unwrap();
    assert!(
        user.password_hash.starts_with("$argon2id$"),
        "rehashed on login"
    );
    login(&app, "ana@example.com", "legacy-harbor-pass-77").await;
}
