//! Templates through the real server with the sandbox as provider: create
//! (PENDING at the provider), validation and prohibited-content refusals as
//! problems, status from webhooks and from the sync (one event per change),
//! delete here and at the provider, and scopes.

use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use waypost_core::{Actor, ChannelId, NewAuditEvent, WorkspaceId};
use waypost_sandbox::{RunningSandbox, Sandbox, SandboxConfig};
use waypost_server::messaging::{ChannelSecret, client_for, seal_secret};
use waypost_store::Backend;
use waypost_store::messaging::ChannelRow;

use crate::helpers::{TestApp, assert_problem, spawn_app, spawn_app_with};
use crate::on_both_backends;
use crate::users::*;

on_both_backends!(
    create_get_list_and_delete,
    invalid_templates_are_422_naming_the_field,
    prohibited_content_is_refused_naming_only_the_category,
    status_webhooks_apply_once_with_reason,
    sync_applies_provider_status_changes_once,
    provider_refusals_are_problems_with_the_provider_code,
    channel_must_be_named_unless_there_is_one,
    keys_need_template_scopes,
);

struct Fixture {
    app: TestApp,
    sandbox: RunningSandbox,
    ws: WorkspaceId,
    key: String,
}

async fn sandbox() -> RunningSandbox {
    let mut config = SandboxConfig::default();
    // Review never finishes by itself: tests move templates through the control API.
    config.webhooks.template_review_ms = 3_600_000;
    Sandbox::start(config).await.unwrap()
}

async fn fixture_on(app: TestApp, channels: usize) -> Fixture {
    let sandbox = sandbox().await;
    let account = owner(&app, "ana@example.com", "Acme").await;
    let s = login(&app, "ana@example.com", PASSWORD).await;
    let (_, key) = api_key(
        &app,
        &s,
        json!({"name": "tpl", "scopes": ["templates:read", "templates:write"]}),
    )
    .await;
    for _ in 0..channels {
        add_channel(&app, account.workspace_id, &sandbox).await;
    }
    Fixture {
        app,
        sandbox,
        ws: account.workspace_id,
        key,
    }
}

async fn fixture(backend: Backend) -> Option<Fixture> {
    Some(fixture_on(spawn_app(backend).await?, 1).await)
}

/// A channel on the sandbox's number, created through the store.
async fn add_channel(app: &TestApp, ws: WorkspaceId, sandbox: &RunningSandbox) -> ChannelRow {
    let id = ChannelId::new().to_string();
    let n = &sandbox.numbers()[0];
    let keys = &app.state.keys;
    let now = app.clock_now();
    let row = ChannelRow {
        id: id.clone(),
        workspace_id: ws.to_string(),
        name: "main".into(),
        provider: "sandbox".into(),
        // Distinct per channel: the phone number id is unique in a workspace.
        phone_number_id: format!("{}{}", n.id, &id[id.len() - 4..]),
        waba_id: n.waba_id.clone(),
        access_token: seal_secret(keys, &id, ChannelSecret::AccessToken, &n.access_token),
        app_secret: seal_secret(keys, &id, ChannelSecret::AppSecret, &n.app_secret),
        verify_token: seal_secret(keys, &id, ChannelSecret::VerifyToken, &n.verify_token),
        base_url: Some(sandbox.base_url().to_owned()),
        api_version: Some("v23.0".into()),
        throughput_mps: 80,
        created_at: now,
        updated_at: now,
        deleted_at: None,
    };
    let audit = NewAuditEvent::new(Some(ws), Actor::System, "channel.created")
        .target("channel", id.clone());
    app.state.store.create_channel(&row, audit).await.unwrap();
    row
}

fn template(name: &str, body: &str) -> Value {
    json!({
        "name": name,
        "language": "en_US",
        "category": "utility",
        "components": [
            {"type": "HEADER", "format": "TEXT", "text": "Order {{1}}", "example": {"header_text": ["#1042"]}},
            {"type": "BODY", "text": body, "example": {"body_text": [["Ana", "1042"]]}},
            {"type": "FOOTER", "text": "Acme Ltd"},
            {"type": "BUTTONS", "buttons": [
                {"type": "URL", "text": "Track", "url": "https://acme.example/t/{{1}}", "example": ["1042"]},
                {"type": "QUICK_REPLY", "text": "Stop updates"}
            ]}
        ]
    })
}

