//! A workspace's life beyond messaging: deletion by its owner (grace period,
//! cancellation, final export, then no row of it left and its keys gone), the
//! second factor owners and admins need by default, the access review in the
//! member list, and the confirmation mail a new owner gets.

use std::collections::BTreeSet;

use chrono::Duration;
use serde_json::{Value, json};
use waypost_server::ops::workspace_deletion::run_due;
use waypost_store::Backend;
use waypost_store::backup::Value as Cell;

use crate::helpers::{TestApp, assert_problem, spawn_app_with};
use crate::messaging_fixture::{USER, fixture};
use crate::on_both_backends;
use crate::smtp::{SmtpSink, mail_config};
use crate::users::*;

on_both_backends!(
    workspace_deletion_leaves_no_row_and_no_key,
    owners_and_admins_need_a_second_factor_after_the_grace_period,
    a_new_owner_is_asked_to_confirm_their_address,
);

/// Every text cell of every table, with its table and whether it is in the
/// system audit chain (which keeps the record of the deletion).
async fn all_text(app: &TestApp) -> Vec<(String, String)> {
    let store = &app.state.store;
    let tables = store.backup_tables().await.unwrap();
    let mut cells = Vec::new();
    store
        .export_rows(&tables, &mut |table, row| {
            let chain_col = table.columns.iter().position(|(name, _)| name == "chain");
            let system = chain_col.is_some_and(|i| row[i] == Cell::Text("system".into()));
            if !system {
                for cell in &row {
                    if let Cell::Text(t) = cell {
                        cells.push((table.name.clone(), t.clone()));
                    }
                }
            }
            Ok(())
        })
        .await
        .unwrap();
    cells
}

async fn rows_in(app: &TestApp, table: &str) -> usize {
    let store = &app.state.store;
    let tables = store.backup_tables().await.unwrap();
    let spec: Vec<_> = tables.into_iter().filter(|t| t.name == table).collect();
    let mut n = 0;
    store
        .export_rows(&spec, &mut |_, _| {
            n += 1;
            Ok(())
        })
        .await
        .unwrap();
    n
}

