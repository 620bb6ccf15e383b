//! The inbox: conversations open with the customer's first message, read back
//! with their history, are assigned, labelled, noted, read (the receipt
//! reaching the provider), closed and reopened; agents can be limited to
//! their own; every change is audited and announced.

use serde_json::{Value, json};
use waypost_store::Backend;

use crate::messaging_fixture::{Fixture, USER, fixture};
use crate::on_both_backends;
use crate::users::{PASSWORD, Session, api_key, audit_actions, login, member};

on_both_backends!(
    the_customers_question_opens_a_conversation_with_its_history,
    agents_work_the_inbox_and_every_change_is_audited_and_announced,
    agents_see_only_their_conversations_when_the_workspace_says_so,
    without_retention_history_has_no_content_and_notes_are_refused,
    erasing_the_customer_removes_the_conversation_and_its_notes,
);

const OTHER: &str = "4915199988877";

impl Fixture {
    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut req = self
            .app
            .client
            .request(
                method.parse().unwrap(),
                format!("{}{path}", self.app.address),
            )
            .bearer_auth(&self.key);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req.send().await.unwrap();
        let status = res.status().as_u16();
        (status, res.json().await.unwrap_or(Value::Null))
    }

    /// The conversations the API key sees.
    async fn inbox(&self, query: &str) -> Vec<Value> {
        let (status, v) = self
            .call("GET", &format!("/v1/conversations{query}"), None)
            .await;
        assert_eq!(status, 200, "{v}");
        v["data"].as_array().unwrap().clone()
    }

    /// Waits for the customer's message and returns its conversation.
    async fn conversation_of(&self, from: &str, text: &str) -> Value {
        let wamid = self.inject(from, text).await;
        self.wait_inbound(&wamid).await;
        let tail = &from[from.len() - 2..];
        self.inbox("")
            .await
            .into_iter()
            .find(|c| {
                c["contact"]["phone"]
                    .as_str()
                    .is_some_and(|p| p.ends_with(tail))
            })
            .expect("a conversation for the customer")
    }
}

async fn session_get(app: &crate::helpers::TestApp, s: &Session, path: &str) -> (u16, Value) {
    let res = s.get(app, path).await;
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

async fn the_customers_question_opens_a_conversation_with_its_history(backend: Backend) {
    let Some(f) = fixture(backend, |_| {}, |_| {}).await else {
        return;
    };
    f.keep_content().await;
    let c = f.conversation_of(USER, "Hi, is my order on its way?").await;
    assert_eq!(c["status"], "open");
    assert_eq!(c["unread_count"], 1);
    assert_eq!(c["last_direction"], "inbound");
    assert_eq!(c["window_open"], true);
    assert!(c["window_expires_at"].is_string());
    assert_eq!(c["contact"]["phone"], format!("+{USER}"), "{c}");
    let id = c["id"].as_str().unwrap();
    let sent = f.send_ok(USER, "Yes! It ships today.").await;
    f.wait_status(&sent, &["sent", "delivered", "read"]).await;
    let (status, page) = f
        .call("GET", &format!("/v1/conversations/{id}/messages"), None)
        .await;
    assert_eq!(status, 200, "{page}");
    let said: Vec<(String, Value)> = page["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["direction"].as_str().unwrap().to_owned(),
                m["content"].clone(),
            )
        })
        .collect();
    assert_eq!(
        said,
        vec![
            (
                "inbound".to_owned(),
                json!({"text": {"body": "Hi, is my order on its way?"}})
            ),
            (
                "outbound".to_owned(),
                json!({"text": {"body": "Yes! It ships today."}})
            ),
        ]
    );
    let (_, c) = f
        .call("GET", &format!("/v1/conversations/{id}"), None)
        .await;
    assert_eq!(c["last_direction"], "outbound");
    // Past the retention period the history stays, its content goes, and readers are told why.
    let later = f.app.clock_now() + chrono::Duration::days(8);
    assert!(
        f.app
            .state
            .store
            .purge_expired_content(later, 100)
            .await
            .unwrap()
            >= 2
    );
    f.app.clock.advance(chrono::Duration::days(8));
    let (_, page) = f
        .call("GET", &format!("/v1/conversations/{id}/messages"), None)
        .await;
    let states: Vec<&Value> = page["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| &m["content_state"])
        .collect();
    assert_eq!(states, vec!["expired", "expired"], "{page}");
    assert_eq!(page["data"][0]["content"], Value::Null);
    // Another customer: newest activity first, and the cursor pages on.
    f.conversation_of(OTHER, "Do you deliver on Sundays?").await;
    let first = f.inbox("?limit=1").await;
    assert!(
        first[0]["contact"]["phone"]
            .as_str()
            .unwrap()
            .ends_with("77")
    );
    let (_, page) = f.call("GET", "/v1/conversations?limit=1", None).await;
    let cursor = page["next_cursor"].as_str().unwrap().to_owned();
    let second = f
        .inbox(&format!("?limit=1&after={}", urlencoding_lite(&cursor)))
        .await;
    assert_eq!(second[0]["id"], json!(id));
    let (status, _) = f
        .call("GET", "/v1/conversations?after=nonsense", None)
        .await;
    assert_eq!(status, 422);
    let (status, _) = f
        .call("GET", "/v1/conversations?status=snoozed", None)
        .await;
    assert_eq!(status, 422);
    let (status, _) = f.call("GET", "/v1/conversations/cnv_unknown", None).await;
    assert_eq!(status, 404);
}

