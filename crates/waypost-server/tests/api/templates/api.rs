//! Create, read, list and delete; validation, prohibited content, provider
//! refusals, channel choice and scopes.

use serde_json::{Value, json};
use waypost_core::ChannelId;
use waypost_store::Backend;

use super::*;
use crate::helpers::{assert_problem, spawn_app, spawn_app_with};
use crate::on_both_backends;

on_both_backends!(
    create_get_list_and_delete,
    invalid_templates_are_422_naming_the_field,
    prohibited_content_is_refused_naming_only_the_category,
    provider_refusals_are_problems_with_the_provider_code,
    channel_must_be_named_unless_there_is_one,
    keys_need_template_scopes,
);

async fn create_get_list_and_delete(backend: Backend) {
    let Some(f) = fixture(backend).await else {
        return;
    };
    let created = f.create_ok("order_shipped").await;
    assert_eq!(created["status"], "PENDING");
    assert_eq!(created["category"], "utility");
    assert!(created["id"].as_str().unwrap().starts_with("tpl_"));
    assert!(
        created["provider_id"]
            .as_str()
            .unwrap()
            .parse::<u64>()
            .is_ok()
    );
    // Stored exactly as submitted: the send path counts placeholders from it.
    assert_eq!(
        created["components"],
        template("order_shipped", BODY)["components"]
    );
    assert!(
        f.provider_names()
            .await
            .contains(&"order_shipped".to_owned())
    );

    let id = created["id"].as_str().unwrap();
    let got = f.get_json(&format!("/v1/templates/{id}")).await;
    assert_eq!(got["name"], "order_shipped");
    let stored = f
        .app
        .state
        .store
        .template_by_name(&f.ws.to_string(), "order_shipped", "en_US")
        .await
        .unwrap()
        .unwrap();
    let counts = waypost_core::template::parameter_counts(
        &serde_json::from_str(&stored.components).unwrap(),
    );
    assert_eq!(
        (counts.header, counts.body, counts.buttons.len()),
        (1, 2, 1)
    );

    let dup = f.create(template("order_shipped", BODY)).await;
    assert_problem(dup, 409).await;

    f.create_ok("welcome").await;
    let page = f.get_json("/v1/templates?limit=1").await;
    assert_eq!(page["data"].as_array().unwrap().len(), 1);
    let next = page["next_cursor"].as_str().unwrap().to_owned();
    let page2 = f
        .get_json(&format!("/v1/templates?limit=1&after={next}"))
        .await;
    assert_eq!(page2["data"][0]["name"], "welcome");
    let pending = f.get_json("/v1/templates?status=pending").await;
    assert_eq!(pending["data"].as_array().unwrap().len(), 2);
    let approved = f.get_json("/v1/templates?status=APPROVED").await;
    assert!(approved["data"].as_array().unwrap().is_empty());

    let res = f
        .send(
            reqwest::Method::DELETE,
            &format!("/v1/templates/{id}"),
            None,
        )
        .await;
    assert_eq!(res.status(), 204);
    let res = f
        .send(reqwest::Method::GET, &format!("/v1/templates/{id}"), None)
        .await;
    assert_problem(res, 404).await;
    assert!(
        !f.provider_names()
            .await
            .contains(&"order_shipped".to_owned())
    );
    let actions = audit_actions(&f.app, Some(f.ws)).await;
    for a in ["template.created", "template.deleted"] {
        assert!(actions.iter().any(|x| x == a), "{a} missing: {actions:?}");
    }
}

async fn invalid_templates_are_422_naming_the_field(backend: Backend) {
    let Some(f) = fixture(backend).await else {
        return;
    };
    let before = f.provider_names().await.len();
    let mut bad_name = template("Order-Shipped", BODY);
    bad_name["name"] = json!("Order-Shipped");
    let p = assert_problem(f.create(bad_name).await, 422).await;
    assert_eq!(p["type"], "https://waypost.dev/problems/validation");
    assert_eq!(p["errors"][0]["pointer"], "/name");

    let mut bad_lang = template("ok_name", BODY);
    bad_lang["language"] = json!("english");
    let p = assert_problem(f.create(bad_lang).await, 422).await;
    assert_eq!(p["errors"][0]["pointer"], "/language");

    let p = assert_problem(
        f.create(template("gap", "Hi {{1}}, order {{3}} shipped."))
            .await,
        422,
    )
    .await;
    assert_eq!(p["errors"][0]["pointer"], "/components/1/text");
    assert!(
        p["detail"].as_str().unwrap().contains("{{2}} is missing"),
        "{p}"
    );

    let mut no_examples = template("no_examples", BODY);
    no_examples["components"][1]["example"] = json!({"body_text": [["Ana"]]});
    let p = assert_problem(f.create(no_examples).await, 422).await;
    assert_eq!(
        p["errors"][0]["pointer"],
        "/components/1/example/body_text/0"
    );

    let long = format!("Hi {{{{1}}}}, {} {{{{2}}}}.", "x".repeat(1030));
    let p = assert_problem(f.create(template("too_long", &long)).await, 422).await;
    assert!(
        p["detail"].as_str().unwrap().contains("at most 1024"),
        "{p}"
    );

    let mut bad_category = template("ok_name", BODY);
    bad_category["category"] = json!("promo");
    let p = assert_problem(f.create(bad_category).await, 422).await;
    assert_eq!(p["errors"][0]["pointer"], "/category");
    assert_eq!(
        f.provider_names().await.len(),
        before,
        "nothing reached the provider"
    );
}

