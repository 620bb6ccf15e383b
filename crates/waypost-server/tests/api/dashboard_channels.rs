//! The channels pages: the workspace's numbers listed; a channel added with
//! its secrets (refusals keep what was typed, never the secrets); the
//! connection checked against the sandbox; settings changed; removed;
//! agents cannot open them.

use waypost_store::Backend;

use crate::dashboard::{csrf_of, form, location, page, sign_in};
use crate::messaging_fixture::fixture;
use crate::on_both_backends;
use crate::users::member;

on_both_backends!(channels_are_added_checked_changed_and_removed_from_their_pages);

async fn channels_are_added_checked_changed_and_removed_from_their_pages(backend: Backend) {
    let Some(f) = fixture(backend, |c| c.channel_allow_private_targets = true, |_| {}).await else {
        return;
    };
    let app = &f.app;
    let owner = sign_in(app, "ops@example.com").await;
    let (status, html) = page(app, &owner, "/channels").await;
    assert_eq!(status, 200);
    assert!(
        html.contains(&format!("href=\"/channels/{}\"", f.channel.id)),
        "{html}"
    );
    let csrf = csrf_of(&html);
    let base_url = f.sandbox.base_url().to_owned();
    let fields = |phone: &'static str| {
        vec![
            ("csrf", csrf.clone()),
            ("name", "Second line".to_owned()),
            ("provider", "sandbox".to_owned()),
            ("phone_number_id", phone.to_owned()),
            ("waba_id", "555000111".to_owned()),
            ("access_token", "tok-typed-secret-4711".to_owned()),
            ("app_secret", "app-typed-secret-4711".to_owned()),
            ("verify_token", "verify-typed-4711".to_owned()),
            ("base_url", base_url.clone()),
            ("throughput_mps", "20".to_owned()),
        ]
    };
    let post = |path: String, fields: Vec<(&'static str, String)>| {
        let owner = owner.clone();
        async move {
            let all: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
            form(app, Some(&owner), &path, &all).await
        }
    };

    let res = post("/channels".into(), fields("not-a-number")).await;
    assert_eq!(res.status(), 422);
    let html = res.text().await.unwrap();
    assert!(
        html.contains("`phone_number_id` must be Meta&#x27;s numeric id")
            || html.contains("must be Meta"),
        "{html}"
    );
    assert!(
        html.contains("value=\"Second line\""),
        "what was typed stays"
    );
    assert!(!html.contains("typed-secret"), "secrets are never echoed");

    let res = post("/channels".into(), fields("1098765432")).await;
    assert_eq!(res.status(), 303);
    let to = location(&res);
    assert!(
        to.starts_with("/channels/ch_") && to.ends_with("?added=1"),
        "{to}"
    );
    let id = to["/channels/".len()..]
        .split('?')
        .next()
        .unwrap()
        .to_owned();
    let (_, html) = page(app, &owner, &to).await;
    assert!(
        html.contains(&format!("/webhooks/whatsapp/{id}")),
        "the callback URL: {html}"
    );
    assert!(!html.contains("typed-secret"));

    // The fixture's channel is known to the sandbox: the check says so.
    let res = post(
        format!("/channels/{}/check", f.channel.id),
        vec![("csrf", csrf.clone())],
    )
    .await;
    assert_eq!(res.status(), 200);
    let html = res.text().await.unwrap();
    assert!(html.contains("<strong>Connected.</strong>"), "{html}");

    let res = post(
        format!("/channels/{id}"),
        vec![("csrf", csrf.clone()), ("throughput_mps", "many".into())],
    )
    .await;
    assert_eq!(res.status(), 422);
    assert!(res.text().await.unwrap().contains("whole number"));
    let res = post(
        format!("/channels/{id}"),
        vec![
            ("csrf", csrf.clone()),
            ("name", "Sales".into()),
            ("throughput_mps", "5".into()),
        ],
    )
    .await;
    assert_eq!(res.status(), 200);
    let html = res.text().await.unwrap();
    assert!(
        html.contains("Channel saved.") && html.contains("<h1>Sales</h1>"),
        "{html}"
    );
    let stored = app
        .state
        .store
        .get_channel(&f.ws.to_string(), &id)
        .await
        .unwrap();
    assert_eq!(stored.throughput_mps, 5);

    member(app, f.ws, "agent@example.com", "agent").await;
    let agent = sign_in(app, "agent@example.com").await;
    assert_eq!(page(app, &agent, "/channels").await.0, 403);
    let (_, inbox) = page(app, &agent, "/inbox").await;
    assert!(
        !inbox.contains("href=\"/channels\""),
        "no Channels entry for agents"
    );

    let res = post(
        format!("/channels/{id}/delete"),
        vec![("csrf", csrf.clone())],
    )
    .await;
    assert_eq!(res.status(), 303);
    let (_, html) = page(app, &owner, "/channels").await;
    assert!(!html.contains(&format!("href=\"/channels/{id}\"")));
    assert_eq!(page(app, &owner, &format!("/channels/{id}")).await.0, 404);
}
