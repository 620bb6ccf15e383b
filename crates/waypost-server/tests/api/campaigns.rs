//! Campaigns: only `campaigns:manage` may create one; a draft checks its
//! segment, template and parameters; the pre-flight reads the segment now and
//! reports who would be sent the template and who is skipped, and why.

use serde_json::{Value, json};
use waypost_store::Backend;

use crate::audiences::{consent, contact};
use crate::bearer::{ALL_SCOPES, Api};
use crate::helpers::assert_problem;
use crate::messaging_fixture::fixture;
use crate::on_both_backends;
use crate::users::{PASSWORD, api_key, audit_actions, login};

on_both_backends!(a_campaign_draft_and_its_preflight_count_who_is_skipped_and_why);

async fn a_campaign_draft_and_its_preflight_count_who_is_skipped_and_why(backend: Backend) {
    let Some(f) = fixture(
        backend,
        |_| {},
        |s| {
            s.webhooks.template_review_ms = 600_000;
            s.webhooks.template_reject_rate = 0.0;
        },
    )
    .await
    else {
        return;
    };
    let app = &f.app;
    let session = login(app, "ops@example.com", PASSWORD).await;
    let (_, key) = api_key(
        app,
        &session,
        json!({"name": "marketing", "scopes": ALL_SCOPES}),
    )
    .await;
    let api = Api {
        key,
        workspace_id: f.ws,
    };
    // The fixture's key lacks the new scope.
    let without = Api {
        key: f.key.clone(),
        workspace_id: f.ws,
    };

    let template = json!({"name": "spring_sale", "language": "en_US", "category": "marketing",
        "components": [{"type": "BODY", "text": "Hi {{1}}, {{2}} is 20% off in {{3}}.",
            "example": {"body_text": [["Ana", "Everything", "Berlin"]]}}]});
    let created = api.post(app, "/v1/templates", template).await;
    assert_eq!(created.status(), 201);
    let created: Value = created.json().await.unwrap();

    api.post(
        app,
        "/v1/contacts/fields",
        json!({"key": "city", "type": "text"}),
    )
    .await;
    let people = [
        // name, consent, restricted, city
        ("Ada", Some("opted_in"), false, Some("Berlin")),
        ("", Some("opted_in"), false, Some("Berlin")),
        ("Cy", Some("opted_out"), false, Some("Bonn")),
        ("Dee", None, false, Some("Köln")),
        ("Eve", Some("opted_in"), true, Some("Kiel")),
        ("Fay", Some("opted_in"), false, None),
    ];
    for (i, (name, status, restricted, city)) in people.iter().enumerate() {
        let mut body = json!({"phone": format!("+491512345020{i}"), "tags": ["spring"]});
        if !name.is_empty() {
            body["name"] = json!(name);
        }
        if let Some(c) = city {
            body["attributes"] = json!({"city": c});
        }
        let c = contact(app, &api, body).await;
        let id = c["id"].as_str().unwrap();
        if let Some(s) = status {
            consent(app, &api, id, s).await;
        }
        if *restricted {
            api.patch(
                app,
                &format!("/v1/contacts/{id}"),
                json!({"restricted": true}),
            )
            .await;
        }
    }
    // Not in the segment.
    let outsider = contact(app, &api, json!({"phone": "+4915123450299"})).await;
    consent(app, &api, outsider["id"].as_str().unwrap(), "opted_in").await;
    let segment: Value = api
        .post(
            app,
            "/v1/segments",
            json!({"name": "Spring", "filter": {"tags": ["spring"]}}),
        )
        .await
        .json()
        .await
        .unwrap();
    let segment_id = segment["id"].as_str().unwrap();

    let body = |params: Value| {
        json!({"name": "Spring sale", "segment_id": segment_id,
               "template": {"name": "spring_sale", "language": "en_US"}, "parameters": params})
    };
    let params =
        json!({"body": [{"field": "name"}, {"text": "Everything"}, {"attribute": "city"}]});
    let refused = without
        .post(app, "/v1/campaigns", body(params.clone()))
        .await;
    assert_eq!(
        assert_problem(refused, 403).await["required_scope"],
        "campaigns:manage"
    );
    let p = assert_problem(
        api.post(
            app,
            "/v1/campaigns",
            body(json!({"body": [{"field": "name"}]})),
        )
        .await,
        422,
    )
    .await;
    assert!(p["type"].as_str().unwrap().ends_with("template-parameters"));
    assert!(p["detail"].as_str().unwrap().contains("3 body"), "{p}");
    let unknown = json!({"name": "x", "segment_id": segment_id,
        "template": {"name": "nope", "language": "en_US"}, "parameters": params});
    let p = assert_problem(api.post(app, "/v1/campaigns", unknown).await, 422).await;
    assert!(p["type"].as_str().unwrap().ends_with("template-unknown"));
    let no_segment = json!({"name": "x", "segment_id": "seg_01JAAAAAAAAAAAAAAAAAAAAAAA",
        "template": {"name": "spring_sale", "language": "en_US"}, "parameters": params});
    assert_eq!(
        api.post(app, "/v1/campaigns", no_segment).await.status(),
        422
    );

    let res = api.post(app, "/v1/campaigns", body(params.clone())).await;
    assert_eq!(res.status(), 201);
    let campaign: Value = res.json().await.unwrap();
    assert_eq!(campaign["status"], "draft");
    assert_eq!(campaign["channel_id"], f.channel.id.as_str());
    let id = campaign["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("cmp_"));
    let dup = api.post(app, "/v1/campaigns", body(params)).await;
    assert!(
        assert_problem(dup, 409).await["type"]
            .as_str()
            .unwrap()
            .ends_with("campaign-exists")
    );

    let pre: Value = api
        .get(app, &format!("/v1/campaigns/{id}/preflight"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(pre["recipients"], 6, "{pre}");
    assert_eq!(pre["eligible"], 1, "{pre}");
    assert_eq!(
        pre["skipped"],
        json!({"no_consent": 1, "opted_out": 1, "restricted": 1, "no_phone": 0, "invalid_parameters": 2}),
        "{pre}"
    );
    assert_eq!(pre["template"]["category"], "marketing");
    assert_eq!(pre["cost_categories"], json!({"marketing": 1}));
    // Pending review: nothing may start yet.
    assert_eq!(pre["template"]["status"], "PENDING");
    assert_eq!(pre["ready"], false);

    // Approved, and with one more opted-in contact with a name and a city, it is ready.
    let provider_id = created["provider_id"].as_str().unwrap();
    let res = app
        .client
        .put(format!(
            "{}/_sandbox/templates/{provider_id}/status",
            f.sandbox.base_url()
        ))
        .bearer_auth(f.sandbox.control_token())
        .json(&json!({"status": "APPROVED", "reason": "NONE"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let gus = contact(
        app,
        &api,
        json!({"phone": "+4915123450290", "name": "Gus", "tags": ["spring"], "attributes": {"city": "Ulm"}}),
    )
    .await;
    consent(app, &api, gus["id"].as_str().unwrap(), "opted_in").await;
    let mut ready = Value::Null;
    for _ in 0..300 {
        ready = api
            .get(app, &format!("/v1/campaigns/{id}/preflight"))
            .await
            .json()
            .await
            .unwrap();
        if ready["ready"] == true {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(ready["ready"], true, "{ready}");
    assert_eq!(ready["recipients"], 7);
    assert_eq!(ready["eligible"], 2);

    let list: Value = api.get(app, "/v1/campaigns").await.json().await.unwrap();
    assert_eq!(list["data"][0]["id"], id.as_str());
    assert_eq!(
        without
            .get(app, &format!("/v1/campaigns/{id}"))
            .await
            .status(),
        403
    );
    let actions = audit_actions(app, Some(f.ws)).await;
    assert!(actions.contains(&"campaign.created".to_owned()));
}
