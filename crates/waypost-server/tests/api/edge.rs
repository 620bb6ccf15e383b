//! The edge as a careless or hostile client meets it: what it sends is refused
//! with problem documents (including what hyper refuses before any route runs),
//! and slow or greedy clients cannot keep others from being served.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use waypost_store::Backend;

use crate::bearer::{ALL_SCOPES, workspace_api};
use crate::helpers::{TestApp, assert_problem, spawn_app, spawn_app_with};
use crate::on_both_backends;

fn server(app: &TestApp) -> SocketAddr {
    app.address
        .trim_start_matches("http://")
        .parse()
        .expect("test apps listen on an address")
}

/// A connection to the app from a given loopback address (all of 127/8 is loopback).
async fn connect_from(app: &TestApp, from: &str) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket
        .bind(SocketAddr::new(from.parse::<IpAddr>().unwrap(), 0))
        .unwrap();
    socket.connect(server(app)).await.unwrap()
}

/// Sends raw bytes; returns what the server answered before closing (or within 10 s).
async fn raw(app: &TestApp, request: &[u8]) -> (u16, String, String) {
    let mut stream = connect_from(app, "127.0.0.1").await;
    // The server may answer (and close) before it has read everything.
    let _ = stream.write_all(request).await;
    read_answer(&mut stream).await
}

async fn read_answer(stream: &mut TcpStream) -> (u16, String, String) {
    let mut out = Vec::new();
    let mut buf = [0u8; 8192];
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) | Err(_) => break,
            Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
        }
        if let Some(answer) = complete(&out) {
            return answer;
        }
    }
    complete(&out).unwrap_or_else(|| (0, String::new(), String::from_utf8_lossy(&out).into()))
}

/// Status, head and body once a whole `content-length` answer is in.
fn complete(bytes: &[u8]) -> Option<(u16, String, String)> {
    let text = String::from_utf8_lossy(bytes);
    let (head, body) = text.split_once("\r\n\r\n")?;
    let length: usize = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().ok())?
        })
        .unwrap_or(0);
    if body.len() < length {
        return None;
    }
    let status = head.get(9..12)?.parse().ok()?;
    Some((status, head.to_ascii_lowercase(), body[..length].to_owned()))
}

fn assert_problem_answer(answer: &(u16, String, String), status: u16) -> Value {
    let (got, head, body) = answer;
    assert_eq!(*got, status, "{head}\n{body}");
    assert!(
        head.contains("content-type: application/problem+json"),
        "{head}"
    );
    let problem: Value = serde_json::from_str(body).unwrap();
    assert_eq!(problem["status"], status);
    for member in ["type", "title", "detail"] {
        assert!(problem[member].is_string(), "{problem}");
    }
    problem
}

async fn what_hyper_refuses_is_a_problem_document(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    // 431: too many header fields, and one too large.
    let mut many = String::from("GET /healthz HTTP/1.1\r\nhost: x\r\n");
    for i in 0..150 {
        many.push_str(&format!("x-h{i}: v\r\n"));
    }
    many.push_str("\r\n");
    let p = assert_problem_answer(&raw(&app, many.as_bytes()).await, 431);
    assert!(
        p["type"]
            .as_str()
            .unwrap()
            .ends_with("/header-fields-too-large")
    );
    // 414: a request target longer than hyper takes.
    let long = format!("GET /{} HTTP/1.1\r\nhost: x\r\n\r\n", "a".repeat(70 * 1024));
    let p = assert_problem_answer(&raw(&app, long.as_bytes()).await, 414);
    assert!(p["type"].as_str().unwrap().ends_with("/uri-too-long"));
    // 400: a path that is not a URI, and a request line that is not HTTP.
    for bad in [
        &b"GET /v1/contacts/a\"b<c> HTTP/1.1\r\nhost: x\r\n\r\n"[..],
        b"GET /\x01 HTTP/1.1\r\nhost: x\r\n\r\n",
        b"BR@KEN\r\n\r\n",
    ] {
        let p = assert_problem_answer(&raw(&app, bad).await, 400);
        assert!(
            p["type"].as_str().unwrap().ends_with("/malformed-request"),
            "{p}"
        );
    }
    // The server still serves.
    assert_eq!(app.get("/healthz").await.status(), 200);
}

async fn trailing_data_after_a_json_body_is_refused(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let api = workspace_api(&app, "trail@example.com", &ALL_SCOPES).await;
    for body in [
        r#"{"phone":"+4915123456789"} xyz"#,
        r#"{"phone":"+4915123456789"}{"phone":"+4915123456780"}"#,
        r#"{"phone":"+4915123456789"}]"#,
    ] {
        let res = app
            .client
            .post(format!("{}/v1/contacts", app.address))
            .bearer_auth(&api.key)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        let p = assert_problem(res, 400).await;
        assert!(
            p["type"].as_str().unwrap().ends_with("/invalid-json"),
            "{p}"
        );
        assert!(
            p["detail"]
                .as_str()
                .unwrap()
                .contains("after the JSON value")
        );
    }
    let list: Value = api.get(&app, "/v1/contacts").await.json().await.unwrap();
    assert_eq!(list["data"].as_array().map(Vec::len), Some(0), "{list}");
    // Trailing whitespace is not data.
    let res = app
        .client
        .post(format!("{}/v1/contacts", app.address))
        .bearer_auth(&api.key)
        .header("content-type", "application/json")
        .body("{\"phone\":\"+4915123456789\"}\r\n")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
}

