//! Storage behaviour, run on both backends against fresh databases.

use std::sync::Arc;

use chrono::{Duration, Utc};
use serde_json::json;
use waypost_core::audit::{Actor, GENESIS_HASH, chain_name, verify_chain};
use waypost_core::{NewAuditEvent, WorkspaceId};
use waypost_store::testing::TestDatabase;
use waypost_store::*;

/// Generates one `#[tokio::test]` per backend from an `async fn(Arc<dyn Store>)`.
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite { $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)] async fn $name() { super::run(waypost_store::Backend::Sqlite, super::$name).await } )* }
        mod postgres { $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)] async fn $name() { super::run(waypost_store::Backend::Postgres, super::$name).await } )* }
    };
}

async fn run<F, Fut>(backend: Backend, test: F)
where
    F: FnOnce(Arc<dyn Store>, String) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let Some(db) = TestDatabase::create(backend).await else {
        return;
    };
    let store = connect(&db.url, &ConnectOptions::default())
        .await
        .expect("connect");
    store.migrate().await.expect("migrate");
    test(store.clone(), db.url.clone()).await;
    store.close().await;
}

on_both_backends!(
    migrations_report_current_after_migrate,
    workspace_names_are_unique,
    concurrent_audit_appends_form_one_valid_chain,
    audit_events_are_write_once,
    data_key_versions_are_unique,
    idempotency_claims_replay_and_mismatch,
    reencryption_swaps_only_unchanged_values,
    webauthn_challenges_are_taken_once_and_expire,
    passkeys_belong_to_their_user,
    webhook_leases_count_other_workers_and_are_taken_once,
    writes_abandoned_midway_leave_the_store_writable,
);

fn workspace(name: &str) -> Workspace {
    let now = Utc::now();
    Workspace {
        id: WorkspaceId::new(),
        name: name.into(),
        created_at: now,
        updated_at: now,
    }
}

fn created(ws: &Workspace) -> NewAuditEvent {
    NewAuditEvent::new(Some(ws.id), Actor::System, "workspace.created")
        .target("workspace", ws.id.to_string())
}

async fn migrations_report_current_after_migrate(store: Arc<dyn Store>, _url: String) {
    let status = store.migration_status().await.unwrap();
    assert!(!status.is_empty());
    assert!(migrations_current(&status), "{status:?}");
    store.ping().await.unwrap();
}

async fn workspace_names_are_unique(store: Arc<dyn Store>, _url: String) {
    let ws = workspace("acme");
    store.create_workspace(&ws, created(&ws)).await.unwrap();
    let again = workspace("acme");
    let err = store
        .create_workspace(&again, created(&again))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    assert_eq!(store.get_workspace(ws.id).await.unwrap().name, "acme");
    assert_eq!(
        store.find_workspace_by_name("acme").await.unwrap().id,
        ws.id
    );
    assert!(matches!(
        store.get_workspace(WorkspaceId::new()).await,
        Err(StoreError::NotFound(_))
    ));
    // The failed creation left no audit event behind.
    let events = store
        .audit_chain(&chain_name(Some(again.id)), 0, 10)
        .await
        .unwrap();
    assert!(events.is_empty());
}

async fn concurrent_audit_appends_form_one_valid_chain(store: Arc<dyn Store>, _url: String) {
    let ws = workspace("busy");
    store.create_workspace(&ws, created(&ws)).await.unwrap();
    // Many concurrent writers: none may fail (no SQLITE_BUSY) and the chain stays linear.
    let tasks: Vec<_> = (0..64)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                let event = NewAuditEvent::new(
                    Some(ws.id),
                    Actor::ApiKey(format!("key_{i}")),
                    "test.concurrent",
                )
                .origin(Some("192.0.2.1".into()), Some("tests".into()))
                .details(json!({"i": i}));
                store.append_audit_event(event).await
            })
        })
        .collect();
    for task in tasks {
        task.await
            .unwrap()
            .expect("append never fails under contention");
    }
    let events = store
        .audit_chain(&chain_name(Some(ws.id)), 0, 1000)
        .await
        .unwrap();
    assert_eq!(events.len(), 65);
    verify_chain(&events, (1, GENESIS_HASH)).expect("chain verifies after reading back");
    assert_eq!(events[0].action, "workspace.created");
}

