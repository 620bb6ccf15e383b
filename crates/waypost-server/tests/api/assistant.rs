//! The AI assistant against a fake OpenAI-compatible server started in the
//! test: it answers from the knowledge base, hands questions outside it to a
//! person and goes quiet, never sends personal data to the model (and puts it
//! back in the reply), stops at the token budget, retries provider errors then
//! falls back, and never answers outside the 24-hour window or in a
//! conversation an agent holds until it is handed back.

use std::sync::Arc;

use serde_json::{Value, json};
use waypost_store::Backend;

use crate::automation_fixture::{Auto, auto_fixture};
use crate::fake_llm::{FakeLlm, Script, answer, error, prompt};
use crate::messaging_fixture::USER;
use crate::on_both_backends;
use crate::users::member;

on_both_backends!(
    a_faq_is_answered_from_the_knowledge_base_and_the_rest_goes_to_a_person,
    personal_data_never_reaches_the_model_and_comes_back_in_the_reply,
    an_exhausted_budget_stops_calls_and_hands_off,
    provider_errors_are_retried_then_fall_back,
    no_answers_outside_the_window_or_while_an_agent_holds_the_conversation,
    asking_for_a_person_or_reaching_the_turn_cap_hands_off,
);

const OTHER: &str = "4915199988877";
const THIRD: &str = "4915199900011";
const HOURS: &str = "We are open Monday to Friday, 9:00 to 17:00.";
const FALLBACK: &str = "A colleague will reply soon.";

/// Answers from the passages the request carries, or says it cannot.
fn grounded() -> Script {
    Arc::new(|_, body: &Value| {
        let (system, user) = prompt(body);
        if user.contains("opening hours") && system.contains("Monday to Friday, 9:00 to 17:00") {
            answer(HOURS, 120, 15)
        } else if user.contains("return") && system.contains("within 30 days") {
            answer("You can return unused items within 30 days.", 150, 12)
        } else {
            answer("[[HANDOFF]]", 100, 3)
        }
    })
}

async fn knowledge(a: &Auto) {
    let (status, v) = a
        .api(
            "POST",
            "/v1/assistant/knowledge/faqs",
            Some(json!({"question": "What are your opening hours?", "answer": HOURS})),
        )
        .await;
    assert_eq!(status, 201, "{v}");
    let doc = "# Returns\n\nYou can return any unused item within 30 days of delivery. Refunds go to the \
               original payment method.\n\n# Shipping\n\nWe ship to Germany and Austria.";
    let res =
        a.f.app
            .client
            .post(format!(
                "{}/v1/assistant/knowledge/documents?title=Policies",
                a.f.app.address
            ))
            .bearer_auth(&a.admin)
            .header("content-type", "text/markdown")
            .body(doc)
            .send()
            .await
            .unwrap();
    assert_eq!(res.status(), 201);
    let (_, list) = a.api("GET", "/v1/assistant/knowledge", None).await;
    assert_eq!(list["data"].as_array().unwrap().len(), 2, "{list}");
}

