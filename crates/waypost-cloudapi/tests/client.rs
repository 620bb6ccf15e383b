//! The client against a local mock Graph API (wiremock): request shapes,
//! response parsing, error classification and token hygiene.

use std::time::Duration;

use secrecy::SecretString;
use serde_json::json;
use waypost_cloudapi::manage::{TemplateCreate, TemplateListQuery};
use waypost_cloudapi::webhook::{TemplateCategory, TemplateStatus};
use waypost_cloudapi::{ClientConfig, ClientError, CloudApiClient, ErrorClass, OutboundMessage};
use wiremock::matchers::{bearer_token, body_json, header_regex, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

const TOKEN: &str = "EAAtopsecretTOKEN123";
const PHONE: &str = "106540352242922";

fn config(server: &MockServer) -> ClientConfig {
    let mut c = ClientConfig::new(&server.uri(), Some("v21.0"), SecretString::from(TOKEN)).unwrap();
    c.request_timeout = Duration::from_millis(500);
    c
}

fn client(server: &MockServer) -> CloudApiClient {
    CloudApiClient::new(config(server)).unwrap()
}

fn meta_error(code: i64, message: &str) -> serde_json::Value {
    json!({"error":{"message":message,"type":"OAuthException","code":code,
        "error_data":{"messaging_product":"whatsapp","details":"details here"},"fbtrace_id":"AbCdEf123XyZ"}})
}

async fn send_error(
    status: u16,
    body: serde_json::Value,
    retry_after: Option<&str>,
) -> (MockServer, ClientError) {
    let server = MockServer::start().await;
    let mut resp = ResponseTemplate::new(status).set_body_json(body);
    if let Some(ra) = retry_after {
        resp = resp.insert_header("Retry-After", ra);
    }
    Mock::given(method("POST"))
        .and(path(format!("/v21.0/{PHONE}/messages")))
        .respond_with(resp)
        .mount(&server)
        .await;
    let err = client(&server)
        .send_message(PHONE, &OutboundMessage::text("+16505551234", "hi"))
        .await
        .unwrap_err();
    assert_no_token(&err);
    (server, err)
}

fn assert_no_token(err: &ClientError) {
    for text in [err.to_string(), format!("{err:?}"), format!("{err:#?}")] {
        assert!(!text.contains(TOKEN), "token leaked: {text}");
        assert!(!text.contains("topsecret"), "token leaked: {text}");
    }
}

#[tokio::test]
async fn send_success_parses_wamid_and_sends_the_exact_body() {
    let server = MockServer::start().await;
    let wamid = "wamid.HBgLMTY1MDUwNzY1MjAVAgARGBI5QTNDQTVCM0Q0Q0Q2RTY3RTcA";
    Mock::given(method("POST"))
        .and(path(format!("/v21.0/{PHONE}/messages")))
        .and(bearer_token(TOKEN))
        .and(header_regex("content-type", "^application/json"))
        .and(body_json(
            json!({"messaging_product":"whatsapp","recipient_type":"individual",
            "to":"+16505551234","type":"text","text":{"body":"hi"}}),
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"messaging_product":"whatsapp",
            "contacts":[{"input":"+16505551234","wa_id":"16505551234"}],
            "messages":[{"id":wamid}]}),
        ))
        .expect(1)
        .mount(&server)
        .await;
    let r = client(&server)
        .send_message(PHONE, &OutboundMessage::text("+16505551234", "hi"))
        .await
        .unwrap();
    assert_eq!(r.wamid(), Some(wamid));
    assert_eq!(r.contacts[0].wa_id.as_deref(), Some("16505551234"));
}

#[tokio::test]
async fn meta_error_fields_are_carried() {
    let (_s, err) = send_error(
        400,
        meta_error(131047, "(#131047) Re-engagement message"),
        None,
    )
    .await;
    let meta = err.meta().expect("parsed Meta error");
    assert_eq!(meta.code, 131047);
    assert_eq!(meta.kind.as_deref(), Some("OAuthException"));
    assert_eq!(meta.fbtrace_id.as_deref(), Some("AbCdEf123XyZ"));
    assert_eq!(meta.details(), Some("details here"));
    assert_eq!(err.status(), Some(400));
    let text = err.to_string();
    assert!(
        text.contains("131047") && text.contains("AbCdEf123XyZ") && text.contains("details here"),
        "{text}"
    );
}