async fn workspace_deletion_leaves_no_row_and_no_key(backend: Backend) {
    let Some(sink) = SmtpSink::start().await else {
        return;
    };
    let port = sink.port;
    let Some(f) = fixture(
        backend,
        |c| {
            mail_config(port)(c);
            c.webhook_allow_http = true;
            c.webhook_allow_private_targets = true;
        },
        |_| {},
    )
    .await
    else {
        return;
    };
    let app = &f.app;
    // Content kept, an inbound and an outbound message, a tagged contact, an endpoint.
    f.keep_content().await;
    f.open_window(USER).await;
    let sent = f.send_ok(USER, "Your order is on its way").await;
    f.wait_status(&sent, &["sent", "delivered", "read"]).await;
    let owner = login(app, "ops@example.com", PASSWORD).await;
    let res = owner
        .post(
            app,
            "/v1/contacts",
            json!({"phone": "+4915199999999", "name": "Ada", "tags": ["vip"]}),
        )
        .await;
    assert_eq!(res.status(), 201);
    let res = owner
        .post(
            app,
            "/v1/webhook-endpoints",
            json!({"url": "http://127.0.0.1:9/hook"}),
        )
        .await;
    assert_eq!(res.status(), 201);
    let co = member(app, f.ws, "co@example.com", "owner").await;
    let admin = member(app, f.ws, "admin@example.com", "admin").await;
    // Another workspace, which must come through untouched.
    other_workspace(app).await;

    // Before: the ids that belong to the workspace, to look for afterwards.
    let mut ids = BTreeSet::from([f.ws.to_string(), f.channel.id.clone(), sent.clone()]);
    let contacts: Value = owner.get(app, "/v1/contacts").await.json().await.unwrap();
    for c in contacts["data"].as_array().unwrap() {
        ids.insert(c["id"].as_str().unwrap().to_owned());
    }
    assert!(ids.len() >= 5, "{ids:?}");

    // Only owners, and only with the name typed exactly.
    let a = login(app, &admin.email, PASSWORD).await;
    assert_problem(
        a.post(app, "/v1/workspace/deletion", json!({"confirm": "Acme"}))
            .await,
        403,
    )
    .await;
    let p = assert_problem(
        owner
            .post(app, "/v1/workspace/deletion", json!({"confirm": "acme"}))
            .await,
        422,
    )
    .await;
    assert!(p["detail"].as_str().unwrap().contains("name"), "{p}");

    // The final export: the workspace's configuration, contacts and audit log.
    let res = owner.get(app, "/v1/workspace/export").await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "application/x-ndjson");
    let lines: Vec<Value> = res
        .text()
        .await
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let kinds: BTreeSet<&str> = lines.iter().map(|l| l["kind"].as_str().unwrap()).collect();
    for kind in [
        "workspace",
        "member",
        "channel",
        "webhook_endpoint",
        "contact",
        "audit_event",
    ] {
        assert!(kinds.contains(kind), "{kind} missing from {kinds:?}");
    }
    let ada = lines
        .iter()
        .find(|l| l["kind"] == "contact" && l["name"] == "Ada")
        .expect("the contact, readable");
    assert_eq!(ada["phone"], "+4915199999999");
    assert_eq!(ada["tags"], json!(["vip"]));
    let export_text = lines.iter().map(Value::to_string).collect::<String>();
    assert!(
        !export_text.contains("whsec_"),
        "no webhook secret in the export"
    );

    // Scheduled, every owner told, cancellable by another owner.
    let res = owner
        .post(app, "/v1/workspace/deletion", json!({"confirm": "Acme"}))
        .await;
    assert_eq!(res.status(), 202);
    let due: Value = res.json().await.unwrap();
    let due: chrono::DateTime<chrono::Utc> = due["due_at"].as_str().unwrap().parse().unwrap();
    assert_eq!((due - app.clock_now()).num_days(), 14);
    for to in ["ops@example.com", "co@example.com"] {
        let mail = sink.wait_for_mail_to(to, "will be deleted").await;
        assert!(mail.text().contains("Acme") && mail.text().contains("cancel"));
    }
    let ws: Value = owner.get(app, "/v1/workspace").await.json().await.unwrap();
    let shown: chrono::DateTime<chrono::Utc> =
        ws["deletion_due_at"].as_str().unwrap().parse().unwrap();
    // PostgreSQL keeps microseconds.
    assert!(
        (shown - due).num_milliseconds().abs() < 1,
        "{shown} vs {due}"
    );
    let c = login(app, &co.email, PASSWORD).await;
    assert_eq!(c.delete(app, "/v1/workspace/deletion").await.status(), 204);
    sink.wait_for_mail_to("ops@example.com", "was cancelled")
        .await;
    assert_problem(c.delete(app, "/v1/workspace/deletion").await, 404).await;
    app.clock.advance(Duration::days(15));
    assert_eq!(run_due(&app.state).await.unwrap(), 0);
    assert_eq!(
        bearer_get(app, &f.key, "/v1/contacts").await.status(),
        200,
        "a cancelled deletion does not happen"
    );
    let owner = login(app, "ops@example.com", PASSWORD).await;

    // Scheduled again: nothing happens before the date, everything after.
    let res = owner
        .post(app, "/v1/workspace/deletion", json!({"confirm": "Acme"}))
        .await;
    assert_eq!(res.status(), 202);
    app.clock.advance(Duration::days(13));
    assert_eq!(run_due(&app.state).await.unwrap(), 0);
    assert_eq!(bearer_get(app, &f.key, "/v1/contacts").await.status(), 200);
    app.clock.advance(Duration::days(2));
    assert_eq!(run_due(&app.state).await.unwrap(), 1);

    // Nobody gets in: not the owner, not the API key.
    let owner = login(app, "ops@example.com", PASSWORD).await;
    assert_ne!(owner.get(app, "/v1/contacts").await.status(), 200);
    assert_eq!(bearer_get(app, &f.key, "/v1/contacts").await.status(), 401);
    // No row anywhere names anything that was the workspace's, except the
    // record of its deletion in the system chain.
    let leftovers: Vec<(String, String)> = all_text(app)
        .await
        .into_iter()
        .filter(|(_, text)| ids.iter().any(|id| text.contains(id.as_str())))
        .collect();
    assert!(leftovers.is_empty(), "rows left: {leftovers:?}");
    let system = audit_actions(app, None).await;
    for action in ["workspace.deletion_started", "workspace.deleted"] {
        assert!(system.contains(&action.to_owned()), "{system:?}");
    }
    for table in [
        "messages",
        "message_statuses",
        "contacts",
        "contact_tags",
        "channels",
        "webhook_endpoints",
    ] {
        let n = rows_in(app, table).await;
        let expected = usize::from(table == "contacts");
        assert_eq!(
            n, expected,
            "{table}: only the other workspace's rows remain"
        );
    }
    // The people stay (they may belong elsewhere); the other workspace is whole.
    assert!(
        waypost_server::emails::user_by_email(&app.state, "ops@example.com")
            .await
            .unwrap()
            .is_some()
    );
    let other = login(app, "bob@example.com", PASSWORD).await;
    let contacts: Value = other.get(app, "/v1/contacts").await.json().await.unwrap();
    assert_eq!(contacts["data"].as_array().unwrap().len(), 1);
    let report = waypost_server::audit_chain::verify_chain_in_store(
        app.state.store.as_ref(),
        &waypost_core::audit::chain_name(None),
        &app.state.keys.audit_signing_key().verifying_key(),
    )
    .await
    .unwrap();
    assert_eq!(report.problem, None, "the system chain still verifies");
}

