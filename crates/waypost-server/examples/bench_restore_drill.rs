//! Restore drill at scale: fill a database with N messages (default 1,000,000:
//! half outbound, half inbound, each with a status row and 120 bytes of
//! retained, encrypted-looking content, spread over 1,000 contacts), take an
//! encrypted backup, verify it, restore it into a fresh database of each
//! backend, and compare row counts. Times are reported against the promise:
//! an hourly backup must finish well inside the 1 h recovery point, and a
//! restore inside the 4 h recovery time.
//!
//! `cargo run --release -p waypost-server --example bench_restore_drill -- [MESSAGES] [sqlite|postgres]...`
//! (`BENCH_FROM=sqlite|postgres` restricts the source database; targets stay every backend listed).
//! PostgreSQL needs `WAYPOST_TEST_POSTGRES_URL` (a database the bench may create databases from).

use std::time::Instant;

use waypost_server::backup::{create_backup, generate_identity, restore_backup, verify_backup};
use waypost_store::testing::TestDatabase;
use waypost_store::{Backend, ConnectOptions, Store};

const CONTACTS: i64 = 1000;
const RPO_SECS: f64 = 3600.0;
const RTO_SECS: f64 = 4.0 * 3600.0;

async fn open(db: &TestDatabase) -> anyhow::Result<std::sync::Arc<dyn Store>> {
    let store = waypost_store::connect(&db.url, &ConnectOptions::default()).await?;
    store.migrate().await?;
    Ok(store)
}

/// Bulk rows generated inside the database, so filling is not what is measured.
fn fill_sql(backend: Backend) -> [&'static str; 5] {
    match backend {
        Backend::Sqlite => [
            "INSERT INTO workspaces (id, name, created_at, updated_at) VALUES ('ws_drill', 'Drill', $1, $1)",
            "INSERT INTO channels (id, workspace_id, name, provider, phone_number_id, waba_id, access_token, app_secret,
                verify_token, throughput_mps, created_at, updated_at)
             VALUES ('ch_drill', 'ws_drill', 'Drill', 'sandbox', '100', '200', randomblob(60), randomblob(60), randomblob(60), 80, $1, $1)",
            "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < $2 - 1)
             INSERT INTO contacts (id, workspace_id, phone_index, phone, content_key, created_at, updated_at)
             SELECT printf('ct_drill%06d', i), 'ws_drill', randomblob(32), randomblob(48), randomblob(72), $1, $1 FROM n",
            "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < $2 - 1)
             INSERT INTO messages (id, workspace_id, channel_id, contact_id, direction, message_type, status,
                provider_message_id, content, content_expires_at, created_at, updated_at)
             SELECT printf('msg_drill%017d', i), 'ws_drill', 'ch_drill', printf('ct_drill%06d', i % $3),
                CASE i % 2 WHEN 0 THEN 'outbound' ELSE 'inbound' END, 'text',
                CASE i % 2 WHEN 0 THEN 'read' ELSE 'received' END, 'wamid.drill' || i, randomblob(120), $1, $1, $1
             FROM n",
            "INSERT INTO message_statuses (message_id, status, occurred_at, recorded_at)
             SELECT id, status, created_at, created_at FROM messages",
        ],
        Backend::Postgres => [
            "INSERT INTO workspaces (id, name, created_at, updated_at) VALUES ('ws_drill', 'Drill', $1, $1)",
            "INSERT INTO channels (id, workspace_id, name, provider, phone_number_id, waba_id, access_token, app_secret,
                verify_token, throughput_mps, created_at, updated_at)
             VALUES ('ch_drill', 'ws_drill', 'Drill', 'sandbox', '100', '200', decode(md5('a'), 'hex'),
                decode(md5('b'), 'hex'), decode(md5('c'), 'hex'), 80, $1, $1)",
            "INSERT INTO contacts (id, workspace_id, phone_index, phone, content_key, created_at, updated_at)
             SELECT 'ct_drill' || lpad(i::text, 6, '0'), 'ws_drill', decode(md5(i::text), 'hex'),
                decode(repeat(md5('p' || i), 3), 'hex'), decode(repeat(md5('k' || i), 4), 'hex'), $1, $1
             FROM generate_series(0, $2 - 1) AS i",
            "INSERT INTO messages (id, workspace_id, channel_id, contact_id, direction, message_type, status,
                provider_message_id, content, content_expires_at, created_at, updated_at)
             SELECT 'msg_drill' || lpad(i::text, 17, '0'), 'ws_drill', 'ch_drill', 'ct_drill' || lpad((i % $3)::text, 6, '0'),
                CASE i % 2 WHEN 0 THEN 'outbound' ELSE 'inbound' END, 'text',
                CASE i % 2 WHEN 0 THEN 'read' ELSE 'received' END, 'wamid.drill' || i,
                decode(repeat(md5('c' || i), 7) || substr(md5('d' || i), 1, 16), 'hex'), $1, $1, $1
             FROM generate_series(0, $2 - 1) AS i",
            "INSERT INTO message_statuses (message_id, status, occurred_at, recorded_at)
             SELECT id, status, created_at, created_at FROM messages",
        ],
    }
}

