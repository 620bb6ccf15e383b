//! Contract tests: each Meta error the sandbox enforces, seen through
//! `waypost_cloudapi::CloudApiClient` (its `ErrorClass` and the Meta code).

mod common;

use common::{Control, client, number_id, start, template};
use secrecy::SecretString;
use serde_json::json;
use waypost_cloudapi::manage::TemplateListQuery;
use waypost_cloudapi::{ClientConfig, ClientError, CloudApiClient, ErrorClass, OutboundMessage};
use waypost_sandbox::SandboxConfig;

#[track_caller]
fn expect(result: Result<impl std::fmt::Debug, ClientError>, code: i64, status: u16, class: &str) {
    let err = result.expect_err("the sandbox should refuse this");
    let meta = err
        .meta()
        .unwrap_or_else(|| panic!("no Meta error in {err}"));
    assert_eq!(meta.code, code, "{err}");
    assert_eq!(err.status(), Some(status), "{err}");
    assert_eq!(err.class().as_str(), class, "{err}");
    assert!(
        meta.message.starts_with(&format!("(#{code})")),
        "{}",
        meta.message
    );
}

fn config(f: impl FnOnce(&mut SandboxConfig)) -> SandboxConfig {
    let mut c = SandboxConfig::default();
    c.webhooks.enabled = false;
    f(&mut c);
    c
}

#[tokio::test]
async fn bad_token_is_190_auth() {
    let sb = start(config(|_| {})).await;
    let mut cfg = ClientConfig::new(
        sb.base_url(),
        None,
        SecretString::from("EAAwrong".to_owned()),
    )
    .unwrap();
    cfg.request_timeout = std::time::Duration::from_secs(5);
    let bad = CloudApiClient::new(cfg).unwrap();
    let r = bad
        .send_message(&number_id(&sb), &template("15550001", "hello_world", &[]))
        .await;
    expect(r, 190, 401, "auth");
}

#[tokio::test]
async fn template_send_succeeds_with_and_without_version() {
    let sb = start(config(|_| {})).await;
    let r = client(&sb)
        .send_message(
            &number_id(&sb),
            &template("+1 555 0002", "order_update", &["Ana", "42"]),
        )
        .await
        .unwrap();
    assert_eq!(r.contacts[0].wa_id.as_deref(), Some("15550002"));
    assert!(r.wamid().unwrap().starts_with("wamid."));
    let token = SecretString::from(sb.numbers()[0].access_token.clone());
    let plain =
        CloudApiClient::new(ClientConfig::new(sb.base_url(), None, token).unwrap()).unwrap();
    plain
        .send_message(&number_id(&sb), &template("15550003", "hello_world", &[]))
        .await
        .unwrap();
}

