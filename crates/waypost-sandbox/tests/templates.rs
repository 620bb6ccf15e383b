//! Template reads as clients of 2026 make them: `GET /{template-id}`,
//! `fields=` and `summary=` on the list, `parameter_format`, examples on
//! seeded templates.

mod common;

use common::{start, template};
use serde_json::{Value, json};
use waypost_sandbox::{RunningSandbox, SandboxConfig};

async fn get(sb: &RunningSandbox, path_and_query: &str) -> (u16, Value) {
    let r = reqwest::Client::new()
        .get(format!("{}/v25.0/{path_and_query}", sb.base_url()))
        .bearer_auth(&sb.numbers()[0].access_token)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

fn find<'a>(list: &'a Value, name: &str) -> &'a Value {
    list["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == name)
        .unwrap_or_else(|| panic!("{name} not in {list}"))
}

fn sandbox() -> SandboxConfig {
    let mut c = SandboxConfig::default();
    c.webhooks.enabled = false;
    c
}

#[tokio::test]
async fn list_has_parameter_format_and_examples_and_honours_fields_and_summary() {
    let sb = start(sandbox()).await;
    let waba = sb.numbers()[0].waba_id.clone();
    let (status, list) = get(&sb, &format!("{waba}/message_templates")).await;
    assert_eq!(status, 200);
    let order = find(&list, "order_update");
    assert_eq!(order["parameter_format"], "POSITIONAL");
    assert_eq!(
        order["components"][0]["example"],
        json!({"body_text": [["Ana", "A-1042"]]})
    );
    let named = find(&list, "appointment_reminder");
    assert_eq!(named["parameter_format"], "NAMED");
    assert_eq!(
        named["components"][0]["example"]["body_text_named_params"][0]["param_name"],
        "first_name"
    );
    assert!(list.get("summary").is_none());

    let (_, list) = get(
        &sb,
        &format!("{waba}/message_templates?fields=name,status&summary=total_count&limit=2"),
    )
    .await;
    let first = &list["data"][0];
    let mut keys: Vec<&str> = first
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(keys, ["id", "name", "status"]);
    assert_eq!(list["summary"]["total_count"], 7);
    assert!(list["paging"]["next"].is_string());

    let (status, err) = get(&sb, &format!("{waba}/message_templates?fields=name,colour")).await;
    assert_eq!(status, 400);
    assert_eq!(err["error"]["code"], 100);
    assert!(err["error"]["message"].as_str().unwrap().contains("colour"));
}

#[tokio::test]
async fn get_template_by_id_with_default_and_chosen_fields() {
    let sb = start(sandbox()).await;
    let waba = sb.numbers()[0].waba_id.clone();
    let (_, list) = get(&sb, &format!("{waba}/message_templates?fields=name")).await;
    let id = find(&list, "login_code")["id"].as_str().unwrap().to_owned();
    let (status, t) = get(&sb, &id).await;
    assert_eq!(status, 200);
    assert_eq!(t["id"], id.as_str());
    assert_eq!(t["name"], "login_code");
    assert_eq!(t["category"], "AUTHENTICATION");
    assert_eq!(t["parameter_format"], "POSITIONAL");
    assert_eq!(
        t["components"][0]["text"],
        "{{1}} is your verification code."
    );
    let (_, t) = get(
        &sb,
        &format!("{id}?fields=name,message_send_ttl_seconds,quality_score,rejected_reason"),
    )
    .await;
    assert_eq!(t["message_send_ttl_seconds"], 600);
    assert_eq!(t["rejected_reason"], "NONE");
    assert!(t["quality_score"]["score"].is_string());
    assert!(t.get("components").is_none());
    // Another business's token cannot read it.
    let r = reqwest::Client::new()
        .get(format!("{}/{id}", sb.base_url()))
        .bearer_auth("EAAnot-a-token")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
}

#[tokio::test]
async fn template_sends_report_message_status() {
    let sb = start(sandbox()).await;
    let r = common::client(&sb)
        .send_message(
            &common::number_id(&sb),
            &template("15550601", "order_update", &["Ana", "A-1"]),
        )
        .await
        .unwrap();
    assert_eq!(
        r.messages[0].message_status.as_ref().map(|s| s.as_str()),
        Some("accepted")
    );
}
