//! The document's per-operation `security` is what the server enforces: every
//! operation that declares credentials refuses a request without any (401),
//! an API key holding every scope is never refused by an operation that lists
//! `api_key`, and never succeeds on one that does not (session-only routes
//! may parse the body before they look at the caller, so a 400/422 counts).

use serde_json::{Value, json};
use waypost_store::Backend;

use crate::helpers::spawn_app;
use crate::on_both_backends;
use crate::users::*;

on_both_backends!(declared_security_is_enforced);

const KEY_REFUSALS: &[&str] = &[
    "session-required",
    "operator-token-required",
    "invalid-api-key",
];

async fn declared_security_is_enforced(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let o = owner(&app, "ana@example.com", "Acme").await;
    let s = login(&app, &o.email, PASSWORD).await;
    let scopes: Vec<&str> = waypost_core::auth::Scope::ALL
        .iter()
        .map(|s| s.as_str())
        .collect();
    let (_, key) = api_key(&app, &s, json!({"name": "all", "scopes": scopes})).await;
    let doc: Value = serde_json::from_str(&waypost_server::openapi_json()).unwrap();
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(3))
        .build()
        .unwrap();
    let mut checked = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let security = op["security"]
                .as_array()
                .unwrap_or_else(|| panic!("{method} {path} declares no security"));
            let secured = security.iter().any(|r| !r.as_object().unwrap().is_empty());
            let keyed = security.iter().any(|r| r.get("api_key").is_some());
            // Path parameters get a value no resource has.
            let url = format!("{}{}", app.address, fill(path));
            let request = |bearer: Option<&str>| {
                let mut r = client
                    .request(method.to_uppercase().parse().unwrap(), &url)
                    .header("content-type", "application/json");
                if method != "get" && method != "delete" {
                    r = r.body("{}");
                }
                if let Some(b) = bearer {
                    r = r.bearer_auth(b);
                }
                r.send()
            };
            if secured {
                let res = request(None).await.unwrap();
                assert_eq!(res.status(), 401, "{method} {path} without credentials");
            }
            if path.starts_with("/webhooks/") || !secured {
                continue;
            }
            // An event stream answers 200 and stays open: the status is enough.
            let res = request(Some(&key)).await.unwrap();
            let status = res.status().as_u16();
            let kind = if res.headers()["content-type"] == "application/problem+json" {
                let p: Value = res.json().await.unwrap();
                p["type"]
                    .as_str()
                    .unwrap()
                    .rsplit('/')
                    .next()
                    .unwrap()
                    .to_owned()
            } else {
                String::new()
            };
            let refused = matches!(status, 401 | 403) && KEY_REFUSALS.contains(&kind.as_str())
                || kind == "insufficient-scope";
            if keyed {
                assert!(
                    !refused,
                    "{method} {path} refused an all-scope API key: {status} {kind}"
                );
            } else {
                assert!(
                    refused || matches!(status, 400 | 404 | 415 | 422),
                    "{method} {path} (no api_key) answered an API key with {status} {kind}"
                );
            }
            checked += 1;
        }
    }
    assert!(checked > 100, "only {checked} operations checked");
}

fn fill(path: &str) -> String {
    path.split('/')
        .map(|seg| if seg.starts_with('{') { "zz0" } else { seg })
        .collect::<Vec<_>>()
        .join("/")
}
