//! The audience pages: a CSV file uploaded as multipart goes through the
//! contact import (counts, rows needing attention, per-row results download),
//! its CSRF token checked before the file is read; segments are saved from the
//! filter form and listed with their live counts, refused with the API's
//! messages, and deleted; an analyst (no `contacts:write`) reads segments but
//! neither imports nor changes them.

use reqwest::multipart::{Form, Part};
use waypost_store::Backend;

use crate::dashboard::{csrf_of, form, location, page, sign_in};
use crate::helpers::{TestApp, spawn_app};
use crate::on_both_backends;
use crate::users::{member, owner};

on_both_backends!(contacts_are_imported_and_segmented_from_their_pages);

const CSV: &str =
    "phone,name,tags,consent_marketing,consent_source,consent_captured_at,consent_text
+4915123450001,Ada,vip;news,yes,web form,2026-11-01T10:00:00Z,Yes send me offers
+4915123450002,Bo,vip,,,,
not-a-number,Cy,vip,,,,
+4915123450001,Ada again,,,,,
";

/// A browser's multipart upload: `fields` in order, then the file.
async fn upload(
    app: &TestApp,
    cookie: &str,
    fields: &[(&'static str, String)],
    file: Option<&str>,
) -> reqwest::Response {
    let mut multipart = Form::new();
    for (k, v) in fields {
        multipart = multipart.text(*k, v.clone());
    }
    if let Some(body) = file {
        multipart = multipart.part(
            "file",
            Part::text(body.to_owned())
                .file_name("contacts.csv")
                .mime_str("text/csv")
                .unwrap(),
        );
    }
    app.client
        .post(format!("{}/audiences/imports", app.address))
        .header("cookie", cookie)
        .header("sec-fetch-site", "same-origin")
        .multipart(multipart)
        .send()
        .await
        .unwrap()
}

fn key_of(html: &str) -> String {
    let at = html.find("name=\"key\" value=\"").expect("the import key") + 18;
    html[at..].split('"').next().unwrap().to_owned()
}

async fn contacts_are_imported_and_segmented_from_their_pages(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let app = &app;
    let acme = owner(app, "owner@example.com", "Acme").await;
    member(app, acme.workspace_id, "analyst@example.com", "analyst").await;
    let owner = sign_in(app, "owner@example.com").await;

    let (status, html) = page(app, &owner, "/audiences/segments").await;
    assert_eq!(status, 200);
    assert!(html.contains("No segments yet") && html.contains("href=\"/audiences/imports\""));
    assert!(
        html.contains("href=\"/audiences/segments\" aria-current=\"page\""),
        "the nav entry"
    );
    let (_, campaign) = page(app, &owner, "/campaigns/new").await;
    assert!(
        campaign.contains("href=\"/audiences/segments\"")
            && !campaign.contains("POST /v1/segments"),
        "the new-campaign page links to the pages"
    );

    let (status, html) = page(app, &owner, "/audiences/imports").await;
    assert_eq!(status, 200);
    let (csrf, key) = (csrf_of(&html), key_of(&html));
    assert!(key.starts_with("web-"), "{key}");

    // The token must come first and match; the file is not read otherwise.
    let res = upload(app, &owner, &[("key", key.clone())], Some(CSV)).await;
    assert_eq!(res.status(), 403);
    let res = upload(
        app,
        &owner,
        &[("csrf", "forged".into()), ("key", key.clone())],
        Some(CSV),
    )
    .await;
    assert_eq!(res.status(), 403);
    let res = upload(
        app,
        &owner,
        &[("csrf", csrf.clone()), ("key", key.clone())],
        None,
    )
    .await;
    assert_eq!(res.status(), 422);
    assert!(res.text().await.unwrap().contains("Choose a CSV file"));
    let res = upload(
        app,
        &owner,
        &[("csrf", csrf.clone()), ("key", "web-bad-column".into())],
        Some("phone,shoe_size\n+4915123450009,44\n"),
    )
    .await;
    assert_eq!(res.status(), 422);
    assert!(res.text().await.unwrap().contains("column `shoe_size`"));
    assert!(
        app.state
            .store
            .find_contacts(&acme.workspace_id.to_string(), &Default::default(), 10)
            .await
            .unwrap()
            .is_empty(),
        "nothing written by refused uploads"
    );

    let res = upload(
        app,
        &owner,
        &[("csrf", csrf.clone()), ("key", key.clone())],
        Some(CSV),
    )
    .await;
    assert_eq!(res.status(), 303);
    let to = location(&res);
    assert!(to.starts_with("/audiences/imports/imp_"), "{to}");
    let (status, html) = page(app, &owner, &to).await;
    assert_eq!(status, 200);
    for (outcome, n) in [
        ("rows", 4),
        ("created", 2),
        ("updated", 0),
        ("invalid", 1),
        ("duplicate", 1),
        ("consent", 1),
    ] {
        let at = html
            .find(&format!("data-outcome=\"{outcome}\""))
            .expect(outcome);
        let cell = &html[at..at + html[at..].find("</div>").unwrap()];
        assert!(
            cell.contains(&format!("<dd>{n}</dd>")),
            "{outcome} {n}: {cell}"
        );
    }
    assert!(html.contains("data-import-status>completed<"));
    assert!(html.contains("Rows that need attention") && html.contains("invalid number"));
    let res = app
        .client
        .get(format!("{}{to}/results.csv", app.address))
        .header("cookie", &owner)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    let csv = res.text().await.unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines[0], "row,outcome,contact_id,consent,detail");
    assert_eq!(lines.len(), 5, "{csv}");
    assert!(lines[1].starts_with("1,created,ct_") && lines[3].starts_with("3,invalid_number,"));
    // The same form posted again answers the first import.
    let again = upload(
        app,
        &owner,
        &[("csrf", csrf.clone()), ("key", key.clone())],
        Some(CSV),
    )
    .await;
    assert_eq!(location(&again), to);

    let post = |fields: Vec<(&'static str, &'static str)>| {
        let owner = owner.clone();
        let csrf = csrf.clone();
        async move {
            let mut all = vec![("csrf", csrf.as_str())];
            all.extend(fields);
            form(app, Some(&owner), "/audiences/segments", &all).await
        }
    };
    let res = post(vec![
        ("name", "VIP"),
        ("tags", "vip"),
        ("consent_marketing", "maybe"),
    ])
    .await;
    assert_eq!(res.status(), 422);
    let html = res.text().await.unwrap();
    assert!(
        html.contains("Marketing consent") && html.contains("value=\"VIP\""),
        "kept: {html}"
    );
    let res = post(vec![("name", "VIP"), ("tags", "vip")]).await;
    assert_eq!(res.status(), 303);
    let listed = location(&res);
    assert!(
        listed.starts_with("/audiences/segments?created=seg_"),
        "{listed}"
    );
    let (_, html) = page(app, &owner, &listed).await;
    assert!(
        html.contains("Saved “VIP”: 2 contacts, 1 with marketing consent."),
        "{html}"
    );
    let res = post(vec![
        ("name", "Consenting VIPs"),
        ("tags", "vip"),
        ("consent_marketing", "opted_in"),
    ])
    .await;
    assert_eq!(res.status(), 303);
    let (_, html) = page(app, &owner, "/audiences/segments").await;
    assert!(
        html.contains("<td data-count>1 contact, 1 with marketing consent</td>"),
        "{html}"
    );
    assert!(html.contains("<td data-count>2 contacts, 1 with marketing consent</td>"));
    assert!(html.contains("tags: vip · marketing consent: opted in"));
    let res = post(vec![("name", "VIP")]).await;
    assert_eq!(res.status(), 409, "names are unique");

    // An analyst reads segments but changes nothing and imports nothing.
    let analyst = sign_in(app, "analyst@example.com").await;
    let (status, html) = page(app, &analyst, "/audiences/segments").await;
    assert_eq!(status, 200);
    assert!(html.contains("Consenting VIPs") && !html.contains("New segment"));
    assert!(!html.contains("/delete"), "no delete buttons");
    assert_eq!(page(app, &analyst, "/audiences/imports").await.0, 403);
    let analyst_csrf = csrf_of(&page(app, &analyst, "/security/sessions").await.1);
    let res = form(
        app,
        Some(&analyst),
        "/audiences/segments",
        &[
            ("csrf", analyst_csrf.as_str()),
            ("name", "Mine"),
            ("tags", "vip"),
        ],
    )
    .await;
    assert_eq!(res.status(), 403);
    let res = upload(
        app,
        &analyst,
        &[("csrf", analyst_csrf.clone()), ("key", "web-x".into())],
        Some(CSV),
    )
    .await;
    assert_eq!(res.status(), 403);
    let (status, _) = page(app, &analyst, &to).await;
    assert_eq!(status, 200, "analysts may read an import's results");

    let seg_id = listed.rsplit('=').next().unwrap().to_owned();
    let delete = format!("/audiences/segments/{seg_id}/delete");
    let res = form(
        app,
        Some(&analyst),
        &delete,
        &[("csrf", analyst_csrf.as_str())],
    )
    .await;
    assert_eq!(res.status(), 403);
    let res = form(app, Some(&owner), &delete, &[("csrf", csrf.as_str())]).await;
    assert_eq!(res.status(), 303);
    let (_, html) = page(app, &owner, "/audiences/segments?deleted=1").await;
    assert!(html.contains("Segment deleted.") && !html.contains("data-segment=\"VIP\""));
}