#[tokio::test]
async fn retryable_from_meta_code_and_from_5xx() {
    let (_s, err) = send_error(
        500,
        meta_error(131000, "(#131000) Something went wrong"),
        None,
    )
    .await;
    assert_eq!(err.class(), ErrorClass::Retryable);
    let (_s, err) = send_error(400, meta_error(131057, "(#131057) maintenance"), None).await;
    assert_eq!(err.class(), ErrorClass::Retryable);
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(502).set_body_string("<html>bad gateway</html>"))
        .mount(&server)
        .await;
    let err = client(&server)
        .send_message(PHONE, &OutboundMessage::text("1", "x"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, ClientError::Http { status: 502, .. }),
        "{err:?}"
    );
    assert_eq!(err.class(), ErrorClass::Retryable);
}

#[tokio::test]
async fn rate_limited_from_meta_code_with_http_400() {
    let (_s, err) = send_error(
        400,
        meta_error(131056, "(#131056) pair rate limit hit"),
        None,
    )
    .await;
    assert_eq!(err.class(), ErrorClass::RateLimited { retry_after: None });
}

#[tokio::test]
async fn rate_limited_429_reads_retry_after() {
    let (_s, err) = send_error(
        429,
        meta_error(130429, "(#130429) Rate limit hit"),
        Some("17"),
    )
    .await;
    assert_eq!(
        err.class(),
        ErrorClass::RateLimited {
            retry_after: Some(Duration::from_secs(17))
        }
    );
    // Also without a Meta body, e.g. from a proxy.
    let (_s, err) = send_error(429, json!({"unrelated":true}), Some("3")).await;
    assert_eq!(
        err.class(),
        ErrorClass::RateLimited {
            retry_after: Some(Duration::from_secs(3))
        }
    );
}

#[tokio::test]
async fn permanent_from_meta_code() {
    let (_s, err) = send_error(
        400,
        meta_error(131026, "(#131026) Message undeliverable"),
        None,
    )
    .await;
    assert_eq!(err.class(), ErrorClass::Permanent);
    let (_s, err) = send_error(
        404,
        meta_error(132001, "(#132001) Template name does not exist"),
        None,
    )
    .await;
    assert_eq!(err.class(), ErrorClass::Permanent);
}

#[tokio::test]
async fn auth_from_meta_code() {
    let (_s, err) = send_error(401, meta_error(190, "Invalid OAuth access token"), None).await;
    assert_eq!(err.class(), ErrorClass::Auth);
    let (_s, err) = send_error(403, meta_error(200, "(#200) Permissions error"), None).await;
    assert_eq!(err.class(), ErrorClass::Auth);
}

#[tokio::test]
async fn timeout_is_retryable() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"messages":[{"id":"w"}]}))
                .set_delay(Duration::from_secs(3)),
        )
        .mount(&server)
        .await;
    let err = client(&server)
        .send_message(PHONE, &OutboundMessage::text("1", "x"))
        .await
        .unwrap_err();
    assert!(matches!(err, ClientError::Timeout), "{err:?}");
    assert_eq!(err.class(), ErrorClass::Retryable);
    assert_no_token(&err);
}

#[tokio::test]
async fn connection_refused_is_retryable() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let c = ClientConfig::new(
        &format!("http://127.0.0.1:{port}"),
        None,
        SecretString::from(TOKEN),
    )
    .unwrap();
    let err = CloudApiClient::new(c)
        .unwrap()
        .phone_number(PHONE)
        .await
        .unwrap_err();
    assert!(matches!(err, ClientError::Connect(_)), "{err:?}");
    assert_eq!(err.class(), ErrorClass::Retryable);
    assert_no_token(&err);
}