/// A caller dropped at any point of a write (a client that hung up) must not
/// leave a connection inside a transaction: later writes still succeed.
async fn writes_abandoned_midway_leave_the_store_writable(store: Arc<dyn Store>, _url: String) {
    let ws = workspace("abandoned");
    store.create_workspace(&ws, created(&ws)).await.unwrap();
    for i in 0..1500u64 {
        let event = NewAuditEvent::new(Some(ws.id), Actor::System, "test.abandoned");
        // From "dropped before anything ran" to "dropped after commit".
        let _ = tokio::time::timeout(
            std::time::Duration::from_micros((i * 13) % 3000),
            store.append_audit_event(event),
        )
        .await;
    }
    let event = NewAuditEvent::new(Some(ws.id), Actor::System, "test.after");
    tokio::time::timeout(
        std::time::Duration::from_secs(10),
        store.append_audit_event(event),
    )
    .await
    .expect("the store answers")
    .expect("a write after abandoned ones succeeds");
    let events = store
        .audit_chain(&chain_name(Some(ws.id)), 0, 1000)
        .await
        .unwrap();
    verify_chain(&events, (1, GENESIS_HASH)).expect("the chain stays valid");
}

async fn audit_events_are_write_once(store: Arc<dyn Store>, url: String) {
    let event = store
        .append_audit_event(NewAuditEvent::new(None, Actor::System, "system.started"))
        .await
        .unwrap();
    let sql = match store.backend() {
        Backend::Sqlite => "UPDATE audit_events SET action = 'forged' WHERE id = ?",
        Backend::Postgres => "UPDATE audit_events SET action = 'forged' WHERE id = $1",
    };
    let err = raw_execute(&store, &url, sql, &event.id.to_string()).await;
    assert!(err.expect_err("update refused").contains("write-once"));
}

async fn raw_execute(
    store: &Arc<dyn Store>,
    url: &str,
    sql: &str,
    arg: &str,
) -> Result<u64, String> {
    let done = match store.backend() {
        Backend::Sqlite => {
            let pool = sqlx::SqlitePool::connect(url).await.unwrap();
            sqlx::query(sql)
                .bind(arg)
                .execute(&pool)
                .await
                .map(|r| r.rows_affected())
        }
        Backend::Postgres => {
            let pool = sqlx::PgPool::connect(url).await.unwrap();
            sqlx::query(sql)
                .bind(arg)
                .execute(&pool)
                .await
                .map(|r| r.rows_affected())
        }
    };
    done.map_err(|e| e.to_string())
}

async fn data_key_versions_are_unique(store: Arc<dyn Store>, _url: String) {
    let key = StoredDataKey {
        version: 1,
        wrapped_key: vec![1; 60],
        created_at: Utc::now(),
    };
    store
        .insert_data_key(&key, NewAuditEvent::new(None, Actor::System, "key.created"))
        .await
        .unwrap();
    let err = store
        .insert_data_key(&key, NewAuditEvent::new(None, Actor::System, "key.created"))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)));
    let keys = store.list_data_keys().await.unwrap();
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0].wrapped_key, vec![1; 60]);
}

