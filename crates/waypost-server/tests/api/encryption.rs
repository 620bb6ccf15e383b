//! Encrypted values never reach the database in plaintext.

use chrono::{Duration, Utc};
use waypost_core::audit::Actor;
use waypost_core::{NewAuditEvent, WorkspaceId};
use waypost_crypto::{Aad, ciphertext_key_version};
use waypost_store::{Backend, IdempotencyBegin, IdempotencyClaim, Workspace};

use crate::helpers::{TestApp, spawn_app};
use crate::on_both_backends;

on_both_backends!(encrypted_values_are_stored_only_as_ciphertext);

/// Stores `secret` the way the API stores an idempotent response, returns the record id.
pub async fn store_encrypted_response(
    app: &TestApp,
    workspace: WorkspaceId,
    key: &str,
    secret: &[u8],
) -> String {
    let now = Utc::now();
    let claim = IdempotencyClaim {
        id: format!("idem_{}", ulid::Ulid::new()),
        workspace_id: workspace,
        key: key.into(),
        request_hash: vec![7; 32],
        now,
        lock_until: now + Duration::seconds(30),
        expires_at: now + Duration::hours(24),
    };
    assert_eq!(
        app.state
            .store
            .begin_idempotent_request(&claim)
            .await
            .unwrap(),
        IdempotencyBegin::Claimed
    );
    let ciphertext = app.state.keys.current().encrypt(
        Aad::new("idempotency_records", "response_body", &claim.id),
        secret,
    );
    app.state
        .store
        .complete_idempotent_request(&claim.id, 202, &ciphertext)
        .await
        .unwrap();
    claim.id
}

pub async fn create_workspace(app: &TestApp, name: &str) -> WorkspaceId {
    let now = Utc::now();
    let ws = Workspace {
        id: WorkspaceId::new(),
        name: name.into(),
        created_at: now,
        updated_at: now,
    };
    let audit = NewAuditEvent::new(Some(ws.id), Actor::System, "workspace.created")
        .target("workspace", ws.id.to_string());
    app.state.store.create_workspace(&ws, audit).await.unwrap();
    ws.id
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

async fn encrypted_values_are_stored_only_as_ciphertext(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    // The workspace name is stored in plaintext: it proves the scan below can see plaintext.
    let control = "plaintext-control-7f3a9c";
    let ws = create_workspace(&app, control).await;
    let secret = b"+447911123456 secret-marker-51c2e8";
    let id = store_encrypted_response(&app, ws, "k1", secret).await;

    // Reading back through the key ring gives the plaintext.
    let claim_again = IdempotencyClaim {
        id: "idem_other".into(),
        workspace_id: ws,
        key: "k1".into(),
        request_hash: vec![7; 32],
        now: Utc::now(),
        lock_until: Utc::now(),
        expires_at: Utc::now() + Duration::hours(1),
    };
    let IdempotencyBegin::Completed {
        encrypted_body,
        record_id,
        ..
    } = app
        .state
        .store
        .begin_idempotent_request(&claim_again)
        .await
        .unwrap()
    else {
        panic!("expected the completed record")
    };
    assert_eq!(record_id, id);
    assert_eq!(ciphertext_key_version(&encrypted_body), Some(1));
    let aad = Aad::new("idempotency_records", "response_body", &id);
    let plain = app
        .state
        .keys
        .decrypt(app.state.store.as_ref(), aad, &encrypted_body)
        .await
        .unwrap();
    assert_eq!(plain.as_slice(), secret);
    // Bound to its row: the same bytes under another id do not decrypt.
    assert!(
        app.state
            .keys
            .current()
            .decrypt(
                Aad::new("idempotency_records", "response_body", "idem_x"),
                &encrypted_body
            )
            .is_err()
    );

    match backend {
        Backend::Sqlite => {
            let dir = std::path::Path::new(app.db.url.trim_start_matches("sqlite://"))
                .parent()
                .unwrap()
                .to_path_buf();
            let mut everything = Vec::new();
            for name in ["waypost.db", "waypost.db-wal"] {
                if let Ok(bytes) = std::fs::read(dir.join(name)) {
                    everything.extend(bytes);
                }
            }
            assert!(
                contains(&everything, control.as_bytes()),
                "the scan sees plaintext columns"
            );
            assert!(
                !contains(&everything, b"secret-marker-51c2e8"),
                "encrypted content leaked to the database file or WAL"
            );
            assert!(
                !contains(&everything, b"+447911123456"),
                "phone number leaked to the database file or WAL"
            );
        }
        Backend::Postgres => {
            let pool = sqlx::PgPool::connect(&app.db.url).await.unwrap();
            let hits: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM idempotency_records WHERE position($1::bytea in response_body) > 0",
            )
            .bind(b"secret-marker-51c2e8".as_slice())
            .fetch_one(&pool)
            .await
            .unwrap();
            assert_eq!(hits, 0, "encrypted content stored in plaintext");
            let dump: String = sqlx::query_scalar(
                "SELECT string_agg(encode(response_body, 'escape'), '') FROM idempotency_records",
            )
            .fetch_one(&pool)
            .await
            .unwrap();
            assert!(!dump.contains("secret-marker"));
        }
    }
}
