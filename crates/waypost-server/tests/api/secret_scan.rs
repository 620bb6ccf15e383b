//! The secret scan: a scenario touches every kind of secret Waypost keeps
//! (members' emails and passwords, session, invitation and API key tokens,
//! channel and webhook secrets, the master key, a customer's phone number and
//! the texts exchanged), then the database files (SQLite file and WAL, or a
//! full `pg_dump`), the logs captured meanwhile and a backup (its file and its
//! decrypted contents) are searched for each in plaintext. Any hit fails.

use std::io::Read;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use waypost_server::backup::{create_backup, generate_identity};
use waypost_store::Backend;

use crate::emails_at_rest::{contains, mail_nowhere, raw_database};
use crate::messaging_fixture::{USER, fixture};
use crate::on_both_backends;
use crate::users::*;
use crate::webhooks::Receiver;

on_both_backends!(no_secret_is_readable_at_rest_in_logs_or_backups);

/// Everything the process logs, from every thread.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Installs the process-wide subscriber (before the app's own would be):
/// Waypost's crates at debug, more than production logs; the sandbox (Meta's
/// stand-in) stays quiet since it is not Waypost.
fn capture_logs() -> Captured {
    let captured = Captured::default();
    let writer = captured.clone();
    let filter = tracing_subscriber::EnvFilter::new(
        "info,waypost_server=debug,waypost_store=debug,waypost_crypto=debug,\
         waypost_cloudapi=debug,waypost_shield=debug,waypost_sandbox=warn",
    );
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .try_init()
        .expect("the scan installs the first log subscriber (nextest runs each test in its own process)");
    captured
}

/// A backup's contents once opened with its identity (age, then gzip).
fn opened_backup(file: &std::path::Path, identity: &std::path::Path) -> Vec<u8> {
    let identities = age::IdentityFile::from_file(identity.display().to_string())
        .unwrap()
        .into_identities()
        .unwrap();
    let decryptor =
        age::Decryptor::new(std::io::BufReader::new(std::fs::File::open(file).unwrap())).unwrap();
    let plain = decryptor
        .decrypt(identities.iter().map(|i| i.as_ref() as &dyn age::Identity))
        .unwrap();
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(plain)
        .read_to_end(&mut out)
        .unwrap();
    out
}

async fn no_secret_is_readable_at_rest_in_logs_or_backups(backend: Backend) {
    let logs = capture_logs();
    let mail = mail_nowhere();
    let Some(f) = fixture(
        backend,
        |c| {
            mail(c);
            c.webhook_allow_http = true;
            c.webhook_allow_private_targets = true;
            c.webhook_poll_interval_ms = 20;
        },
        |_| {},
    )
    .await
    else {
        return;
    };
    let app = &f.app;
    f.keep_content().await;
    let mut secrets: Vec<(&str, String)> = vec![
        ("owner email", "ops@example.com".into()),
        ("password", PASSWORD.into()),
        ("API key", f.key.clone()),
        (
            "master key",
            secrecy::ExposeSecret::expose_secret(app.config.master_key.as_ref().unwrap()).into(),
        ),
        ("phone number", format!("+{USER}")),
        ("phone digits", USER.into()),
    ];
    let number = f.sandbox.numbers()[0].clone();
    secrets.push(("channel access token", number.access_token.clone()));
    secrets.push(("channel app secret", number.app_secret.clone()));
    secrets.push(("channel verify token", number.verify_token.clone()));

    // Members: a session, an invitation accepted, another pending, an address change.
    let s = login(app, "ops@example.com", PASSWORD).await;
    let session = s.cookie.split_once('=').unwrap().1.to_owned();
    secrets.push(("session token", session));
    let mut invitation_tokens = Vec::new();
    for email in ["scan.joiner@example.com", "scan.pending@example.com"] {
        let res = s
            .post(
                app,
                "/v1/invitations",
                json!({"email": email, "role": "agent"}),
            )
            .await;
        assert_eq!(res.status(), 201);
        let v: Value = res.json().await.unwrap();
        invitation_tokens.push(v["token"].as_str().unwrap().to_owned());
        secrets.push(("invitee email", email.into()));
    }
    let res = app
        .client
        .post(format!("{}/v1/invitations/accept", app.address))
        .json(&json!({"token": invitation_tokens[0], "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    for t in invitation_tokens {
        secrets.push(("invitation token", t));
    }
    let res = s
        .post(
            app,
            "/v1/account/email",
            json!({"email": "scan.renamed@example.com"}),
        )
        .await;
    assert_eq!(res.status(), 202);
    secrets.push(("new email", "scan.renamed@example.com".into()));

    // A webhook endpoint; messages both ways, delivered to it.
    let receiver = Receiver::start(200).await;
    let res = app
        .client
        .post(format!("{}/v1/webhook-endpoints", app.address))
        .bearer_auth(&f.key)
        .json(&json!({"url": receiver.url}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let endpoint: Value = res.json().await.unwrap();
    secrets.push((
        "webhook secret",
        endpoint["secret"].as_str().unwrap().to_owned(),
    ));
    let inbound_text = "scan inbound words 5d81e2";
    let wamid = f.inject(USER, inbound_text).await;
    f.wait_inbound(&wamid).await;
    let outbound_text = "scan outbound words 0c4fa7";
    let id = f.send_ok(USER, outbound_text).await;
    f.wait_status(&id, &["sent", "delivered", "read"]).await;
    secrets.push(("inbound text", inbound_text.into()));
    secrets.push(("outbound text", outbound_text.into()));
    receiver.wait_for(2).await;
    // The webhook worker records its deliveries after answering.
    tokio::time::sleep(Duration::from_millis(300)).await;

    let dir = tempfile::tempdir().unwrap();
    let identity = dir.path().join("backup.key");
    let public = generate_identity(&identity).unwrap();
    let file = dir.path().join("scan.backup");
    create_backup(app.state.store.as_ref(), &public, &file, &|_| {})
        .await
        .unwrap();

    let sources = [
        ("database", raw_database(app)),
        ("backup file", std::fs::read(&file).unwrap()),
        ("opened backup", opened_backup(&file, &identity)),
        ("logs", logs.0.lock().unwrap().clone()),
    ];
    // The scan sees plaintext where it is kept on purpose.
    for (name, bytes) in &sources[..] {
        match *name {
            "database" | "opened backup" => assert!(contains(bytes, "Sandbox"), "{name}"),
            "logs" => assert!(bytes.len() > 1_000, "the logs were captured"),
            _ => assert!(!bytes.is_empty()),
        }
    }
    let mut hits = Vec::new();
    for (kind, secret) in &secrets {
        for (name, bytes) in &sources {
            if contains(bytes, secret) {
                hits.push(format!("{kind} in the {name}"));
            }
        }
    }
    assert!(hits.is_empty(), "plaintext found: {hits:?}");
}
