//! Backups: encrypted, complete, restorable into either backend.

use std::sync::Arc;

use serde_json::json;
use waypost_server::backup::{create_backup, generate_identity, restore_backup, verify_backup};
use waypost_store::backup::{TableSpec, Value};
use waypost_store::testing::TestDatabase;
use waypost_store::{Backend, ConnectOptions, Store};

use crate::encryption::store_encrypted_response;
use crate::helpers::{TestApp, spawn_app_with, spawn_with};
use crate::on_both_backends;
use crate::users::*;

on_both_backends!(
    backups_restore_into_both_backends,
    a_conversation_restores_into_both_backends,
);

async fn rows_of(store: &dyn Store, into: &[TableSpec]) -> Vec<(String, Vec<String>)> {
    let tables = store.backup_tables().await.unwrap();
    let mut out: Vec<(String, Vec<String>)> = Vec::new();
    store
        .export_rows(&tables, &mut |table, values| {
            // Compare in the other side's kinds (SQLite and PostgreSQL store some types differently).
            let target = into
                .iter()
                .find(|t| t.name == table.name)
                .expect("same tables");
            let values: Vec<Value> = values
                .into_iter()
                .zip(&target.columns)
                .map(|(v, (c, k))| v.into_kind(*k, c))
                .map(|v| match v {
                    // PostgreSQL keeps microseconds; SQLite's text keeps nanoseconds.
                    Ok(Value::Time(t)) => Ok(Value::Time(chrono::SubsecRound::trunc_subsecs(t, 6))),
                    other => other,
                })
                .collect::<Result<_, _>>()?;
            match out.iter_mut().find(|(n, _)| *n == table.name) {
                Some((_, rows)) => rows.push(serde_json::to_string(&values).unwrap()),
                None => out.push((
                    table.name.clone(),
                    vec![serde_json::to_string(&values).unwrap()],
                )),
            }
            Ok(())
        })
        .await
        .unwrap();
    for (_, rows) in &mut out {
        rows.sort();
    }
    out.sort();
    out
}

