//! A person's rights from their contact page: their data downloads as JSON,
//! processing is restricted and the restriction lifted, each registered and
//! audited; a stale sign-in is sent to re-authenticate first.

use waypost_store::Backend;

use crate::dashboard::{csrf_of, form, location, page, sign_in};
use crate::messaging_fixture::fixture;
use crate::on_both_backends;

on_both_backends!(a_contacts_data_is_exported_and_processing_restricted_from_its_page);

async fn a_contacts_data_is_exported_and_processing_restricted_from_its_page(backend: Backend) {
    let Some(f) = fixture(backend, |_| {}, |_| {}).await else {
        return;
    };
    let app = &f.app;
    let res = app
        .client
        .post(format!("{}/v1/contacts", app.address))
        .bearer_auth(&f.key)
        .json(&serde_json::json!({"phone": "+4915199887766", "name": "Rita"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let id = res.json::<serde_json::Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let owner = sign_in(app, "ops@example.com").await;
    let path = format!("/contacts/{id}");
    let (status, html) = page(app, &owner, &path).await;
    assert_eq!(status, 200);
    assert!(html.contains("Download their data (JSON)"));
    let csrf = csrf_of(&html);

    let res = form(
        app,
        Some(&owner),
        &format!("{path}/export"),
        &[("csrf", &csrf)],
    )
    .await;
    assert_eq!(res.status(), 200);
    let disposition = res.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(disposition.starts_with("attachment;"), "{disposition}");
    let doc: serde_json::Value = res.json().await.unwrap();
    assert_eq!(doc["contact"]["id"], id.as_str());
    assert_eq!(doc["phone"], "+4915199887766");

    let res = form(
        app,
        Some(&owner),
        &format!("{path}/restrict"),
        &[("csrf", &csrf)],
    )
    .await;
    assert_eq!(res.status(), 303);
    assert_eq!(location(&res), path);
    let ws = f.ws.to_string();
    assert!(
        app.state
            .store
            .get_contact(&ws, &id)
            .await
            .unwrap()
            .restricted
    );
    let (_, html) = page(app, &owner, &path).await;
    assert!(html.contains("Lift the restriction"));

    // After the step-up window, the request waits for the password again.
    app.clock.advance(chrono::Duration::seconds(
        app.config.step_up_window_secs as i64 + 1,
    ));
    let res = form(
        app,
        Some(&owner),
        &format!("{path}/unrestrict"),
        &[("csrf", &csrf)],
    )
    .await;
    assert_eq!(res.status(), 303);
    assert!(
        location(&res).starts_with("/reauth?next="),
        "{}",
        location(&res)
    );
    assert!(
        app.state
            .store
            .get_contact(&ws, &id)
            .await
            .unwrap()
            .restricted
    );
    let res = form(
        app,
        Some(&owner),
        "/reauth",
        &[
            ("csrf", &csrf),
            ("password", crate::users::PASSWORD),
            ("next", &path),
        ],
    )
    .await;
    assert_eq!(res.status(), 303);
    let res = form(
        app,
        Some(&owner),
        &format!("{path}/unrestrict"),
        &[("csrf", &csrf)],
    )
    .await;
    assert_eq!(res.status(), 303);
    assert!(
        !app.state
            .store
            .get_contact(&ws, &id)
            .await
            .unwrap()
            .restricted
    );

    let (_, audit) = page(app, &owner, "/audit").await;
    assert!(audit.contains("privacy.request_registered"), "{audit}");
}
