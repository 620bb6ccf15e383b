//! Contact imports: a CSV file streamed to POST /v1/contacts/imports creates
//! and updates contacts with a result for every row; consent is recorded only
//! with its evidence and never undoes an opt-out; the import key makes a
//! retried upload safe; an interrupted import run again neither loses nor
//! duplicates anything.

use futures_util::StreamExt;
use serde_json::{Value, json};
use waypost_core::audit::Actor;
use waypost_server::ops::Ctx;
use waypost_server::ops::contact_import::{ImportKey, import_contacts};
use waypost_server::state::RequestOrigin;
use waypost_store::Backend;

use crate::audiences::{consent, contact, listed, rows_in};
use crate::bearer::{ALL_SCOPES, Api, workspace_api};
use crate::helpers::{TestApp, assert_problem, spawn_app};
use crate::on_both_backends;
use crate::users::audit_actions;

on_both_backends!(
    a_csv_import_creates_updates_and_reports_every_row,
    an_import_key_makes_a_retried_upload_safe,
    an_interrupted_import_run_again_loses_and_duplicates_nothing,
);

const CSV: &str = "\u{feff}phone,name,language,time_zone,tags,city,tier,consent_marketing,consent_source,consent_captured_at,consent_text
+4915123450001,Ada,de,Europe/Berlin,vip;news,Berlin,2,yes,web form,2026-11-01T10:00:00Z,\"Yes, send me offers\"
+4915123450002,Bo,,,news,Hamburg,,yes,web form,2026-11-01,I agree to news by WhatsApp
+4915123450003,Cy,,,,,,yes,,,
not-a-number,Dee,,,,,,,,,
+49 151 2345 0002,Bo again,,,,,,,,,

+4915123450004,Eve,,Mars/Olympus,,,,,,,
+4915123450005,Fay,,,,,many,,,,
+4915123450006,Gus,,,,,,no,,,
";

async fn upload(app: &TestApp, api: &Api, key: &str, body: &str) -> reqwest::Response {
    app.client
        .post(format!("{}/v1/contacts/imports", app.address))
        .bearer_auth(&api.key)
        .header("content-type", "text/csv")
        .header("idempotency-key", key)
        .body(body.to_owned())
        .send()
        .await
        .unwrap()
}

async fn define_fields(app: &TestApp, api: &Api) {
    for (key, t) in [("city", "text"), ("tier", "number")] {
        let res = api
            .post(app, "/v1/contacts/fields", json!({"key": key, "type": t}))
            .await;
        assert_eq!(res.status(), 201);
    }
}