async fn filled(app: &TestApp) -> (String, Vec<u8>) {
    let a = owner(app, "ana@example.com", "Backup Co").await;
    member(app, a.workspace_id, "dev@example.com", "developer").await;
    let s = login(app, &a.email, PASSWORD).await;
    api_key(app, &s, json!({"name": "k", "scopes": ["audit:read"]})).await;
    s.post(app, "/v1/auth/mfa/totp", json!({})).await;
    // Incidents reference workspaces and each other's rows: restore order matters.
    let (_, operator) = crate::incidents::operator_token(app).await;
    crate::incidents::open_incident(app, &operator, &[a.workspace_id]).await;
    // Its customer event must be fanned out before the snapshot, or the live
    // source differs from the backup by the worker's later mark.
    let ws = a.workspace_id.to_string();
    for _ in 0..100 {
        let events = app
            .state
            .store
            .customer_events_after(&ws, 0, 10)
            .await
            .unwrap();
        if events.iter().all(|e| e.fanned_out_at.is_some()) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let secret = b"secret-response-7c1d".to_vec();
    let id = store_encrypted_response(app, a.workspace_id, "idem-1", &secret).await;
    (id, secret)
}

async fn backups_restore_into_both_backends(backend: Backend) {
    // The live database is compared with its copy: nothing may write in between.
    let Some(app) = spawn_app_with(backend, |c| c.detection = false).await else {
        return;
    };
    let (record_id, secret) = filled(&app).await;
    let dir = tempfile::tempdir().unwrap();
    let identity = dir.path().join("backup.key");
    let public = generate_identity(&identity).unwrap();
    let file = dir.path().join("waypost.backup");
    let summary = create_backup(app.state.store.as_ref(), &public, &file, &|_| {})
        .await
        .unwrap();
    assert!(summary.rows >= 15, "{summary:?}");

    let bytes = std::fs::read(&file).unwrap();
    for plain in [
        "ana@example.com",
        "Backup Co",
        "api_key.created",
        "workspaces",
        crate::incidents::DESCRIPTION,
    ] {
        assert!(
            !bytes.windows(plain.len()).any(|w| w == plain.as_bytes()),
            "{plain} readable in the backup file"
        );
    }
    assert_eq!(verify_backup(&file, &identity).unwrap(), summary);
    let truncated = dir.path().join("truncated.backup");
    std::fs::write(&truncated, &bytes[..bytes.len() - 64]).unwrap();
    assert!(
        verify_backup(&truncated, &identity).is_err(),
        "a cut file is noticed"
    );
    let stranger = dir.path().join("other.key");
    generate_identity(&stranger).unwrap();
    assert!(
        verify_backup(&file, &stranger).is_err(),
        "another identity cannot read it"
    );

    for target in [Backend::Sqlite, Backend::Postgres] {
        let Some(db) = TestDatabase::create(target).await else {
            continue;
        };
        let store = waypost_store::connect(&db.url, &ConnectOptions::default())
            .await
            .unwrap();
        store.migrate().await.unwrap();
        let restored = restore_backup(store.as_ref(), &file, &identity, &|_| {})
            .await
            .unwrap();
        assert_eq!(restored, summary);
        let target_tables = store.backup_tables().await.unwrap();
        assert_eq!(
            rows_of(app.state.store.as_ref(), &target_tables).await,
            rows_of(store.as_ref(), &target_tables).await,
            "{backend:?} -> {target:?}: every table is identical"
        );
        let again = restore_backup(store.as_ref(), &file, &identity, &|_| {}).await;
        assert!(again.unwrap_err().to_string().contains("not empty"));
        store.close().await;

        // The restored database works with the same master key.
        let data_dir = tempfile::tempdir().unwrap();
        let mut config = app.config.clone();
        config.database_url = Some(db.url.clone().into());
        config.data_dir = data_dir.path().to_path_buf();
        let restored_app = spawn_with(config, Arc::new(db), Arc::new(data_dir)).await;
        login(&restored_app, "ana@example.com", PASSWORD).await;
        let value = restored_app
            .state
            .store
            .encrypted_values_after(waypost_store::ENCRYPTED_COLUMNS[0], None, 10)
            .await
            .unwrap();
        let ct = &value.iter().find(|v| v.id == record_id).unwrap().ciphertext;
        let aad = waypost_crypto::Aad::new("idempotency_records", "response_body", &record_id);
        let plain = restored_app
            .state
            .keys
            .decrypt(restored_app.state.store.as_ref(), aad, ct)
            .await
            .unwrap();
        assert_eq!(plain.as_slice(), secret.as_slice());
    }
}

/// Waits until the worker has handed every customer event to the webhook
/// queue, so the live rows stop changing before the snapshot.
async fn settled(app: &TestApp, workspace: &str) {
    let store = app.state.store.as_ref();
    let tables = store.backup_tables().await.unwrap();
    for _ in 0..100 {
        let events = store
            .customer_events_after(workspace, 0, 1000)
            .await
            .unwrap();
        // The automation worker deletes each inbound message's work item.
        let automation_pending = rows_of(store, &tables)
            .await
            .iter()
            .any(|(t, rows)| t == "automation_work" && !rows.is_empty());
        if events.iter().all(|e| e.fanned_out_at.is_some()) && !automation_pending {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("customer events were never fanned out, or inbound messages never handled");
}

/// Messaging rows reference one another (channels, contacts, messages and
/// their statuses, consents, the outbox): all of them restore in order.
async fn a_conversation_restores_into_both_backends(backend: Backend) {
    let Some(f) = crate::messaging_fixture::fixture(
        backend,
        |c| {
            c.dispatch_enabled = false;
            c.detection = false;
        },
        |_| {},
    )
    .await
    else {
        return;
    };
    let user = crate::messaging_fixture::USER;
    f.open_window(user).await;
    let pending = f.send_ok(user, "queued while the dispatcher is off").await;
    let contact = f.message(&pending).await.contact_id;
    let consent = f
        .app
        .client
        .post(format!("{}/v1/contacts/{contact}/consent", f.app.address))
        .bearer_auth(&f.key)
        .json(
            &json!({"status": "opted_in", "categories": ["marketing"], "source": "web",
            "captured_at": "2026-11-01T10:00:00Z"}),
        )
        .send()
        .await
        .unwrap();
    assert!(consent.status().is_success(), "{}", consent.status());
    settled(&f.app, &f.ws.to_string()).await;

    let dir = tempfile::tempdir().unwrap();
    let identity = dir.path().join("backup.key");
    let public = generate_identity(&identity).unwrap();
    let file = dir.path().join("waypost.backup");
    let store = f.app.state.store.as_ref();
    let summary = create_backup(store, &public, &file, &|_| {}).await.unwrap();
    for target in [Backend::Sqlite, Backend::Postgres] {
        let Some(db) = TestDatabase::create(target).await else {
            continue;
        };
        let restored = waypost_store::connect(&db.url, &ConnectOptions::default())
            .await
            .unwrap();
        restored.migrate().await.unwrap();
        assert_eq!(
            restore_backup(restored.as_ref(), &file, &identity, &|_| {})
                .await
                .unwrap(),
            summary
        );
        let tables = restored.backup_tables().await.unwrap();
        let (source, copy) = (
            rows_of(store, &tables).await,
            rows_of(restored.as_ref(), &tables).await,
        );
        for table in [
            "channels",
            "contacts",
            "contact_consents",
            "messages",
            "message_statuses",
            "outbox",
        ] {
            assert!(
                copy.iter()
                    .any(|(name, rows)| name == table && !rows.is_empty()),
                "{backend:?} -> {target:?}: {table} restored empty"
            );
        }
        assert_eq!(
            source, copy,
            "{backend:?} -> {target:?}: every table is identical"
        );
        restored.close().await;
    }
}
