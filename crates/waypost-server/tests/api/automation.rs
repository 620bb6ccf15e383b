//! Automation rules through the real binary: keyword and away rules answer
//! once per cooldown and never answer their own replies, the welcome greets
//! a first contact only, regex rules assign, nothing answers a message whose
//! 24-hour window has passed, and bad rules are refused with a useful detail.

use chrono::Datelike;
use serde_json::{Value, json};
use waypost_store::Backend;

use crate::automation_fixture::{Auto, auto_fixture, auto_fixture_polling};
use crate::messaging_fixture::USER;
use crate::on_both_backends;
use crate::users::member;

on_both_backends!(
    keyword_and_away_rules_fire_once_and_never_loop,
    the_welcome_greets_first_contacts_and_regex_rules_assign,
    late_webhooks_outside_the_window_are_not_answered,
    bad_rules_are_refused_with_a_reason,
    only_channels_with_automation_get_work_items,
);

const OTHER: &str = "4915199988877";

/// Business hours only on tomorrow's weekday: closed now.
fn closed_now(a: &Auto) -> Value {
    let tomorrow = a.f.app.clock_now().weekday().succ();
    json!({"time_zone": "UTC", "hours": [{"day": tomorrow.to_string().to_lowercase(), "open": "00:00", "close": "23:59"}]})
}

async fn rule(a: &Auto, body: Value) -> Value {
    let (status, v) = a.api("POST", "/v1/automation/rules", Some(body)).await;
    assert_eq!(status, 201, "{v}");
    v
}

async fn keyword_and_away_rules_fire_once_and_never_loop(backend: Backend) {
    let Some(a) = auto_fixture(backend).await else {
        return;
    };
    let ch = a.f.channel.id.clone();
    rule(
        &a,
        json!({"channel_id": ch, "kind": "away", "name": "Closed", "priority": 10,
        "schedule": closed_now(&a), "actions": {"reply": "We are closed and answer on weekdays."}}),
    )
    .await;
    rule(&a, json!({"channel_id": ch, "kind": "keyword", "name": "Prices", "priority": 20,
        "pattern": "price, prices", "actions": {"reply": "Our prices: example.com/prices", "tag": "pricing"}}))
    .await;
    let (_, list) = a.api("GET", "/v1/automation/rules", None).await;
    assert_eq!(list["data"].as_array().unwrap().len(), 2);

    // The keyword outranks the away rule.
    let c = a.say(USER, "What is the price?").await;
    assert_eq!(a.replies(&c).await, ["Our prices: example.com/prices"]);
    // Within the cooldown neither rule answers again, whatever matches.
    a.say(USER, "hello?").await;
    a.say(USER, "price again please").await;
    // Our own reply never comes back as work: still one reply after a while.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    a.drained().await;
    assert_eq!(a.replies(&c).await.len(), 1);
    let conv = a.conversation(&c).await;
    assert_eq!(conv["labels"], json!(["pricing"]), "{conv}");

    // After the cooldown the away rule answers a message outside business hours.
    a.f.app.clock.advance(chrono::Duration::seconds(301));
    a.say(USER, "anyone there?").await;
    assert_eq!(
        a.replies(&c).await,
        [
            "Our prices: example.com/prices",
            "We are closed and answer on weekdays."
        ]
    );
    // Tagging is idempotent and applies to each matching message; only replies cool down.
    assert_eq!(a.audit("automation.rule_applied").await.len(), 2);
    assert_eq!(a.audit("automation.rule_created").await.len(), 2);
}

async fn the_welcome_greets_first_contacts_and_regex_rules_assign(backend: Backend) {
    let Some(a) = auto_fixture(backend).await else {
        return;
    };
    let agent = member(&a.f.app, a.f.ws, "agent@example.com", "agent").await;
    let ch = a.f.channel.id.clone();
    rule(
        &a,
        json!({"channel_id": ch, "kind": "welcome", "name": "Hello",
        "actions": {"reply": "Welcome to Acme!"}}),
    )
    .await;
    rule(&a, json!({"channel_id": ch, "kind": "keyword", "name": "Orders", "pattern": r"order\s*#?\d{4,}",
        "regex": true, "actions": {"reply": "Let me hand you to our order desk.", "assign_to": agent.user_id}}))
    .await;
    let c = a.say(OTHER, "hi there").await;
    assert_eq!(a.replies(&c).await, ["Welcome to Acme!"]);
    a.f.app.clock.advance(chrono::Duration::seconds(301));
    // Not a first contact any more: no second welcome.
    a.say(OTHER, "hi again").await;
    assert_eq!(a.replies(&c).await.len(), 1);
    a.say(OTHER, "where is ORDER #123456?").await;
    assert_eq!(
        a.replies(&c).await,
        ["Welcome to Acme!", "Let me hand you to our order desk."]
    );
    assert_eq!(
        a.conversation(&c).await["assignee_id"],
        json!(agent.user_id)
    );
}