#[tokio::test]
async fn validation_errors_name_the_field() {
    let sb = start(config(|_| {})).await;
    let c = client(&sb);
    let mut m = OutboundMessage::text("15550004", "hi");
    m.messaging_product = "sms".into();
    let err = c.send_message(&number_id(&sb), &m).await.unwrap_err();
    assert_eq!(err.meta().unwrap().code, 100);
    assert!(
        err.meta()
            .unwrap()
            .details()
            .unwrap()
            .contains("messaging_product")
    );
    assert_eq!(err.class(), ErrorClass::Permanent);
    // A limit from check_limits: 131009.
    let long = OutboundMessage::text("15550004", "x".repeat(5000));
    expect(
        c.send_message(&number_id(&sb), &long).await,
        131009,
        400,
        "permanent",
    );
    // Missing `to`, sent raw.
    let resp = reqwest::Client::new()
        .post(format!(
            "{}/v21.0/{}/messages",
            sb.base_url(),
            number_id(&sb)
        ))
        .bearer_auth(&sb.numbers()[0].access_token)
        .json(&json!({"messaging_product":"whatsapp","type":"text","text":{"body":"x"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], 100);
    assert!(
        body["error"]["error_data"]["details"]
            .as_str()
            .unwrap()
            .contains("to")
    );
}

#[tokio::test]
async fn template_errors() {
    let sb = start(config(|_| {})).await;
    let (c, id) = (client(&sb), number_id(&sb));
    expect(
        c.send_message(&id, &template("15550005", "nope", &[]))
            .await,
        132001,
        404,
        "permanent",
    );
    let mut wrong_lang = template("15550005", "hello_world", &[]);
    if let waypost_cloudapi::OutboundContent::Template(t) = &mut wrong_lang.content {
        t.language.code = "pt_BR".into();
    }
    expect(
        c.send_message(&id, &wrong_lang).await,
        132001,
        404,
        "permanent",
    );
    expect(
        c.send_message(&id, &template("15550005", "order_update", &["a"]))
            .await,
        132000,
        400,
        "permanent",
    );
    expect(
        c.send_message(&id, &template("15550005", "paused_promo", &[]))
            .await,
        132015,
        400,
        "permanent",
    );
    expect(
        c.send_message(&id, &template("15550005", "disabled_promo", &[]))
            .await,
        132016,
        400,
        "permanent",
    );
}

#[tokio::test]
async fn window_131047_until_the_user_writes() {
    // The old synchronous answer, kept on request (see tests/failures.rs for the webhook).
    let sb = start(config(|c| c.api.sync_errors = true)).await;
    let (c, id) = (client(&sb), number_id(&sb));
    let text = OutboundMessage::text("15550006", "hello");
    expect(c.send_message(&id, &text).await, 131047, 400, "permanent");
    Control::new(&sb).inbound("15550006", "hi there").await;
    c.send_message(&id, &text).await.unwrap();
}

#[tokio::test]
async fn throughput_130429() {
    let sb = start(config(|c| c.numbers[0].throughput = 2)).await;
    let (c, id) = (client(&sb), number_id(&sb));
    for to in ["15550101", "15550102"] {
        c.send_message(&id, &template(to, "hello_world", &[]))
            .await
            .unwrap();
    }
    let r = c
        .send_message(&id, &template("15550103", "hello_world", &[]))
        .await;
    let err = r.as_ref().unwrap_err();
    assert!(matches!(err.class(), ErrorClass::RateLimited { .. }));
    expect(r, 130429, 400, "rate_limited");
    let log = Control::new(&sb).log().await;
    assert_eq!(log["max_rate_per_second"][id.as_str()], 2);
}

#[tokio::test]
async fn pair_rate_131056() {
    let sb = start(config(|c| c.limits.pair_burst = 2)).await;
    let (c, id) = (client(&sb), number_id(&sb));
    for _ in 0..2 {
        c.send_message(&id, &template("15550007", "hello_world", &[]))
            .await
            .unwrap();
    }
    expect(
        c.send_message(&id, &template("15550007", "hello_world", &[]))
            .await,
        131056,
        400,
        "rate_limited",
    );
    // Another recipient is unaffected.
    c.send_message(&id, &template("15550008", "hello_world", &[]))
        .await
        .unwrap();
}

#[tokio::test]
async fn messaging_tier_131048() {
    let sb = start(config(|c| c.numbers[0].messaging_tier = 2)).await;
    let (c, id) = (client(&sb), number_id(&sb));
    for to in ["15550201", "15550202", "15550201"] {
        c.send_message(&id, &template(to, "hello_world", &[]))
            .await
            .unwrap();
    }
    expect(
        c.send_message(&id, &template("15550203", "hello_world", &[]))
            .await,
        131048,
        400,
        "rate_limited",
    );
    // A user inside a service window doesn't count against the tier.
    Control::new(&sb).inbound("15550204", "hi").await;
    c.send_message(&id, &OutboundMessage::text("15550204", "hello"))
        .await
        .unwrap();
}

#[tokio::test]
async fn recipient_rules_131026_and_131050() {
    let sb = start(config(|c| c.api.sync_errors = true)).await;
    let (c, id, ctl) = (client(&sb), number_id(&sb), Control::new(&sb));
    ctl.set_user("15550009", json!({"not_on_whatsapp": true}))
        .await;
    expect(
        c.send_message(&id, &template("15550009", "hello_world", &[]))
            .await,
        131026,
        400,
        "permanent",
    );
    ctl.set_user("15550010", json!({"stopped_marketing": true}))
        .await;
    expect(
        c.send_message(&id, &template("15550010", "summer_sale", &["Bo"]))
            .await,
        131050,
        400,
        "permanent",
    );
    // Utility templates still go through.
    c.send_message(&id, &template("15550010", "hello_world", &[]))
        .await
        .unwrap();
}

#[tokio::test]
async fn media_round_trip_and_limits() {
    let sb = start(config(|_| {})).await;
    let (c, id) = (client(&sb), number_id(&sb));
    let up = c
        .upload_media(&id, b"\xff\xd8jpeg".to_vec(), "image/jpeg", "a.jpg")
        .await
        .unwrap();
    let info = c.media_info(&up.id, Some(&id)).await.unwrap();
    assert_eq!(info.mime_type, "image/jpeg");
    assert_eq!(info.file_size, 6);
    let file = c.download_media(&info.url).await.unwrap();
    assert_eq!(file.bytes, b"\xff\xd8jpeg");
    c.delete_media(&up.id, Some(&id)).await.unwrap();
    expect(c.media_info(&up.id, None).await, 100, 400, "permanent");
    let big = vec![0u8; 5 * 1024 * 1024 + 1];
    expect(
        c.upload_media(&id, big, "image/jpeg", "big.jpg").await,
        100,
        400,
        "permanent",
    );
    expect(
        c.upload_media(&id, b"x".to_vec(), "application/zip", "a.zip")
            .await,
        100,
        400,
        "permanent",
    );
}

#[tokio::test]
async fn phone_number_and_templates() {
    let sb = start(config(|c| c.webhooks.template_review_ms = 10)).await;
    let (c, id) = (client(&sb), number_id(&sb));
    let info = c.phone_number(&id).await.unwrap();
    assert_eq!(info.id, id);
    let waba = sb.numbers()[0].waba_id.clone();
    let list = c
        .list_templates(
            &waba,
            &TemplateListQuery {
                limit: Some(2),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(list.data.len(), 2);
    assert!(list.paging.unwrap().next.is_some());
    let create: waypost_cloudapi::manage::TemplateCreate = serde_json::from_value(json!({
        "name":"fresh_news","language":"en_US","category":"UTILITY",
        "components":[{"type":"BODY","text":"Hi {{1}}","example":{"body_text":[["Ana"]]}}]}))
    .unwrap();
    let created = c.create_template(&waba, &create).await.unwrap();
    assert_eq!(created.status.as_str(), "PENDING");
    // Pending: not sendable yet.
    expect(
        c.send_message(&id, &template("15550011", "fresh_news", &["x"]))
            .await,
        132001,
        404,
        "permanent",
    );
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    c.send_message(&id, &template("15550011", "fresh_news", &["x"]))
        .await
        .unwrap();
    c.delete_template(&waba, "fresh_news", None).await.unwrap();
    expect(
        c.send_message(&id, &template("15550012", "fresh_news", &["x"]))
            .await,
        132001,
        404,
        "permanent",
    );
}