async fn fill(db: &TestDatabase, backend: Backend, messages: i64) -> anyhow::Result<()> {
    let now = chrono::Utc::now();
    // SQLite numbers `$N` by first appearance; `?N` keeps the position.
    let sql = fill_sql(backend).map(|s| match backend {
        Backend::Sqlite => s.replace('$', "?"),
        Backend::Postgres => s.to_owned(),
    });
    let [ws, channel, contacts, msgs, statuses] = sql.each_ref().map(String::as_str);
    macro_rules! run_fill {
        ($conn:expr) => {{
            let conn = &mut $conn;
            sqlx::query(ws).bind(now).execute(&mut *conn).await?;
            sqlx::query(channel).bind(now).execute(&mut *conn).await?;
            sqlx::query(contacts)
                .bind(now)
                .bind(CONTACTS)
                .execute(&mut *conn)
                .await?;
            sqlx::query(msgs)
                .bind(now)
                .bind(messages)
                .bind(CONTACTS)
                .execute(&mut *conn)
                .await?;
            sqlx::query(statuses).execute(&mut *conn).await?;
        }};
    }
    use sqlx::Connection;
    match backend {
        Backend::Sqlite => {
            let mut conn = sqlx::SqliteConnection::connect(&db.url).await?;
            run_fill!(conn);
        }
        Backend::Postgres => {
            let mut conn = sqlx::PgConnection::connect(&db.url).await?;
            run_fill!(conn);
        }
    }
    Ok(())
}

/// Rows per table, read directly.
async fn counts(
    db: &TestDatabase,
    backend: Backend,
    store: &dyn Store,
) -> anyhow::Result<Vec<(String, i64)>> {
    use sqlx::Connection;
    let mut out = Vec::new();
    for table in store.backup_tables().await? {
        let sql = format!("SELECT count(*) FROM {}", table.name);
        let n: i64 = match backend {
            Backend::Sqlite => {
                let mut c = sqlx::SqliteConnection::connect(&db.url).await?;
                sqlx::query_scalar(&sql).fetch_one(&mut c).await?
            }
            Backend::Postgres => {
                let mut c = sqlx::PgConnection::connect(&db.url).await?;
                sqlx::query_scalar(&sql).fetch_one(&mut c).await?
            }
        };
        out.push((table.name, n));
    }
    out.sort();
    Ok(out)
}

fn secs(t: Instant) -> f64 {
    t.elapsed().as_secs_f64()
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let messages: i64 = args
        .next()
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(1_000_000);
    let mut backends: Vec<Backend> = args
        .map(|b| match b.as_str() {
            "sqlite" => Ok(Backend::Sqlite),
            "postgres" => Ok(Backend::Postgres),
            other => Err(anyhow::anyhow!("unknown backend {other}")),
        })
        .collect::<Result<_, _>>()?;
    if backends.is_empty() {
        backends = vec![Backend::Sqlite, Backend::Postgres];
    }
    let dir = tempfile::tempdir()?;
    let identity = dir.path().join("drill.key");
    let recipient = generate_identity(&identity)?;
    println!(
        "| from | to | messages | rows | fill s | backup s | backup MiB | verify s | restore s | backup ÷ RPO 1 h | restore ÷ RTO 4 h |"
    );
    println!("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    // BENCH_FROM narrows the sources (each restore into PostgreSQL takes minutes at 1M).
    let sources: Vec<Backend> = match std::env::var("BENCH_FROM").ok().as_deref() {
        Some("sqlite") => vec![Backend::Sqlite],
        Some("postgres") => vec![Backend::Postgres],
        _ => backends.clone(),
    };
    for from in &sources {
        let Some(source) = TestDatabase::create(*from).await else {
            eprintln!("{}: database unavailable, skipped", from.as_str());
            continue;
        };
        let store = open(&source).await?;
        let t = Instant::now();
        fill(&source, *from, messages).await?;
        let fill_s = secs(t);
        let file = dir.path().join(format!("{}.backup", from.as_str()));
        let t = Instant::now();
        let summary = create_backup(store.as_ref(), &recipient, &file, &|_| {}).await?;
        let backup_s = secs(t);
        let size = std::fs::metadata(&file)?.len() as f64 / (1024.0 * 1024.0);
        let t = Instant::now();
        anyhow::ensure!(
            verify_backup(&file, &identity)? == summary,
            "verify differs"
        );
        let verify_s = secs(t);
        let source_counts = counts(&source, *from, store.as_ref()).await?;
        store.close().await;
        for to in &backends {
            let Some(target) = TestDatabase::create(*to).await else {
                continue;
            };
            let restored = open(&target).await?;
            let t = Instant::now();
            let got = restore_backup(restored.as_ref(), &file, &identity, &|_| {}).await?;
            let restore_s = secs(t);
            anyhow::ensure!(
                got == summary,
                "restore summary differs: {got:?} vs {summary:?}"
            );
            anyhow::ensure!(
                counts(&target, *to, restored.as_ref()).await? == source_counts,
                "row counts differ after restore"
            );
            restored.close().await;
            println!(
                "| {} | {} | {messages} | {} | {fill_s:.1} | {backup_s:.1} | {size:.1} | {verify_s:.1} | {restore_s:.1} | {:.4} | {:.4} |",
                from.as_str(),
                to.as_str(),
                summary.rows,
                backup_s / RPO_SECS,
                restore_s / RTO_SECS,
            );
        }
    }
    Ok(())
}