async fn late_webhooks_outside_the_window_are_not_answered(backend: Backend) {
    let Some(a) = auto_fixture(backend).await else {
        return;
    };
    rule(
        &a,
        json!({"channel_id": a.f.channel.id, "kind": "welcome", "name": "Hello",
        "actions": {"reply": "Welcome!"}}),
    )
    .await;
    // Meta retries webhooks for days: this one says the customer wrote 25 hours ago.
    let written = a.f.app.clock_now() - chrono::Duration::hours(25);
    let body = a.f.messages_body(json!({
        "contacts": [{"profile": {"name": "Old"}, "wa_id": OTHER}],
        "messages": [{"from": OTHER, "id": "wamid.LATE1", "timestamp": written.timestamp().to_string(),
                      "type": "text", "text": {"body": "hello"}}]
    }));
    assert_eq!(a.f.post_webhook(&body, None).await.status(), 200);
    let m = a.f.wait_inbound("wamid.LATE1").await;
    a.drained().await;
    let c =
        a.f.app
            .state
            .store
            .conversation_automation(&a.f.channel.id, &m.contact_id)
            .await
            .unwrap()
            .unwrap();
    assert!(a.replies(&c.id).await.is_empty());
    assert_eq!(c.automation_replied_at, None);
}

async fn bad_rules_are_refused_with_a_reason(backend: Backend) {
    let Some(a) = auto_fixture(backend).await else {
        return;
    };
    let ch = a.f.channel.id.clone();
    let cases = [
        (
            json!({"channel_id": ch, "kind": "keyword", "name": "x", "pattern": "(", "regex": true,
            "actions": {"reply": "r"}}),
            "regular expression",
        ),
        (
            json!({"channel_id": ch, "kind": "away", "name": "x",
            "schedule": {"time_zone": "Mars/Olympus", "hours": []}, "actions": {"reply": "r"}}),
            "time zone",
        ),
        (
            json!({"channel_id": ch, "kind": "keyword", "name": "x", "pattern": "hi", "actions": {}}),
            "actions",
        ),
        (
            json!({"channel_id": ch, "kind": "sometimes", "name": "x", "actions": {"reply": "r"}}),
            "kind",
        ),
        (
            json!({"channel_id": ch, "kind": "welcome", "name": "x",
            "actions": {"reply": "r", "assign_to": "usr_nobody"}}),
            "member",
        ),
    ];
    for (body, needle) in cases {
        let res =
            a.f.app
                .client
                .post(format!("{}/v1/automation/rules", a.f.app.address))
                .bearer_auth(&a.admin)
                .json(&body)
                .send()
                .await
                .unwrap();
        let p = crate::helpers::assert_problem(res, 422).await;
        assert!(p["detail"].as_str().unwrap().contains(needle), "{p}");
    }
    // Another workspace's channel is not found; the sender key may not manage rules.
    let (status, _) = a
        .api(
            "POST",
            "/v1/automation/rules",
            Some(json!({"channel_id": "ch_01JUNKNOWNCHANNEL000000000",
            "kind": "welcome", "name": "x", "actions": {"reply": "r"}})),
        )
        .await;
    assert_eq!(status, 404);
    let res =
        a.f.app
            .client
            .get(format!("{}/v1/automation/rules", a.f.app.address))
            .bearer_auth(&a.f.key)
            .send()
            .await
            .unwrap();
    assert_eq!(res.status(), 403);
}

/// A message on a channel with no rule and no assistant leaves no work item;
/// once a rule exists, the next message has one (the worker sleeps meanwhile).
async fn only_channels_with_automation_get_work_items(backend: Backend) {
    let Some(a) = auto_fixture_polling(backend, 600_000).await else {
        return;
    };
    let ws = a.f.ws.to_string();
    let count = || a.f.app.state.store.automation_work_count(&ws);
    let wamid = a.f.inject(USER, "hello").await;
    a.f.wait_inbound(&wamid).await;
    assert_eq!(count().await.unwrap(), 0, "no rule, no assistant: no work");
    rule(
        &a,
        json!({"channel_id": a.f.channel.id, "kind": "keyword", "name": "Prices", "priority": 20,
               "pattern": "price", "actions": {"reply": "Our prices: example.com/prices"}}),
    )
    .await;
    let wamid = a.f.inject(USER, "price?").await;
    a.f.wait_inbound(&wamid).await;
    assert_eq!(
        count().await.unwrap(),
        1,
        "a rule exists: the message is work"
    );
}
