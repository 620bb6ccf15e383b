//! Members on the Security page: an owner changes a role, grants and ends an
//! elevation, and removes a member; bad input is refused with the reason; an
//! agent can do none of it; every change lands in the audit log.

use waypost_store::Backend;

use crate::dashboard::{csrf_of, form, location, page, sign_in};
use crate::messaging_fixture::fixture;
use crate::on_both_backends;
use crate::users::member;

on_both_backends!(members_are_changed_from_the_members_page);

async fn members_are_changed_from_the_members_page(backend: Backend) {
    let Some(f) = fixture(backend, |_| {}, |_| {}).await else {
        return;
    };
    let app = &f.app;
    let agent = member(app, f.ws, "agent@example.com", "agent").await;
    let owner = sign_in(app, "ops@example.com").await;
    let (status, html) = page(app, &owner, "/security/members").await;
    assert_eq!(status, 200);
    let csrf = csrf_of(&html);
    let base = format!("/security/members/{}", agent.user_id);
    assert!(html.contains(&format!("action=\"{base}/role\"")), "{html}");

    let post = |path: String, fields: Vec<(&'static str, String)>| {
        let owner = owner.clone();
        let csrf = csrf.clone();
        async move {
            let mut all: Vec<(&str, &str)> = vec![("csrf", &csrf)];
            all.extend(fields.iter().map(|(k, v)| (*k, v.as_str())));
            form(app, Some(&owner), &path, &all).await
        }
    };
    let res = post(format!("{base}/role"), vec![("role", "emperor".into())]).await;
    assert_eq!(res.status(), 422);
    assert!(
        res.text()
            .await
            .unwrap()
            .contains("Choose a role from the list.")
    );
    let res = post(format!("{base}/role"), vec![("role", "developer".into())]).await;
    assert_eq!(res.status(), 303);
    assert_eq!(location(&res), "/security/members");
    let (_, html) = page(app, &owner, "/security/members").await;
    let row = html
        .split("data-member=\"agent@example.com\"")
        .nth(1)
        .unwrap();
    assert!(
        row.split("</tr>").next().unwrap().contains("<td>developer"),
        "{row}"
    );

    let past = (app.clock_now() - chrono::Duration::hours(1)).format("%Y-%m-%dT%H:%M");
    let res = post(
        format!("{base}/elevation"),
        vec![("role", "admin".into()), ("until", past.to_string())],
    )
    .await;
    assert_eq!(res.status(), 422);
    assert!(res.text().await.unwrap().contains("must be in the future"));
    let later = (app.clock_now() + chrono::Duration::days(1)).format("%Y-%m-%dT%H:%M");
    let res = post(
        format!("{base}/elevation"),
        vec![("role", "admin".into()), ("until", later.to_string())],
    )
    .await;
    assert_eq!(res.status(), 303);
    let (_, html) = page(app, &owner, "/security/members").await;
    assert!(html.contains("elevated: admin until"), "{html}");
    let res = post(format!("{base}/elevation/end"), vec![]).await;
    assert_eq!(res.status(), 303);
    let (_, html) = page(app, &owner, "/security/members").await;
    assert!(!html.contains("elevated: admin"));

    // The agent (now a developer) may not manage members.
    let theirs = sign_in(app, "agent@example.com").await;
    let (_, own_page) = page(app, &theirs, "/security/members").await;
    assert!(
        !own_page.contains("/role\""),
        "no role forms for non-managers"
    );
    let remove = format!("{base}/remove");
    let res = form(
        app,
        Some(&theirs),
        &remove,
        &[("csrf", &csrf_of(&own_page))],
    )
    .await;
    assert_eq!(res.status(), 403);

    let res = post(format!("{base}/remove"), vec![]).await;
    assert_eq!(res.status(), 303);
    let (_, html) = page(app, &owner, "/security/members").await;
    assert!(!html.contains("agent@example.com"));
    let (_, audit) = page(app, &owner, "/audit").await;
    for action in [
        "member.role_changed",
        "member.elevated",
        "member.elevation_ended",
        "member.removed",
    ] {
        assert!(audit.contains(action), "{action} in the audit page");
    }
}
