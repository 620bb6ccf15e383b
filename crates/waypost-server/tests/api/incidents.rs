//! The security incident register: operators record incidents with operator
//! tokens, the 72-hour clock shows in `/metrics`, affected workspaces (and only
//! they) get events and see the incident, closing records the notification time,
//! and everything lands in the audit chains.

use chrono::{DateTime, Duration, SecondsFormat, Utc};
use secrecy::ExposeSecret;
use serde_json::{Value, json};
use waypost_core::audit::Actor;
use waypost_core::{NewAuditEvent, WorkspaceId};
use waypost_store::Backend;
use waypost_store::operators::OperatorTokenRecord;

use crate::bearer::{Api, workspace_api};
use crate::helpers::{TestApp, assert_problem, spawn_app};
use crate::on_both_backends;
use crate::users::audit_actions;

pub const DESCRIPTION: &str = "Backup bucket of Acme Ltd was world-readable for 3 hours";

/// A live operator token, created as `waypost admin operator-token create` does.
pub async fn operator_token(app: &TestApp) -> (String, String) {
    let token = waypost_crypto::operator_token::generate_operator_token();
    let secret = token.secret.expose_secret().to_owned();
    let record = OperatorTokenRecord {
        id: waypost_core::OperatorTokenId::new().to_string(),
        name: "on-call".into(),
        display_prefix: token.display_prefix.clone(),
        token_hash: waypost_crypto::operator_token::operator_token_hash(
            &app.state.keys.current(),
            &secret,
        )
        .to_vec(),
        created_at: app.clock_now(),
        last_used_at: None,
        revoked_at: None,
    };
    let audit = NewAuditEvent::new(None, Actor::System, "operator_token.created")
        .target("operator_token", record.id.clone());
    app.state
        .store
        .create_operator_token(&record, audit)
        .await
        .unwrap();
    (record.id, secret)
}