fn urlencoding_lite(s: &str) -> String {
    s.replace('+', "%2B").replace(':', "%3A")
}

async fn agents_work_the_inbox_and_every_change_is_audited_and_announced(backend: Backend) {
    let Some(f) = fixture(backend, |_| {}, |_| {}).await else {
        return;
    };
    f.keep_content().await;
    let agent = member(&f.app, f.ws, "agent@example.com", "agent").await;
    let analyst = member(&f.app, f.ws, "analyst@example.com", "analyst").await;
    let c = f.conversation_of(USER, "Where is my parcel?").await;
    let id = c["id"].as_str().unwrap().to_owned();
    let path = |tail: &str| format!("/v1/conversations/{id}/{tail}");

    let (status, v) = f
        .call(
            "POST",
            &path("assign"),
            Some(json!({"member_id": analyst.user_id})),
        )
        .await;
    assert_eq!(status, 422, "an analyst may not send: {v}");
    let (status, v) = f
        .call(
            "POST",
            &path("assign"),
            Some(json!({"member_id": "usr_nobody"})),
        )
        .await;
    assert_eq!(status, 422, "{v}");
    let (status, v) = f
        .call(
            "POST",
            &path("assign"),
            Some(json!({"member_id": agent.user_id})),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["assignee_id"], json!(agent.user_id));
    assert_eq!(
        f.inbox(&format!("?assignee={}", agent.user_id)).await.len(),
        1
    );
    assert!(f.inbox("?assignee=none").await.is_empty());

    let (status, v) = f
        .call(
            "PUT",
            &path("labels"),
            Some(json!({"labels": [" VIP ", "billing", "vip"]})),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["labels"], json!(["billing", "vip"]));
    assert_eq!(f.inbox("?label=vip").await.len(), 1);
    assert!(f.inbox("?label=refund").await.is_empty());
    let (status, _) = f
        .call(
            "PUT",
            &path("labels"),
            Some(json!({"labels": ["no spaces please"]})),
        )
        .await;
    assert_eq!(status, 422);

    let (status, note) = f
        .call(
            "POST",
            &path("notes"),
            Some(json!({"body": "Customer called twice; offer a refund."})),
        )
        .await;
    assert_eq!(status, 201, "{note}");
    let (_, notes) = f.call("GET", &path("notes"), None).await;
    assert_eq!(
        notes["data"][0]["body"],
        "Customer called twice; offer a refund."
    );
    assert_eq!(
        notes["data"][0]["expires_at"].as_str().unwrap()[..10],
        (f.app.clock_now() + chrono::Duration::days(7)).to_rfc3339()[..10],
        "notes follow the workspace's content retention"
    );
    let (status, _) = f
        .call("POST", &path("notes"), Some(json!({"body": "  "})))
        .await;
    assert_eq!(status, 422);

    assert_eq!(f.inbox("?unread=true").await.len(), 1);
    let (status, v) = f
        .call(
            "POST",
            &path("read"),
            Some(json!({"typing_indicator": true})),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["unread_count"], 0);
    assert!(f.inbox("?unread=true").await.is_empty());
    let reads = f.sandbox_log().await["reads"].clone();
    assert_eq!(reads.as_array().unwrap().len(), 1, "{reads}");
    assert_eq!(reads[0]["typing_indicator"], true);
    assert!(
        reads[0]["message_id"]
            .as_str()
            .unwrap()
            .starts_with("wamid.")
    );

    let (status, v) = f.call("POST", &path("pending"), None).await;
    assert_eq!((status, v["status"].clone()), (200, json!("pending")));
    assert_eq!(f.inbox("?status=pending").await.len(), 1);
    assert!(f.inbox("?status=open").await.is_empty());
    let (status, v) = f.call("POST", &path("close"), None).await;
    assert_eq!(status, 200);
    assert_eq!(v["status"], "closed");
    assert_eq!(f.inbox("?status=closed").await.len(), 1);
    // The customer writes again: the conversation reopens, unread again.
    let wamid = f.inject(USER, "Hello? Anyone?").await;
    f.wait_inbound(&wamid).await;
    let (_, v) = f
        .call("GET", &format!("/v1/conversations/{id}"), None)
        .await;
    assert_eq!(
        (v["status"].clone(), v["unread_count"].clone()),
        (json!("open"), json!(1))
    );
    let (status, v) = f
        .call("POST", &path("assign"), Some(json!({"member_id": null})))
        .await;
    assert_eq!((status, v["assignee_id"].clone()), (200, Value::Null));

    let actions = audit_actions(&f.app, Some(f.ws)).await;
    for a in [
        "conversation.assigned",
        "conversation.labelled",
        "conversation.note_added",
        "conversation.read",
        "conversation.pending",
        "conversation.closed",
        "conversation.unassigned",
    ] {
        assert!(actions.iter().any(|x| x == a), "{a} audited: {actions:?}");
    }
    let events = f.event_types().await;
    for e in [
        "conversation.assigned",
        "conversation.labelled",
        "conversation.note_added",
        "conversation.read",
        "conversation.closed",
        "conversation.unassigned",
    ] {
        assert!(events.iter().any(|x| x == e), "{e} emitted: {events:?}");
    }
}