#[tokio::test]
async fn token_never_in_debug_or_errors_even_if_echoed() {
    let server = MockServer::start().await;
    let c = client(&server);
    for text in [format!("{c:?}"), format!("{:?}", config(&server))] {
        assert!(!text.contains(TOKEN), "{text}");
    }
    let (_s, err) = send_error(
        401,
        meta_error(190, &format!("Malformed access token {TOKEN}")),
        None,
    )
    .await;
    assert!(err.meta().unwrap().message.contains("[redacted]"));
}

#[tokio::test]
async fn oversized_response_is_refused() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_string("x".repeat(4096)))
        .mount(&server)
        .await;
    let mut c = config(&server);
    c.max_response_bytes = 1024;
    let err = CloudApiClient::new(c)
        .unwrap()
        .phone_number(PHONE)
        .await
        .unwrap_err();
    assert!(
        matches!(err, ClientError::TooLarge { limit: 1024 }),
        "{err:?}"
    );
}

#[tokio::test]
async fn mark_as_read_with_typing_indicator() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(format!("/v21.0/{PHONE}/messages")))
        .and(body_json(
            json!({"messaging_product":"whatsapp","status":"read","message_id":"wamid.IN",
            "typing_indicator":{"type":"text"}}),
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"success":true})))
        .expect(1)
        .mount(&server)
        .await;
    client(&server)
        .mark_as_read(PHONE, "wamid.IN", true)
        .await
        .unwrap();
}

#[tokio::test]
async fn media_upload_info_download_delete() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(format!("/v21.0/{PHONE}/media")))
        .and(bearer_token(TOKEN))
        .and(header_regex(
            "content-type",
            "^multipart/form-data; boundary=",
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id":"1037543291543636"})))
        .expect(1)
        .mount(&server)
        .await;
    let download_url = format!("{}/media-blob/abc", server.uri());
    Mock::given(method("GET"))
        .and(path("/v21.0/1037543291543636"))
        .and(query_param("phone_number_id", PHONE))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"messaging_product":"whatsapp",
            "url":download_url,"mime_type":"image/jpeg","sha256":"ab12","file_size":"5","id":"1037543291543636"})))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/media-blob/abc"))
        .and(bearer_token(TOKEN))
        .respond_with(
            ResponseTemplate::new(200).set_body_raw(b"\xff\xd8abc".to_vec(), "image/jpeg"),
        )
        .mount(&server)
        .await;
    Mock::given(method("DELETE"))
        .and(path("/v21.0/1037543291543636"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"success":true})))
        .expect(1)
        .mount(&server)
        .await;

    let c = client(&server);
    let up = c
        .upload_media(PHONE, b"\xff\xd8abc".to_vec(), "image/jpeg", "a.jpg")
        .await
        .unwrap();
    assert_eq!(up.id, "1037543291543636");
    let body = &server.received_requests().await.unwrap()[0].body;
    let text = String::from_utf8_lossy(body);
    assert!(
        text.contains("name=\"messaging_product\"") && text.contains("whatsapp"),
        "{text}"
    );
    assert!(
        text.contains("name=\"file\"; filename=\"a.jpg\"") && text.contains("name=\"type\""),
        "{text}"
    );

    let info = c.media_info(&up.id, Some(PHONE)).await.unwrap();
    assert_eq!(info.file_size, 5);
    let media = c.download_media(&info.url).await.unwrap();
    assert_eq!(media.bytes, b"\xff\xd8abc");
    assert_eq!(media.content_type.as_deref(), Some("image/jpeg"));
    c.delete_media(&up.id, None).await.unwrap();
}

#[tokio::test]
async fn download_refuses_untrusted_hosts_and_bad_ids() {
    let server = MockServer::start().await;
    let c = client(&server);
    let err = c
        .download_media("https://attacker.example/steal")
        .await
        .unwrap_err();
    assert!(matches!(err, ClientError::InvalidArgument(_)), "{err:?}");
    let err = c.media_info("../../me", None).await.unwrap_err();
    assert!(matches!(err, ClientError::InvalidArgument(_)), "{err:?}");
    assert!(server.received_requests().await.unwrap().is_empty());
}