const BODY: &str = "Hi {{1}}, your order {{2}} has shipped.";

impl Fixture {
    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> reqwest::Response {
        let mut req = self
            .app
            .client
            .request(method, format!("{}{path}", self.app.address))
            .bearer_auth(&self.key);
        if let Some(b) = body {
            req = req.json(&b);
        }
        req.send().await.unwrap()
    }

    async fn create(&self, body: Value) -> reqwest::Response {
        self.send(reqwest::Method::POST, "/v1/templates", Some(body))
            .await
    }

    async fn create_ok(&self, name: &str) -> Value {
        let res = self.create(template(name, BODY)).await;
        assert_eq!(res.status(), 201);
        res.json().await.unwrap()
    }

    async fn get_json(&self, path: &str) -> Value {
        let res = self.send(reqwest::Method::GET, path, None).await;
        assert_eq!(res.status(), 200);
        res.json().await.unwrap()
    }

    /// Templates of the sandbox's WABA, by name.
    async fn provider_names(&self) -> Vec<String> {
        let channel = self
            .app
            .state
            .store
            .list_channels(&self.ws.to_string())
            .await
            .unwrap();
        let client = client_for(&self.app.state.keys, &channel[0]).unwrap();
        let list = client
            .list_templates(&channel[0].waba_id, &Default::default())
            .await
            .unwrap();
        list.data.into_iter().filter_map(|t| t.name).collect()
    }

