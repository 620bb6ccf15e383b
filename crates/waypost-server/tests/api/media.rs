//! Media through the sandbox: uploads checked against WhatsApp's type and size
//! table, sends by `media_id`, a customer's file fetched on demand and checked
//! against its sha256, the provider's faults (damaged bytes, expired URLs and
//! ids), retention of encrypted copies, erasure, and workspace isolation.

use base64::Engine as _;
use reqwest::multipart::{Form, Part};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use waypost_core::NewAuditEvent;
use waypost_core::audit::Actor;
use waypost_store::Backend;
use waypost_store::messaging::MessagingSettings;
use waypost_store::retention::RetentionKind;

use crate::helpers::assert_problem;
use crate::messaging_fixture::{Fixture, USER, fixture};
use crate::on_both_backends;
use crate::users::{PASSWORD, api_key, login, owner};

on_both_backends!(
    uploads_are_checked_against_the_limits,
    an_upload_is_sent_by_its_media_id,
    a_customers_file_is_fetched_checked_and_served,
    provider_faults_answer_502_and_410,
    retained_media_outlives_the_provider_until_erased,
    other_workspaces_see_no_media,
    the_inbox_shows_images_inline_and_serves_other_files_as_downloads,
);

const MIB: usize = 1024 * 1024;

fn jpeg(len: usize) -> Vec<u8> {
    let mut b = vec![0xFF, 0xD8, 0xFF, 0xE0];
    b.extend((0..len.saturating_sub(4)).map(|i| (i % 251) as u8));
    b
}

fn with_magic(magic: &[u8], len: usize) -> Vec<u8> {
    let mut b = magic.to_vec();
    b.resize(len.max(magic.len()), 7);
    b
}

fn sha256_hex(b: &[u8]) -> String {
    hex::encode(Sha256::digest(b))
}

async fn upload(
    f: &Fixture,
    mime: &str,
    bytes: Vec<u8>,
    extra: &[(&str, &str)],
) -> reqwest::Response {
    let mut form = Form::new().text("channel_id", f.channel.id.clone());
    for (k, v) in extra {
        form = form.text(k.to_string(), v.to_string());
    }
    let part = Part::bytes(bytes)
        .file_name("file.bin")
        .mime_str(mime)
        .unwrap();
    f.app
        .client
        .post(format!("{}/v1/media", f.app.address))
        .bearer_auth(&f.key)
        .multipart(form.part("file", part))
        .send()
        .await
        .unwrap()
}

async fn upload_ok(f: &Fixture, mime: &str, bytes: Vec<u8>) -> Value {
    let res = upload(f, mime, bytes, &[]).await;
    let status = res.status();
    let v: Value = res.json().await.unwrap();
    assert_eq!(status, 201, "{v}");
    v
}

async fn get(f: &Fixture, key: &str, path: &str) -> reqwest::Response {
    f.app
        .client
        .get(format!("{}{path}", f.app.address))
        .bearer_auth(key)
        .send()
        .await
        .unwrap()
}

async fn retain_days(f: &Fixture, days: u16) {
    let settings = MessagingSettings {
        content_retention: format!("days:{days}").parse().unwrap(),
        shield_policy: "flag".parse().unwrap(),
    };
    let audit = NewAuditEvent::new(Some(f.ws), Actor::System, "workspace.updated");
    f.app
        .state
        .store
        .update_messaging_settings(&f.ws.to_string(), &settings, audit)
        .await
        .unwrap();
    f.app.state.lookups.refresh().await.unwrap();
}

async fn sandbox_control(f: &Fixture, path: &str, body: Value) -> Value {
    let res = f
        .app
        .client
        .post(format!("{}/_sandbox{path}", f.sandbox.base_url()))
        .bearer_auth(f.sandbox.control_token())
        .json(&body)
        .send()
        .await
        .unwrap();
    assert!(
        res.status().is_success(),
        "sandbox {path}: {}",
        res.status()
    );
    res.json().await.unwrap()
}