async fn a_csv_import_creates_updates_and_reports_every_row(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let api = workspace_api(&app, "imp@example.com", &ALL_SCOPES).await;
    define_fields(&app, &api).await;
    // Ada exists and has opted out: a list says yes, but the opt-out stands.
    let ada = contact(
        &app,
        &api,
        json!({"phone": "+4915123450001", "name": "Old"}),
    )
    .await;
    let ada = ada["id"].as_str().unwrap().to_owned();
    consent(&app, &api, &ada, "opted_out").await;

    let res = upload(&app, &api, "list-2026-12", CSV).await;
    assert_eq!(res.status(), 201);
    let import: Value = res.json().await.unwrap();
    assert!(import["id"].as_str().unwrap().starts_with("imp_"));
    assert_eq!(import["status"], "completed");
    assert_eq!(import["rows"], 8, "{import}");
    assert_eq!(
        [
            &import["created"],
            &import["updated"],
            &import["invalid_number"],
            &import["invalid"],
            &import["duplicate"],
            &import["consent_recorded"]
        ],
        [
            &json!(3),
            &json!(1),
            &json!(1),
            &json!(2),
            &json!(1),
            &json!(2)
        ],
        "{import}"
    );
    let id = import["id"].as_str().unwrap();

    let rows: Value = api
        .get(&app, &format!("/v1/contacts/imports/{id}/rows"))
        .await
        .json()
        .await
        .unwrap();
    let rows = rows["data"].as_array().unwrap().clone();
    let outcomes: Vec<&str> = rows
        .iter()
        .map(|r| r["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(
        outcomes,
        [
            "updated",
            "created",
            "created",
            "invalid_number",
            "duplicate",
            "invalid",
            "invalid",
            "created"
        ]
    );
    assert_eq!(rows[0]["contact_id"], ada.as_str());
    assert_eq!(rows[0]["consent"], "kept_opt_out");
    assert_eq!(rows[1]["consent"], "recorded");
    assert_eq!(rows[2]["consent"], "not_recorded");
    assert!(rows[2]["detail"].as_str().unwrap().contains("consent_text"));
    assert!(rows[3]["detail"].as_str().unwrap().starts_with("phone:"));
    assert_eq!(rows[4]["detail"], "same number as row 2");
    assert!(
        rows[5]["detail"]
            .as_str()
            .unwrap()
            .starts_with("time_zone:")
    );
    assert!(rows[6]["detail"].as_str().unwrap().starts_with("tier:"));
    assert_eq!(rows[7]["consent"], "recorded");
    // Results name columns, never the values of the file.
    assert!(
        !rows
            .iter()
            .any(|r| r.to_string().contains("not-a-number") || r.to_string().contains("Olympus"))
    );

    // Marketing consent only with evidence; the evidence keeps the text shown.
    assert_eq!(
        listed(&app, &api, "consent_marketing=opted_in").await,
        [rows[1]["contact_id"].as_str().unwrap()]
    );
    let bo_id = rows[1]["contact_id"].as_str().unwrap();
    let history: Value = api
        .get(&app, &format!("/v1/contacts/{bo_id}/consent"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(history[0]["source"], "web form");
    assert_eq!(history[0]["captured_at"], "2026-11-01T00:00:00Z");
    assert!(
        history[0]["evidence"]
            .as_str()
            .unwrap()
            .contains("I agree to news by WhatsApp")
    );
    let cy_id = rows[2]["contact_id"].as_str().unwrap();
    let cy: Value = api
        .get(&app, &format!("/v1/contacts/{cy_id}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(cy["consent"]["marketing"], Value::Null);
    let gus: Value = api
        .get(
            &app,
            &format!("/v1/contacts/{}", rows[7]["contact_id"].as_str().unwrap()),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(gus["consent"]["marketing"], "opted_out");
    let ada_now: Value = api
        .get(&app, &format!("/v1/contacts/{ada}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(ada_now["consent"]["marketing"], "opted_out");
    assert_eq!(ada_now["name"], "Ada");
    assert_eq!(ada_now["language"], "de");
    assert_eq!(ada_now["tags"], json!(["news", "vip"]));
    assert_eq!(
        ada_now["attributes"],
        json!({"city": "Berlin", "tier": 2.0})
    );
    assert_eq!(
        listed(&app, &api, "attribute=city:berlin").await,
        [ada.as_str()]
    );
    assert_eq!(listed(&app, &api, "tag=news").await.len(), 2);

    // The results download as CSV.
    let csv = api
        .get(&app, &format!("/v1/contacts/imports/{id}/rows.csv"))
        .await;
    assert_eq!(csv.status(), 200);
    assert!(
        csv.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    let text = csv.text().await.unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 9);
    assert_eq!(lines[0], "row,outcome,contact_id,consent,detail");
    assert!(lines[3].starts_with("3,created,ct_") && lines[3].contains(",not_recorded,"));

    let actions = audit_actions(&app, Some(api.workspace_id)).await;
    assert!(actions.contains(&"contact_import.started".to_owned()));
    assert!(actions.contains(&"contact_import.completed".to_owned()));
    let one: Value = api
        .get(&app, &format!("/v1/contacts/imports/{id}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(one["created"], 3);
}

async fn an_import_key_makes_a_retried_upload_safe(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let api = workspace_api(&app, "imp-key@example.com", &ALL_SCOPES).await;
    define_fields(&app, &api).await;
    let first: Value = upload(&app, &api, "k1", CSV).await.json().await.unwrap();
    let contacts = rows_in(&app, "contacts").await;
    let again = upload(&app, &api, "k1", CSV).await;
    assert_eq!(again.status(), 200);
    let again: Value = again.json().await.unwrap();
    assert_eq!(again["id"], first["id"]);
    assert_eq!(rows_in(&app, "contacts").await, contacts);
    let other = upload(&app, &api, "k1", "phone\n+4915123459999\n").await;
    assert!(
        assert_problem(other, 409).await["type"]
            .as_str()
            .unwrap()
            .ends_with("import-key-reused")
    );

    // Refused before any row is written: unknown column, no phone column, wrong type, no key.
    let unknown = upload(
        &app,
        &api,
        "k2",
        "phone,favourite_colour\n+4915123459999,red\n",
    )
    .await;
    let p = assert_problem(unknown, 422).await;
    assert_eq!(p["column"], "favourite_colour");
    let no_phone = upload(&app, &api, "k3", "name\nAda\n").await;
    assert_eq!(
        assert_problem(no_phone, 422).await["type"]
            .as_str()
            .unwrap()
            .rsplit('/')
            .next(),
        Some("invalid-import")
    );
    assert_eq!(rows_in(&app, "contacts").await, contacts);
    let json_body = api
        .post(
            &app,
            "/v1/contacts/imports",
            json!({"phone": "+4915123459999"}),
        )
        .await;
    assert_eq!(assert_problem(json_body, 415).await["status"], 415);
    let no_key = app
        .client
        .post(format!("{}/v1/contacts/imports", app.address))
        .bearer_auth(&api.key)
        .header("content-type", "text/csv")
        .body("phone\n+4915123459999\n")
        .send()
        .await
        .unwrap();
    assert!(
        assert_problem(no_key, 422).await["detail"]
            .as_str()
            .unwrap()
            .contains("Idempotency-Key")
    );
    // A failed import may be run again with the same key once the file is right.
    let fixed = upload(&app, &api, "k2", "phone,city\n+4915123459999,Bonn\n").await;
    assert_eq!(fixed.status(), 201);
    let fixed: Value = fixed.json().await.unwrap();
    assert_eq!(fixed["created"], 1);
    let actions = audit_actions(&app, Some(api.workspace_id)).await;
    assert!(actions.contains(&"contact_import.failed".to_owned()));
}

/// A body that yields `lines` in chunks and, when `fail_after` is set, breaks after that many chunks.
fn body_of(
    text: String,
    fail_after: Option<usize>,
) -> impl futures_util::Stream<Item = Result<Vec<u8>, std::io::Error>> + Unpin + Send {
    let chunks: Vec<Vec<u8>> = text.as_bytes().chunks(4096).map(<[u8]>::to_vec).collect();
    let n = chunks.len();
    futures_util::stream::iter(
        chunks
            .into_iter()
            .enumerate()
            .map(move |(i, c)| match fail_after {
                Some(k) if i >= k => Err(std::io::Error::other("connection reset")),
                _ => Ok(c),
            }),
    )
    .take(fail_after.map_or(n, |k| k + 1))
}

async fn an_interrupted_import_run_again_loses_and_duplicates_nothing(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let api = workspace_api(&app, "imp-resume@example.com", &ALL_SCOPES).await;
    let mut text = String::from("phone,name,tags\n");
    for i in 0..1_500 {
        text.push_str(&format!("+49151234{i:05},Person {i},bulk\n"));
    }
    let ctx = Ctx::new(
        api.workspace_id,
        Actor::System,
        RequestOrigin {
            ip: None,
            user_agent: Some("test".into()),
            rate_limit: None,
        },
    );
    let key = || ImportKey::parse("bulk-1").unwrap();
    // The upload breaks after about half the file (two batches are written).
    let broken = import_contacts(
        &app.state,
        &ctx,
        key(),
        body_of(text.clone(), Some(7)),
        &mut |_| {},
    )
    .await;
    assert!(broken.is_err());
    let written = rows_in(&app, "contacts").await;
    assert!((500..1_500).contains(&written), "{written}");
    // The import is `failed` now, so the same key runs it again.
    let mut seen = Vec::new();
    let done = import_contacts(&app.state, &ctx, key(), body_of(text, None), &mut |p| {
        seen.push(p.rows)
    })
    .await
    .unwrap();
    assert!(!done.replayed);
    let i = done.import;
    assert_eq!(i.status, "completed");
    assert_eq!(i.rows_total, 1_500);
    // Rows written by the first run keep `created`; nothing counted twice.
    assert_eq!(i.created + i.updated, 1_500);
    assert_eq!(i.created, 1_500);
    assert_eq!(rows_in(&app, "contacts").await, 1_500);
    assert_eq!(rows_in(&app, "contact_import_rows").await, 1_500);
    assert_eq!(rows_in(&app, "contact_tags").await, 1_500);
    assert!(
        seen.len() >= 3 && seen.windows(2).all(|w| w[0] <= w[1]),
        "{seen:?}"
    );
    assert_eq!(*seen.last().unwrap(), 1_500);
}
