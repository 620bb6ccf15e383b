//! Members' email addresses are stored sealed with a blind index: the raw
//! database holds none of them, yet sign-in (in any case), member and
//! invitation lists, key rotation and databases written before the change all
//! keep working.

use serde_json::{Value, json};
use waypost_crypto::{MasterKey, ciphertext_key_version};
use waypost_server::keys::{reencrypt_batch, rotate};
use waypost_server::ops::setup::first_run_link;
use waypost_store::{Backend, ENCRYPTED_COLUMNS};

use crate::helpers::{TestApp, spawn_app, spawn_app_with, spawn_with};
use crate::on_both_backends;
use crate::users::*;

on_both_backends!(
    emails_are_stored_sealed_and_still_sign_in,
    key_rotation_reencrypts_emails,
    plaintext_emails_from_before_are_sealed_at_start
);

const OWNER: &str = "owner.sealed@example.com";
const INVITEE: &str = "invitee.sealed@example.com";
const NEW_ADDRESS: &str = "renamed.sealed@example.com";

/// Mail on, to a port where nothing listens: an address change needs mail,
/// and the queued letters (sealed) must not leak the addresses either.
pub fn mail_nowhere() -> impl FnOnce(&mut waypost_server::Config) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    crate::smtp::mail_config(port)
}

/// The raw database: SQLite's file and WAL, or a full PostgreSQL dump.
pub fn raw_database(app: &TestApp) -> Vec<u8> {
    match app.state.store.backend() {
        Backend::Sqlite => {
            let path = app
                .db
                .url
                .trim_start_matches("sqlite://")
                .split('?')
                .next()
                .unwrap()
                .to_owned();
            let mut bytes = std::fs::read(&path).unwrap();
            bytes.extend(std::fs::read(format!("{path}-wal")).unwrap_or_default());
            bytes
        }
        Backend::Postgres => {
            let out = std::process::Command::new("pg_dump")
                .arg(&app.db.url)
                .output()
                .expect("pg_dump runs");
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            out.stdout
        }
    }
}

pub fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

