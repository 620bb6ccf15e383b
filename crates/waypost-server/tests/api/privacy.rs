//! Data-subject rights by phone number: export, rectify, restrict, erase, and the register.

use serde_json::{Value, json};
use waypost_core::NewAuditEvent;
use waypost_core::audit::Actor;
use waypost_crypto::Aad;
use waypost_server::messaging::content_key;
use waypost_store::Backend;
use waypost_store::messaging::MessagingSettings;

use crate::bearer::{ALL_SCOPES, workspace_api};
use crate::helpers::{assert_problem, spawn_app};
use crate::messaging_fixture::{Fixture, USER, fixture};
use crate::on_both_backends;
use crate::users::{PASSWORD, api_key, login};

const PHONE: &str = "%2B4915123456789";

async fn subject_rights_by_phone_number(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let api = workspace_api(&app, "dsr@example.com", &ALL_SCOPES).await;
    let contact: Value = api
        .post(
            &app,
            "/v1/contacts",
            json!({"phone": "+49 151 23456789", "name": "Ada"}),
        )
        .await
        .json()
        .await
        .unwrap();
    let id = contact["id"].as_str().unwrap();
    api.post(
        &app,
        &format!("/v1/contacts/{id}/consent"),
        json!({"status": "opted_in",
        "categories": ["marketing"], "source": "web", "captured_at": "2026-11-01T10:00:00Z"}),
    )
    .await;
    let bystander: Value = api
        .post(&app, "/v1/contacts", json!({"phone": "+4915123450000"}))
        .await
        .json()
        .await
        .unwrap();

    let export: Value = api
        .get(&app, &format!("/v1/privacy/subjects/{PHONE}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(export["phone"], "+4915123456789");
    assert_eq!(export["contact"]["name"], "Ada");
    assert_eq!(export["consent_history"].as_array().unwrap().len(), 1);
    assert!(
        export["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["type"] == "contact.opted_in")
    );

    let rectified: Value = api
        .patch(
            &app,
            &format!("/v1/privacy/subjects/{PHONE}"),
            json!({"name": "Ada L."}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(rectified["name"], "Ada L.");
    let restricted: Value = api
        .post(
            &app,
            &format!("/v1/privacy/subjects/{PHONE}/restrict"),
            json!({}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(restricted["restricted"], true);
    let unrestricted: Value = api
        .post(
            &app,
            &format!("/v1/privacy/subjects/{PHONE}/unrestrict"),
            json!({}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(unrestricted["restricted"], false);

    let erased = api
        .delete(&app, &format!("/v1/privacy/subjects/{PHONE}"))
        .await;
    assert_eq!(erased.status(), 200);
    let erased: Value = erased.json().await.unwrap();
    assert_eq!(erased["consent_records_deleted"], 1);
    assert_problem(api.get(&app, &format!("/v1/contacts/{id}")).await, 404).await;
    // The rest of the workspace is intact.
    let other = api
        .get(
            &app,
            &format!("/v1/contacts/{}", bystander["id"].as_str().unwrap()),
        )
        .await;
    assert_eq!(other.status(), 200);
    // Asking again: nothing left, and the request is still registered.
    let p = assert_problem(
        api.delete(&app, &format!("/v1/privacy/subjects/{PHONE}"))
            .await,
        404,
    )
    .await;
    assert_eq!(p["type"], "https://waypost.dev/problems/subject-not-found");
    let register: Vec<Value> = api
        .get(&app, "/v1/privacy/requests")
        .await
        .json()
        .await
        .unwrap();
    let kinds: Vec<&str> = register
        .iter()
        .map(|r| r["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "erase",
            "erase",
            "unrestrict",
            "restrict",
            "rectify",
            "export"
        ]
    );
    assert_eq!(register[0]["outcome"], "not_found");
    assert_eq!(
        register[0]["subject_hash"], register[1]["subject_hash"],
        "a repeat request is recognisable"
    );
    // The audit log records the erasure without the number.
    let chain = waypost_core::audit::chain_name(Some(api.workspace_id));
    let events = app
        .state
        .store
        .audit_chain(&chain, 0, 10_000)
        .await
        .unwrap();
    let erase = events
        .iter()
        .find(|e| e.action == "privacy.erase")
        .expect("erasure audited");
    let text = serde_json::to_string(&erase.details).unwrap();
    assert!(!text.contains("23456789"), "number in the audit log");
    assert!(text.contains(register[0]["subject_hash"].as_str().unwrap()));
    // Bad input is a clear 422; a key without privacy:manage is refused.
    assert_problem(
        api.get(&app, "/v1/privacy/subjects/not-a-number").await,
        422,
    )
    .await;
    let limited = workspace_api(&app, "limited@example.com", &["contacts:read"]).await;
    assert_problem(
        limited
            .get(&app, &format!("/v1/privacy/subjects/{PHONE}"))
            .await,
        403,
    )
    .await;
}

on_both_backends!(
    subject_rights_by_phone_number,
    erasure_shreds_retained_content_and_spares_the_rest,
);

const OTHER: &str = "4915112340000";

/// Opens `id`'s retained content with whichever contact key in the workspace can.
async fn readable_content(f: &Fixture, message_id: &str, ciphertext: &[u8]) -> Option<String> {
    let contacts = f
        .app
        .state
        .store
        .list_contacts(&f.ws.to_string(), None, 1000)
        .await
        .unwrap();
    contacts.iter().find_map(|c| {
        let key = content_key(&f.app.state.keys, c).ok()??;
        let plain = key
            .decrypt(Aad::new("messages", "content", message_id), ciphertext)
            .ok()?;
        Some(String::from_utf8_lossy(&plain).into_owned())
    })
}

async fn erasure_shreds_retained_content_and_spares_the_rest(backend: Backend) {
    // Dispatch off, so a send to the person stays pending and must be cancelled.
    let Some(f) = fixture(backend, |c| c.dispatch_enabled = false, |_| {}).await else {
        return;
    };
    let store = &f.app.state.store;
    let settings = MessagingSettings {
        content_retention: "days:30".parse().unwrap(),
        shield_policy: "flag".parse().unwrap(),
    };
    let audit = NewAuditEvent::new(Some(f.ws), Actor::System, "workspace.updated");
    store
        .update_messaging_settings(&f.ws.to_string(), &settings, audit)
        .await
        .unwrap();
    // Written behind the node's back: its next poll of the cache generation sees it.
    f.app.state.lookups.refresh().await.unwrap();
    let mine = f
        .wait_inbound(&f.inject(USER, "erase-me body 5150").await)
        .await;
    let theirs = f
        .wait_inbound(&f.inject(OTHER, "keep-me body 6160").await)
        .await;
    let pending = f.send_ok(USER, "pending to the subject").await;
    assert!(store.outbox_row(&pending).await.unwrap().is_some());
    let my_ciphertext = mine.content.clone().expect("content retained");
    let their_ciphertext = theirs.content.clone().expect("content retained");
    assert!(
        readable_content(&f, &mine.id, &my_ciphertext)
            .await
            .expect("readable before erasure")
            .contains("erase-me body 5150")
    );
    let wrapped = store
        .get_contact(&f.ws.to_string(), &mine.contact_id)
        .await
        .unwrap()
        .content_key
        .expect("a content key");

    let session = login(&f.app, "ops@example.com", PASSWORD).await;
    let (_, privacy_key) = api_key(
        &f.app,
        &session,
        json!({"name": "dpo", "scopes": ["privacy:manage"]}),
    )
    .await;
    let erased = f
        .app
        .client
        .delete(format!("{}/v1/privacy/subjects/%2B{USER}", f.app.address))
        .bearer_auth(&privacy_key)
        .send()
        .await
        .unwrap();
    assert_eq!(erased.status(), 200);
    let erased: Value = erased.json().await.unwrap();
    assert_eq!(erased["pending_sends_cancelled"], 1, "{erased}");
    assert_eq!(erased["messages_deleted"], 2, "{erased}");

    // The ciphertext, wherever a copy survives, opens with no key the workspace has.
    assert_eq!(readable_content(&f, &mine.id, &my_ciphertext).await, None);
    assert!(store.outbox_row(&pending).await.unwrap().is_none());
    assert!(
        store
            .get_contact(&f.ws.to_string(), &mine.contact_id)
            .await
            .is_err()
    );
    // Everyone else is intact: their contact, message and readable content.
    assert!(
        readable_content(&f, &theirs.id, &their_ciphertext)
            .await
            .expect("the bystander's content still opens")
            .contains("keep-me body 6160")
    );
    assert_eq!(f.message(&theirs.id).await.content, Some(their_ciphertext));
    if backend == Backend::Sqlite {
        // Deleted rows are overwritten: the wrapped key is nowhere in the file.
        let pool = sqlx::SqlitePool::connect(&f.app.db.url).await.unwrap();
        for _ in 0..50 {
            let (busy, _, _): (i64, i64, i64) = sqlx::query_as("PRAGMA wal_checkpoint(TRUNCATE)")
                .fetch_one(&pool)
                .await
                .unwrap();
            if busy == 0 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        let path = f.app.db.url.trim_start_matches("sqlite://");
        let path = path.split('?').next().unwrap();
        let mut bytes = std::fs::read(path).unwrap();
        if let Ok(wal) = std::fs::read(format!("{path}-wal")) {
            bytes.extend(wal);
        }
        assert!(
            !bytes
                .windows(wrapped.len())
                .any(|w| w == wrapped.as_slice()),
            "the erased contact's wrapped key is still in the database file"
        );
        assert!(
            !bytes
                .windows(my_ciphertext.len())
                .any(|w| w == my_ciphertext.as_slice()),
            "the erased content is still in the database file"
        );
    }
}
