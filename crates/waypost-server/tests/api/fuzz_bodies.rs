//! Fuzz target: every request body the API documents, sent as arbitrary JSON
//! (keys taken from the operation's own schema, values of any shape) or
//! arbitrary bytes, by a signed-in owner. No answer is a server error, and
//! every refusal is a problem document. CI runs the default case count;
//! `bench/fuzz.sh` runs it for a set time (`WAYPOST_FUZZ_CASES`).

use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestError, TestRunner};
use serde_json::{Value, json};
use waypost_store::Backend;

use crate::helpers::{TestApp, spawn_app};
use crate::on_both_backends;
use crate::users::{PASSWORD, Session, login, owner};

on_both_backends!(arbitrary_request_bodies_never_cause_a_server_error);

/// Operations left out: they would end the session or the workspace the
/// rest of the run needs, or lock its owner out.
const SKIPPED: &[&str] = &[
    "/v1/auth/password",
    "/v1/auth/reauth",
    "/v1/workspace/deletion",
    "/v1/security/policy",
    "/v1/auth/login",
];

struct Operation {
    method: reqwest::Method,
    path: String,
    content_type: String,
    keys: Vec<String>,
}

fn operations() -> Vec<Operation> {
    let doc: Value = serde_json::from_str(&waypost_server::http::openapi_json()).unwrap();
    let mut ops = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        if SKIPPED.contains(&path.as_str()) {
            continue;
        }
        for (method, op) in item.as_object().unwrap() {
            let Some(content) = op["requestBody"]["content"].as_object() else {
                continue;
            };
            for (content_type, media) in content {
                let mut keys = Vec::new();
                collect_keys(&doc, &media["schema"], 0, &mut keys);
                keys.sort();
                keys.dedup();
                ops.push(Operation {
                    method: method.to_uppercase().parse().unwrap(),
                    path: path.clone(),
                    content_type: content_type.clone(),
                    keys,
                });
            }
        }
    }
    assert!(
        ops.len() > 40,
        "the document lists only {} bodies",
        ops.len()
    );
    ops
}

