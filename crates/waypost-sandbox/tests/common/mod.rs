//! Test helpers: start a sandbox, a Cloud API client pointed at it, the
//! control API, and a webhook receiver that answers the verify handshake
//! and keeps every POST with whether its signature verified.
#![allow(dead_code)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::routing::get;
use secrecy::SecretString;
use serde_json::Value;
use waypost_cloudapi::send::OutboundContent;
use waypost_cloudapi::template::{
    ComponentKind, TemplateComponent, TemplateLanguage, TemplateMessage, TemplateParameter,
};
use waypost_cloudapi::{ClientConfig, CloudApiClient, OutboundMessage, verify_signature};
use waypost_sandbox::{RunningSandbox, Sandbox, SandboxConfig};

pub async fn start(config: SandboxConfig) -> RunningSandbox {
    Sandbox::start(config).await.expect("sandbox starts")
}

pub fn client(sb: &RunningSandbox) -> CloudApiClient {
    client_with_timeout(sb, Duration::from_secs(10))
}

pub fn client_with_timeout(sb: &RunningSandbox, timeout: Duration) -> CloudApiClient {
    let token = sb.numbers()[0].access_token.clone();
    let mut config =
        ClientConfig::new(sb.base_url(), Some("v21.0"), SecretString::from(token)).unwrap();
    config.request_timeout = timeout;
    CloudApiClient::new(config).unwrap()
}

pub fn number_id(sb: &RunningSandbox) -> String {
    sb.numbers()[0].id.clone()
}

/// A template send with `params` body parameters.
pub fn template(to: &str, name: &str, params: &[&str]) -> OutboundMessage {
    let components = if params.is_empty() {
        vec![]
    } else {
        vec![TemplateComponent {
            kind: ComponentKind::Body,
            sub_type: None,
            index: None,
            parameters: params.iter().map(|p| TemplateParameter::text(*p)).collect(),
        }]
    };
    OutboundMessage::new(
        to,
        OutboundContent::Template(TemplateMessage {
            name: name.into(),
            language: TemplateLanguage {
                code: "en_US".into(),
                policy: None,
            },
            components,
        }),
    )
}

pub struct Control {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl Control {
    pub fn new(sb: &RunningSandbox) -> Self {
        Self {
            http: reqwest::Client::new(),
            base: format!("{}/_sandbox", sb.base_url()),
            token: sb.control_token().to_owned(),
        }
    }

    pub async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        assert!(
            resp.status().is_success(),
            "control {path}: {}",
            resp.status()
        );
        resp.json().await.unwrap()
    }

    pub async fn inbound(&self, from: &str, text: &str) -> Value {
        let body =
            serde_json::json!({"from": from, "message": {"type": "text", "text": {"body": text}}});
        self.call(reqwest::Method::POST, "/inbound", Some(body))
            .await
    }

    pub async fn set_user(&self, wa_id: &str, user: Value) {
        self.call(reqwest::Method::PUT, &format!("/users/{wa_id}"), Some(user))
            .await;
    }

    pub async fn set_faults(&self, faults: Value) {
        self.call(reqwest::Method::PUT, "/faults", Some(faults))
            .await;
    }

    pub async fn log(&self) -> Value {
        self.call(reqwest::Method::GET, "/log?limit=100000", None)
            .await
    }
}

/// One webhook POST as received.
#[derive(Debug, Clone)]
pub struct Received {
    pub body: Value,
    pub signature_ok: bool,
}

#[derive(Clone, Default)]
pub struct Receiver {
    pub posts: Arc<Mutex<Vec<Received>>>,
    pub handshakes: Arc<Mutex<u32>>,
    /// Answer this many POSTs with 500 first (retry tests).
    pub fail_first: Arc<Mutex<u32>>,
    secret: Arc<String>,
    verify_token: Arc<String>,
}

impl Receiver {
    /// Starts a receiver; returns it and its URL.
    pub async fn start(secret: &str, verify_token: &str) -> (Self, String) {
        let r = Self {
            secret: Arc::new(secret.into()),
            verify_token: Arc::new(verify_token.into()),
            ..Self::default()
        };
        let app = Router::new()
            .route("/hook", get(handshake).post(receive))
            .with_state(r.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        (r, url)
    }

    pub fn posts(&self) -> Vec<Received> {
        self.posts.lock().unwrap().clone()
    }

    /// Waits until `pred` holds for the received posts (up to 10 s).
    pub async fn wait_for(&self, pred: impl Fn(&[Received]) -> bool) -> Vec<Received> {
        for _ in 0..200 {
            let posts = self.posts();
            if pred(&posts) {
                return posts;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("timed out waiting for webhooks; got {:#?}", self.posts());
    }
}

async fn handshake(
    State(r): State<Receiver>,
    Query(q): Query<std::collections::HashMap<String, String>>,
) -> (axum::http::StatusCode, String) {
    *r.handshakes.lock().unwrap() += 1;
    let ok = q.get("hub.mode").map(String::as_str) == Some("subscribe")
        && q.get("hub.verify_token") == Some(&*r.verify_token);
    match (ok, q.get("hub.challenge")) {
        (true, Some(c)) => (axum::http::StatusCode::OK, c.clone()),
        _ => (axum::http::StatusCode::FORBIDDEN, String::new()),
    }
}

async fn receive(
    State(r): State<Receiver>,
    headers: HeaderMap,
    body: Bytes,
) -> axum::http::StatusCode {
    {
        let mut fail = r.fail_first.lock().unwrap();
        if *fail > 0 {
            *fail -= 1;
            return axum::http::StatusCode::INTERNAL_SERVER_ERROR;
        }
    }
    let sig = headers
        .get("x-hub-signature-256")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let signature_ok = verify_signature(r.secret.as_bytes(), &body, sig);
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    r.posts
        .lock()
        .unwrap()
        .push(Received { body, signature_ok });
    axum::http::StatusCode::OK
}