/// The first owner through the setup link, an invitee who accepts, and a
/// pending change of the owner's address: each stores an address.
async fn people_through_the_api(app: &TestApp) -> Session {
    let link = first_run_link(&app.state).await.unwrap().unwrap();
    let token = link.split("token=").nth(1).unwrap();
    let res = app
        .client
        .post(format!("{}/setup", app.address))
        .form(&[
            ("token", token),
            ("workspace", "Sealed Co"),
            ("email", OWNER),
            ("password", PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let s = login(app, OWNER, PASSWORD).await;
    let res = s
        .post(
            app,
            "/v1/invitations",
            json!({"email": INVITEE, "role": "agent"}),
        )
        .await;
    assert_eq!(res.status(), 201);
    let inv: Value = res.json().await.unwrap();
    // A second invitation stays pending, so its row keeps an address.
    let res = s
        .post(
            app,
            "/v1/invitations",
            json!({"email": "pending.sealed@example.com", "role": "analyst"}),
        )
        .await;
    assert_eq!(res.status(), 201);
    let res = app
        .client
        .post(format!("{}/v1/invitations/accept", app.address))
        .json(&json!({"token": inv["token"], "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let res = s
        .post(app, "/v1/account/email", json!({"email": NEW_ADDRESS}))
        .await;
    assert_eq!(res.status(), 202, "{:?}", res.text().await);
    s
}

async fn member_emails(app: &TestApp, s: &Session) -> Vec<String> {
    let members: Value = s.get(app, "/v1/members").await.json().await.unwrap();
    let mut emails: Vec<String> = members
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["email"].as_str().unwrap().to_owned())
        .collect();
    emails.sort();
    emails
}

async fn emails_are_stored_sealed_and_still_sign_in(backend: Backend) {
    let Some(app) = spawn_app_with(backend, mail_nowhere()).await else {
        return;
    };
    let s = people_through_the_api(&app).await;
    let raw = raw_database(&app);
    assert!(contains(&raw, "Sealed Co"), "the scan sees plaintext");
    for email in [OWNER, INVITEE, NEW_ADDRESS, "pending.sealed@example.com"] {
        assert!(!contains(&raw, email), "{email} stored in plaintext");
        // Nor its local part alone (a masked copy shows only its first letter).
        let local = email.split('@').next().unwrap();
        assert!(!contains(&raw, local), "{local} stored in plaintext");
    }

    // Sign-in finds the account by its blind index, in any spelling.
    login(&app, "  Owner.Sealed@EXAMPLE.com ", PASSWORD).await;
    login(&app, INVITEE, PASSWORD).await;
    assert_eq!(member_emails(&app, &s).await, [INVITEE, OWNER]);
    let invitations: Value = s.get(&app, "/v1/invitations").await.json().await.unwrap();
    let invited: Vec<&str> = invitations
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["email"].as_str().unwrap())
        .collect();
    assert!(
        invited.contains(&"pending.sealed@example.com"),
        "{invited:?}"
    );
    let me: Value = s.get(&app, "/v1/auth/me").await.json().await.unwrap();
    assert_eq!(me["email"], OWNER, "{me}");

    // Uniqueness holds on the index: an invitation for a member is refused,
    // and a second account cannot take an address in another case.
    let res = s
        .post(
            &app,
            "/v1/invitations",
            json!({"email": "INVITEE.sealed@example.com", "role": "agent"}),
        )
        .await;
    assert_eq!(res.status(), 409);
    let res = s
        .post(
            &app,
            "/v1/account/email",
            json!({"email": "Invitee.Sealed@example.com"}),
        )
        .await;
    assert_eq!(res.status(), 409);
}

async fn key_rotation_reencrypts_emails(backend: Backend) {
    let Some(app) = spawn_app_with(backend, mail_nowhere()).await else {
        return;
    };
    let s = people_through_the_api(&app).await;
    let store = app.state.store.clone();
    let columns: Vec<_> = ["users.email", "invitations.email", "email_tokens.email"]
        .iter()
        .map(|name| {
            *ENCRYPTED_COLUMNS
                .iter()
                .find(|c| c.name() == *name)
                .unwrap_or_else(|| panic!("{name} is re-encrypted on rotation"))
        })
        .collect();
    for col in &columns {
        let values = store.encrypted_values_after(*col, None, 10).await.unwrap();
        assert!(!values.is_empty(), "{}", col.name());
        assert!(
            values
                .iter()
                .all(|v| ciphertext_key_version(&v.ciphertext) == Some(1))
        );
    }
    let master = MasterKey::from_base64(secrecy::ExposeSecret::expose_secret(
        app.config.master_key.as_ref().unwrap(),
    ))
    .unwrap();
    assert_eq!(rotate(store.as_ref(), master).await.unwrap(), 2);
    assert!(app.state.keys.reload(store.as_ref()).await.unwrap());
    while !reencrypt_batch(store.as_ref(), &app.state.keys, 100)
        .await
        .unwrap()
        .finished
    {}
    for col in &columns {
        let values = store.encrypted_values_after(*col, None, 10).await.unwrap();
        assert!(
            values
                .iter()
                .all(|v| ciphertext_key_version(&v.ciphertext) == Some(2)),
            "{} moved to the new key",
            col.name()
        );
    }
    // The blind index does not depend on the data key: sign-in still finds people.
    login(&app, OWNER, PASSWORD).await;
    assert_eq!(member_emails(&app, &s).await, [INVITEE, OWNER]);
}

/// A database from before the change holds plaintext in `legacy_email`; the
/// next start seals it, and the account signs in as before.
async fn plaintext_emails_from_before_are_sealed_at_start(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let a = owner(&app, "first@example.com", "Legacy Co").await;
    let hash: String = app
        .state
        .store
        .get_user_sealed(&a.user_id)
        .await
        .unwrap()
        .password_hash;
    let (config, db, data_dir) = (app.config.clone(), app.db.clone(), app.data_dir.clone());
    app.stop().await.unwrap();

    // What the migration leaves of an older version's rows.
    let now = "2026-12-01T10:00:00Z";
    let ws = a.workspace_id.to_string();
    let sql = [
        format!(
            "INSERT INTO users (id, legacy_email, password_hash, created_at, updated_at)
             VALUES ('usr_legacy', 'legacy.person@example.com', '{hash}', '{now}', '{now}')"
        ),
        format!(
            "INSERT INTO memberships (workspace_id, user_id, role, created_at)
             VALUES ('{ws}', 'usr_legacy', 'admin', '{now}')"
        ),
        format!(
            "INSERT INTO invitations (id, workspace_id, legacy_email, role, token_hash, created_at, expires_at)
             VALUES ('inv_legacy', '{ws}', 'legacy.invitee@example.com', 'agent', 'x', '{now}', '2099-01-01T00:00:00Z')"
        ),
        format!(
            "INSERT INTO email_tokens (id, user_id, purpose, legacy_email, token_hash, created_at, expires_at)
             VALUES ('emt_legacy', 'usr_legacy', 'verify', 'legacy.person@example.com', 'y', '{now}', '2099-01-01T00:00:00Z')"
        ),
    ];
    run_sql(backend, &db.url, &sql).await;

    let app = spawn_with(config, db, data_dir).await;
    let s = login(&app, "Legacy.Person@example.com", PASSWORD).await;
    assert_eq!(
        member_emails(&app, &s).await,
        ["first@example.com", "legacy.person@example.com"]
    );
    let left = count_legacy(backend, &app.db.url).await;
    assert_eq!(left, 0, "every plaintext address was sealed");
    let raw = raw_database(&app);
    assert!(contains(&raw, "Legacy Co"), "the scan sees plaintext");
    for email in ["legacy.person@example.com", "legacy.invitee@example.com"] {
        assert!(!contains(&raw, email), "{email} left in plaintext");
    }
}

async fn run_sql(backend: Backend, url: &str, statements: &[String]) {
    match backend {
        Backend::Sqlite => {
            let pool = sqlx::SqlitePool::connect(url).await.unwrap();
            for s in statements {
                sqlx::query(&s.replace("'x'", "x'01'").replace("'y'", "x'02'"))
                    .execute(&pool)
                    .await
                    .unwrap();
            }
            pool.close().await;
        }
        Backend::Postgres => {
            let pool = sqlx::PgPool::connect(url).await.unwrap();
            for s in statements {
                sqlx::query(&s.replace("'x'", "'\\x01'").replace("'y'", "'\\x02'"))
                    .execute(&pool)
                    .await
                    .unwrap();
            }
            pool.close().await;
        }
    }
}

async fn count_legacy(backend: Backend, url: &str) -> i64 {
    let sql = "SELECT (SELECT count(*) FROM users WHERE legacy_email IS NOT NULL)
        + (SELECT count(*) FROM invitations WHERE legacy_email IS NOT NULL)
        + (SELECT count(*) FROM email_tokens WHERE legacy_email IS NOT NULL)";
    match backend {
        Backend::Sqlite => {
            let pool = sqlx::SqlitePool::connect(url).await.unwrap();
            sqlx::query_scalar(sql).fetch_one(&pool).await.unwrap()
        }
        Backend::Postgres => {
            let pool = sqlx::PgPool::connect(url).await.unwrap();
            sqlx::query_scalar(sql).fetch_one(&pool).await.unwrap()
        }
    }
}
