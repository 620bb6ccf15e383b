//! The operator pages: no member's session opens them (an owner and an agent
//! are sent to the operator sign-in); an operator token signs in with its own
//! short-lived cookie; incidents are recorded, listed with their 72-hour clock
//! (time left, overdue), changed and closed with the API's rules; the backup
//! page shows the newest scheduled backup; signing out and revoking the token
//! end the sign-in.

use std::time::Duration as StdDuration;

use chrono::Duration;
use waypost_core::NewAuditEvent;
use waypost_core::audit::Actor;
use waypost_server::backup::generate_identity;
use waypost_store::Backend;

use crate::dashboard::{csrf_of, form, location, page, sign_in};
use crate::helpers::{TestApp, spawn_app_with};
use crate::incidents::operator_token;
use crate::on_both_backends;
use crate::users::{audit_actions, member, owner};

on_both_backends!(operators_sign_in_with_their_token_and_keep_the_incident_register);

fn cookie_of(res: &reqwest::Response, name: &str) -> Option<String> {
    res.headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|c| c.starts_with(&format!("{name}=")))
}

fn input_time(app: &TestApp, ago: Duration) -> String {
    (app.clock_now() - ago).format("%Y-%m-%dT%H:%M").to_string()
}

async fn operators_sign_in_with_their_token_and_keep_the_incident_register(backend: Backend) {
    let keys = tempfile::tempdir().unwrap();
    let public = generate_identity(&keys.path().join("backup.key")).unwrap();
    let dir = keys.path().join("backups");
    let backup_dir = dir.clone();
    let Some(app) = spawn_app_with(backend, move |c| {
        c.backup_dir = Some(backup_dir);
        c.backup_recipient = Some(public);
    })
    .await
    else {
        return;
    };
    let app = &app;
    let acme = owner(app, "owner@example.com", "Acme").await;
    member(app, acme.workspace_id, "agent@example.com", "agent").await;

    // Members, whatever their role, are sent to the operator sign-in.
    for email in ["owner@example.com", "agent@example.com"] {
        let cookie = sign_in(app, email).await;
        for path in ["/operator/incidents", "/operator/backups"] {
            let res = app
                .client
                .get(format!("{}{path}", app.address))
                .header("cookie", &cookie)
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 303, "{email} {path}");
            assert!(location(&res).starts_with("/operator/login?next="));
        }
        let res = form(app, Some(&cookie), "/operator/incidents", &[]).await;
        assert_eq!(res.status(), 303, "{email} cannot post either");
        let (_, inbox) = page(app, &cookie, "/inbox").await;
        assert!(
            !inbox.contains("/operator/"),
            "no operator link for members"
        );
    }

    let (token_id, token) = operator_token(app).await;
    let res = form(
        app,
        None,
        "/operator/login",
        &[
            ("token", "wpo_not-a-real-token"),
            ("next", "/operator/backups"),
        ],
    )
    .await;
    assert_eq!(res.status(), 401);
    assert!(cookie_of(&res, "waypost_operator").is_none());
    assert!(res.text().await.unwrap().contains("not valid"));
    let res = form(
        app,
        None,
        "/operator/login",
        &[("token", token.as_str()), ("next", "https://evil.example/")],
    )
    .await;
    assert_eq!(res.status(), 303);
    assert_eq!(location(&res), "/operator/incidents", "only local next");
    let set = cookie_of(&res, "waypost_operator").expect("the operator cookie");
    for part in [
        "HttpOnly",
        "SameSite=Strict",
        "Path=/operator",
        "Max-Age=1800",
    ] {
        assert!(set.contains(part), "{set}");
    }
    assert!(!set.contains(&token), "the browser never holds the token");
    let op = set.split(';').next().unwrap().to_owned();

    let (status, html) = page(app, &op, "/operator/incidents").await;
    assert_eq!(status, 200);
    assert!(html.contains("No incidents"), "{html}");
    let csrf = csrf_of(&html);
    let bearer = app
        .client
        .get(format!("{}/operator/incidents", app.address))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(
        bearer.status(),
        403,
        "pages take the cookie, not the bearer"
    );

    let ws = acme.workspace_id.to_string();
    let new = |ago: Duration, severity: &'static str, csrf: String| {
        let detected = input_time(app, ago);
        let ws = ws.clone();
        let op = op.clone();
        async move {
            form(
                app,
                Some(&op),
                "/operator/incidents",
                &[
                    ("csrf", csrf.as_str()),
                    ("detected_at", detected.as_str()),
                    ("severity", severity),
                    ("description", "Backup bucket was world-readable"),
                    ("affected_workspaces", ws.as_str()),
                ],
            )
            .await
        }
    };
    assert_eq!(
        new(Duration::hours(1), "high", "forged".into())
            .await
            .status(),
        403,
        "a form without the operator's CSRF token"
    );
    let refused = new(Duration::hours(-2), "high", csrf.clone()).await;
    assert_eq!(refused.status(), 422);
    assert!(refused.text().await.unwrap().contains("in the future"));

    let res = new(Duration::hours(70), "high", csrf.clone()).await;
    assert_eq!(res.status(), 303);
    let soon = location(&res);
    assert!(soon.starts_with("/operator/incidents/inc_"), "{soon}");
    let soon_id = soon.rsplit('/').next().unwrap().to_owned();
    let late = location(&new(Duration::hours(80), "medium", csrf.clone()).await);
    let late_id = late.rsplit('/').next().unwrap().to_owned();

    let (_, html) = page(app, &op, "/operator/incidents").await;
    let row = |id: &str| {
        let at = html.find(&format!("data-incident=\"{id}\"")).unwrap();
        html[at..at + html[at..].find("</tr>").unwrap()].to_owned()
    };
    let soon_row = row(&soon_id);
    assert!(
        soon_row.contains("badge warn")
            && (soon_row.contains("1 h 59 min left") || soon_row.contains("2 h 0 min left")),
        "two hours left: {soon_row}"
    );
    let late_row = row(&late_id);
    assert!(
        late_row.contains("badge bad") && late_row.contains("overdue by 8 h 0 min"),
        "{late_row}"
    );
    assert!(
        html.find(&late_id) < html.find(&soon_id),
        "the nearest deadline first"
    );

    let res = form(
        app,
        Some(&op),
        &soon,
        &[
            ("csrf", csrf.as_str()),
            ("status", "contained"),
            ("severity", "critical"),
        ],
    )
    .await;
    assert_eq!(res.status(), 200);
    let html = res.text().await.unwrap();
    assert!(html.contains("Incident updated.") && html.contains("<dd data-status>contained</dd>"));
    let stored = app.state.store.get_incident(&soon_id).await.unwrap();
    assert_eq!(
        (stored.status.as_str(), stored.severity.as_str()),
        ("contained", "critical")
    );

    let close = format!("{soon}/close");
    let res = form(
        app,
        Some(&op),
        &close,
        &[
            ("csrf", csrf.as_str()),
            ("notified_at", input_time(app, Duration::hours(-3)).as_str()),
        ],
    )
    .await;
    assert_eq!(res.status(), 422, "notified in the future");
    let res = form(
        app,
        Some(&op),
        &close,
        &[
            ("csrf", csrf.as_str()),
            ("notified_at", input_time(app, Duration::zero()).as_str()),
            ("resolution", "Bucket made private"),
        ],
    )
    .await;
    assert_eq!(res.status(), 200);
    let html = res.text().await.unwrap();
    assert!(
        html.contains("Incident closed.") && html.contains("notified in time"),
        "{html}"
    );
    assert!(
        !html.contains("Close incident"),
        "a closed incident has no forms"
    );
    let res = form(
        app,
        Some(&op),
        &close,
        &[("csrf", csrf.as_str()), ("notified_at", "2026-01-01T00:00")],
    )
    .await;
    assert_eq!(res.status(), 409, "closed once");
    let (_, html) = page(app, &op, "/operator/incidents?status=closed").await;
    assert!(html.contains(&soon_id) && !html.contains(&late_id));

    // The scheduler writes its first backup within a moment of starting.
    let mut waited = 0;
    while !dir.is_dir()
        || !std::fs::read_dir(&dir).unwrap().any(|e| {
            e.unwrap()
                .file_name()
                .to_string_lossy()
                .ends_with("Z.backup")
        })
    {
        assert!(waited < 300, "no scheduled backup was written");
        tokio::time::sleep(StdDuration::from_millis(100)).await;
        waited += 1;
    }
    let (status, html) = page(app, &op, "/operator/backups").await;
    assert_eq!(status, 200);
    let hourly = format!("hourly-{}", app.clock_now().format("%Y%m%d"));
    assert!(html.contains(&format!("data-backup=\"{hourly}")), "{html}");
    assert!(html.contains("encrypted, envelope readable"), "{html}");
    assert!(html.contains("<dd data-next>"), "{html}");
    assert!(!html.contains("role=\"alert\""), "no failure: {html}");

    let actions = audit_actions(app, None).await;
    for a in [
        "operator.dashboard_signed_in",
        "incident.created",
        "incident.updated",
        "incident.closed",
    ] {
        assert!(actions.iter().any(|x| x == a), "{a} in {actions:?}");
    }

    // Signing out forgets the cookie; revoking the token ends any copy of it.
    let res = form(
        app,
        Some(&op),
        "/operator/logout",
        &[("csrf", csrf.as_str())],
    )
    .await;
    assert_eq!(res.status(), 303);
    assert!(
        cookie_of(&res, "waypost_operator")
            .unwrap()
            .contains("Max-Age=0")
    );
    app.state
        .store
        .revoke_operator_token(
            &token_id,
            app.clock_now(),
            NewAuditEvent::new(None, Actor::System, "operator_token.revoked")
                .target("operator_token", token_id.clone()),
        )
        .await
        .unwrap();
    let res = app
        .client
        .get(format!("{}/operator/backups", app.address))
        .header("cookie", &op)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303, "a revoked token's cookie opens nothing");
    assert_eq!(location(&res), "/operator/login?next=%2Foperator%2Fbackups");
}
