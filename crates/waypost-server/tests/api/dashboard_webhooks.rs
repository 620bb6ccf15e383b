//! The webhooks pages: an endpoint is added with its secret shown once,
//! tested, its attempts listed with a resend, its secret rotated, disabled,
//! a bad replay time refused, deleted; agents cannot open the pages.

use waypost_store::Backend;

use crate::dashboard::{csrf_of, form, location, page, sign_in};
use crate::messaging_fixture::fixture;
use crate::on_both_backends;
use crate::users::member;
use crate::webhooks::Receiver;

on_both_backends!(webhook_endpoints_are_managed_from_their_pages);

fn between<'a>(html: &'a str, start: &str, end: &str) -> &'a str {
    let at = html
        .find(start)
        .unwrap_or_else(|| panic!("{start} in {html}"))
        + start.len();
    html[at..].split(end).next().unwrap()
}

async fn webhook_endpoints_are_managed_from_their_pages(backend: Backend) {
    let Some(f) = fixture(
        backend,
        |c| {
            c.webhook_allow_http = true;
            c.webhook_allow_private_targets = true;
            c.webhook_poll_interval_ms = 30;
        },
        |_| {},
    )
    .await
    else {
        return;
    };
    let app = &f.app;
    let receiver = Receiver::start(200).await;
    let cookie = sign_in(app, "ops@example.com").await;
    let (status, html) = page(app, &cookie, "/developers/webhooks").await;
    assert_eq!(status, 200);
    assert!(html.contains("No endpoints yet"), "{html}");
    let csrf = csrf_of(&html);

    let res = form(
        app,
        Some(&cookie),
        "/developers/webhooks",
        &[("csrf", &csrf), ("url", "ftp://example.com/x")],
    )
    .await;
    assert_eq!(res.status(), 422);
    assert!(res.text().await.unwrap().contains("`url`"));

    let res = form(
        app,
        Some(&cookie),
        "/developers/webhooks",
        &[
            ("csrf", &csrf),
            ("url", &receiver.url),
            ("description", "orders"),
            ("event_type[]", "webhook.test"),
            ("event_type[]", "message.delivered"),
        ],
    )
    .await;
    assert_eq!(res.status(), 201);
    let html = res.text().await.unwrap();
    let first_secret = between(&html, "id=\"new-secret\">", "<").to_owned();
    assert!(first_secret.starts_with("whsec_"), "{html}");
    assert!(html.contains("data-replace-url=\"/developers/webhooks\""));
    let id = between(&html, "href=\"/developers/webhooks/", "\"").to_owned();
    let (_, html) = page(app, &cookie, "/developers/webhooks").await;
    assert!(!html.contains(&first_secret), "the secret is shown once");
    assert!(
        html.contains("message.delivered, webhook.test")
            || html.contains("webhook.test, message.delivered")
    );

    let path = format!("/developers/webhooks/{id}");
    let res = form(
        app,
        Some(&cookie),
        &format!("{path}/test"),
        &[("csrf", &csrf)],
    )
    .await;
    assert_eq!(res.status(), 200);
    let html = res.text().await.unwrap();
    let event = between(&html, "Test event ", " queued").to_owned();
    let got = receiver.wait_for(1).await;
    assert_eq!(got[0].headers["webhook-id"].to_str().unwrap(), event);
    assert!(got[0].headers.contains_key("webhook-signature"));
    let mut shown = String::new();
    for _ in 0..100 {
        shown = page(app, &cookie, &path).await.1;
        if shown.contains(&format!("data-attempt=\"{event}\"")) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(
        shown.contains(&format!("data-attempt=\"{event}\"")),
        "{shown}"
    );
    assert!(shown.contains("badge ok\">200"));

    let res = form(
        app,
        Some(&cookie),
        &format!("{path}/resend/{event}"),
        &[("csrf", &csrf)],
    )
    .await;
    assert_eq!(res.status(), 200);
    assert_eq!(receiver.wait_for(2).await[1].body, got[0].body);

    let res = form(
        app,
        Some(&cookie),
        &format!("{path}/rotate"),
        &[("csrf", &csrf)],
    )
    .await;
    assert_eq!(res.status(), 200);
    let html = res.text().await.unwrap();
    let second = between(&html, "id=\"new-secret\">", "<");
    assert!(second.starts_with("whsec_") && second != first_secret);
    assert!(html.contains("previous secret also signs until"));

    let res = form(
        app,
        Some(&cookie),
        &format!("{path}/replay"),
        &[("csrf", &csrf), ("since", "last tuesday")],
    )
    .await;
    assert_eq!(res.status(), 422);
    assert!(
        res.text()
            .await
            .unwrap()
            .contains("Give the time to replay from")
    );
    let res = form(
        app,
        Some(&cookie),
        &format!("{path}/replay"),
        &[("csrf", &csrf), ("since", "2020-01-01T00:00")],
    )
    .await;
    assert_eq!(res.status(), 200);
    assert!(
        res.text()
            .await
            .unwrap()
            .contains("events queued for delivery again")
    );

    // Saving without "enabled" disables it.
    let res = form(
        app,
        Some(&cookie),
        &path,
        &[
            ("csrf", &csrf),
            ("editing", "1"),
            ("url", &receiver.url),
            ("description", "orders, paused"),
        ],
    )
    .await;
    assert_eq!(res.status(), 200);
    let html = res.text().await.unwrap();
    assert!(
        html.contains("Endpoint saved.") && html.contains("Disabled"),
        "{html}"
    );
    let (_, list) = page(app, &cookie, "/developers/webhooks").await;
    assert!(list.contains("badge bad\">disabled") && list.contains("orders, paused"));

    let agent_email = "agent@example.com";
    member(app, f.ws, agent_email, "agent").await;
    let agent = sign_in(app, agent_email).await;
    assert_eq!(page(app, &agent, &path).await.0, 403);
    let res = form(
        app,
        Some(&agent),
        &format!("{path}/delete"),
        &[("csrf", &csrf)],
    )
    .await;
    assert_ne!(res.status(), 303, "an agent cannot delete it");

    let res = form(
        app,
        Some(&cookie),
        &format!("{path}/delete"),
        &[("csrf", &csrf)],
    )
    .await;
    assert_eq!(res.status(), 303);
    assert_eq!(location(&res), "/developers/webhooks");
    let (_, html) = page(app, &cookie, "/developers/webhooks").await;
    assert!(html.contains("No endpoints yet"));
    assert_eq!(page(app, &cookie, &path).await.0, 404);
}
