//! Upgrading a SQLite database that already holds contacts: the contacts
//! table is rebuilt to make the phone optional, and its messages, consent
//! history and pending sends must all survive (with foreign keys on, dropping
//! the old table would have deleted them).

use std::borrow::Cow;

use sqlx::migrate::Migrator;
use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};

use super::{MIGRATOR, SqliteStore};
use crate::{ConnectOptions, MigrationStore};

const BEFORE_CONTACT_IDENTITIES: i64 = 20261206000016;

#[tokio::test]
async fn contacts_rebuild_keeps_messages_consents_and_outbox() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("w.db").display());
    let old = Migrator {
        migrations: Cow::Owned(
            MIGRATOR
                .migrations
                .iter()
                .filter(|m| m.version < BEFORE_CONTACT_IDENTITIES)
                .cloned()
                .collect(),
        ),
        ..Migrator::DEFAULT
    };
    let options: SqliteConnectOptions = url.parse().unwrap();
    let pool = SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(options.create_if_missing(true).foreign_keys(true))
        .await
        .unwrap();
    old.run(&pool).await.unwrap();
    let t = "2026-11-27T10:00:00Z";
    for sql in [
        format!(
            "INSERT INTO workspaces (id, name, created_at, updated_at) VALUES ('ws_1', 'Acme', '{t}', '{t}')"
        ),
        format!(
            "INSERT INTO channels (id, workspace_id, name, provider, phone_number_id, waba_id, access_token, app_secret, verify_token, throughput_mps, created_at, updated_at) VALUES ('ch_1', 'ws_1', 'c', 'sandbox', '1', '2', x'00', x'00', x'00', 80, '{t}', '{t}')"
        ),
        format!(
            "INSERT INTO contacts (id, workspace_id, phone_index, phone, restricted, consent_marketing, created_at, updated_at) VALUES ('ct_1', 'ws_1', x'01', x'02', 0, 'opted_out', '{t}', '{t}')"
        ),
        format!(
            "INSERT INTO contact_consents (id, workspace_id, contact_id, status, categories, source, captured_at, recorded_at) VALUES ('cns_1', 'ws_1', 'ct_1', 'opted_out', 'marketing', 'web', '{t}', '{t}')"
        ),
        format!(
            "INSERT INTO messages (id, workspace_id, channel_id, contact_id, direction, message_type, status, created_at, updated_at) VALUES ('msg_1', 'ws_1', 'ch_1', 'ct_1', 'outbound', 'text', 'queued', '{t}', '{t}')"
        ),
        format!(
            "INSERT INTO outbox (message_id, workspace_id, channel_id, contact_id, payload, next_attempt_at, deadline_at) VALUES ('msg_1', 'ws_1', 'ch_1', 'ct_1', x'00', '{t}', '{t}')"
        ),
    ] {
        sqlx::query(&sql).execute(&pool).await.unwrap();
    }
    pool.close().await;

    let store = SqliteStore::connect(&url, &ConnectOptions::default())
        .await
        .unwrap();
    store.migrate().await.unwrap();
    let count = |table: &'static str| {
        let pool = store.writer_pool().clone();
        async move {
            sqlx::query_scalar::<_, i64>(&format!("SELECT COUNT(*) FROM {table}"))
                .fetch_one(&pool)
                .await
                .unwrap()
        }
    };
    for table in ["contacts", "contact_consents", "messages", "outbox"] {
        assert_eq!(count(table).await, 1, "{table} lost rows");
    }
    let (phone, consent, user_id): (Option<Vec<u8>>, Option<String>, Option<Vec<u8>>) =
        sqlx::query_as("SELECT phone, consent_marketing, user_id FROM contacts WHERE id = 'ct_1'")
            .fetch_one(store.writer_pool())
            .await
            .unwrap();
    assert_eq!(
        (phone, consent, user_id),
        (Some(vec![2]), Some("opted_out".into()), None)
    );
    // Foreign keys still hold after the rebuild: deleting the contact cascades.
    sqlx::query("DELETE FROM contacts WHERE id = 'ct_1'")
        .execute(store.writer_pool())
        .await
        .unwrap();
    assert_eq!(count("messages").await, 0);
    // A contact with no identifier at all is refused.
    let none = sqlx::query(&format!(
        "INSERT INTO contacts (id, workspace_id, restricted, created_at, updated_at) VALUES ('ct_2', 'ws_1', 0, '{t}', '{t}')"
    ))
    .execute(store.writer_pool())
    .await;
    assert!(none.is_err());
}