async fn idempotency_claims_replay_and_mismatch(store: Arc<dyn Store>, _url: String) {
    let ws = workspace("idem");
    store.create_workspace(&ws, created(&ws)).await.unwrap();
    let now = Utc::now();
    let claim = |id: &str, hash: u8, now| IdempotencyClaim {
        id: id.into(),
        workspace_id: ws.id,
        key: "order-42".into(),
        request_hash: vec![hash; 32],
        now,
        lock_until: now + Duration::seconds(30),
        expires_at: now + Duration::hours(24),
    };
    assert_eq!(
        store
            .begin_idempotent_request(&claim("idem_1", 1, now))
            .await
            .unwrap(),
        IdempotencyBegin::Claimed
    );
    assert_eq!(
        store
            .begin_idempotent_request(&claim("idem_2", 1, now))
            .await
            .unwrap(),
        IdempotencyBegin::InProgress
    );
    assert_eq!(
        store
            .begin_idempotent_request(&claim("idem_3", 2, now))
            .await
            .unwrap(),
        IdempotencyBegin::Mismatch
    );
    store
        .complete_idempotent_request("idem_1", 202, b"ciphertext")
        .await
        .unwrap();
    assert_eq!(
        store
            .begin_idempotent_request(&claim("idem_4", 1, now))
            .await
            .unwrap(),
        IdempotencyBegin::Completed {
            record_id: "idem_1".into(),
            status: 202,
            encrypted_body: b"ciphertext".to_vec()
        }
    );
    // After expiry the key is free again, and the purge removes expired records.
    let later = now + Duration::hours(25);
    assert_eq!(
        store
            .begin_idempotent_request(&claim("idem_5", 2, later))
            .await
            .unwrap(),
        IdempotencyBegin::Claimed
    );
    store.release_idempotent_request("idem_5").await.unwrap();
    assert_eq!(
        store
            .begin_idempotent_request(&claim("idem_6", 3, now))
            .await
            .unwrap(),
        IdempotencyBegin::Claimed
    );
    assert_eq!(
        store
            .purge_expired_idempotency_records(later, 100)
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        store
            .purge_expired_idempotency_records(later, 100)
            .await
            .unwrap(),
        0
    );
}

async fn reencryption_swaps_only_unchanged_values(store: Arc<dyn Store>, _url: String) {
    let ws = workspace("rekey");
    store.create_workspace(&ws, created(&ws)).await.unwrap();
    let now = Utc::now();
    for i in 0..3 {
        let claim = IdempotencyClaim {
            id: format!("idem_{i}"),
            workspace_id: ws.id,
            key: format!("k{i}"),
            request_hash: vec![0; 32],
            now,
            lock_until: now,
            expires_at: now + Duration::hours(1),
        };
        store.begin_idempotent_request(&claim).await.unwrap();
        store
            .complete_idempotent_request(&claim.id, 200, &[i as u8; 8])
            .await
            .unwrap();
    }
    let col = ENCRYPTED_COLUMNS[0];
    let first = store.encrypted_values_after(col, None, 2).await.unwrap();
    assert_eq!(
        first.iter().map(|v| v.id.as_str()).collect::<Vec<_>>(),
        ["idem_0", "idem_1"]
    );
    let rest = store
        .encrypted_values_after(col, Some("idem_1"), 2)
        .await
        .unwrap();
    assert_eq!(rest.len(), 1);
    assert!(
        store
            .replace_encrypted_value(col, "idem_0", &[0; 8], &[9; 8])
            .await
            .unwrap()
    );
    assert!(
        !store
            .replace_encrypted_value(col, "idem_0", &[0; 8], &[7; 8])
            .await
            .unwrap(),
        "stale swap refused"
    );
    let progress = ReencryptionProgress {
        last_id: Some("idem_1".into()),
        finished_at: None,
    };
    store
        .save_reencryption_progress(2, col, &progress)
        .await
        .unwrap();
    assert_eq!(store.reencryption_progress(2, col).await.unwrap(), progress);
    assert_eq!(
        store.reencryption_progress(3, col).await.unwrap(),
        ReencryptionProgress::default()
    );
}