async fn a_faq_is_answered_from_the_knowledge_base_and_the_rest_goes_to_a_person(backend: Backend) {
    let Some(a) = auto_fixture(backend).await else {
        return;
    };
    let fake = FakeLlm::start(grounded()).await;
    let agent = member(&a.f.app, a.f.ws, "agent@example.com", "agent").await;
    a.enable_assistant(&fake, json!({"handoff_assignee": agent.user_id}))
        .await;
    knowledge(&a).await;

    let c = a.say(USER, "What are your opening hours?").await;
    assert_eq!(a.replies(&c).await, [HOURS]);
    let (system, _) = prompt(&serde_json::from_str(&fake.bodies()[0]).unwrap());
    assert!(
        system.contains("Answer only from"),
        "instructed to stay grounded"
    );
    assert!(system.contains(HOURS), "the FAQ passage was given");
    a.say(USER, "Can I return an item I bought?").await;
    assert_eq!(
        a.replies(&c).await[1],
        "You can return unused items within 30 days."
    );

    // Outside the knowledge base: the model says so, a person takes over.
    let other = a.say(OTHER, "Do you sell bicycles?").await;
    assert_eq!(a.replies(&other).await, [FALLBACK]);
    assert_eq!(
        a.conversation(&other).await["assignee_id"],
        json!(agent.user_id)
    );
    let calls = fake.calls();
    assert_eq!(calls, 3);
    // The assistant stays quiet in it.
    a.say(OTHER, "What are your opening hours?").await;
    assert_eq!(fake.calls(), calls);
    assert_eq!(a.replies(&other).await, [FALLBACK]);

    // The audit says that it answered, with what model and tokens, never what.
    let answered = a.audit("assistant.answered").await;
    assert_eq!(answered.len(), 2);
    assert_eq!(answered[0]["model"], "test-model");
    assert_eq!(answered[0]["prompt_tokens"], 120);
    assert_eq!(answered[0]["completion_tokens"], 15);
    let handed = a.audit("assistant.handed_off").await;
    assert_eq!(handed.len(), 1);
    assert_eq!(handed[0]["reason"], "cannot_answer");
    assert_eq!(handed[0]["assignee"], json!(agent.user_id));
    let all = format!("{answered:?}{handed:?}");
    assert!(!all.contains("opening") && !all.contains("bicycles") && !all.contains("9:00"));
    // A deleted document is no longer searched: the return question goes to a person.
    let (_, list) = a.api("GET", "/v1/assistant/knowledge", None).await;
    let doc = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["kind"] == "document")
        .unwrap()
        .clone();
    assert!(doc["chunks"].as_i64().unwrap() >= 1, "{doc}");
    let (status, _) = a
        .api(
            "DELETE",
            &format!("/v1/assistant/knowledge/{}", doc["id"].as_str().unwrap()),
            None,
        )
        .await;
    assert_eq!(status, 204);
    let third = a.say(THIRD, "Can I return an item I bought?").await;
    assert_eq!(a.replies(&third).await, [FALLBACK]);
    let metrics = a.f.app.metrics().await.text().await.unwrap();
    for name in [
        "waypost_assistant_answers_total",
        "waypost_assistant_handoffs_total",
        "waypost_assistant_tokens_total",
        "waypost_assistant_latency_seconds",
    ] {
        assert!(metrics.contains(name), "{name}");
    }
}

async fn personal_data_never_reaches_the_model_and_comes_back_in_the_reply(backend: Backend) {
    let Some(a) = auto_fixture(backend).await else {
        return;
    };
    let fake = FakeLlm::start(Arc::new(|_, _: &Value| {
        answer(
            "Thanks! We will email [EMAIL_1] and call [PHONE_1] about your parcel.",
            80,
            20,
        )
    }))
    .await;
    a.enable_assistant(&fake, json!({})).await;
    let c = a
        .say(
            USER,
            "Hello, this is Anna. You can reach me at anna.berg@example.org or +44 7700 900123. I paid \
             with my card 4111 1111 1111 1111 and my IBAN is DE89 3704 0044 0532 0130 00. When does my \
             parcel arrive?",
        )
        .await;
    let bodies = fake.bodies();
    assert_eq!(
        bodies.len(),
        1,
        "{:?}",
        a.audit("assistant.handed_off").await
    );
    for secret in [
        "anna.berg",
        "example.org",
        "4111",
        "DE89",
        "3704",
        "7700",
        "900123",
    ] {
        assert!(
            !bodies[0].contains(secret),
            "`{secret}` reached the model: {}",
            bodies[0]
        );
    }
    for placeholder in ["[EMAIL_1]", "[CARD_1]", "[IBAN_1]", "[PHONE_1]"] {
        assert!(bodies[0].contains(placeholder), "{placeholder}");
    }
    assert_eq!(
        a.replies(&c).await,
        ["Thanks! We will email anna.berg@example.org and call +44 7700 900123 about your parcel."]
    );
    let answered = a.audit("assistant.answered").await;
    assert_eq!(
        answered[0]["redactions"],
        json!({"email": 1, "iban": 1, "card": 1, "phone": 1})
    );
    // Smishing is never forwarded: no call, no fallback to the sender, a person looks.
    let other = a
        .say(OTHER, "URGENT! Your account has been suspended. Verify your details at paypa1-login.com/x now")
        .await;
    assert_eq!(fake.calls(), 1);
    assert!(a.replies(&other).await.is_empty());
    assert_eq!(
        a.audit("assistant.handed_off").await[0]["reason"],
        "smishing"
    );
}

async fn an_exhausted_budget_stops_calls_and_hands_off(backend: Backend) {
    let Some(a) = auto_fixture(backend).await else {
        return;
    };
    let fake = FakeLlm::start(Arc::new(|_, _: &Value| answer(HOURS, 40, 20))).await;
    a.enable_assistant(&fake, json!({"monthly_token_budget": 50}))
        .await;
    let c = a.say(USER, "What are your opening hours?").await;
    assert_eq!(a.replies(&c).await, [HOURS]);
    let (_, settings) = a.api("GET", "/v1/assistant", None).await;
    assert_eq!(settings["tokens_used"], 60);
    // Over budget: no call, the customer hears the fallback, a person takes over.
    let other = a.say(OTHER, "What are your opening hours?").await;
    assert_eq!(fake.calls(), 1);
    assert_eq!(a.replies(&other).await, [FALLBACK]);
    assert_eq!(
        a.audit("assistant.handed_off").await[0]["reason"],
        "budget_exhausted"
    );
}