/// Property names anywhere in a schema, following `$ref`s a few levels deep.
fn collect_keys(doc: &Value, schema: &Value, depth: usize, keys: &mut Vec<String>) {
    if depth > 4 {
        return;
    }
    if let Some(r) = schema["$ref"].as_str() {
        let name = r.rsplit('/').next().unwrap();
        collect_keys(doc, &doc["components"]["schemas"][name], depth + 1, keys);
    }
    if let Some(props) = schema["properties"].as_object() {
        for (k, v) in props {
            keys.push(k.clone());
            collect_keys(doc, v, depth + 1, keys);
        }
    }
    for list in ["allOf", "oneOf", "anyOf"] {
        for s in schema[list].as_array().into_iter().flatten() {
            collect_keys(doc, s, depth + 1, keys);
        }
    }
    for nested in ["items", "additionalProperties"] {
        if schema[nested].is_object() {
            collect_keys(doc, &schema[nested], depth + 1, keys);
        }
    }
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        (0u32..600).prop_map(|n| json!(n)),
        any::<f64>().prop_filter_map("finite", |f| {
            serde_json::Number::from_f64(f).map(Value::Number)
        }),
        "\\PC{0,30}".prop_map(Value::String),
        // Values the server treats specially: NUL (PostgreSQL refuses it in
        // text), numbers, ids, times, addresses, and long strings.
        prop::sample::select(
            &[
                "",
                " ",
                "\0",
                "a\0b",
                "+4915112345678",
                "+1",
                "0049151",
                "01J0000000000000000000000",
                "2026-12-07T10:00:00Z",
                "2026-13-45",
                "https://example.com/hook",
                "http://127.0.0.1:1/x",
                "user@example.com",
                "text",
                "template",
                "marketing",
                "utility",
                "owner",
                "agent",
                "admin",
                "all",
                "none",
                "days:7",
                "block",
                "\u{202e}x",
                "{{1}}",
                "🙂",
            ][..]
        )
        .prop_map(|s| Value::String(s.to_owned())),
        (1usize..70_000).prop_map(|n| Value::String("x".repeat(n))),
    ];
    leaf.prop_recursive(3, 32, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::vec(("[a-z_]{1,10}", inner), 0..4)
                .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

#[derive(Debug, Clone)]
enum Body {
    /// An object with keys the schema names (chosen by index) and arbitrary values.
    Object(Vec<(prop::sample::Index, Value)>),
    Json(Value),
    Bytes(Vec<u8>),
}

fn body() -> impl Strategy<Value = Body> {
    prop_oneof![
        6 => prop::collection::vec((any::<prop::sample::Index>(), json_value()), 0..8)
            .prop_map(Body::Object),
        2 => json_value().prop_map(Body::Json),
        1 => prop::collection::vec(any::<u8>(), 0..300).prop_map(Body::Bytes),
    ]
}

fn render(body: &Body, op: &Operation) -> Vec<u8> {
    match body {
        Body::Object(fields) => {
            let mut object = serde_json::Map::new();
            for (index, value) in fields {
                let key = if op.keys.is_empty() {
                    "x".to_owned()
                } else {
                    index.get(&op.keys).clone()
                };
                object.insert(key, value.clone());
            }
            let value = Value::Object(object);
            if op.content_type == "application/json" {
                serde_json::to_vec(&value).unwrap()
            } else {
                // Text bodies (CSV, Markdown): the values as lines.
                value
                    .as_object()
                    .unwrap()
                    .values()
                    .map(|v| v.to_string())
                    .collect::<Vec<_>>()
                    .join("\n")
                    .into_bytes()
            }
        }
        Body::Json(v) => serde_json::to_vec(v).unwrap(),
        Body::Bytes(b) => b.clone(),
    }
}

fn path_for(template: &str, id: &str) -> String {
    let mut out = String::new();
    let mut rest = template;
    while let Some(start) = rest.find('{') {
        out.push_str(&rest[..start]);
        let end = rest[start..]
            .find('}')
            .map_or(rest.len(), |e| start + e + 1);
        out.push_str(id);
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

async fn send(
    app: &TestApp,
    client: &reqwest::Client,
    session: &Session,
    op: &Operation,
    id: &str,
    body: Vec<u8>,
) -> (u16, String, String) {
    let res = client
        .request(
            op.method.clone(),
            format!("{}{}", app.address, path_for(&op.path, id)),
        )
        .header("cookie", &session.cookie)
        .header("sec-fetch-site", "same-origin")
        .header("content-type", &op.content_type)
        .body(body)
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    let content_type = res
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap_or("").to_owned())
        .unwrap_or_default();
    let text = res.text().await.unwrap_or_default();
    (status, content_type, text)
}

async fn arbitrary_request_bodies_never_cause_a_server_error(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let account = owner(&app, "fuzz@example.com", "fuzz").await;
    let session = login(&app, "fuzz@example.com", PASSWORD).await;
    let ops = operations();
    // Path ids: a real one (the owner's workspace and user), a well-formed unknown one, and junk.
    let ids = [
        account.workspace_id.to_string(),
        account.user_id.to_string(),
        "01J0000000000000000000000".to_owned(),
        "%00".to_owned(),
        "+4915112345678".to_owned(),
    ];
    let cases = std::env::var("WAYPOST_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256);
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    });
    let handle = tokio::runtime::Handle::current();
    // A new connection per request: an early refusal closes its connection.
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let strategy = (
        any::<prop::sample::Index>(),
        any::<prop::sample::Index>(),
        body(),
    );
    let result = tokio::task::block_in_place(|| {
        runner.run(&strategy, |(op, id, body)| {
            let op = op.get(&ops);
            let id = id.get(&ids);
            let bytes = render(&body, op);
            let (status, content_type, text) =
                handle.block_on(send(&app, &client, &session, op, id, bytes.clone()));
            let shown = String::from_utf8_lossy(&bytes[..bytes.len().min(300)]).into_owned();
            if status >= 500 {
                return Err(TestCaseError::fail(format!(
                    "{} {} answered {status} to {shown}: {text}",
                    op.method, op.path
                )));
            }
            if status >= 400 && content_type != "application/problem+json" {
                return Err(TestCaseError::fail(format!(
                    "{} {} answered {status} as {content_type:?} to {shown}",
                    op.method, op.path
                )));
            }
            Ok(())
        })
    });
    match result {
        Ok(()) => {}
        Err(TestError::Fail(why, input)) => panic!("{why}\nminimal input: {input:?}"),
        Err(e) => panic!("{e}"),
    }
    // The server is still serving, and the session still works.
    assert_eq!(session.get(&app, "/v1/auth/me").await.status(), 200);
}