fn challenge(id: &str, kind: passkeys::ChallengeKind, ttl: Duration) -> passkeys::ChallengeRecord {
    let now = Utc::now();
    passkeys::ChallengeRecord {
        id: id.into(),
        user_id: None,
        kind: kind.as_str().into(),
        state: vec![1, 2, 3],
        created_at: now,
        expires_at: now + ttl,
    }
}

async fn webauthn_challenges_are_taken_once_and_expire(store: Arc<dyn Store>, _url: String) {
    use passkeys::ChallengeKind::*;
    let now = Utc::now();
    store
        .create_webauthn_challenge(&challenge("wac_a", Login, Duration::minutes(5)))
        .await
        .unwrap();
    store
        .create_webauthn_challenge(&challenge("wac_old", Login, Duration::seconds(-1)))
        .await
        .unwrap();
    assert!(
        store
            .take_webauthn_challenge("wac_a", Authenticate, now)
            .await
            .unwrap()
            .is_none(),
        "another kind does not match"
    );
    let taken = store
        .take_webauthn_challenge("wac_a", Login, now)
        .await
        .unwrap()
        .expect("live challenge");
    assert_eq!(taken.state, vec![1, 2, 3]);
    assert!(
        store
            .take_webauthn_challenge("wac_a", Login, now)
            .await
            .unwrap()
            .is_none(),
        "taken once"
    );
    assert!(
        store
            .take_webauthn_challenge("wac_old", Login, now)
            .await
            .unwrap()
            .is_none(),
        "expired"
    );
    store
        .create_webauthn_challenge(&challenge("wac_b", Register, Duration::seconds(-1)))
        .await
        .unwrap();
    assert_eq!(
        store
            .purge_expired_webauthn_challenges(now, 100)
            .await
            .unwrap(),
        1
    );
}

async fn passkeys_belong_to_their_user(store: Arc<dyn Store>, _url: String) {
    let ws = workspace("Acme");
    let now = Utc::now();
    let mut users = Vec::new();
    for email in ["ana@example.com", "bob@example.com"] {
        let user = identity::NewUser {
            id: format!("usr_{email}"),
            email: identity::SealedEmail {
                sealed: email.as_bytes().to_vec(),
                index: email.as_bytes().to_vec(),
            },
            password_hash: "x".into(),
            now,
            email_verified: false,
        };
        if users.is_empty() {
            store
                .create_owner(&ws, &user, vec![created(&ws)])
                .await
                .unwrap();
        } else {
            let event = NewAuditEvent::new(Some(ws.id), Actor::System, "member.added");
            store
                .create_member(&ws.id.to_string(), &user, "admin", event)
                .await
                .unwrap();
        }
        users.push(user.id);
    }
    let event = || NewAuditEvent::new(None, Actor::System, "mfa.passkey_added");
    let passkey = |n: usize| passkeys::PasskeyRecord {
        id: format!("pk_{n:02}"),
        user_id: users[0].clone(),
        name: "Laptop".into(),
        credential_id_hash: vec![n as u8; 32],
        credential: vec![0; 8],
        created_at: now,
        last_used_at: None,
    };
    store.create_passkey(&passkey(0), event()).await.unwrap();
    assert!(matches!(
        store.create_passkey(&passkey(0), event()).await,
        Err(StoreError::Conflict(_))
    ));
    let removed = || NewAuditEvent::new(None, Actor::System, "mfa.passkey_removed");
    assert!(matches!(
        store.delete_passkey(&users[1], "pk_00", removed()).await,
        Err(StoreError::NotFound(_))
    ));
    for n in 1..passkeys::MAX_PASSKEYS_PER_USER as usize {
        store.create_passkey(&passkey(n), event()).await.unwrap();
    }
    assert!(matches!(
        store.create_passkey(&passkey(99), event()).await,
        Err(StoreError::Conflict(_))
    ));
    let found = store.find_passkey(&[3; 32]).await.unwrap().unwrap();
    assert_eq!(found.id, "pk_03");
    store
        .record_passkey_use("pk_03", &[9; 8], now)
        .await
        .unwrap();
    let listed = store.list_passkeys(&users[0]).await.unwrap();
    assert_eq!(listed.len() as i64, passkeys::MAX_PASSKEYS_PER_USER);
    assert!(listed[3].last_used_at.is_some() && listed[3].credential == vec![9; 8]);
    store
        .delete_passkey(&users[0], "pk_00", removed())
        .await
        .unwrap();
    assert_eq!(store.count_passkeys(&users[0]).await.unwrap(), 19);
}