    /// Moves a template at the sandbox (no webhook: the number has no webhook URL).
    async fn provider_status(&self, provider_id: &str, status: &str, reason: &str) {
        let res = self
            .app
            .client
            .put(format!(
                "{}/_sandbox/templates/{provider_id}/status",
                self.sandbox.base_url()
            ))
            .bearer_auth(self.sandbox.control_token())
            .json(&json!({"status": status, "reason": reason}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
    }

    /// The `template.status_changed` events' data, oldest first.
    async fn status_events(&self) -> Vec<Value> {
        let rows = self
            .app
            .state
            .store
            .customer_events_after(&self.ws.to_string(), 0, 1000)
            .await
            .unwrap();
        let mut out = Vec::new();
        for row in rows
            .iter()
            .filter(|r| r.event_type == "template.status_changed")
        {
            let body = waypost_server::events::open(
                &self.app.state.keys,
                self.app.state.store.as_ref(),
                row,
            )
            .await
            .unwrap();
            assert_eq!(
                row.subject_id.as_deref(),
                body["data"]["template_id"].as_str()
            );
            out.push(body["data"].clone());
        }
        out
    }

    async fn channel(&self) -> ChannelRow {
        self.app
            .state
            .store
            .list_channels(&self.ws.to_string())
            .await
            .unwrap()
            .remove(0)
    }
}

/// A `message_template_status_update` change value as Meta sends it.
fn status_value(created: &Value, event: &str, reason: &str) -> Value {
    json!({
        "event": event,
        "message_template_id": created["provider_id"].as_str().unwrap().parse::<u64>().unwrap(),
        "message_template_name": created["name"],
        "message_template_language": created["language"],
        "reason": reason,
        "message_template_category": "UTILITY"
    })
}

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
    assert!(!f.provider_names().await.contains(&"deal".to_owned()));
}

async fn status_webhooks_apply_once_with_reason(backend: Backend) {
    let Some(f) = fixture(backend).await else {
        return;
    };
    let a = f.create_ok("order_shipped").await;
    let b = f.create_ok("welcome").await;
    let channel = f.channel().await;
    f.provider_status(a["provider_id"].as_str().unwrap(), "APPROVED", "NONE")
        .await;
    let approve = status_value(&a, "APPROVED", "NONE");
    waypost_server::templates::on_status_webhook(&f.app.state, &channel, &approve)
        .await
        .unwrap();
    // Meta delivers at least once: the duplicate changes nothing.
    waypost_server::templates::on_status_webhook(&f.app.state, &channel, &approve)
        .await
        .unwrap();
    let got = f
        .get_json(&format!("/v1/templates/{}", a["id"].as_str().unwrap()))
        .await;
    assert_eq!(got["status"], "APPROVED");
    assert!(got["rejection_reason"].is_null());

    let reject = status_value(&b, "REJECTED", "INVALID_FORMAT");
    waypost_server::templates::on_status_webhook(&f.app.state, &channel, &reject)
        .await
        .unwrap();
    let got = f
        .get_json(&format!("/v1/templates/{}", b["id"].as_str().unwrap()))
        .await;
    assert_eq!(got["status"], "REJECTED");
    assert_eq!(got["rejection_reason"], "INVALID_FORMAT");

    // A template Waypost does not manage, and a malformed value.
    let mut foreign = status_value(&a, "PAUSED", "NONE");
    foreign["message_template_name"] = json!("hello_world");
    waypost_server::templates::on_status_webhook(&f.app.state, &channel, &foreign)
        .await
        .unwrap();
    assert!(
        waypost_server::templates::on_status_webhook(&f.app.state, &channel, &json!({"event": 5}))
            .await
            .is_err()
    );

    let events = f.status_events().await;
    assert_eq!(events.len(), 2, "{events:?}");
    assert_eq!(events[0]["template_id"], a["id"]);
    assert_eq!(events[0]["previous_status"], "PENDING");
    assert_eq!(events[0]["status"], "APPROVED");
    assert_eq!(events[1]["status"], "REJECTED");
    assert_eq!(events[1]["rejection_reason"], "INVALID_FORMAT");
    let approved = f.get_json("/v1/templates?status=APPROVED").await;
    assert_eq!(approved["data"].as_array().unwrap().len(), 1);
}

async fn sync_applies_provider_status_changes_once(backend: Backend) {
    let Some(f) = fixture(backend).await else {
        return;
    };
    let a = f.create_ok("order_shipped").await;
    let b = f.create_ok("welcome").await;
    f.provider_status(a["provider_id"].as_str().unwrap(), "APPROVED", "NONE")
        .await;
    f.provider_status(b["provider_id"].as_str().unwrap(), "PAUSED", "NONE")
        .await;
    let token = CancellationToken::new();
    let changed = waypost_server::templates::sync_once(&f.app.state, &token)
        .await
        .unwrap();
    assert_eq!(changed, 2);
    assert_eq!(
        waypost_server::templates::sync_once(&f.app.state, &token)
            .await
            .unwrap(),
        0
    );
    let got = f
        .get_json(&format!("/v1/templates/{}", b["id"].as_str().unwrap()))
        .await;
    assert_eq!(got["status"], "PAUSED");

    // The webhook for a change the sync already applied records nothing more.
    let channel = f.channel().await;
    waypost_server::templates::on_status_webhook(
        &f.app.state,
        &channel,
        &status_value(&a, "APPROVED", "NONE"),
    )
    .await
    .unwrap();
    let events = f.status_events().await;
    assert_eq!(events.len(), 2, "{events:?}");
    assert!(events.iter().all(|e| e["previous_status"] == "PENDING"));
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

    let one = add_channel(&f.app, f.ws, &f.sandbox).await;
    add_channel(&f.app, f.ws, &f.sandbox).await;
    let p = assert_problem(f.create(template("first", BODY)).await, 422).await;
    assert!(
        p["detail"].as_str().unwrap().contains("several channels"),
        "{p}"
    );

    let mut named = template("first", BODY);
    named["channel_id"] = json!(one.id);
    let res = f.create(named).await;
    assert_eq!(res.status(), 201);
    let created: Value = res.json().await.unwrap();
    assert_eq!(created["channel_id"], one.id.as_str());

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
