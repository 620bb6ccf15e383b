//! Every error from the API is a problem document.

use waypost_store::Backend;

use crate::helpers::{assert_problem, spawn_app};
use crate::on_both_backends;

on_both_backends!(
    unknown_routes_and_wrong_methods_are_problems,
    a_nul_in_the_address_is_a_bad_request
);

async fn unknown_routes_and_wrong_methods_are_problems(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let body = assert_problem(app.get("/nope").await, 404).await;
    assert_eq!(body["type"], "https://waypost.dev/problems/not-found");
    assert_eq!(body["instance"], "/nope");

    let res = app
        .client
        .post(format!("{}/healthz", app.address))
        .send()
        .await
        .unwrap();
    let body = assert_problem(res, 405).await;
    assert_eq!(
        body["type"],
        "https://waypost.dev/problems/method-not-allowed"
    );

    let res = app
        .client
        .get(format!("{}/v1/nothing?token=secret", app.address))
        .send()
        .await
        .unwrap();
    let body = assert_problem(res, 404).await;
    assert!(
        !body.to_string().contains("secret"),
        "query strings are not echoed"
    );
}

/// Found by fuzzing: `%00` as an id reached PostgreSQL, which refuses NUL in
/// text, and came back 500.
async fn a_nul_in_the_address_is_a_bad_request(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    for path in [
        "/v1/conversations/%00/read",
        "/v1/contacts/a%00b",
        "/v1/messages?contact_id=%00",
    ] {
        let res = app
            .client
            .post(format!("{}{path}", app.address))
            .json(&serde_json::json!({}))
            .send()
            .await
            .unwrap();
        let body = assert_problem(res, 400).await;
        assert!(
            body["detail"].as_str().unwrap().contains("NUL"),
            "{path}: {body}"
        );
    }
}
