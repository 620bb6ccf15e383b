//! A member of two workspaces switches between them from the page header;
//! a workspace they do not belong to is refused; members of one workspace
//! see no switcher.

use serde_json::{Value, json};
use waypost_store::Backend;

use crate::dashboard::{csrf_of, form, location, page, sign_in};
use crate::messaging_fixture::fixture;
use crate::on_both_backends;
use crate::users::{PASSWORD, login, owner};

on_both_backends!(members_of_two_workspaces_switch_from_the_header);

async fn members_of_two_workspaces_switch_from_the_header(backend: Backend) {
    let Some(f) = fixture(backend, |_| {}, |_| {}).await else {
        return;
    };
    let app = &f.app;
    let single = sign_in(app, "ops@example.com").await;
    let (_, html) = page(app, &single, "/inbox").await;
    assert!(
        !html.contains("action=\"/workspace\""),
        "one workspace, no switcher"
    );

    // Beta's owner invites ops@example.com, who accepts while signed in.
    let beta = owner(app, "bea@example.com", "Beta").await;
    let stranger = owner(app, "sam@example.com", "Gamma").await;
    let bea = login(app, &beta.email, PASSWORD).await;
    let res = bea
        .post(
            app,
            "/v1/invitations",
            json!({"email": "ops@example.com", "role": "analyst"}),
        )
        .await;
    assert_eq!(res.status(), 201);
    let token = res.json::<Value>().await.unwrap()["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let ops = login(app, "ops@example.com", PASSWORD).await;
    let res = ops
        .post(
            app,
            "/v1/invitations/accept-signed-in",
            json!({"token": token}),
        )
        .await;
    assert_eq!(res.status(), 204);

    let cookie = sign_in(app, "ops@example.com").await;
    let (_, html) = page(app, &cookie, "/inbox").await;
    assert!(html.contains("action=\"/workspace\""), "{html}");
    assert!(html.contains(">Beta</option>") && html.contains(">Acme</option>"));
    assert!(html.contains("(owner)"));
    let csrf = csrf_of(&html);

    let res = form(
        app,
        Some(&cookie),
        "/workspace",
        &[
            ("csrf", &csrf),
            ("workspace", &stranger.workspace_id.to_string()),
        ],
    )
    .await;
    assert_eq!(res.status(), 422);

    let res = form(
        app,
        Some(&cookie),
        "/workspace",
        &[
            ("csrf", &csrf),
            ("workspace", &beta.workspace_id.to_string()),
        ],
    )
    .await;
    assert_eq!(res.status(), 303);
    assert_eq!(location(&res), "/inbox");
    let chosen = res
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().split(';').next().unwrap().to_owned())
        .find(|c| c.contains(&beta.workspace_id.to_string()))
        .expect("the workspace cookie");
    let cookie = cookie
        .split("; ")
        .filter(|c| !c.starts_with(chosen.split('=').next().unwrap()))
        .chain([chosen.as_str()])
        .collect::<Vec<_>>()
        .join("; ");
    let (status, html) = page(app, &cookie, "/inbox").await;
    assert_eq!(status, 200);
    assert!(
        html.contains("(analyst)"),
        "acting as an analyst in Beta: {html}"
    );
    assert!(
        html.contains(" selected>Beta</option>"),
        "Beta is the chosen one"
    );
    // An analyst in Beta has no Developers section there.
    assert!(!html.contains("href=\"/developers/keys\""));
}