/// Backups map columns by kind; SQLite's kinds are inferred from declared types
/// and names, so every column must come out compatible with PostgreSQL's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_column_kinds_agree_between_backends() {
    let Some(pg) = TestDatabase::create(Backend::Postgres).await else {
        return;
    };
    let lite = TestDatabase::create(Backend::Sqlite).await.unwrap();
    let mut specs = Vec::new();
    for db in [&lite, &pg] {
        let store = connect(&db.url, &ConnectOptions::default()).await.unwrap();
        store.migrate().await.unwrap();
        specs.push(store.backup_tables().await.unwrap());
        store.close().await;
    }
    let (sqlite, postgres) = (&specs[0], &specs[1]);
    assert_eq!(
        sqlite.iter().map(|t| &t.name).collect::<Vec<_>>(),
        postgres.iter().map(|t| &t.name).collect::<Vec<_>>()
    );
    for (a, b) in sqlite.iter().zip(postgres) {
        assert_eq!(a.columns.len(), b.columns.len(), "{}", a.name);
        for ((ca, ka), (cb, kb)) in a.columns.iter().zip(&b.columns) {
            assert_eq!(ca, cb, "{}", a.name);
            assert!(
                ka.compatible(*kb),
                "{}.{ca}: SQLite {ka:?} vs PostgreSQL {kb:?}",
                a.name
            );
        }
    }
}

fn attempt_succeeded(d: &webhooks::DueDelivery) -> webhooks::WebhookAttemptOutcome {
    webhooks::WebhookAttemptOutcome {
        id: format!("wha_{}", d.delivery_id),
        delivery_id: d.delivery_id,
        endpoint_id: d.endpoint_id.clone(),
        workspace_id: d.workspace_id.clone(),
        event_id: d.event_id.clone(),
        attempted_at: Utc::now(),
        status_code: Some(200),
        latency_ms: 1,
        response_excerpt: None,
        error_class: None,
        next: webhooks::DeliveryNext::Succeeded,
    }
}