/// A second workspace with one contact.
async fn other_workspace(app: &TestApp) {
    owner(app, "bob@example.com", "Other").await;
    let s = login(app, "bob@example.com", PASSWORD).await;
    let res = s
        .post(app, "/v1/contacts", json!({"phone": "+4915188888888"}))
        .await;
    assert_eq!(res.status(), 201);
}

async fn owners_and_admins_need_a_second_factor_after_the_grace_period(backend: Backend) {
    let Some(app) = spawn_app_with(backend, |c| c.admin_mfa_grace_days = 7).await else {
        return;
    };
    let ana = owner(&app, "ana@example.com", "Acme").await;
    member(&app, ana.workspace_id, "agent@example.com", "agent").await;
    owner(&app, "rex@example.com", "Relaxed").await;
    owner(&app, "eve@example.com", "Enrolled").await;
    let eve = login(&app, "eve@example.com", PASSWORD).await;
    let (eve_secret, _) = crate::mfa::enrol(&app, &eve).await;
    let rex = login(&app, "rex@example.com", PASSWORD).await;
    let res = rex
        .patch(
            &app,
            "/v1/workspace",
            json!({"require_mfa_for_admins": false}),
        )
        .await;
    assert_eq!(res.status(), 200);
    assert_eq!(
        res.json::<Value>().await.unwrap()["require_mfa_for_admins"],
        false
    );

    // During the grace period everyone works; the access review shows who lacks one.
    let a = login(&app, "ana@example.com", PASSWORD).await;
    let members: Value = a.get(&app, "/v1/members").await.json().await.unwrap();
    let me = members
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["email"] == "ana@example.com")
        .unwrap();
    assert_eq!(me["access"]["mfa_enabled"], false);
    assert!(me["access"]["last_sign_in_at"].is_string());
    let agent = login(&app, "agent@example.com", PASSWORD).await;
    let seen: Value = agent.get(&app, "/v1/members").await.json().await.unwrap();
    assert!(
        seen.as_array()
            .unwrap()
            .iter()
            .all(|m| m.get("access").is_none()),
        "only managers see the access review"
    );
    let seen: Value = eve.get(&app, "/v1/members").await.json().await.unwrap();
    assert_eq!(seen[0]["access"]["mfa_enabled"], true);

    app.clock.advance(Duration::days(8));
    // Sessions end long before; everyone signs in again.
    let a = login(&app, "ana@example.com", PASSWORD).await;
    let agent = login(&app, "agent@example.com", PASSWORD).await;
    let rex = login(&app, "rex@example.com", PASSWORD).await;
    let eve = login_with(
        &app,
        json!({"email": "eve@example.com", "password": PASSWORD,
               "totp_code": crate::mfa::code(&app, &eve_secret)}),
    )
    .await;
    let p = assert_problem(a.get(&app, "/v1/workspace").await, 403).await;
    assert_eq!(
        p["type"],
        "https://waypost.dev/problems/mfa-enrollment-required"
    );
    assert!(
        p["detail"].as_str().unwrap().contains("Owners and admins"),
        "{p}"
    );
    assert_eq!(
        agent.get(&app, "/v1/workspace").await.status(),
        200,
        "other roles are not held to it"
    );
    assert_eq!(
        rex.get(&app, "/v1/workspace").await.status(),
        200,
        "relaxed"
    );
    assert_eq!(
        eve.get(&app, "/v1/workspace").await.status(),
        200,
        "enrolled"
    );
    // Enrolling is still open to the refused owner, and lets them back in.
    crate::mfa::enrol(&app, &a).await;
    assert_eq!(a.get(&app, "/v1/workspace").await.status(), 200);
}

async fn a_new_owner_is_asked_to_confirm_their_address(backend: Backend) {
    let Some(sink) = SmtpSink::start().await else {
        return;
    };
    let Some(app) = spawn_app_with(backend, mail_config(sink.port)).await else {
        return;
    };
    let link = waypost_server::ops::setup::first_run_link(&app.state)
        .await
        .unwrap()
        .expect("a setup link");
    let token = link.split("token=").nth(1).unwrap().to_owned();
    let res = app
        .client
        .post(format!("{}/setup", app.address))
        .form(&[
            ("token", token.as_str()),
            ("workspace", "Acme"),
            ("email", "ana@example.com"),
            ("password", PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let mail = sink.wait_for_mail_to("ana@example.com", "Confirm").await;
    let link = crate::smtp::link_in(&mail);
    assert!(link.contains("/account/email?token="), "{link}");
    let user = waypost_server::emails::user_by_email(&app.state, "ana@example.com")
        .await
        .unwrap()
        .unwrap();
    assert!(
        app.state
            .store
            .email_verified_at(&user.id)
            .await
            .unwrap()
            .is_none()
    );
    let res = app
        .client
        .post(format!("{}/v1/account/email/confirm", app.address))
        .json(&json!({"token": crate::smtp::token_of(&link)}))
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success(), "{}", res.status());
    assert!(
        app.state
            .store
            .email_verified_at(&user.id)
            .await
            .unwrap()
            .is_some()
    );
}
