//! Audiences: contacts carry a language, a time zone, typed custom attributes
//! and tags; the contact list filters on them, on consent per category and on
//! time; segments save a filter and count it live; nothing personal reaches
//! the database in plaintext; export and erasure cover the new data.

use serde_json::{Value, json};
use waypost_store::Backend;

use crate::bearer::{ALL_SCOPES, Api, workspace_api};
use crate::helpers::{TestApp, assert_problem, spawn_app};
use crate::on_both_backends;
use crate::users::audit_actions;

on_both_backends!(
    contacts_carry_a_profile_and_are_found_by_tag_attribute_consent_and_time,
    segments_are_saved_filters_counted_live,
    export_and_erasure_cover_tags_attributes_and_their_indexes,
);

/// A marker no plaintext column holds: seeing it in the database is a leak.
const MARKER: &str = "Zyxwickshire";

pub async fn contact(app: &TestApp, api: &Api, body: Value) -> Value {
    let res = api.post(app, "/v1/contacts", body).await;
    assert_eq!(res.status(), 201);
    res.json().await.unwrap()
}

pub async fn consent(app: &TestApp, api: &Api, id: &str, status: &str) {
    let res = api
        .post(
            app,
            &format!("/v1/contacts/{id}/consent"),
            json!({"status": status, "categories": ["marketing"], "source": "web",
                   "captured_at": "2026-11-01T10:00:00Z"}),
        )
        .await;
    assert_eq!(res.status(), 201);
}