async fn agents_see_only_their_conversations_when_the_workspace_says_so(backend: Backend) {
    let Some(f) = fixture(backend, |_| {}, |_| {}).await else {
        return;
    };
    let agent = member(&f.app, f.ws, "agent@example.com", "agent").await;
    member(&f.app, f.ws, "analyst@example.com", "analyst").await;
    let mine = f.conversation_of(USER, "first").await;
    let theirs = f.conversation_of(OTHER, "second").await;
    let (status, _) = f
        .call(
            "POST",
            &format!("/v1/conversations/{}/assign", mine["id"].as_str().unwrap()),
            Some(json!({"member_id": agent.user_id})),
        )
        .await;
    assert_eq!(status, 200);
    let agent_s = login(&f.app, "agent@example.com", PASSWORD).await;
    let analyst_s = login(&f.app, "analyst@example.com", PASSWORD).await;
    let (_, v) = session_get(&f.app, &agent_s, "/v1/conversations").await;
    assert_eq!(v["data"].as_array().unwrap().len(), 2, "`all` by default");

    let owner = login(&f.app, "ops@example.com", PASSWORD).await;
    let res = owner
        .patch(
            &f.app,
            "/v1/workspace",
            json!({"conversation_visibility": "assigned"}),
        )
        .await;
    assert_eq!(res.status(), 200);
    let res = owner
        .patch(
            &f.app,
            "/v1/workspace",
            json!({"conversation_visibility": "some"}),
        )
        .await;
    assert_eq!(res.status(), 422);
    assert!(
        audit_actions(&f.app, Some(f.ws))
            .await
            .iter()
            .any(|a| a == "workspace.settings_changed")
    );

    let (_, v) = session_get(&f.app, &agent_s, "/v1/conversations").await;
    let ids: Vec<&Value> = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| &c["id"])
        .collect();
    assert_eq!(ids, vec![&mine["id"]], "the agent sees only theirs");
    let (_, v) = session_get(&f.app, &agent_s, "/v1/conversations?assignee=me").await;
    assert_eq!(v["data"].as_array().unwrap().len(), 1);
    let (status, _) = session_get(
        &f.app,
        &agent_s,
        &format!("/v1/conversations/{}", theirs["id"].as_str().unwrap()),
    )
    .await;
    assert_eq!(status, 404);
    let (status, _) = session_get(
        &f.app,
        &agent_s,
        &format!(
            "/v1/conversations/{}/messages",
            theirs["id"].as_str().unwrap()
        ),
    )
    .await;
    assert_eq!(status, 404);
    // Not an agent: the setting does not limit them.
    let (_, v) = session_get(&f.app, &analyst_s, "/v1/conversations").await;
    assert_eq!(v["data"].as_array().unwrap().len(), 2);
    // The analyst may read but not change.
    let res = analyst_s
        .post(
            &f.app,
            &format!("/v1/conversations/{}/close", theirs["id"].as_str().unwrap()),
            json!({}),
        )
        .await;
    assert_eq!(res.status(), 403);

    // A key that may not read contacts sees numbers masked.
    let (_, narrow) = api_key(
        &f.app,
        &owner,
        json!({"name": "inbox-only", "scopes": ["messages:read"]}),
    )
    .await;
    let res = f
        .app
        .client
        .get(format!("{}/v1/conversations", f.app.address))
        .bearer_auth(&narrow)
        .send()
        .await
        .unwrap();
    let v: Value = res.json().await.unwrap();
    let phones: Vec<&str> = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["contact"]["phone"].as_str().unwrap())
        .collect();
    assert_eq!(phones.len(), 2);
    assert!(
        phones
            .iter()
            .all(|p| p.contains('*') && !p.contains(&USER[4..10])),
        "{phones:?}"
    );
}