/// A customer sends `bytes` as a `kind` message; returns the file's `med_…` id.
async fn customer_sends(
    f: &Fixture,
    kind: &str,
    mime: &str,
    bytes: &[u8],
    filename: Option<&str>,
) -> String {
    let data = base64::engine::general_purpose::STANDARD.encode(bytes);
    let media = sandbox_control(f, "/media", json!({"mime_type": mime, "data": data})).await;
    let mut object =
        json!({"id": media["id"], "mime_type": mime, "sha256": media["sha256_base64"]});
    if let Some(name) = filename {
        object["filename"] = json!(name);
    }
    let sent = sandbox_control(
        f,
        "/inbound",
        json!({"from": USER, "message": {"type": kind, kind: object}}),
    )
    .await;
    let message = f.wait_inbound(sent["id"].as_str().unwrap()).await;
    let files = f
        .app
        .state
        .store
        .contact_media(&f.ws.to_string(), &message.contact_id, None, 100)
        .await
        .unwrap();
    let row = files
        .iter()
        .find(|m| m.message_id.as_deref() == Some(message.id.as_str()))
        .expect("the message's media is recorded");
    assert_eq!(row.provider_media_id, media["id"].as_str().unwrap());
    assert_eq!(row.sha256.as_deref(), media["sha256"].as_str());
    row.id.clone()
}