/// The ids of the contacts a query lists, in order.
pub async fn listed(app: &TestApp, api: &Api, query: &str) -> Vec<String> {
    let res = api.get(app, &format!("/v1/contacts?{query}")).await;
    assert_eq!(res.status(), 200, "{query}");
    let page: Value = res.json().await.unwrap();
    page["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap().to_owned())
        .collect()
}

/// How many rows of `table` the database holds (reaching under the store).
pub async fn rows_in(app: &TestApp, table: &str) -> i64 {
    let sql = format!("SELECT COUNT(*) FROM {table}");
    match app.db.backend() {
        Backend::Sqlite => {
            let pool = sqlx::SqlitePool::connect(&app.db.url).await.unwrap();
            sqlx::query_scalar(&sql).fetch_one(&pool).await.unwrap()
        }
        Backend::Postgres => {
            let pool = sqlx::PgPool::connect(&app.db.url).await.unwrap();
            sqlx::query_scalar(&sql).fetch_one(&pool).await.unwrap()
        }
    }
}

/// Whether `marker` is stored in plaintext anywhere we put personal data.
pub async fn stored_in_plaintext(app: &TestApp, marker: &str) -> bool {
    match app.db.backend() {
        Backend::Sqlite => {
            let path = app.db.url.trim_start_matches("sqlite://");
            let dir = std::path::Path::new(path).parent().unwrap();
            let mut everything = Vec::new();
            for entry in std::fs::read_dir(dir).unwrap() {
                let p = entry.unwrap().path();
                if p.file_name()
                    .unwrap()
                    .to_string_lossy()
                    .starts_with("waypost.db")
                {
                    everything.extend(std::fs::read(p).unwrap_or_default());
                }
            }
            everything
                .windows(marker.len())
                .any(|w| w.eq_ignore_ascii_case(marker.as_bytes()))
        }
        Backend::Postgres => {
            let pool = sqlx::PgPool::connect(&app.db.url).await.unwrap();
            let needle = marker.to_lowercase();
            let hits: i64 = sqlx::query_scalar(
                "SELECT
                   (SELECT COUNT(*) FROM contacts WHERE position($1::bytea in lower(encode(COALESCE(name, ''::bytea) || COALESCE(attributes, ''::bytea), 'escape'))::bytea) > 0)
                 + (SELECT COUNT(*) FROM segments WHERE position($1::bytea in lower(encode(definition, 'escape'))::bytea) > 0)
                 + (SELECT COUNT(*) FROM segments WHERE position($2 in lower(name)) > 0)
                 + (SELECT COUNT(*) FROM contact_attribute_index WHERE position($2 in lower(field)) > 0
                      OR position($1::bytea in value_index) > 0)
                 + (SELECT COUNT(*) FROM contact_tags WHERE position($2 in tag) > 0)",
            )
            .bind(needle.as_bytes())
            .bind(&needle)
            .fetch_one(&pool)
            .await
            .unwrap();
            hits > 0
        }
    }
}

async fn contacts_carry_a_profile_and_are_found_by_tag_attribute_consent_and_time(
    backend: Backend,
) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let api = workspace_api(&app, "aud@example.com", &ALL_SCOPES).await;
    for (key, t) in [
        ("city", "text"),
        ("tier", "number"),
        ("member_since", "date"),
    ] {
        let res = api
            .post(&app, "/v1/contacts/fields", json!({"key": key, "type": t}))
            .await;
        assert_eq!(res.status(), 201, "{key}");
    }
    let again = api
        .post(
            &app,
            "/v1/contacts/fields",
            json!({"key": "city", "type": "text"}),
        )
        .await;
    assert!(
        assert_problem(again, 409).await["type"]
            .as_str()
            .unwrap()
            .ends_with("field-exists")
    );
    let reserved = api
        .post(
            &app,
            "/v1/contacts/fields",
            json!({"key": "name", "type": "text"}),
        )
        .await;
    assert_eq!(assert_problem(reserved, 422).await["field"], "key");
    let fields: Value = api
        .get(&app, "/v1/contacts/fields")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(fields.as_array().unwrap().len(), 3);
    assert_eq!(fields[2]["key"], "tier");
    assert_eq!(fields[2]["type"], "number");

    let ada = contact(
        &app,
        &api,
        json!({"phone": "+4915123450001", "name": MARKER, "language": "de-de",
               "time_zone": "Europe/Berlin", "tags": ["VIP", "news", "ctl-tag-q7"],
               "attributes": {"city": MARKER, "tier": 2, "member_since": "2024-05-01"}}),
    )
    .await;
    assert_eq!(ada["language"], "de_DE");
    assert_eq!(ada["time_zone"], "Europe/Berlin");
    assert_eq!(ada["tags"], json!(["ctl-tag-q7", "news", "vip"]));
    assert_eq!(ada["attributes"]["city"], MARKER);
    let ada = ada["id"].as_str().unwrap().to_owned();
    // A number field takes numbers written as text, and refuses other text.
    let bo = contact(
        &app,
        &api,
        json!({"phone": "+4915123450002", "tags": ["news"],
               "attributes": {"city": "Hamburg", "tier": "3"}}),
    )
    .await;
    assert_eq!(bo["attributes"]["tier"], 3.0);
    let bo = bo["id"].as_str().unwrap().to_owned();
    let cy = contact(&app, &api, json!({"phone": "+4915123450003"})).await;
    let cy = cy["id"].as_str().unwrap().to_owned();
    for (body, field) in [
        (
            json!({"phone": "+4915123450009", "attributes": {"tier": "many"}}),
            "attributes.tier",
        ),
        (
            json!({"phone": "+4915123450009", "attributes": {"member_since": "2024-13-01"}}),
            "attributes.member_since",
        ),
        (
            json!({"phone": "+4915123450009", "language": "english"}),
            "language",
        ),
        (
            json!({"phone": "+4915123450009", "time_zone": "Mars/Olympus"}),
            "time_zone",
        ),
        (json!({"phone": "+4915123450009", "tags": ["a b"]}), "tags"),
    ] {
        let res = api.post(&app, "/v1/contacts", body).await;
        assert_eq!(assert_problem(res, 422).await["field"], field);
    }
    consent(&app, &api, &ada, "opted_in").await;
    consent(&app, &api, &bo, "opted_out").await;

    assert_eq!(
        listed(&app, &api, "tag=news").await,
        [ada.as_str(), bo.as_str()]
    );
    assert_eq!(listed(&app, &api, "tag=vip,news").await, [ada.as_str()]);
    assert_eq!(listed(&app, &api, "tag=nobody").await, Vec::<String>::new());
    // Text attributes match ignoring case; numbers by value.
    assert_eq!(
        listed(
            &app,
            &api,
            &format!("attribute=city:{}", MARKER.to_uppercase())
        )
        .await,
        [ada.as_str()]
    );
    assert_eq!(listed(&app, &api, "attribute=tier:3").await, [bo.as_str()]);
    assert_eq!(
        listed(&app, &api, "attribute=tier:3.0").await,
        [bo.as_str()]
    );
    assert_eq!(
        listed(&app, &api, "attribute=member_since:2024-05-01").await,
        [ada.as_str()]
    );
    assert_eq!(
        listed(&app, &api, "consent_marketing=opted_in").await,
        [ada.as_str()]
    );
    assert_eq!(
        listed(&app, &api, "consent_marketing=opted_out").await,
        [bo.as_str()]
    );
    assert_eq!(
        listed(&app, &api, "consent_marketing=unknown").await,
        [cy.as_str()]
    );
    assert_eq!(
        listed(&app, &api, "consent_utility=unknown&tag=news").await,
        [ada.as_str(), bo.as_str()]
    );
    assert_eq!(listed(&app, &api, "language=de_DE").await, [ada.as_str()]);
    assert_eq!(
        listed(&app, &api, "last_inbound_after=2020-01-01T00:00:00Z").await,
        Vec::<String>::new()
    );
    assert_eq!(
        listed(&app, &api, "created_after=2000-01-01T00:00:00Z")
            .await
            .len(),
        3
    );
    assert_eq!(
        listed(&app, &api, "created_before=2000-01-01T00:00:00Z").await,
        Vec::<String>::new()
    );
    let bad = api.get(&app, "/v1/contacts?consent_marketing=maybe").await;
    assert!(
        assert_problem(bad, 422).await["detail"]
            .as_str()
            .unwrap()
            .contains("consent_marketing")
    );
    let bad = api.get(&app, "/v1/contacts?attribute=tier:lots").await;
    assert_eq!(assert_problem(bad, 422).await["field"], "attributes.tier");

    // Paginated like the other lists.
    let first: Value = api
        .get(&app, "/v1/contacts?tag=news&limit=1")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(first["data"][0]["id"], ada.as_str());
    let cursor = first["next_cursor"].as_str().unwrap();
    let second: Value = api
        .get(
            &app,
            &format!("/v1/contacts?tag=news&limit=1&after={cursor}"),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(second["data"][0]["id"], bo.as_str());

    // A changed attribute is found by its new value only; tags are replaced.
    let res = api
        .patch(
            &app,
            &format!("/v1/contacts/{bo}"),
            json!({"attributes": {"city": MARKER}, "tags": [], "language": "pt-br"}),
        )
        .await;
    assert_eq!(res.status(), 200);
    let patched: Value = res.json().await.unwrap();
    assert_eq!(patched["tags"], json!([]));
    assert_eq!(patched["language"], "pt_BR");
    assert_eq!(
        listed(&app, &api, &format!("attribute=city:{MARKER}")).await,
        [ada.as_str(), bo.as_str()]
    );
    assert_eq!(
        listed(&app, &api, "attribute=city:hamburg").await,
        Vec::<String>::new()
    );
    assert_eq!(
        listed(&app, &api, "attribute=tier:3").await,
        Vec::<String>::new()
    );
    assert_eq!(listed(&app, &api, "tag=news").await, [ada.as_str()]);

    // Names and attribute values are stored only encrypted and blind-indexed
    // (tags are plain: the scan finds one, so it can see plaintext).
    assert!(stored_in_plaintext(&app, "ctl-tag-q7").await);
    assert!(
        !stored_in_plaintext(&app, MARKER).await,
        "a personal value is stored in plaintext"
    );
    // Ada's three values and Bo's one (the patch replaced Bo's attributes).
    assert_eq!(rows_in(&app, "contact_attribute_index").await, 4);
    let actions = audit_actions(&app, Some(api.workspace_id)).await;
    assert_eq!(
        actions
            .iter()
            .filter(|a| *a == "contact_field.created")
            .count(),
        3
    );
    assert!(actions.contains(&"contact.updated".to_owned()));
}

async fn segments_are_saved_filters_counted_live(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let api = workspace_api(&app, "seg@example.com", &ALL_SCOPES).await;
    api.post(
        &app,
        "/v1/contacts/fields",
        json!({"key": "city", "type": "text"}),
    )
    .await;
    let mut ids = Vec::new();
    for (i, city) in [MARKER, MARKER, "Hamburg", MARKER].iter().enumerate() {
        let c = contact(
            &app,
            &api,
            json!({"phone": format!("+491512345010{i}"), "tags": ["news"], "attributes": {"city": city}}),
        )
        .await;
        ids.push(c["id"].as_str().unwrap().to_owned());
    }
    consent(&app, &api, &ids[0], "opted_in").await;
    consent(&app, &api, &ids[2], "opted_in").await;
    let res = api
        .post(
            &app,
            "/v1/segments",
            json!({"name": "Newsletter readers", "filter": {"tags": ["news"], "attributes": {"city": MARKER.to_lowercase()}}}),
        )
        .await;
    assert_eq!(res.status(), 201);
    let segment: Value = res.json().await.unwrap();
    assert_eq!(
        segment["counts"],
        json!({"contacts": 3, "marketing_consent": 1})
    );
    let id = segment["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("seg_"));

    // Counted live: a new opt-in and a new member show at the next read; a
    // restricted contact is counted but may not get marketing.
    consent(&app, &api, &ids[1], "opted_in").await;
    consent(&app, &api, &ids[3], "opted_in").await;
    api.patch(
        &app,
        &format!("/v1/contacts/{}", ids[3]),
        json!({"restricted": true}),
    )
    .await;
    contact(
        &app,
        &api,
        json!({"phone": "+4915123450199", "tags": ["news"], "attributes": {"city": MARKER}}),
    )
    .await;
    let now: Value = api
        .get(&app, &format!("/v1/segments/{id}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        now["counts"],
        json!({"contacts": 4, "marketing_consent": 2})
    );
    assert_eq!(now["filter"]["tags"], json!(["news"]));

    let members: Value = api
        .get(&app, &format!("/v1/segments/{id}/contacts?limit=3"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(members["data"].as_array().unwrap().len(), 3);
    assert!(members["next_cursor"].is_string());
    let list: Value = api.get(&app, "/v1/segments").await.json().await.unwrap();
    assert_eq!(list["data"].as_array().unwrap().len(), 1);
    assert!(list["data"][0].get("counts").is_none());

    let dup = api
        .post(
            &app,
            "/v1/segments",
            json!({"name": "Newsletter readers", "filter": {}}),
        )
        .await;
    assert!(
        assert_problem(dup, 409).await["type"]
            .as_str()
            .unwrap()
            .ends_with("segment-exists")
    );
    let bad = api
        .post(
            &app,
            "/v1/segments",
            json!({"name": "x", "filter": {"tags": ["no spaces"]}}),
        )
        .await;
    assert_eq!(assert_problem(bad, 422).await["field"], "tags");
    let bad = api
        .post(
            &app,
            "/v1/segments",
            json!({"name": "x", "filter": {"consent": {"marketing": "maybe"}}}),
        )
        .await;
    // A value outside the enum is a malformed body, as everywhere in the API.
    assert_eq!(bad.status(), 400);
    // The filter quotes a personal value: it is stored encrypted.
    assert!(!stored_in_plaintext(&app, MARKER).await);

    assert_eq!(
        api.delete(&app, &format!("/v1/segments/{id}"))
            .await
            .status(),
        204
    );
    assert_eq!(
        api.get(&app, &format!("/v1/segments/{id}")).await.status(),
        404
    );
    let actions = audit_actions(&app, Some(api.workspace_id)).await;
    assert!(actions.contains(&"segment.created".to_owned()));
    assert!(actions.contains(&"segment.deleted".to_owned()));

    // Another workspace sees none of it.
    let other = workspace_api(&app, "other@example.com", &ALL_SCOPES).await;
    let seg: Value = other
        .post(
            &app,
            "/v1/segments",
            json!({"name": "all news", "filter": {"tags": ["news"]}}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        seg["counts"],
        json!({"contacts": 0, "marketing_consent": 0})
    );
}

async fn export_and_erasure_cover_tags_attributes_and_their_indexes(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let api = workspace_api(&app, "dsr-aud@example.com", &ALL_SCOPES).await;
    contact(
        &app,
        &api,
        json!({"phone": "+4915123456789", "language": "es", "time_zone": "Europe/Madrid",
               "tags": ["vip"], "attributes": {"city": "Sevilla"}}),
    )
    .await;
    let export: Value = api
        .get(&app, "/v1/privacy/subjects/%2B4915123456789")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(export["contact"]["tags"], json!(["vip"]));
    assert_eq!(export["contact"]["language"], "es");
    assert_eq!(export["contact"]["time_zone"], "Europe/Madrid");
    assert_eq!(export["contact"]["attributes"]["city"], "Sevilla");

    // Rectification rewrites the index with the attributes.
    let res = api
        .patch(
            &app,
            "/v1/privacy/subjects/%2B4915123456789",
            json!({"attributes": {"city": "Granada"}}),
        )
        .await;
    assert_eq!(res.status(), 200);
    assert_eq!(listed(&app, &api, "attribute=city:sevilla").await.len(), 0);
    assert_eq!(listed(&app, &api, "attribute=city:granada").await.len(), 1);

    assert_eq!(rows_in(&app, "contact_tags").await, 1);
    assert_eq!(rows_in(&app, "contact_attribute_index").await, 1);
    let res = api
        .delete(&app, "/v1/privacy/subjects/%2B4915123456789")
        .await;
    assert!(res.status().is_success(), "{}", res.status());
    assert_eq!(rows_in(&app, "contact_tags").await, 0);
    assert_eq!(rows_in(&app, "contact_attribute_index").await, 0);
    assert_eq!(listed(&app, &api, "tag=vip").await.len(), 0);
}
