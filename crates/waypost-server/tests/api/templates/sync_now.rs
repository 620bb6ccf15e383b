//! Syncing review statuses on demand: from the templates page's button (a
//! plain form) and through `POST /v1/templates/sync`, both through the same
//! operation; each change recorded once, a second sync finds nothing new.

use serde_json::json;
use waypost_store::Backend;

use super::*;
use crate::dashboard::{csrf_of, form, page, sign_in};
use crate::helpers::assert_problem;
use crate::on_both_backends;

on_both_backends!(
    the_templates_page_syncs_with_whatsapp,
    the_api_syncs_one_channel_or_all,
);

async fn the_templates_page_syncs_with_whatsapp(backend: Backend) {
    let Some(f) = fixture(backend).await else {
        return;
    };
    let a = f.create_ok("order_shipped").await;
    let b = f.create_ok("welcome").await;
    f.provider_status(a["provider_id"].as_str().unwrap(), "APPROVED", "NONE")
        .await;
    f.provider_status(
        b["provider_id"].as_str().unwrap(),
        "REJECTED",
        "INVALID_FORMAT",
    )
    .await;
    let cookie = sign_in(&f.app, "ana@example.com").await;
    let (status, html) = page(&f.app, &cookie, "/templates").await;
    assert_eq!(status, 200);
    assert!(html.contains("Sync with WhatsApp"), "{html}");
    assert!(!html.contains(">APPROVED<"), "not synced yet");
    let csrf = csrf_of(&html);

    let res = form(&f.app, Some(&cookie), "/templates/sync", &[]).await;
    assert_eq!(res.status(), 403, "the form's token is required");
    let res = form(&f.app, Some(&cookie), "/templates/sync", &[("csrf", &csrf)]).await;
    assert_eq!(res.status(), 200);
    let html = res.text().await.unwrap();
    assert!(
        html.contains("Synced with WhatsApp: 2 templates updated."),
        "{html}"
    );
    assert!(
        html.contains(">APPROVED<") && html.contains(">REJECTED<"),
        "{html}"
    );
    assert_eq!(f.status_events().await.len(), 2);

    let res = form(&f.app, Some(&cookie), "/templates/sync", &[("csrf", &csrf)]).await;
    let html = res.text().await.unwrap();
    assert!(
        html.contains("every status was already up to date"),
        "{html}"
    );
    assert_eq!(f.status_events().await.len(), 2, "nothing recorded twice");
    let actions = audit_actions(&f.app, Some(f.ws)).await;
    assert_eq!(
        actions.iter().filter(|a| *a == "templates.synced").count(),
        2
    );

    // Agents read templates but may not sync them.
    member(&f.app, f.ws, "agent@example.com", "agent").await;
    let agent = sign_in(&f.app, "agent@example.com").await;
    let (_, html) = page(&f.app, &agent, "/templates").await;
    assert!(!html.contains("Sync with WhatsApp"));
    let csrf = csrf_of(&html);
    let res = form(&f.app, Some(&agent), "/templates/sync", &[("csrf", &csrf)]).await;
    assert_eq!(res.status(), 403);
}

async fn the_api_syncs_one_channel_or_all(backend: Backend) {
    let Some(f) = fixture(backend).await else {
        return;
    };
    let a = f.create_ok("order_shipped").await;
    f.provider_status(a["provider_id"].as_str().unwrap(), "APPROVED", "NONE")
        .await;
    let channel = f.channel().await;
    let sync = |query: String| {
        let f = &f;
        async move {
            f.send(
                reqwest::Method::POST,
                &format!("/v1/templates/sync{query}"),
                None,
            )
            .await
        }
    };
    let res = sync(format!("?channel_id={}", channel.id)).await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["updated"], 1);
    assert_eq!(
        body["channels"],
        json!([{"channel_id": channel.id, "channel_name": channel.name, "updated": 1, "error": null}])
    );
    let got = f
        .get_json(&format!("/v1/templates/{}", a["id"].as_str().unwrap()))
        .await;
    assert_eq!(got["status"], "APPROVED");
    let res = sync(String::new()).await;
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["updated"], 0);
    assert_problem(sync("?channel_id=ch_unknown".into()).await, 404).await;

    let s = login(&f.app, "ana@example.com", PASSWORD).await;
    let (_, read_only) = api_key(
        &f.app,
        &s,
        json!({"name": "reader", "scopes": ["templates:read"]}),
    )
    .await;
    let res = f
        .app
        .client
        .post(format!("{}/v1/templates/sync", f.app.address))
        .bearer_auth(&read_only)
        .send()
        .await
        .unwrap();
    let p = assert_problem(res, 403).await;
    assert_eq!(p["required_scope"], "templates:write");
}