async fn a_stalled_body_is_answered_408(backend: Backend) {
    let Some(app) = spawn_app_with(backend, |c| c.request_timeout_secs = 1).await else {
        return;
    };
    let api = workspace_api(&app, "stall@example.com", &ALL_SCOPES).await;
    let mut stream = connect_from(&app, "127.0.0.1").await;
    let head = format!(
        "POST /v1/contacts HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {}\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{{\"phone\":",
        api.key
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let answer = read_answer(&mut stream).await;
    let p = assert_problem_answer(&answer, 408);
    assert!(p["type"].as_str().unwrap().ends_with("/request-timeout"));
    assert!(answer.1.contains("connection: close"), "{}", answer.1);
}

/// Many connections that send their headers slowly, from one address, while
/// others still get answers; the slow ones are closed after the header-read
/// timeout, idle kept-alive ones too, and one past the per-address cap is
/// answered 503.
async fn slow_clients_cannot_starve_the_server(backend: Backend) {
    const SLOW: usize = 300;
    let Some(app) = spawn_app_with(backend, |c| {
        c.header_read_timeout_secs = 3;
        c.max_connections_per_ip = 100;
        c.max_connections = 1000;
    })
    .await
    else {
        return;
    };
    // 100 held from each of three addresses, 20 more from the first past its cap.
    let mut slow = Vec::new();
    for i in 0..SLOW + 20 {
        let from = ["127.0.0.4", "127.0.0.5", "127.0.0.1"][(i / 100).min(2)];
        let mut s = connect_from(&app, from).await;
        s.write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\nx-slow: ")
            .await
            .unwrap();
        slow.push(s);
    }
    let started = Instant::now();
    // Another client is served at once while the slow ones are held.
    let other = reqwest::Client::builder()
        .local_address("127.0.0.2".parse::<IpAddr>().unwrap())
        .timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    for _ in 0..5 {
        let res = other
            .get(format!("{}/healthz", app.address))
            .send()
            .await
            .expect("/healthz answers while slow clients hold connections");
        assert_eq!(res.status(), 200);
    }
    // The slow address is over its cap: a complete request from it is shed politely.
    let mut extra = connect_from(&app, "127.0.0.1").await;
    extra
        .write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    let shed = read_answer(&mut extra).await;
    let p = assert_problem_answer(&shed, 503);
    assert!(
        p["type"]
            .as_str()
            .unwrap()
            .ends_with("/too-many-connections")
    );
    assert!(shed.1.contains("retry-after: 1"), "{}", shed.1);
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "answered in time"
    );
    // The slow connections the server took are closed after the header-read
    // timeout, without an answer; the shed ones were answered 503 or closed.
    for s in slow.iter_mut() {
        let mut buf = [0u8; 1024];
        let mut text = Vec::new();
        loop {
            match tokio::time::timeout(Duration::from_secs(10), s.read(&mut buf)).await {
                Ok(Ok(0)) | Ok(Err(_)) => break,
                Ok(Ok(n)) => text.extend_from_slice(&buf[..n]),
                Err(_) => panic!("a slow connection was kept open past the header-read timeout"),
            }
        }
        let text = String::from_utf8_lossy(&text);
        assert!(
            text.is_empty()
                || text.starts_with("HTTP/1.1 503 ")
                || text.starts_with("HTTP/1.1 408 "),
            "{text}"
        );
    }
    assert!(started.elapsed() < Duration::from_secs(12));
    drop(slow);
    // An idle kept-alive connection is closed after the same time.
    let mut idle = connect_from(&app, "127.0.0.3").await;
    idle.write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    let (status, _, _) = read_answer_keep_alive(&mut idle).await;
    assert_eq!(status, 200);
    let idle_since = Instant::now();
    let mut buf = [0u8; 64];
    let closed = tokio::time::timeout(Duration::from_secs(10), idle.read(&mut buf)).await;
    assert!(
        matches!(closed, Ok(Ok(0)) | Ok(Err(_))),
        "an idle kept-alive connection stayed open"
    );
    assert!(idle_since.elapsed() >= Duration::from_secs(2));
    assert_eq!(app.get("/healthz").await.status(), 200);
}

/// Reads one answer on a kept-alive connection (the server does not close it).
async fn read_answer_keep_alive(stream: &mut TcpStream) -> (u16, String, String) {
    let mut out = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buf))
            .await
            .expect("an answer")
            .unwrap();
        assert!(n > 0, "closed before answering");
        out.extend_from_slice(&buf[..n]);
        if let Some(answer) = complete(&out) {
            return answer;
        }
    }
}

on_both_backends!(
    what_hyper_refuses_is_a_problem_document,
    trailing_data_after_a_json_body_is_refused,
    a_stalled_body_is_answered_408,
);

// Connection handling does not touch the database: SQLite only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_clients_cannot_starve_the_server_sqlite() {
    slow_clients_cannot_starve_the_server(Backend::Sqlite).await;
}