/// An endpoint's limit counts other workers' leases and the claiming
/// worker's own open attempts (not its finished, unrecorded ones); a leased
/// delivery goes to no one else until its lease ends; only matching types fan out.
async fn webhook_leases_count_other_workers_and_are_taken_once(
    store: Arc<dyn Store>,
    _url: String,
) {
    use std::collections::HashMap;
    let ws = workspace("hooks");
    store.create_workspace(&ws, created(&ws)).await.unwrap();
    let now = Utc::now();
    let endpoint = |id: &str, types: &str| webhooks::WebhookEndpointRecord {
        event_types: types.into(),
        ..webhooks::WebhookEndpointRecord::new(
            id.into(),
            ws.id.to_string(),
            "https://hooks.example/in".into(),
            vec![1, 2, 3],
            now,
        )
    };
    // Events about one message each; the one numbered `odd` has type `message_read`.
    let events = |range: std::ops::Range<usize>, odd: usize| -> Vec<events::NewCustomerEvent> {
        range
            .map(|i| events::NewCustomerEvent {
                id: format!("evt_{i}"),
                workspace_id: ws.id.to_string(),
                event_type: if i == odd {
                    "message_read"
                } else {
                    "message.sent"
                }
                .into(),
                subject_id: Some(format!("msg_{i}")),
                payload: vec![0],
                content: None,
                content_contact_id: None,
                created_at: now,
            })
            .collect()
    };
    let audit = || NewAuditEvent::new(Some(ws.id), Actor::System, "webhook_endpoint.created");
    store
        .create_webhook_endpoint(&endpoint("whep_all", ""), audit())
        .await
        .unwrap();
    // `_` is a LIKE wildcard: an event of type `message_read` must not match `message.read`.
    store
        .create_webhook_endpoint(&endpoint("whep_reads", "message.read"), audit())
        .await
        .unwrap();
    store
        .append_customer_events(&events(0..6, 5))
        .await
        .unwrap();
    assert_eq!(store.fan_out_customer_events(now, 100).await.unwrap(), 6);
    assert_eq!(store.fan_out_customer_events(now, 100).await.unwrap(), 0);

    let lease = now + Duration::seconds(60);
    let none = HashMap::new();
    let a = store
        .claim_webhook_deliveries(now, lease, 10, 4, "wdl_a", &none)
        .await
        .unwrap();
    assert_eq!(a.len(), 4);
    assert!(a.iter().all(|d| d.endpoint_id == "whep_all"));
    // Another worker sees A's four leases: the endpoint is full.
    let b = store
        .claim_webhook_deliveries(now, lease, 10, 4, "wdl_b", &none)
        .await
        .unwrap();
    assert!(b.is_empty(), "{b:?}");
    // A itself counts only what it says is open.
    let open = HashMap::from([("whep_all".to_owned(), 4)]);
    let again = store
        .claim_webhook_deliveries(now, lease, 10, 4, "wdl_a", &open)
        .await
        .unwrap();
    assert!(again.is_empty(), "{again:?}");
    let rest = store
        .claim_webhook_deliveries(now, lease, 10, 4, "wdl_a", &none)
        .await
        .unwrap();
    assert_eq!(rest.len(), 2);
    assert!(rest.iter().all(|d| d.endpoint_id == "whep_all"), "{rest:?}");
    let mut ids: Vec<i64> = a.iter().chain(&rest).map(|d| d.delivery_id).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 6, "a delivery was leased twice");

    // Recorded successes leave the queue; B takes over the rest when A's leases end.
    let done: Vec<_> = a.iter().map(attempt_succeeded).collect();
    store.record_webhook_attempts(&done).await.unwrap();
    let b = store
        .claim_webhook_deliveries(now, lease, 10, 4, "wdl_b", &none)
        .await
        .unwrap();
    assert!(b.is_empty(), "{b:?}");
    let later = lease + Duration::seconds(1);
    let b = store
        .claim_webhook_deliveries(later, later + Duration::seconds(60), 10, 4, "wdl_b", &none)
        .await
        .unwrap();
    let mut taken: Vec<i64> = b.iter().map(|d| d.delivery_id).collect();
    let mut expected: Vec<i64> = rest.iter().map(|d| d.delivery_id).collect();
    taken.sort_unstable();
    expected.sort_unstable();
    assert_eq!(taken, expected);

    // Two workers claiming at once share the queue without overlap.
    store
        .append_customer_events(&events(6..56, usize::MAX))
        .await
        .unwrap();
    assert_eq!(store.fan_out_customer_events(now, 100).await.unwrap(), 50);
    let t = later + Duration::seconds(120);
    let (c, d) = tokio::join!(
        store.claim_webhook_deliveries(t, t + Duration::seconds(60), 100, 200, "wdl_c", &none),
        store.claim_webhook_deliveries(t, t + Duration::seconds(60), 100, 200, "wdl_d", &none),
    );
    let mut both: Vec<i64> = c
        .unwrap()
        .iter()
        .chain(&d.unwrap())
        .map(|d| d.delivery_id)
        .collect();
    let total = both.len();
    both.sort_unstable();
    both.dedup();
    assert_eq!(both.len(), total, "a delivery was leased by both workers");
    // The 50 new ones and B's two expired leases.
    assert_eq!(total, 52);
}
