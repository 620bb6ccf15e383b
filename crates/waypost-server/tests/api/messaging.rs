//! Channels, contacts and consent, and the send API's policy checks.

use serde_json::{Value, json};
use waypost_store::Backend;

use crate::bearer::{ALL_SCOPES, workspace_api};
use crate::helpers::{assert_problem, spawn_app};
use crate::on_both_backends;

async fn channels_keep_secrets_and_validate(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let api = workspace_api(&app, "ch@example.com", &ALL_SCOPES).await;
    let channel = api
        .sandbox_channel(&app, "http://127.0.0.1:9/", "100000000000001")
        .await;
    let id = channel["id"].as_str().unwrap();
    assert!(id.starts_with("ch_"));
    assert!(
        channel["inbound_url"]
            .as_str()
            .unwrap()
            .ends_with(&format!("/webhooks/whatsapp/{id}"))
    );
    let text = api
        .get(&app, &format!("/v1/channels/{id}"))
        .await
        .text()
        .await
        .unwrap();
    for secret in [
        "EAAG-test-access-token",
        "test-app-secret",
        "test-verify-token",
    ] {
        assert!(!text.contains(secret), "secret returned");
    }
    // Same number again: 409.
    let again = api
        .post(
            &app,
            "/v1/channels",
            json!({"name": "b", "provider": "sandbox", "phone_number_id": "100000000000001",
                "waba_id": "1", "access_token": "t", "app_secret": "s", "verify_token": "v",
                "base_url": "http://127.0.0.1:9/"}),
        )
        .await;
    assert_problem(again, 409).await;
    // Sandbox without base_url, non-numeric id, plain http for cloud: 422 naming the field.
    for (body, field) in [
        (
            json!({"name": "c", "provider": "sandbox", "phone_number_id": "2", "waba_id": "1",
            "access_token": "t", "app_secret": "s", "verify_token": "v"}),
            "base_url",
        ),
        (
            json!({"name": "c", "provider": "cloud", "phone_number_id": "abc", "waba_id": "1",
            "access_token": "t", "app_secret": "s", "verify_token": "v"}),
            "phone_number_id",
        ),
        (
            json!({"name": "c", "provider": "cloud", "phone_number_id": "3", "waba_id": "1",
            "access_token": "t", "app_secret": "s", "verify_token": "v", "base_url": "http://evil.example/"}),
            "base_url",
        ),
        (
            json!({"name": "c", "provider": "cloud", "phone_number_id": "4", "waba_id": "1",
            "access_token": "t", "app_secret": "s", "verify_token": "v", "throughput_mps": 0}),
            "throughput_mps",
        ),
    ] {
        let p = assert_problem(api.post(&app, "/v1/channels", body).await, 422).await;
        assert!(p["detail"].as_str().unwrap().contains(field), "{p}");
    }
    let patched: Value = api
        .patch(
            &app,
            &format!("/v1/channels/{id}"),
            json!({"name": "renamed", "throughput_mps": 20}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(patched["name"], "renamed");
    assert_eq!(patched["throughput_mps"], 20);
    let list: Vec<Value> = api.get(&app, "/v1/channels").await.json().await.unwrap();
    assert_eq!(list.len(), 1);
    // Another workspace cannot see it.
    let other = workspace_api(&app, "other@example.com", &ALL_SCOPES).await;
    assert_problem(other.get(&app, &format!("/v1/channels/{id}")).await, 404).await;
    assert_eq!(
        api.delete(&app, &format!("/v1/channels/{id}"))
            .await
            .status(),
        204
    );
    assert_problem(api.get(&app, &format!("/v1/channels/{id}")).await, 404).await;
}

async fn contacts_normalise_dedupe_and_keep_consent_history(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let api = workspace_api(&app, "ct@example.com", &ALL_SCOPES).await;
    let res = api
        .post(
            &app,
            "/v1/contacts",
            json!({"phone": "+49 151 2345 6789", "name": "Ada", "attributes": {"tier": "gold"}}),
        )
        .await;
    assert_eq!(res.status(), 201);
    let contact: Value = res.json().await.unwrap();
    assert_eq!(contact["phone"], "+4915123456789");
    assert_eq!(contact["attributes"]["tier"], "gold");
    let id = contact["id"].as_str().unwrap().to_owned();
    // The same number written differently is the same contact.
    let dup = api
        .post(&app, "/v1/contacts", json!({"phone": "0049 1512 3456789"}))
        .await;
    let p = assert_problem(dup, 409).await;
    assert_eq!(p["type"], "https://waypost.dev/problems/contact-exists");
    // Garbage is a 422 that does not echo the input.
    let bad = api
        .post(&app, "/v1/contacts", json!({"phone": "call 555 me"}))
        .await;
    let p = assert_problem(bad, 422).await;
    assert_eq!(p["type"], "https://waypost.dev/problems/invalid-phone");
    assert!(!p["detail"].as_str().unwrap().contains("555"));

    for (status, categories) in [
        ("opted_in", json!(["marketing", "utility"])),
        ("opted_out", json!(["marketing"])),
    ] {
        let res = api
            .post(
                &app,
                &format!("/v1/contacts/{id}/consent"),
                json!({"status": status, "categories": categories, "source": "checkout_form",
                    "evidence": "form-42", "captured_at": "2026-11-01T10:00:00Z"}),
            )
            .await;
        assert_eq!(res.status(), 201);
    }
    let now: Value = api
        .get(&app, &format!("/v1/contacts/{id}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(now["consent"]["marketing"], "opted_out");
    assert_eq!(now["consent"]["utility"], "opted_in");
    let history: Vec<Value> = api
        .get(&app, &format!("/v1/contacts/{id}/consent"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(history.len(), 2, "history keeps both changes");
    assert_eq!(history[0]["status"], "opted_in");
    assert_eq!(history[1]["evidence"], "form-42");
    // Consent changes are customer events.
    let events = app
        .state
        .store
        .customer_events_after(&api.workspace_id.to_string(), 0, 100)
        .await
        .unwrap();
    let types: Vec<&str> = events.iter().map(|e| e.event_type.as_str()).collect();
    assert_eq!(types, ["contact.opted_in", "contact.opted_out"]);

    // Cursor pagination walks every contact once.
    for n in 0..5 {
        let res = api
            .post(
                &app,
                "/v1/contacts",
                json!({"phone": format!("+4915123456{n:03}")}),
            )
            .await;
        assert_eq!(res.status(), 201);
    }
    let mut seen = Vec::new();
    let mut path = "/v1/contacts?limit=2".to_owned();
    loop {
        let page: Value = api.get(&app, &path).await.json().await.unwrap();
        for c in page["data"].as_array().unwrap() {
            seen.push(c["id"].as_str().unwrap().to_owned());
        }
        match page["next_cursor"].as_str() {
            Some(c) => path = format!("/v1/contacts?limit=2&after={c}"),
            None => break,
        }
    }
    let mut unique = seen.clone();
    unique.dedup();
    assert_eq!(seen.len(), 6);
    assert_eq!(unique.len(), 6);
    assert_eq!(
        api.delete(&app, &format!("/v1/contacts/{id}"))
            .await
            .status(),
        204
    );
    assert_problem(api.get(&app, &format!("/v1/contacts/{id}")).await, 404).await;
}

async fn send_policy_is_checked_before_acceptance(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let api = workspace_api(&app, "send@example.com", &ALL_SCOPES).await;
    let channel = api
        .sandbox_channel(&app, "http://127.0.0.1:9/", "100000000000002")
        .await;
    let ch = channel["id"].as_str().unwrap();
    // No message from the contact yet: the window is closed for free-form text.
    let p = assert_problem(
        api.post(&app, "/v1/messages", json!({"channel_id": ch, "to": "+4915123450000", "type": "text", "text": {"body": "hi"}}))
            .await,
        422,
    )
    .await;
    assert_eq!(p["type"], "https://waypost.dev/problems/outside-window");
    let p = assert_problem(
        api.post(
            &app,
            "/v1/messages",
            json!({"channel_id": ch, "to": "+4915123450000", "type": "template",
            "template": {"name": "no_such_template", "language": {"code": "en"}}}),
        )
        .await,
        422,
    )
    .await;
    assert_eq!(p["type"], "https://waypost.dev/problems/template-unknown");
    let p = assert_problem(
        api.post(&app, "/v1/messages", json!({"channel_id": ch, "to": "+4915123450000", "contact_id": "ct_x", "type": "text", "text": {"body": "hi"}}))
            .await,
        422,
    )
    .await;
    assert!(p["detail"].as_str().unwrap().contains("exactly one"));
    assert_problem(
        api.post(&app, "/v1/messages", json!({"channel_id": "ch_01JAAAAAAAAAAAAAAAAAAAAAAA", "to": "+4915123450000", "type": "text", "text": {"body": "hi"}}))
            .await,
        404,
    )
    .await;
    // A contact that said STOP (opted out of everything) gets nothing.
    let contact: Value = api
        .get(&app, "/v1/contacts?limit=1")
        .await
        .json::<Value>()
        .await
        .unwrap()["data"][0]
        .clone();
    let cid = contact["id"].as_str().unwrap();
    api.post(&app, &format!("/v1/contacts/{cid}/consent"), json!({"status": "opted_out",
        "categories": ["marketing", "utility", "authentication"], "source": "inbound_keyword", "captured_at": "2026-11-01T10:00:00Z"}))
        .await;
    let p = assert_problem(
        api.post(
            &app,
            "/v1/messages",
            json!({"channel_id": ch, "contact_id": cid, "type": "template",
            "template": {"name": "order_update", "language": {"code": "en"}}}),
        )
        .await,
        422,
    )
    .await;
    assert_eq!(
        p["type"],
        "https://waypost.dev/problems/recipient-opted-out"
    );
    // Restricted contacts are refused too.
    let other: Value = api
        .post(&app, "/v1/contacts", json!({"phone": "+4915123450001"}))
        .await
        .json()
        .await
        .unwrap();
    let oid = other["id"].as_str().unwrap();
    api.patch(
        &app,
        &format!("/v1/contacts/{oid}"),
        json!({"restricted": true}),
    )
    .await;
    let p = assert_problem(
        api.post(
            &app,
            "/v1/messages",
            json!({"channel_id": ch, "contact_id": oid, "type": "text", "text": {"body": "x"}}),
        )
        .await,
        422,
    )
    .await;
    assert_eq!(
        p["type"],
        "https://waypost.dev/problems/recipient-restricted"
    );
    // Nothing was queued.
    let page: Value = api.get(&app, "/v1/messages").await.json().await.unwrap();
    assert_eq!(page["data"].as_array().unwrap().len(), 0);
    // A key without messages:send cannot send.
    let reader = workspace_api(&app, "reader@example.com", &["messages:read"]).await;
    assert_problem(
        reader.post(&app, "/v1/messages", json!({"channel_id": ch, "to": "+4915123450000", "type": "text", "text": {"body": "hi"}})).await,
        403,
    )
    .await;
}

async fn workspace_messaging_settings_are_validated_and_audited(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let account = crate::users::owner(&app, "settings@example.com", "settings-ws").await;
    let session = crate::users::login(&app, "settings@example.com", crate::users::PASSWORD).await;
    let view: Value = session
        .get(&app, "/v1/workspace")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(view["content_retention"], "none");
    assert_eq!(view["shield_policy"], "flag");
    for bad in [
        json!({"content_retention": "forever"}),
        json!({"content_retention": "days:0"}),
        json!({"shield_policy": "maybe"}),
    ] {
        assert_problem(session.patch(&app, "/v1/workspace", bad).await, 422).await;
    }
    let res = session
        .patch(
            &app,
            "/v1/workspace",
            json!({"content_retention": "days:30", "shield_policy": "block"}),
        )
        .await;
    assert_eq!(res.status(), 200);
    let view: Value = res.json().await.unwrap();
    assert_eq!(view["content_retention"], "days:30");
    assert_eq!(view["shield_policy"], "block");
    let actions = crate::users::audit_actions(&app, Some(account.workspace_id)).await;
    assert!(actions.contains(&"workspace.settings_changed".to_owned()));
}

on_both_backends!(
    workspace_messaging_settings_are_validated_and_audited,
    channels_keep_secrets_and_validate,
    contacts_normalise_dedupe_and_keep_consent_history,
    send_policy_is_checked_before_acceptance,
);