async fn call(
    app: &TestApp,
    token: &str,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> reqwest::Response {
    let mut req = app
        .client
        .request(method, format!("{}{path}", app.address))
        .bearer_auth(token);
    if let Some(b) = body {
        req = req.json(&b);
    }
    req.send().await.unwrap()
}

fn at(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// Records an incident detected two hours ago affecting `workspaces`; returns its JSON.
pub async fn open_incident(app: &TestApp, token: &str, workspaces: &[WorkspaceId]) -> Value {
    let detected = app.clock_now() - Duration::hours(2);
    let res = call(
        app,
        token,
        reqwest::Method::POST,
        "/v1/operator/incidents",
        Some(json!({
            "detected_at": at(detected),
            "severity": "high",
            "description": DESCRIPTION,
            "affected_workspaces": workspaces.iter().map(|w| w.to_string()).collect::<Vec<_>>(),
        })),
    )
    .await;
    assert_eq!(res.status(), 201);
    res.json().await.unwrap()
}

/// The decrypted `{type, data}` of a workspace's customer events about incidents.
async fn incident_events(app: &TestApp, ws: WorkspaceId) -> Vec<Value> {
    let rows = app
        .state
        .store
        .customer_events_after(&ws.to_string(), 0, 10_000)
        .await
        .unwrap();
    let mut out = Vec::new();
    for row in rows
        .iter()
        .filter(|r| r.event_type.starts_with("incident."))
    {
        out.push(
            waypost_server::events::open(&app.state.keys, app.state.store.as_ref(), row)
                .await
                .unwrap(),
        );
    }
    out
}

struct Three {
    a: Api,
    b: Api,
    c: Api,
}

async fn three_workspaces(app: &TestApp) -> Three {
    Three {
        a: workspace_api(app, "a@example.com", &["audit:read"]).await,
        b: workspace_api(app, "b@example.com", &["audit:read"]).await,
        c: workspace_api(app, "c@example.com", &["audit:read"]).await,
    }
}

async fn incident_deadline_is_72_hours_and_only_affected_workspaces_hear(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let ws = three_workspaces(&app).await;
    let (_, token) = operator_token(&app).await;
    let created = open_incident(&app, &token, &[ws.a.workspace_id, ws.b.workspace_id]).await;
    let detected: DateTime<Utc> = created["detected_at"].as_str().unwrap().parse().unwrap();
    let deadline: DateTime<Utc> = created["notification_deadline"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(deadline - detected, Duration::hours(72));
    assert_eq!(created["status"], "open");
    assert_eq!(created["severity"], "high");
    assert_eq!(created["description"], DESCRIPTION);
    assert!(created["id"].as_str().unwrap().starts_with("inc_"));
    let mut expected = vec![ws.a.workspace_id.to_string(), ws.b.workspace_id.to_string()];
    expected.sort();
    assert_eq!(created["affected_workspaces"], json!(expected));

    for api in [&ws.a, &ws.b] {
        let events = incident_events(&app, api.workspace_id).await;
        assert_eq!(events.len(), 1, "{events:?}");
        assert_eq!(events[0]["type"], "incident.opened");
        let data = &events[0]["data"];
        assert_eq!(data["id"], created["id"]);
        assert_eq!(data["severity"], "high");
        assert_eq!(data["status"], "open");
        let data_deadline: DateTime<Utc> = data["notification_deadline"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(data_deadline, deadline);
        // The operator's free text and the other tenants stay out of customer events.
        let text = data.to_string();
        assert!(!text.contains("Acme"), "{text}");
        for other in [&ws.a, &ws.b, &ws.c] {
            assert!(!text.contains(&other.workspace_id.to_string()), "{text}");
        }
    }
    assert!(incident_events(&app, ws.c.workspace_id).await.is_empty());

    // The description is encrypted at rest.
    let row = app
        .state
        .store
        .get_incident(created["id"].as_str().unwrap())
        .await
        .unwrap();
    assert!(
        !row.description.windows(4).any(|w| w == b"Acme"),
        "description stored in clear"
    );

    // Unknown and malformed workspace ids are refused with what is wrong.
    let unknown = WorkspaceId::new().to_string();
    let res = call(
        &app,
        &token,
        reqwest::Method::POST,
        "/v1/operator/incidents",
        Some(
            json!({"detected_at": at(app.clock_now()), "severity": "low",
            "description": "x", "affected_workspaces": [unknown]}),
        ),
    )
    .await;
    let body = assert_problem(res, 422).await;
    assert!(
        body["detail"].as_str().unwrap().contains(&unknown),
        "{body}"
    );
    let res = call(
        &app,
        &token,
        reqwest::Method::POST,
        "/v1/operator/incidents",
        Some(
            json!({"detected_at": at(app.clock_now() + Duration::days(1)), "severity": "low",
            "description": "x", "affected_workspaces": []}),
        ),
    )
    .await;
    let body = assert_problem(res, 422).await;
    assert_eq!(body["field"], "detected_at");
}

async fn workspaces_see_only_incidents_affecting_them(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let ws = three_workspaces(&app).await;
    let (_, token) = operator_token(&app).await;
    let created = open_incident(&app, &token, &[ws.a.workspace_id, ws.c.workspace_id]).await;
    let id = created["id"].as_str().unwrap();

    let page: Value = ws.a.get(&app, "/v1/incidents").await.json().await.unwrap();
    let data = page["data"].as_array().unwrap();
    assert_eq!(data.len(), 1);
    assert_eq!(data[0]["id"], id);
    assert_eq!(
        data[0]["notification_deadline"],
        created["notification_deadline"]
    );
    let one = ws.a.get(&app, &format!("/v1/incidents/{id}")).await;
    assert_eq!(one.status(), 200);
    let text = one.text().await.unwrap();
    assert!(!text.contains(&ws.c.workspace_id.to_string()), "{text}");
    assert!(!text.contains("Acme"), "{text}");
    assert!(!text.contains("affected_workspaces"), "{text}");

    let page: Value = ws.b.get(&app, "/v1/incidents").await.json().await.unwrap();
    assert_eq!(page["data"], json!([]));
    assert_problem(ws.b.get(&app, &format!("/v1/incidents/{id}")).await, 404).await;

    // Moving the incident from C to B: B hears it opened, C that it no longer applies.
    let res = call(
        &app,
        &token,
        reqwest::Method::PATCH,
        &format!("/v1/operator/incidents/{id}"),
        Some(
            json!({"affected_workspaces": [ws.a.workspace_id, ws.b.workspace_id],
            "status": "investigating"}),
        ),
    )
    .await;
    assert_eq!(res.status(), 200);
    let updated: Value = res.json().await.unwrap();
    assert_eq!(updated["status"], "investigating");
    let b_events = incident_events(&app, ws.b.workspace_id).await;
    assert_eq!(b_events.len(), 1);
    assert_eq!(b_events[0]["type"], "incident.opened");
    assert_eq!(b_events[0]["data"]["status"], "investigating");
    let c_events = incident_events(&app, ws.c.workspace_id).await;
    assert_eq!(c_events.last().unwrap()["type"], "incident.updated");
    assert_eq!(c_events.last().unwrap()["data"]["affected"], false);
    let a_events = incident_events(&app, ws.a.workspace_id).await;
    assert_eq!(
        a_events
            .iter()
            .map(|e| e["type"].clone())
            .collect::<Vec<_>>(),
        [json!("incident.opened"), json!("incident.updated")]
    );
    assert_problem(ws.c.get(&app, &format!("/v1/incidents/{id}")).await, 404).await;
    assert_eq!(
        ws.b.get(&app, &format!("/v1/incidents/{id}"))
            .await
            .status(),
        200
    );

    // A key without audit:read sees nothing.
    let narrow = workspace_api(&app, "d@example.com", &["messages:read"]).await;
    assert_problem(narrow.get(&app, "/v1/incidents").await, 403).await;
}

async fn closing_requires_and_records_the_notification_time(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let a = workspace_api(&app, "a@example.com", &["audit:read"]).await;
    let (_, token) = operator_token(&app).await;
    let created = open_incident(&app, &token, &[a.workspace_id]).await;
    let id = created["id"].as_str().unwrap();
    let close = format!("/v1/operator/incidents/{id}/close");

    let res = call(&app, &token, reqwest::Method::POST, &close, Some(json!({}))).await;
    let body = assert_problem(res, 422).await;
    assert_eq!(body["field"], "notified_at");
    assert!(
        body["detail"].as_str().unwrap().contains("required"),
        "{body}"
    );

    let res = call(
        &app,
        &token,
        reqwest::Method::POST,
        &close,
        Some(json!({"notified_at": at(app.clock_now() - Duration::hours(3))})),
    )
    .await;
    let body = assert_problem(res, 422).await;
    assert!(
        body["detail"].as_str().unwrap().contains("before"),
        "{body}"
    );

    let notified = app.clock_now() - Duration::hours(1);
    let res = call(
        &app,
        &token,
        reqwest::Method::POST,
        &close,
        Some(
            json!({"notified_at": at(notified), "resolution": "Bucket made private; keys rotated"}),
        ),
    )
    .await;
    assert_eq!(res.status(), 200);
    let closed: Value = res.json().await.unwrap();
    assert_eq!(closed["status"], "closed");
    assert_eq!(closed["notified_at"], at(notified));
    assert_eq!(closed["notified_within_deadline"], true);
    assert_eq!(closed["resolution"], "Bucket made private; keys rotated");
    assert!(closed["closed_at"].is_string());

    let events = incident_events(&app, a.workspace_id).await;
    let last = events.last().unwrap();
    assert_eq!(last["type"], "incident.closed");
    assert_eq!(last["data"]["notified_at"], closed["notified_at"]);
    let seen: Value = a
        .get(&app, &format!("/v1/incidents/{id}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(seen["status"], "closed");
    assert_eq!(seen["notified_at"], closed["notified_at"]);

    // A closed incident no longer changes.
    let again = call(
        &app,
        &token,
        reqwest::Method::POST,
        &close,
        Some(json!({"notified_at": at(notified)})),
    )
    .await;
    assert_problem(again, 409).await;
    let patch = call(
        &app,
        &token,
        reqwest::Method::PATCH,
        &format!("/v1/operator/incidents/{id}"),
        Some(json!({"severity": "low"})),
    )
    .await;
    assert_problem(patch, 409).await;

    let list: Value = call(
        &app,
        &token,
        reqwest::Method::GET,
        "/v1/operator/incidents?status=closed",
        None,
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(list["data"].as_array().unwrap().len(), 1);
    let open: Value = call(
        &app,
        &token,
        reqwest::Method::GET,
        "/v1/operator/incidents?status=open",
        None,
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(open["data"], json!([]));
}

/// The value of a metrics line starting with `prefix`.
fn metric(text: &str, prefix: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

async fn metrics_show_open_incidents_and_hours_left(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let a = workspace_api(&app, "a@example.com", &["audit:read"]).await;
    let (_, token) = operator_token(&app).await;
    let metrics = app.metrics().await.text().await.unwrap();
    assert_eq!(metric(&metrics, "waypost_incidents_open "), Some(0.0));

    let created = open_incident(&app, &token, &[a.workspace_id]).await;
    let id = created["id"].as_str().unwrap();
    let series = format!("waypost_incident_notification_hours_left{{incident=\"{id}\"}} ");
    let metrics = app.metrics().await.text().await.unwrap();
    assert_eq!(metric(&metrics, "waypost_incidents_open "), Some(1.0));
    let left = metric(&metrics, &series).unwrap();
    assert!((left - 70.0).abs() < 0.01, "{left}");

    // Past the deadline the hours go negative.
    app.clock.advance(Duration::hours(80));
    let metrics = app.metrics().await.text().await.unwrap();
    let left = metric(&metrics, &series).unwrap();
    assert!((left + 10.0).abs() < 0.01, "{left}");

    let res = call(
        &app,
        &token,
        reqwest::Method::POST,
        &format!("/v1/operator/incidents/{id}/close"),
        Some(json!({"notified_at": at(app.clock_now())})),
    )
    .await;
    let closed: Value = res.json().await.unwrap();
    assert_eq!(closed["notified_within_deadline"], false);
    let metrics = app.metrics().await.text().await.unwrap();
    assert_eq!(metric(&metrics, "waypost_incidents_open "), Some(0.0));
    assert!(metric(&metrics, &series).is_none(), "{metrics}");
}

async fn operator_routes_take_operator_tokens_only(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let a = workspace_api(&app, "a@example.com", &crate::bearer::ALL_SCOPES).await;
    let (token_id, token) = operator_token(&app).await;

    // A workspace key, even with every scope, is not an operator.
    let body = assert_problem(a.get(&app, "/v1/operator/incidents").await, 403).await;
    assert_eq!(
        body["type"],
        "https://waypost.dev/problems/operator-token-required"
    );
    assert_problem(app.get("/v1/operator/incidents").await, 401).await;
    // And an operator token is no workspace credential.
    let res = call(&app, &token, reqwest::Method::GET, "/v1/incidents", None).await;
    assert_problem(res, 401).await;
    let res = call(
        &app,
        &token,
        reqwest::Method::GET,
        "/v1/operator/incidents",
        None,
    )
    .await;
    assert_eq!(res.status(), 200);
    // A mistyped token fails its checksum.
    let typo = format!("{}x", &token[..token.len() - 1]);
    let res = call(
        &app,
        &typo,
        reqwest::Method::GET,
        "/v1/operator/incidents",
        None,
    )
    .await;
    assert_problem(res, 401).await;

    let revoke = NewAuditEvent::new(None, Actor::System, "operator_token.revoked")
        .target("operator_token", token_id.clone());
    app.state
        .store
        .revoke_operator_token(&token_id, app.clock_now(), revoke)
        .await
        .unwrap();
    let res = call(
        &app,
        &token,
        reqwest::Method::GET,
        "/v1/operator/incidents",
        None,
    )
    .await;
    let body = assert_problem(res, 401).await;
    assert_eq!(
        body["type"],
        "https://waypost.dev/problems/invalid-operator-token"
    );
    let system = audit_actions(&app, None).await;
    assert!(
        system.contains(&"operator_token.rejected".to_owned()),
        "{system:?}"
    );
}

async fn incident_actions_are_audited(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let a = workspace_api(&app, "a@example.com", &["audit:read"]).await;
    let (token_id, token) = operator_token(&app).await;
    let created = open_incident(&app, &token, &[a.workspace_id]).await;
    let id = created["id"].as_str().unwrap();
    call(
        &app,
        &token,
        reqwest::Method::PATCH,
        &format!("/v1/operator/incidents/{id}"),
        Some(json!({"severity": "critical", "description": "Updated notes"})),
    )
    .await;
    call(
        &app,
        &token,
        reqwest::Method::POST,
        &format!("/v1/operator/incidents/{id}/close"),
        Some(json!({"notified_at": at(app.clock_now())})),
    )
    .await;

    let system = app
        .state
        .store
        .audit_chain(waypost_core::audit::SYSTEM_CHAIN, 0, 10_000)
        .await
        .unwrap();
    let ours: Vec<_> = system
        .iter()
        .filter(|e| e.target_id.as_deref() == Some(id))
        .collect();
    assert_eq!(
        ours.iter().map(|e| e.action.as_str()).collect::<Vec<_>>(),
        ["incident.created", "incident.updated", "incident.closed"]
    );
    for e in &ours {
        assert_eq!(e.actor, Actor::Operator(token_id.clone()));
        assert!(!e.details.contains("Updated notes"), "{}", e.details);
    }
    assert!(ours[1].details.contains("\"description_changed\":true"));

    let workspace = audit_actions(&app, Some(a.workspace_id)).await;
    let incident: Vec<_> = workspace
        .iter()
        .filter(|a| a.starts_with("incident."))
        .collect();
    assert_eq!(
        incident,
        ["incident.opened", "incident.updated", "incident.closed"]
    );
    // The workspace reads its entries through its own audit log.
    let log: Value = a.get(&app, "/v1/audit-events").await.json().await.unwrap();
    assert!(log.to_string().contains("incident.opened"), "{log}");
}

on_both_backends!(
    incident_deadline_is_72_hours_and_only_affected_workspaces_hear,
    workspaces_see_only_incidents_affecting_them,
    closing_requires_and_records_the_notification_time,
    metrics_show_open_incidents_and_hours_left,
    operator_routes_take_operator_tokens_only,
    incident_actions_are_audited,
);