async fn uploads_are_checked_against_the_limits(backend: Backend) {
    let Some(f) = fixture(backend, |c| c.dispatch_enabled = false, |_| {}).await else {
        return;
    };
    let now = f.app.clock_now();
    let cases: [(&str, &str, Vec<u8>); 5] = [
        ("image", "image/jpeg", jpeg(2048)),
        ("audio", "audio/ogg; codecs=opus", with_magic(b"OggS", 4096)),
        (
            "video",
            "video/mp4",
            with_magic(b"\0\0\0\x18ftypmp42", 8192),
        ),
        ("document", "application/pdf", with_magic(b"%PDF-1.7", 1000)),
        (
            "sticker",
            "image/webp",
            with_magic(b"RIFF\0\0\0\0WEBPVP8 ", 90 * 1024),
        ),
    ];
    for (kind, mime, bytes) in cases {
        let sha = sha256_hex(&bytes);
        let size = bytes.len();
        let v = upload_ok(&f, mime, bytes).await;
        assert!(v["id"].as_str().unwrap().starts_with("med_"), "{v}");
        assert_eq!(v["type"], kind, "{v}");
        assert_eq!(v["size"], size);
        assert_eq!(v["sha256"], sha);
        assert_eq!(v["retained"], false);
        let expires: chrono::DateTime<chrono::Utc> =
            v["expires_at"].as_str().unwrap().parse().unwrap();
        assert!(expires > now + chrono::Duration::days(29));
        // The provider has exactly these bytes.
        let row = f
            .app
            .state
            .store
            .get_media(&f.ws.to_string(), v["id"].as_str().unwrap())
            .await
            .unwrap();
        let info: Value = f
            .app
            .client
            .get(format!(
                "{}/{}",
                f.sandbox.base_url(),
                row.provider_media_id
            ))
            .bearer_auth(&f.sandbox.numbers()[0].access_token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(info["sha256"], sha, "{info}");
        assert!(!row.retained, "nothing kept under `none` retention");
    }

    let too_big = upload(&f, "image/jpeg", jpeg(5 * MIB + 1), &[]).await;
    let p = assert_problem(too_big, 413).await;
    assert!(
        p["type"].as_str().unwrap().ends_with("/media-too-large"),
        "{p}"
    );
    assert!(p["detail"].as_str().unwrap().contains("5242880"), "{p}");
    let big_sticker = upload(
        &f,
        "image/webp",
        with_magic(b"RIFF\0\0\0\0WEBPVP8 ", 101 * 1024),
        &[],
    )
    .await;
    assert_problem(big_sticker, 413).await;
    let gif = upload(&f, "image/gif", b"GIF89a....".to_vec(), &[]).await;
    let p = assert_problem(gif, 415).await;
    assert!(
        p["type"]
            .as_str()
            .unwrap()
            .ends_with("/media-type-unsupported"),
        "{p}"
    );
    let as_document = upload(&f, "image/jpeg", jpeg(100), &[("type", "document")]).await;
    assert_problem(as_document, 415).await;
    let lying = upload(&f, "image/png", jpeg(100), &[]).await;
    let p = assert_problem(lying, 422).await;
    assert!(
        p["type"]
            .as_str()
            .unwrap()
            .ends_with("/media-content-mismatch"),
        "{p}"
    );

    let form = Form::new()
        .text("channel_id", waypost_core::ChannelId::new().to_string())
        .part(
            "file",
            Part::bytes(jpeg(100)).mime_str("image/jpeg").unwrap(),
        );
    let unknown = f
        .app
        .client
        .post(format!("{}/v1/media", f.app.address))
        .bearer_auth(&f.key)
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_problem(unknown, 404).await;
    let json_body = f
        .app
        .client
        .post(format!("{}/v1/media", f.app.address))
        .bearer_auth(&f.key)
        .json(&json!({"channel_id": f.channel.id}))
        .send()
        .await
        .unwrap();
    assert_problem(json_body, 415).await;
}

async fn an_upload_is_sent_by_its_media_id(backend: Backend) {
    let Some(f) = fixture(backend, |_| {}, |_| {}).await else {
        return;
    };
    f.open_window(USER).await;
    let image = upload_ok(&f, "image/png", with_magic(b"\x89PNG\r\n\x1a\n", 600)).await;
    let media_id = image["id"].as_str().unwrap();
    let provider_id = f
        .app
        .state
        .store
        .get_media(&f.ws.to_string(), media_id)
        .await
        .unwrap()
        .provider_media_id;
    let send = |body: Value| {
        let req = f
            .app
            .client
            .post(format!("{}/v1/messages", f.app.address))
            .bearer_auth(&f.key)
            .json(&body);
        async move { req.send().await.unwrap() }
    };
    let to = format!("+{USER}");
    let res = send(
        json!({"channel_id": f.channel.id, "to": to, "type": "image",
        "image": {"media_id": media_id, "caption": "your receipt"}}),
    )
    .await;
    let status = res.status();
    let accepted: Value = res.json().await.unwrap();
    assert_eq!(status, 202, "{accepted}");
    let id = accepted["id"].as_str().unwrap();
    f.wait_status(id, &["sent", "delivered", "read"]).await;
    let log = f.sandbox_log().await;
    let sent = log["sends"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["biz_opaque_callback_data"] == id)
        .expect("the sandbox got the send");
    assert_eq!(sent["media_id"], provider_id.as_str(), "{sent}");
    assert_eq!(sent["outcome"], "accepted");

    // An image upload is not a sticker; a media id and a provider id are not both allowed.
    let wrong_kind = send(
        json!({"channel_id": f.channel.id, "to": to, "type": "sticker",
        "sticker": {"media_id": media_id}}),
    )
    .await;
    let p = assert_problem(wrong_kind, 422).await;
    assert!(
        p["type"]
            .as_str()
            .unwrap()
            .ends_with("/media-type-mismatch"),
        "{p}"
    );
    let both = send(
        json!({"channel_id": f.channel.id, "to": to, "type": "image",
        "image": {"media_id": media_id, "id": "123"}}),
    )
    .await;
    assert_problem(both, 400).await;
    let unknown = send(
        json!({"channel_id": f.channel.id, "to": to, "type": "image",
        "image": {"media_id": waypost_core::id::MediaId::new().to_string()}}),
    )
    .await;
    assert_problem(unknown, 404).await;
    // Expired at the provider: refused before anything is queued.
    f.app.clock.advance(chrono::Duration::days(31));
    f.open_window(USER).await;
    let expired = send(
        json!({"channel_id": f.channel.id, "to": to, "type": "image",
        "image": {"media_id": media_id}}),
    )
    .await;
    let p = assert_problem(expired, 422).await;
    assert!(
        p["type"].as_str().unwrap().ends_with("/media-expired"),
        "{p}"
    );
}

async fn a_customers_file_is_fetched_checked_and_served(backend: Backend) {
    let Some(f) = fixture(backend, |c| c.dispatch_enabled = false, |_| {}).await else {
        return;
    };
    let photo = jpeg(70_000);
    let id = customer_sends(&f, "image", "image/jpeg", &photo, None).await;
    let res = get(&f, &f.key, &format!("/v1/media/{id}")).await;
    assert_eq!(res.status(), 200);
    let h = res.headers().clone();
    assert_eq!(h["content-type"], "image/jpeg");
    assert_eq!(h["content-length"], photo.len().to_string().as_str());
    assert_eq!(h["cache-control"], "private, no-store");
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert_eq!(
        h["content-disposition"],
        format!("attachment; filename=\"{id}.jpg\"").as_str()
    );
    let digest = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(&photo));
    assert_eq!(h["repr-digest"], format!("sha-256=:{digest}:").as_str());
    assert_eq!(res.bytes().await.unwrap().as_ref(), photo.as_slice());

    let info: Value = get(&f, &f.key, &format!("/v1/media/{id}/info"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(info["direction"], "inbound", "{info}");
    assert_eq!(info["type"], "image");
    assert_eq!(info["sha256"], sha256_hex(&photo));
    assert_eq!(info["retained"], false, "no copy under `none` retention");
    // Under `none` nothing of the file is stored.
    let row = f
        .app
        .state
        .store
        .get_media(&f.ws.to_string(), &id)
        .await
        .unwrap();
    assert!(!row.retained);
    assert!(
        f.app
            .state
            .store
            .media_blob(&f.ws.to_string(), &id)
            .await
            .unwrap()
            .is_none()
    );
    // A document keeps its (made safe) name for downloads.
    let pdf = with_magic(b"%PDF-1.4", 3000);
    let doc = customer_sends(
        &f,
        "document",
        "application/pdf",
        &pdf,
        Some("../Invoice 7\".pdf"),
    )
    .await;
    let res = get(&f, &f.key, &format!("/v1/media/{doc}")).await;
    assert_eq!(res.status(), 200);
    assert_eq!(
        res.headers()["content-disposition"],
        "attachment; filename=\"Invoice 7_.pdf\""
    );
    assert_eq!(res.bytes().await.unwrap().as_ref(), pdf.as_slice());
}

async fn provider_faults_answer_502_and_410(backend: Backend) {
    let Some(f) = fixture(backend, |c| c.dispatch_enabled = false, |_| {}).await else {
        return;
    };
    let photo = jpeg(4000);
    let id = customer_sends(&f, "image", "image/jpeg", &photo, None).await;
    let path = format!("/v1/media/{id}");

    f.set_faults(json!({"media_hash_mismatch": 1.0})).await;
    let p = assert_problem(get(&f, &f.key, &path).await, 502).await;
    assert!(
        p["type"]
            .as_str()
            .unwrap()
            .ends_with("/media-hash-mismatch"),
        "{p}"
    );

    f.set_faults(json!({"media_url_expired": 1.0})).await;
    let p = assert_problem(get(&f, &f.key, &path).await, 410).await;
    assert!(
        p["type"].as_str().unwrap().ends_with("/media-expired"),
        "{p}"
    );

    f.set_faults(json!({"media_gone": 1.0})).await;
    assert_problem(get(&f, &f.key, &path).await, 410).await;

    f.set_faults(json!({})).await;
    assert_eq!(get(&f, &f.key, &path).await.status(), 200);
    // Past the provider's 7 days the answer is 410 without asking it.
    f.app.clock.advance(chrono::Duration::days(8));
    assert_problem(get(&f, &f.key, &path).await, 410).await;

    // An upload is never given back when nothing is kept.
    let upload = upload_ok(&f, "image/jpeg", jpeg(300)).await;
    let p = assert_problem(
        get(
            &f,
            &f.key,
            &format!("/v1/media/{}", upload["id"].as_str().unwrap()),
        )
        .await,
        410,
    )
    .await;
    assert!(
        p["type"].as_str().unwrap().ends_with("/media-not-kept"),
        "{p}"
    );
}

async fn retained_media_outlives_the_provider_until_erased(backend: Backend) {
    let Some(f) = fixture(backend, |c| c.dispatch_enabled = false, |_| {}).await else {
        return;
    };
    retain_days(&f, 3).await;
    let voice = with_magic(b"OggS", 9000);
    let id = customer_sends(&f, "audio", "audio/ogg", &voice, None).await;
    let path = format!("/v1/media/{id}");
    assert!(
        !f.app
            .state
            .store
            .get_media(&f.ws.to_string(), &id)
            .await
            .unwrap()
            .retained
    );
    let first = get(&f, &f.key, &path).await;
    assert_eq!(first.status(), 200);
    assert_eq!(first.bytes().await.unwrap().as_ref(), voice.as_slice());
    let kept = f
        .app
        .state
        .store
        .media_blob(&f.ws.to_string(), &id)
        .await
        .unwrap()
        .expect("the first fetch keeps a copy");
    assert!(kept.blob_key.is_none(), "sealed with the contact's key");
    assert!(
        !kept.blob.windows(4).any(|w| w == b"OggS"),
        "the copy is encrypted"
    );

    // The provider forgets it; the kept copy still serves.
    f.set_faults(json!({"media_gone": 1.0})).await;
    let second = get(&f, &f.key, &path).await;
    assert_eq!(second.status(), 200);
    assert_eq!(second.bytes().await.unwrap().as_ref(), voice.as_slice());

    // An upload's copy is kept too, under its own key.
    let upload = upload_ok(&f, "application/pdf", with_magic(b"%PDF-1.5", 2048)).await;
    assert_eq!(upload["retained"], true);
    let up = get(
        &f,
        &f.key,
        &format!("/v1/media/{}", upload["id"].as_str().unwrap()),
    )
    .await;
    assert_eq!(up.status(), 200);
    assert_eq!(up.bytes().await.unwrap().len(), 2048);

    // Past the retention period the purge drops the copies.
    let later = f.app.clock_now() + chrono::Duration::days(4);
    let purged = f
        .app
        .state
        .store
        .retention_purge(RetentionKind::MediaBlobs, later, 100)
        .await
        .unwrap();
    assert_eq!(purged, 2);
    assert_problem(get(&f, &f.key, &path).await, 410).await;

    // Erasure removes the person's files.
    f.set_faults(json!({})).await;
    let id2 = customer_sends(&f, "image", "image/jpeg", &jpeg(500), None).await;
    assert_eq!(
        get(&f, &f.key, &format!("/v1/media/{id2}")).await.status(),
        200
    );
    let session = login(&f.app, "ops@example.com", PASSWORD).await;
    let (_, dpo) = api_key(
        &f.app,
        &session,
        json!({"name": "dpo", "scopes": ["privacy:manage"]}),
    )
    .await;
    let export: Value = get(&f, &dpo, &format!("/v1/privacy/subjects/%2B{USER}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(export["media"].as_array().unwrap().len(), 2, "{export}");
    let erased: Value = f
        .app
        .client
        .delete(format!("{}/v1/privacy/subjects/%2B{USER}", f.app.address))
        .bearer_auth(&dpo)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(erased["media_deleted"], 2, "{erased}");
    for gone in [&id, &id2] {
        assert_problem(get(&f, &f.key, &format!("/v1/media/{gone}")).await, 404).await;
    }
}

async fn other_workspaces_see_no_media(backend: Backend) {
    let Some(f) = fixture(backend, |c| c.dispatch_enabled = false, |_| {}).await else {
        return;
    };
    let theirs = customer_sends(&f, "image", "image/jpeg", &jpeg(100), None).await;
    let upload = upload_ok(&f, "image/jpeg", jpeg(100)).await;
    let other = owner(&f.app, "other@example.com", "Other").await;
    let session = login(&f.app, &other.email, PASSWORD).await;
    let (_, key) = api_key(
        &f.app,
        &session,
        json!({"name": "reader", "scopes": ["messages:send", "messages:read"]}),
    )
    .await;
    for id in [theirs.as_str(), upload["id"].as_str().unwrap()] {
        assert_problem(get(&f, &key, &format!("/v1/media/{id}")).await, 404).await;
        assert_problem(get(&f, &key, &format!("/v1/media/{id}/info")).await, 404).await;
    }
    // Nor can it upload through the first workspace's channel.
    let form = Form::new().text("channel_id", f.channel.id.clone()).part(
        "file",
        Part::bytes(jpeg(100)).mime_str("image/jpeg").unwrap(),
    );
    let res = f
        .app
        .client
        .post(format!("{}/v1/media", f.app.address))
        .bearer_auth(&key)
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_problem(res, 404).await;
}

async fn the_inbox_shows_images_inline_and_serves_other_files_as_downloads(backend: Backend) {
    let Some(f) = fixture(backend, |c| c.dispatch_enabled = false, |_| {}).await else {
        return;
    };
    let photo = jpeg(10_000);
    let image = customer_sends(&f, "image", "image/jpeg", &photo, None).await;
    let text = customer_sends(
        &f,
        "document",
        "text/plain",
        b"<script>alert(1)</script>",
        Some("notes.txt"),
    )
    .await;
    let session = login(&f.app, "ops@example.com", PASSWORD).await;
    let fetch = |id: String| {
        let cookie = session.cookie.clone();
        let app = &f.app;
        async move {
            app.client
                .get(format!("{}/inbox/media/{id}", app.address))
                .header("cookie", cookie)
                .send()
                .await
                .unwrap()
        }
    };
    let res = fetch(image).await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "image/jpeg");
    assert_eq!(res.headers()["content-disposition"], "inline");
    assert_eq!(res.bytes().await.unwrap().as_ref(), photo.as_slice());
    let res = fetch(text).await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "application/octet-stream");
    assert_eq!(res.headers()["content-disposition"], "attachment");
    // Without a session the page route sends the browser to sign in.
    let res = f
        .app
        .client
        .get(format!("{}/inbox/media/med_x", f.app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
}
