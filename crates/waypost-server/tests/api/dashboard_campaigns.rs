//! The campaign pages through plain HTTP, as a browser without JavaScript
//! uses them: a draft is saved from the form with the API's refusals, its
//! pre-flight is confirmed and it runs to completion while the live region
//! counts; the outcomes are paged and downloaded as CSV; a running campaign
//! is paused, resumed and cancelled with buttons; roles without
//! `campaigns:manage` neither see nor post any of it.

use std::time::{Duration, Instant};

use waypost_store::Backend;

use crate::campaign_sending::{audience, draft, manager, sending_fixture, wait_campaign};
use crate::dashboard::{csrf_of, form, location, page, sign_in};
use crate::on_both_backends;
use crate::users::member;

on_both_backends!(
    a_campaign_is_saved_started_and_watched_from_its_pages,
    buttons_pause_resume_and_cancel_and_other_roles_cannot,
);

/// Reads the live region until `done` holds (at most `secs` seconds).
async fn watch(
    app: &crate::helpers::TestApp,
    cookie: &str,
    id: &str,
    secs: u64,
    done: impl Fn(&str) -> bool,
) -> String {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let (status, html) = page(app, cookie, &format!("/campaigns/{id}/live")).await;
        assert_eq!(status, 200, "{html}");
        if done(&html) {
            return html;
        }
        assert!(
            Instant::now() < deadline,
            "the campaign never got there: {html}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The template's approval arrives from the sandbox a moment after it was created.
async fn until_offered(app: &crate::helpers::TestApp, cookie: &str) -> String {
    for _ in 0..200 {
        let (status, html) = page(app, cookie, "/campaigns/new").await;
        assert_eq!(status, 200);
        if html.contains("value=\"promo|en_US\"") {
            return html;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the approved template was never offered");
}

async fn a_campaign_is_saved_started_and_watched_from_its_pages(backend: Backend) {
    let Some(f) = sending_fixture(backend, 50, |_| {}, |_| {}).await else {
        return;
    };
    let app = &f.app;
    let api = manager(&f).await;
    let owner_cookie = sign_in(app, "ops@example.com").await;
    let owner = owner_cookie.as_str();
    let (status, html) = page(app, owner, "/campaigns").await;
    assert_eq!(status, 200);
    assert!(html.contains("No campaigns yet"), "{html}");
    assert!(html.contains("href=\"/campaigns\" aria-current=\"page\""));
    // Nothing to send yet: the form says what is missing.
    let (_, html) = page(app, owner, "/campaigns/new").await;
    assert!(html.contains("Not ready for a campaign yet"), "{html}");

    let segment = audience(app, &api, 5, 2).await;
    let segment_id = segment["id"].as_str().unwrap();
    let html = until_offered(app, owner).await;
    let csrf = csrf_of(&html);
    assert!(!html.contains("name=\"body_1\""), "no template chosen yet");
    let (_, html) = page(app, owner, "/campaigns/new?template=promo%7Cen_US").await;
    assert!(html.contains("name=\"body_1\""), "{html}");
    assert!(html.contains("Hi {{1}}, the sale starts today."));
    assert!(html.contains(&format!("value=\"{segment_id}\"")));

    let fields = |name: &'static str, source: &'static str, text: &'static str| {
        vec![
            ("csrf", csrf.clone()),
            ("template", "promo|en_US".to_owned()),
            ("name", name.to_owned()),
            ("segment", segment_id.to_owned()),
            ("body_1", source.to_owned()),
            ("body_1_text", text.to_owned()),
            ("start_at", String::new()),
        ]
    };
    let post = |fields: Vec<(&'static str, String)>| async move {
        let pairs: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
        form(app, Some(owner), "/campaigns", &pairs).await
    };
    // The API's own refusals, with what was typed kept.
    let res = post(fields("", "field:name", "")).await;
    assert_eq!(res.status(), 422);
    assert!(
        res.text()
            .await
            .unwrap()
            .contains("`name` must be 1 to 100 characters")
    );
    let res = post(fields("Sale", "text", " ")).await;
    assert_eq!(res.status(), 422);
    let html = res.text().await.unwrap();
    assert!(
        html.contains("a `text` parameter must be 1 to 1024 characters"),
        "{html}"
    );
    assert!(html.contains("value=\"Sale\""), "the name is kept");
    let mut bad_time = fields("Sale", "field:name", "");
    bad_time[6].1 = "soon".into();
    let res = post(bad_time).await;
    assert_eq!(res.status(), 422);
    assert!(res.text().await.unwrap().contains("Give the start time"));

    let res = post(fields("Sale", "field:name", "")).await;
    assert_eq!(res.status(), 303);
    let to = location(&res);
    let id = to.trim_start_matches("/campaigns/").to_owned();
    assert!(id.starts_with("cmp_"), "{to}");
    let res = post(fields("Sale", "field:name", "")).await;
    assert_eq!(res.status(), 422);
    assert!(
        res.text()
            .await
            .unwrap()
            .contains("already has a campaign with this name")
    );

    // The draft's page: the pre-flight, and a start confirmed against it.
    let (status, html) = page(app, owner, &to).await;
    assert_eq!(status, 200);
    assert!(html.contains("data-eligible>5<"), "{html}");
    assert!(html.contains("data-skipped=\"no_consent\">2 skipped"));
    let path = format!("/campaigns/{id}");
    let start = |confirm: &'static str| {
        let csrf = csrf.clone();
        let path = path.clone();
        async move {
            form(
                app,
                Some(owner),
                &format!("{path}/start"),
                &[
                    ("csrf", &csrf),
                    ("confirm_eligible", confirm),
                    ("start_at", ""),
                ],
            )
            .await
        }
    };
    let res = start("4").await;
    assert_eq!(res.status(), 409);
    let html = res.text().await.unwrap();
    assert!(html.contains("the audience changed"), "{html}");
    assert!(html.contains("name=\"confirm_eligible\" value=\"5\""));
    // Sending hours are checked as the API checks them.
    let hours = |from: &'static str, to: &'static str, zone: &'static str| {
        let csrf = csrf.clone();
        let path = path.clone();
        async move {
            let res = form(
                app,
                Some(owner),
                &format!("{path}/start"),
                &[
                    ("csrf", &csrf),
                    ("confirm_eligible", "5"),
                    ("recipient_from", from),
                    ("recipient_to", to),
                    ("time_zone", zone),
                ],
            )
            .await;
            let status = res.status().as_u16();
            let to = res
                .headers()
                .get("location")
                .map(|l| l.to_str().unwrap().to_owned());
            (status, to.unwrap_or(res.text().await.unwrap()))
        }
    };
    let (status, html) = hours("9", "", "").await;
    assert_eq!(status, 422);
    assert!(html.contains("Give both hours of the recipients"), "{html}");
    let (status, html) = hours("9", "9", "").await;
    assert_eq!(status, 422);
    assert!(
        html.contains("`recipient_hours`: hours are 0 to 23"),
        "{html}"
    );
    let (status, html) = hours("0", "24", "Mars/Olympus").await;
    assert_eq!(status, 422);
    assert!(html.contains("`time_zone` must be an IANA zone"), "{html}");
    // Every hour of the day, in Berlin: the start goes ahead with its window.
    let (status, to) = hours("0", "24", "Europe/Berlin").await;
    assert_eq!(status, 303, "{to}");
    assert_eq!(to, format!("{path}?done=started"));
    let started = wait_campaign(app, &api, &id, 5, |_| true).await;
    assert_eq!(
        started["send_window"]["recipient_hours"],
        serde_json::json!({"from_hour": 0, "to_hour": 24}),
        "{started}"
    );
    assert_eq!(started["send_window"]["time_zone"], "Europe/Berlin");

    let live = watch(app, owner, &id, 120, |h| {
        h.contains("data-status=\"completed\"")
    })
    .await;
    assert!(live.contains("<strong data-sent>5</strong> of 7"), "{live}");
    assert!(
        !live.contains("hx-trigger"),
        "a finished campaign stops polling"
    );
    assert!(!live.contains("/pause\""), "nothing to pause");
    let api_view = wait_campaign(app, &api, &id, 5, |_| true).await;
    assert_eq!(api_view["status"], "completed");
    assert_eq!(api_view["counters"]["sent"], 5);

    let (_, html) = page(app, owner, &path).await;
    assert!(
        !html.contains("hx-trigger"),
        "nothing polls once it is over"
    );
    assert_eq!(html.matches("data-outcome-row=").count(), 7);
    assert_eq!(html.matches("data-outcome-row=\"skipped\"").count(), 2);
    assert!(html.contains(&format!("href=\"{path}/outcomes.csv\"")));
    let res = app
        .client
        .get(format!("{}{path}/outcomes.csv", app.address))
        .header("cookie", owner)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    let csv = res.text().await.unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(
        lines[0],
        "seq,contact_id,outcome,skip_reason,error_code,message_id,queued_at"
    );
    assert_eq!(lines.len(), 8, "{csv}");
    assert_eq!(csv.matches(",skipped,no_consent,").count(), 2, "{csv}");

    let (_, list) = page(app, owner, "/campaigns").await;
    assert!(list.contains(&format!("data-campaign=\"{id}\"")), "{list}");
    assert!(list.contains("5 of 5 queued · 2 skipped"), "{list}");
    assert!(list.contains("badge ok\">completed"));

    // A finished campaign cannot be paused: the API's refusal, on the page.
    let res = form(
        app,
        Some(owner),
        &format!("{path}/pause"),
        &[("csrf", &csrf)],
    )
    .await;
    assert_eq!(res.status(), 409);
    assert!(res.text().await.unwrap().contains("it cannot be paused"));
}

async fn buttons_pause_resume_and_cancel_and_other_roles_cannot(backend: Backend) {
    let Some(f) = sending_fixture(backend, 5, |c| c.campaign_window = 3, |_| {}).await else {
        return;
    };
    let app = &f.app;
    let api = manager(&f).await;
    let (id, _) = draft(app, &api, 60, 0).await;
    let owner = sign_in(app, "ops@example.com").await;
    let path = format!("/campaigns/{id}");
    let (_, html) = page(app, &owner, &path).await;
    let csrf = csrf_of(&html);
    let button = |action: &'static str, cookie: String| {
        let (csrf, path) = (csrf.clone(), path.clone());
        async move {
            form(
                app,
                Some(&cookie),
                &format!("{path}/{action}"),
                &[("csrf", &csrf)],
            )
            .await
        }
    };

    // Roles without campaigns:manage see no Campaigns section and reach nothing.
    for (email, role) in [
        ("dev@example.com", "developer"),
        ("agent@example.com", "agent"),
    ] {
        member(app, f.ws, email, role).await;
        let cookie = sign_in(app, email).await;
        let (_, inbox) = page(app, &cookie, "/inbox").await;
        assert!(
            !inbox.contains("href=\"/campaigns\""),
            "{role} sees no section"
        );
        assert_eq!(page(app, &cookie, "/campaigns").await.0, 403);
        assert_eq!(page(app, &cookie, &path).await.0, 403);
        assert_eq!(
            page(app, &cookie, &format!("{path}/outcomes.csv")).await.0,
            403
        );
        let theirs = csrf_of(&inbox);
        for action in ["start", "cancel"] {
            let res = form(
                app,
                Some(&cookie),
                &format!("{path}/{action}"),
                &[("csrf", &theirs), ("confirm_eligible", "60")],
            )
            .await;
            assert_eq!(res.status(), 403, "{role} may not {action}");
        }
    }
    let still = wait_campaign(app, &api, &id, 5, |_| true).await;
    assert_eq!(still["status"], "draft");

    let res = form(
        app,
        Some(&owner),
        &format!("{path}/start"),
        &[
            ("csrf", &csrf),
            ("confirm_eligible", "60"),
            ("start_at", ""),
        ],
    )
    .await;
    assert_eq!(res.status(), 303);
    let live = watch(app, &owner, &id, 60, |h| {
        h.contains("data-status=\"running\"")
    })
    .await;
    assert!(live.contains("hx-trigger=\"every 2s\""), "{live}");
    assert!(live.contains(&format!("action=\"{path}/pause\"")));
    assert!(!live.contains("/resume\""));
    let (_, html) = page(app, &owner, &path).await;
    assert!(
        html.contains(&format!(
            "hx-get=\"{path}\" hx-trigger=\"every 6s\" hx-select=\"#recipients\""
        )),
        "the recipients table refreshes too while it runs: {html}"
    );

    let res = button("pause", owner.clone()).await;
    assert_eq!(res.status(), 303);
    assert_eq!(location(&res), format!("{path}?done=paused"));
    let (_, html) = page(app, &owner, &format!("{path}?done=paused")).await;
    assert!(html.contains("data-status=\"paused\""), "{html}");
    assert!(html.contains("A member paused it."));
    assert!(html.contains(&format!("action=\"{path}/resume\"")));

    // Others may not resume it either.
    let dev = sign_in(app, "dev@example.com").await;
    let theirs = csrf_of(&page(app, &dev, "/inbox").await.1);
    let res = form(
        app,
        Some(&dev),
        &format!("{path}/resume"),
        &[("csrf", &theirs)],
    )
    .await;
    assert_eq!(res.status(), 403);
    assert_eq!(
        wait_campaign(app, &api, &id, 5, |_| true).await["status"],
        "paused"
    );

    // A form without the token is refused.
    let res = form(app, Some(&owner), &format!("{path}/resume"), &[]).await;
    assert_eq!(res.status(), 403);
    let res = button("resume", owner.clone()).await;
    assert_eq!(res.status(), 303);
    let c = wait_campaign(app, &api, &id, 5, |_| true).await;
    assert!(
        c["status"] == "running" || c["status"] == "completed",
        "{c}"
    );

    // Paged outcomes: 50 a page, then the rest.
    let (_, first) = page(app, &owner, &path).await;
    assert_eq!(first.matches("data-outcome-row=").count(), 50, "{first}");
    assert!(first.contains(&format!("href=\"{path}?after=50\"")));
    let (_, second) = page(app, &owner, &format!("{path}?after=50")).await;
    assert_eq!(second.matches("data-outcome-row=").count(), 10);
    assert!(!second.contains(">Next page<"), "no page after the last");
    assert!(second.contains(&format!("href=\"{path}\">First page<")));

    let res = button("cancel", owner.clone()).await;
    assert_eq!(res.status(), 303);
    let html = watch(app, &owner, &id, 10, |h| {
        h.contains("data-status=\"cancelled\"")
    })
    .await;
    assert!(!html.contains("<form"), "nothing left to do: {html}");
    let c = wait_campaign(app, &api, &id, 10, |c| {
        c["counters"]["outcomes"]["queued"] == 0
    })
    .await;
    assert!(
        c["counters"]["outcomes"]["cancelled"].as_u64().unwrap() > 0,
        "{c}"
    );
    let (_, html) = page(app, &owner, &format!("{path}?done=cancelled")).await;
    assert!(html.contains("Cancelled: recipients not yet queued"));
}
