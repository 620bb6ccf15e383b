//! Data-subject rights by phone number: export, rectify, restrict, erase, and the register.

use serde_json::{Value, json};
use waypost_store::Backend;

use crate::bearer::{ALL_SCOPES, workspace_api};
use crate::helpers::{assert_problem, spawn_app};
use crate::on_both_backends;

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

on_both_backends!(subject_rights_by_phone_number);