#[tokio::test]
async fn phone_number_info() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(format!("/v21.0/{PHONE}")))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"verified_name":"Test Number",
            "code_verification_status":"NOT_VERIFIED","display_phone_number":"+1 555-096-7852",
            "quality_rating":"GREEN","platform_type":"CLOUD_API","throughput":{"level":"STANDARD"},"id":PHONE})))
        .mount(&server)
        .await;
    let info = client(&server).phone_number(PHONE).await.unwrap();
    assert_eq!(info.verified_name.as_deref(), Some("Test Number"));
    assert_eq!(info.throughput.unwrap().level, "STANDARD");
}

#[tokio::test]
async fn templates_list_create_delete() {
    let server = MockServer::start().await;
    let waba = "102290129340398";
    Mock::given(method("GET"))
        .and(path(format!("/v21.0/{waba}/message_templates")))
        .and(query_param("limit", "2"))
        .and(query_param("status", "APPROVED"))
        .and(query_param("after", "CURSOR"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data":[
            {"id":"594425479261596","name":"order_update","language":"en_US","status":"APPROVED","category":"UTILITY",
             "components":[{"type":"BODY","text":"Hi {{1}}"}]}],
            "paging":{"cursors":{"before":"B","after":"A"}}})))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(format!("/v21.0/{waba}/message_templates")))
        .and(body_json(
            json!({"name":"hello","language":"en_US","category":"UTILITY",
            "components":[{"type":"BODY","text":"Hello"}]}),
        ))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(
                json!({"id":"594425479261596","status":"PENDING","category":"UTILITY"}),
            ),
        )
        .mount(&server)
        .await;
    Mock::given(method("DELETE"))
        .and(path(format!("/v21.0/{waba}/message_templates")))
        .and(query_param("name", "hello"))
        .and(query_param("hsm_id", "594425479261596"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"success":true})))
        .expect(1)
        .mount(&server)
        .await;

    let c = client(&server);
    let q = TemplateListQuery {
        status: Some(TemplateStatus::Approved),
        limit: Some(2),
        after: Some("CURSOR".into()),
        ..Default::default()
    };
    let page = c.list_templates(waba, &q).await.unwrap();
    assert_eq!(page.data[0].name.as_deref(), Some("order_update"));
    assert_eq!(
        page.paging.unwrap().cursors.unwrap().after.as_deref(),
        Some("A")
    );

    let create: TemplateCreate = serde_json::from_value(json!({"name":"hello","language":"en_US",
        "category":"UTILITY","components":[{"type":"BODY","text":"Hello"}]}))
    .unwrap();
    let created = c.create_template(waba, &create).await.unwrap();
    assert_eq!(created.status, TemplateStatus::Pending);
    assert_eq!(created.category, Some(TemplateCategory::Utility));
    c.delete_template(waba, "hello", Some("594425479261596"))
        .await
        .unwrap();
}

#[tokio::test]
async fn rate_limit_wait_from_business_usage_header_when_no_retry_after() {
    let server = MockServer::start().await;
    let usage = r#"{"102290129340398":[{"type":"whatsapp_business_management","call_count":100,"estimated_time_to_regain_access":2}]}"#;
    Mock::given(method("GET"))
        .respond_with(
            ResponseTemplate::new(400)
                .set_body_json(meta_error(80007, "(#80007) Rate limit issues"))
                .insert_header("X-Business-Use-Case-Usage", usage),
        )
        .mount(&server)
        .await;
    let err = client(&server).phone_number(PHONE).await.unwrap_err();
    assert_eq!(
        err.class(),
        ErrorClass::RateLimited {
            retry_after: Some(Duration::from_secs(120))
        }
    );
}

#[tokio::test]
async fn redirect_to_plain_http_elsewhere_is_not_followed() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v21.0/1037543291543636"))
        .respond_with(
            ResponseTemplate::new(302).insert_header("Location", "http://example.invalid/steal"),
        )
        .mount(&server)
        .await;
    let err = client(&server)
        .media_info("1037543291543636", None)
        .await
        .unwrap_err();
    assert!(
        matches!(err, ClientError::Http { status: 302, .. }),
        "{err:?}"
    );
    assert_eq!(err.class(), ErrorClass::Permanent);
}