async fn prohibited_content_is_refused_naming_only_the_category(backend: Backend) {
    let Some(app) = spawn_app_with(backend, |c| {
        c.template_prohibited_terms
            .insert("crypto".into(), vec!["double your bitcoin".into()]);
    })
    .await
    else {
        return;
    };
    let f = fixture_on(app, 1).await;
    let p = assert_problem(
        f.create(template(
            "deal",
            "Hi {{1}}, fresh c0caine for order {{2}} today.",
        ))
        .await,
        422,
    )
    .await;
    assert_eq!(
        p["type"],
        "https://waypost.dev/problems/template-prohibited-content"
    );
    assert_eq!(p["category"], "drugs");
    assert!(!p.to_string().to_lowercase().contains("caine"), "{p}");

    let mut example = template("deal", BODY);
    example["components"][1]["example"]["body_text"] = json!([["Ana", "online casino"]]);
    let p = assert_problem(f.create(example).await, 422).await;
    assert_eq!(p["category"], "gambling");

    let p = assert_problem(
        f.create(template(
            "deal",
            "Hi {{1}}, DOUBLE your Bitcoin with {{2}} now.",
        ))
        .await,
        422,
    )
    .await;
    assert_eq!(p["category"], "crypto");

    // The policy's categories, in more than one language, and spam by the shield.
    for (body, category) in [
        (
            "Hi {{1}}, join us: no place for subhumans in {{2}} now.",
            "hate",
        ),
        (
            "Hola {{1}}, paga hoy o te voy a matar. Ref {{2}} hoy.",
            "violence",
        ),
        (
            "Hi {{1}}, fresh fullz and bank logs at {{2}} today.",
            "illegal",
        ),
        (
            "Hallo {{1}}, dieser Tee heilt Krebs! Jetzt {{2}} bestellen.",
            "misinformation",
        ),
        (
            "CONGRATULATIONS {{1}}! You have WON a $1000 gift card. Click {{2}} to claim your prize now!",
            "spam",
        ),
        (
            "URGENT {{1}}: your bank account is suspended. Verify your details at {{2}} immediately.",
            "spam",
        ),
    ] {
        let p = assert_problem(f.create(template("deal", body)).await, 422).await;
        assert_eq!(p["category"], category, "{body}: {p}");
    }
    assert!(!f.provider_names().await.contains(&"deal".to_owned()));

    // An ordinary promotion is not spam.
    let sale = "Hi {{1}}, our winter sale starts Friday: 20% off all coats at {{2}}. Reply STOP to opt out.";
    let res = f.create(template("winter_sale", sale)).await;
    assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());
}

async fn provider_refusals_are_problems_with_the_provider_code(backend: Backend) {
    let Some(f) = fixture(backend).await else {
        return;
    };
    // `hello_world` exists at the provider (a sandbox default) but not here.
    let p = assert_problem(f.create(template("hello_world", BODY)).await, 422).await;
    assert_eq!(p["type"], "https://waypost.dev/problems/provider-rejected");
    assert_eq!(p["provider_code"], 100);
    assert!(
        p["provider_title"].as_str().unwrap().contains("(#100)"),
        "{p}"
    );
    assert!(
        f.app
            .state
            .store
            .template_by_name(&f.ws.to_string(), "hello_world", "en_US")
            .await
            .unwrap()
            .is_none()
    );
    // An unreachable provider is a 502.
    f.sandbox.shutdown();
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let p = assert_problem(f.create(template("later", BODY)).await, 502).await;
    assert_eq!(p["type"], "https://waypost.dev/problems/provider-error");
}

async fn channel_must_be_named_unless_there_is_one(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let f = fixture_on(app, 0).await;
    let p = assert_problem(f.create(template("first", BODY)).await, 422).await;
    assert_eq!(p["errors"][0]["pointer"], "/channel_id");

    let one = f.add_channel().await;
    f.add_channel().await;
    let p = assert_problem(f.create(template("first", BODY)).await, 422).await;
    assert!(
        p["detail"].as_str().unwrap().contains("several channels"),
        "{p}"
    );

    let mut named = template("first", BODY);
    named["channel_id"] = json!(one);
    let res = f.create(named).await;
    assert_eq!(res.status(), 201);
    let created: Value = res.json().await.unwrap();
    assert_eq!(created["channel_id"], one.as_str());

    let mut unknown = template("second", BODY);
    unknown["channel_id"] = json!(ChannelId::new().to_string());
    let p = assert_problem(f.create(unknown).await, 422).await;
    assert_eq!(p["errors"][0]["pointer"], "/channel_id");
}

async fn keys_need_template_scopes(backend: Backend) {
    let Some(f) = fixture(backend).await else {
        return;
    };
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
        .post(format!("{}/v1/templates", f.app.address))
        .bearer_auth(&read_only)
        .json(&template("nope", BODY))
        .send()
        .await
        .unwrap();
    let p = assert_problem(res, 403).await;
    assert_eq!(p["required_scope"], "templates:write");
    assert_eq!(
        bearer_get(&f.app, &read_only, "/v1/templates")
            .await
            .status(),
        200
    );

    let (_, unrelated) = api_key(
        &f.app,
        &s,
        json!({"name": "scan", "scopes": ["shield:scan"]}),
    )
    .await;
    let p = assert_problem(bearer_get(&f.app, &unrelated, "/v1/templates").await, 403).await;
    assert_eq!(p["required_scope"], "templates:read");

    let created = f.create_ok("kept").await;
    let res = f
        .app
        .client
        .delete(format!(
            "{}/v1/templates/{}",
            f.app.address,
            created["id"].as_str().unwrap()
        ))
        .bearer_auth(&read_only)
        .send()
        .await
        .unwrap();
    assert_problem(res, 403).await;
}
