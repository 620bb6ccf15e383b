//! A fake OpenAI-compatible chat-completions server: checks each request's
//! shape (path, bearer key, model, a system and a user message, the token
//! field, no streaming), keeps the raw bodies it received, and answers from
//! the test's script.

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};

pub const KEY: &str = "sk-test-key-123";
pub const MODEL: &str = "test-model";

/// The script: given the call's index and its request body, the status,
/// extra headers and body of the answer.
pub type Script =
    Arc<dyn Fn(usize, &Value) -> (u16, Vec<(&'static str, String)>, Value) + Send + Sync>;

#[derive(Clone)]
struct Fake {
    bodies: Arc<Mutex<Vec<String>>>,
    script: Script,
}

pub struct FakeLlm {
    pub base_url: String,
    bodies: Arc<Mutex<Vec<String>>>,
}

impl FakeLlm {
    pub async fn start(script: Script) -> FakeLlm {
        let bodies = Arc::new(Mutex::new(Vec::new()));
        let fake = Fake {
            bodies: bodies.clone(),
            script,
        };
        let app = Router::new()
            .route("/v1/chat/completions", post(complete))
            .with_state(fake);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        FakeLlm {
            base_url: format!("http://{addr}/v1"),
            bodies,
        }
    }

    /// The raw request bodies received so far (well-formed ones only).
    pub fn bodies(&self) -> Vec<String> {
        self.bodies.lock().unwrap().clone()
    }

    pub fn calls(&self) -> usize {
        self.bodies.lock().unwrap().len()
    }
}

/// Why a request is not what an OpenAI-compatible client sends, if it is not.
fn shape_error(headers: &HeaderMap, body: &Value) -> Option<String> {
    let auth = headers.get("authorization").and_then(|v| v.to_str().ok());
    if auth != Some(&format!("Bearer {KEY}")) {
        return Some(format!("authorization header: {auth:?}"));
    }
    if body["model"] != MODEL || body["stream"] != false || !body["max_tokens"].is_u64() {
        return Some("model, stream or max_tokens".into());
    }
    let messages = body["messages"].as_array()?;
    let roles: Vec<&str> = messages.iter().filter_map(|m| m["role"].as_str()).collect();
    if roles != ["system", "user"] || !messages.iter().all(|m| m["content"].is_string()) {
        return Some(format!("messages: {roles:?}"));
    }
    None
}

async fn complete(State(fake): State<Fake>, headers: HeaderMap, raw: Bytes) -> Response {
    let Ok(body) = serde_json::from_slice::<Value>(&raw) else {
        return (StatusCode::BAD_REQUEST, "not json").into_response();
    };
    if let Some(e) = shape_error(&headers, &body) {
        let err = json!({"error": {"message": e, "type": "invalid_request_error", "param": null, "code": "bad_shape"}});
        return (StatusCode::BAD_REQUEST, axum::Json(err)).into_response();
    }
    let n = {
        let mut b = fake.bodies.lock().unwrap();
        b.push(String::from_utf8_lossy(&raw).into_owned());
        b.len() - 1
    };
    let (status, extra, answer) = (fake.script)(n, &body);
    let mut res = (StatusCode::from_u16(status).unwrap(), axum::Json(answer)).into_response();
    for (name, value) in extra {
        res.headers_mut().insert(name, value.parse().unwrap());
    }
    res
}

/// A successful completion.
pub fn answer(
    content: &str,
    prompt_tokens: u64,
    completion_tokens: u64,
) -> (u16, Vec<(&'static str, String)>, Value) {
    (
        200,
        vec![],
        json!({
            "id": "chatcmpl-1", "object": "chat.completion", "created": 1_700_000_000, "model": MODEL,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content, "refusal": null},
                         "finish_reason": "stop", "logprobs": null}],
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                      "total_tokens": prompt_tokens + completion_tokens}
        }),
    )
}

/// A provider error in OpenAI's envelope.
pub fn error(status: u16, code: &str) -> (u16, Vec<(&'static str, String)>, Value) {
    (
        status,
        vec![("retry-after-ms", "20".into())],
        json!({"error": {"message": "try later", "type": "requests", "param": null, "code": code}}),
    )
}

/// The system and user messages of a request body.
pub fn prompt(body: &Value) -> (String, String) {
    (
        body["messages"][0]["content"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
        body["messages"][1]["content"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
    )
}