async fn without_retention_history_has_no_content_and_notes_are_refused(backend: Backend) {
    let Some(f) = fixture(backend, |_| {}, |_| {}).await else {
        return;
    };
    let c = f.conversation_of(USER, "private question 5150").await;
    let id = c["id"].as_str().unwrap();
    let (_, page) = f
        .call("GET", &format!("/v1/conversations/{id}/messages"), None)
        .await;
    let m = &page["data"][0];
    assert_eq!(m["content"], Value::Null);
    assert_eq!(m["content_state"], "not_retained");
    let (status, v) = f
        .call(
            "POST",
            &format!("/v1/conversations/{id}/notes"),
            Some(json!({"body": "hi"})),
        )
        .await;
    assert_eq!(status, 409, "{v}");
    assert!(v["detail"].as_str().unwrap().contains("days:N"));
}

async fn erasing_the_customer_removes_the_conversation_and_its_notes(backend: Backend) {
    let Some(f) = fixture(backend, |_| {}, |_| {}).await else {
        return;
    };
    f.keep_content().await;
    let c = f.conversation_of(USER, "please forget me").await;
    let id = c["id"].as_str().unwrap().to_owned();
    let (status, _) = f
        .call(
            "POST",
            &format!("/v1/conversations/{id}/notes"),
            Some(json!({"body": "asked to be forgotten"})),
        )
        .await;
    assert_eq!(status, 201);
    let (status, _) = f
        .call(
            "PUT",
            &format!("/v1/conversations/{id}/labels"),
            Some(json!({"labels": ["gdpr"]})),
        )
        .await;
    assert_eq!(status, 200);
    // The retention purge removes notes whose time is up.
    let store = &f.app.state.store;
    let policy = waypost_server::retention::Policy::from_config(&f.app.state.config);
    let audit_key = f.app.state.keys.audit_signing_key();
    let running = tokio_util::sync::CancellationToken::new();
    let purge = |at| {
        waypost_server::retention::run(store.as_ref(), &audit_key, &policy, at, false, &running)
    };
    purge(f.app.clock_now() + chrono::Duration::days(6))
        .await
        .unwrap();
    let kept = store
        .conversation_notes(&f.ws.to_string(), &id, f.app.clock_now())
        .await
        .unwrap();
    assert_eq!(kept.len(), 1);
    let reports = purge(f.app.clock_now() + chrono::Duration::days(8))
        .await
        .unwrap();
    let notes_purged = reports
        .iter()
        .find(|r| r.kind == "conversation_notes")
        .map(|r| r.rows);
    assert_eq!(notes_purged, Some(1), "{reports:?}");
    let owner = login(&f.app, "ops@example.com", PASSWORD).await;
    let res = owner
        .delete(&f.app, &format!("/v1/privacy/subjects/%2B{USER}"))
        .await;
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
    let (status, _) = f
        .call("GET", &format!("/v1/conversations/{id}"), None)
        .await;
    assert_eq!(status, 404);
    assert!(f.inbox("").await.is_empty());
    let notes = store
        .conversation_notes(&f.ws.to_string(), &id, f.app.clock_now())
        .await
        .unwrap();
    assert!(notes.is_empty());
    let events = store
        .customer_events_after(&f.ws.to_string(), 0, 10_000)
        .await
        .unwrap();
    assert!(
        events
            .iter()
            .all(|e| e.subject_id.as_deref() != Some(id.as_str())),
        "the conversation's events went with it"
    );
}
