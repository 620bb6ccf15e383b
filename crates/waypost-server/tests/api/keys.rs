//! Data key rotation and the master key check at start.

use std::sync::Arc;

use waypost_core::audit::SYSTEM_CHAIN;
use waypost_crypto::{Aad, MasterKey, ciphertext_key_version};
use waypost_server::Application;
use waypost_server::keys::{reencrypt_batch, rotate};
use waypost_store::{Backend, ENCRYPTED_COLUMNS};

use crate::encryption::{create_workspace, store_encrypted_response};
use crate::helpers::{spawn_app, test_config};
use crate::on_both_backends;

on_both_backends!(
    rotation_keeps_old_data_readable_and_reencrypts_in_batches,
    totp_secrets_are_reencrypted_and_still_verify,
    wrong_master_key_fails_at_start
);

/// `users.totp_secret` is in the rotation list: after a rotation and a full
/// pass it is under the new key, and the authenticator's codes still work.
async fn totp_secrets_are_reencrypted_and_still_verify(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let store = app.state.store.clone();
    let a = crate::users::owner(&app, "ana@example.com", "Acme").await;
    let s = crate::users::login(&app, &a.email, crate::users::PASSWORD).await;
    let (secret, _) = crate::mfa::enrol(&app, &s).await;
    let col = *ENCRYPTED_COLUMNS
        .iter()
        .find(|c| c.name() == "users.totp_secret")
        .expect("users.totp_secret is re-encrypted on rotation");
    let before = store.encrypted_values_after(col, None, 10).await.unwrap();
    assert_eq!(before.len(), 1);
    assert_eq!(ciphertext_key_version(&before[0].ciphertext), Some(1));

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
    let after = store.encrypted_values_after(col, None, 10).await.unwrap();
    assert_eq!(ciphertext_key_version(&after[0].ciphertext), Some(2));

    app.clock.advance(chrono::Duration::seconds(60));
    let res = app
        .client
        .post(format!("{}/v1/auth/login", app.address))
        .json(&serde_json::json!({
            "email": a.email,
            "password": crate::users::PASSWORD,
            "totp_code": crate::mfa::code(&app, &secret),
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "{:?}", res.text().await);
}

async fn rotation_keeps_old_data_readable_and_reencrypts_in_batches(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let store = app.state.store.clone();
    let ws = create_workspace(&app, "rotation").await;
    let mut rows = Vec::new();
    for i in 0..5 {
        let value = format!("value {i}");
        let id = store_encrypted_response(&app, ws, &format!("k{i}"), value.as_bytes()).await;
        rows.push((id, value));
    }
    // Batches walk rows in id order; ULIDs made in one millisecond are not ordered.
    rows.sort();
    let ids: Vec<String> = rows.iter().map(|(id, _)| id.clone()).collect();

    // Rotate as `waypost keys rotate` does, with the same master key.
    let master = MasterKey::from_base64(secrecy::ExposeSecret::expose_secret(
        app.config.master_key.as_ref().unwrap(),
    ))
    .unwrap();
    assert_eq!(rotate(store.as_ref(), master).await.unwrap(), 2);
    assert!(app.state.keys.reload(store.as_ref()).await.unwrap());
    let ring = app.state.keys.current();
    assert_eq!(ring.current_version(), 2);
    let fresh = ring.encrypt(Aad::new("t", "c", "r"), b"new");
    assert_eq!(
        ciphertext_key_version(&fresh),
        Some(2),
        "new writes use the new key"
    );

    // Re-encryption moves two rows per batch and remembers where it stopped.
    let col = ENCRYPTED_COLUMNS[0];
    let first = reencrypt_batch(store.as_ref(), &app.state.keys, 2)
        .await
        .unwrap();
    assert_eq!((first.moved, first.finished), (2, false));
    let progress = store.reencryption_progress(2, col).await.unwrap();
    assert_eq!(progress.last_id.as_deref(), Some(ids[1].as_str()));
    let second = reencrypt_batch(store.as_ref(), &app.state.keys, 2)
        .await
        .unwrap();
    assert_eq!(second.moved, 2);
    let third = reencrypt_batch(store.as_ref(), &app.state.keys, 2)
        .await
        .unwrap();
    assert_eq!((third.moved, third.finished), (1, true));
    let done = reencrypt_batch(store.as_ref(), &app.state.keys, 2)
        .await
        .unwrap();
    assert_eq!(
        (done.examined, done.finished),
        (0, true),
        "a finished pass is not repeated"
    );

    let values = store.encrypted_values_after(col, None, 100).await.unwrap();
    assert_eq!(values.len(), 5);
    for (i, v) in values.iter().enumerate() {
        assert_eq!(ciphertext_key_version(&v.ciphertext), Some(2));
        let plain = ring
            .decrypt(Aad::new(col.table, col.column, &v.id), &v.ciphertext)
            .unwrap();
        assert_eq!(v.id, rows[i].0);
        assert_eq!(plain.as_slice(), rows[i].1.as_bytes());
    }

    let system = store.audit_chain(SYSTEM_CHAIN, 0, 100).await.unwrap();
    let actions: Vec<_> = system.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(actions, ["key.created", "key.rotated"]);
    waypost_core::audit::verify_chain(&system, (1, waypost_core::audit::GENESIS_HASH)).unwrap();
}

async fn wrong_master_key_fails_at_start(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let db = app.db.clone();
    let dir = app.data_dir.clone();
    app.stop().await.unwrap();

    let config = test_config(&db, dir.path(), &MasterKey::generate());
    let err = Application::build(config)
        .await
        .err()
        .expect("a different master key is refused");
    let line = err.to_string();
    assert!(line.starts_with("WAYPOST_MASTER_KEY:"), "{line}");
    assert!(!line.contains('\n'));

    let mut malformed = test_config(&db, dir.path(), &MasterKey::generate());
    malformed.master_key = Some("too-short".to_owned().into());
    let err = Application::build(malformed)
        .await
        .err()
        .expect("a malformed master key is refused");
    assert!(
        err.to_string()
            .starts_with("WAYPOST_MASTER_KEY: master key must be 32 bytes"),
        "{err}"
    );
    drop(Arc::clone(&db));
}