async fn provider_errors_are_retried_then_fall_back(backend: Backend) {
    let Some(a) = auto_fixture(backend).await else {
        return;
    };
    let fake = FakeLlm::start(Arc::new(|n, _: &Value| match n {
        0 => error(429, "rate_limit_exceeded"),
        1 => error(500, "server_error"),
        2 => answer(HOURS, 50, 10),
        _ => error(503, "overloaded"),
    }))
    .await;
    a.enable_assistant(&fake, json!({"max_retries": 2})).await;
    let c = a.say(USER, "What are your opening hours?").await;
    assert_eq!(a.replies(&c).await, [HOURS]);
    assert_eq!(fake.calls(), 3);
    assert_eq!(a.audit("assistant.answered").await[0]["attempts"], 3);
    // Every try fails: three calls, then the fallback and a person.
    let other = a.say(OTHER, "What are your opening hours?").await;
    assert_eq!(fake.calls(), 6);
    assert_eq!(a.replies(&other).await, [FALLBACK]);
    assert_eq!(
        a.audit("assistant.handed_off").await[0]["reason"],
        "provider_failed"
    );
}

async fn no_answers_outside_the_window_or_while_an_agent_holds_the_conversation(backend: Backend) {
    let Some(a) = auto_fixture(backend).await else {
        return;
    };
    let fake = FakeLlm::start(Arc::new(|_, _: &Value| answer(HOURS, 50, 10))).await;
    a.enable_assistant(&fake, json!({})).await;
    let agent = member(&a.f.app, a.f.ws, "agent@example.com", "agent").await;
    let c = a.say(USER, "What are your opening hours?").await;
    assert_eq!(fake.calls(), 1);
    let (status, v) = a
        .api(
            "POST",
            &format!("/v1/conversations/{c}/assign"),
            Some(json!({"member_id": agent.user_id})),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    // An agent holds it: the assistant says nothing.
    a.say(USER, "And on Saturdays?").await;
    assert_eq!(fake.calls(), 1);
    assert_eq!(a.replies(&c).await.len(), 1);
    // Handed back, it answers again.
    let (status, v) = a
        .api("POST", &format!("/v1/conversations/{c}/assistant"), None)
        .await;
    assert_eq!(status, 204, "{v}");
    a.say(USER, "What are your opening hours?").await;
    assert_eq!(fake.calls(), 2);
    assert_eq!(a.replies(&c).await.len(), 2);

    // A webhook delivered late, the customer's message 25 hours old: no call, no reply.
    let written = a.f.app.clock_now() - chrono::Duration::hours(25);
    let body = a.f.messages_body(json!({
        "contacts": [{"profile": {"name": "Old"}, "wa_id": THIRD}],
        "messages": [{"from": THIRD, "id": "wamid.LATE2", "timestamp": written.timestamp().to_string(),
                      "type": "text", "text": {"body": "What are your opening hours?"}}]
    }));
    assert_eq!(a.f.post_webhook(&body, None).await.status(), 200);
    a.f.wait_inbound("wamid.LATE2").await;
    a.drained().await;
    assert_eq!(fake.calls(), 2);
}

async fn asking_for_a_person_or_reaching_the_turn_cap_hands_off(backend: Backend) {
    let Some(a) = auto_fixture(backend).await else {
        return;
    };
    let fake = FakeLlm::start(Arc::new(|_, _: &Value| answer(HOURS, 50, 10))).await;
    a.enable_assistant(&fake, json!({"turn_cap": 1})).await;
    // The customer asks for a person: no call, the fallback, quiet from then on.
    let c = a.say(USER, "Can I talk to a human please?").await;
    assert_eq!(fake.calls(), 0);
    assert_eq!(a.replies(&c).await, [FALLBACK]);
    // One answer, then the cap: the second question goes to a person.
    let other = a.say(OTHER, "What are your opening hours?").await;
    a.say(OTHER, "And what are your opening hours on holidays?")
        .await;
    assert_eq!(fake.calls(), 1);
    assert_eq!(a.replies(&other).await, [HOURS, FALLBACK]);
    let reasons: Vec<Value> = a
        .audit("assistant.handed_off")
        .await
        .into_iter()
        .map(|d| d["reason"].clone())
        .collect();
    assert_eq!(reasons, [json!("asked_for_human"), json!("turn_cap")]);
}
