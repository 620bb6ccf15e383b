//! SQLite side of logical backups: schema introspection, a snapshot export
//! (one read transaction in WAL mode), and batched inserts.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures_util::TryStreamExt;
use sqlx::Row;
use sqlx::sqlite::SqliteRow;

use super::SqliteStore;
use crate::backup::{BackupStore, Kind, TableSpec, Value, order_tables};
use crate::{Result, StoreError};

/// INTEGER columns that hold booleans (SQLite has no boolean type).
const BOOL_COLUMNS: &[&str] = &[
    "totp_enabled",
    "require_mfa",
    "require_mfa_for_admins",
    "batch",
    "restricted",
    "enabled",
    "succeeded",
    "billable",
    "is_regex",
    "first_contact",
    "assistant_paused",
    "auto_suspend",
];

fn kind_of(column: &str, declared: &str) -> Kind {
    match declared.to_ascii_uppercase().as_str() {
        "BLOB" => Kind::Bytes,
        "REAL" | "DOUBLE" | "FLOAT" => Kind::Float,
        "INTEGER" if BOOL_COLUMNS.contains(&column) => Kind::Bool,
        "INTEGER" => Kind::Int,
        // Times are RFC 3339 text; by convention their names end in `_at` or `_until`.
        _ if column.ends_with("_at") || column.ends_with("_until") => Kind::Time,
        _ => Kind::Text,
    }
}

fn decode(row: &SqliteRow, i: usize, kind: Kind) -> Result<Value> {
    let v = match kind {
        Kind::Text => row.try_get::<Option<String>, _>(i)?.map(Value::Text),
        Kind::Int | Kind::Int32 => row.try_get::<Option<i64>, _>(i)?.map(Value::Int),
        Kind::Float => row.try_get::<Option<f64>, _>(i)?.map(Value::Float),
        Kind::Bool => row.try_get::<Option<bool>, _>(i)?.map(Value::Bool),
        Kind::Bytes => row.try_get::<Option<Vec<u8>>, _>(i)?.map(Value::Bytes),
        Kind::Time => row.try_get::<Option<DateTime<Utc>>, _>(i)?.map(Value::Time),
    };
    Ok(v.unwrap_or(Value::Null))
}

fn quote(ident: &str) -> String {
    format!("\"{}\"", ident.replace('"', "\"\""))
}

#[async_trait]
impl BackupStore for SqliteStore {
    async fn backup_tables(&self) -> Result<Vec<TableSpec>> {
        let names: Vec<String> =
            // Full-text indexes (virtual tables and their shadow tables) are
            // not data: their triggers rebuild them as the rows are restored.
            sqlx::query_scalar(
                "SELECT name FROM sqlite_master m WHERE type = 'table'
                   AND sql NOT LIKE 'CREATE VIRTUAL TABLE%'
                   AND NOT EXISTS (SELECT 1 FROM sqlite_master v
                                   WHERE v.type = 'table' AND v.sql LIKE 'CREATE VIRTUAL TABLE%'
                                     AND substr(m.name, 1, length(v.name) + 1) = v.name || '_')
                 ORDER BY name",
            )
                .fetch_all(self.reads())
                .await?;
        let mut tables = Vec::new();
        for name in names {
            let columns: Vec<(String, String)> =
                sqlx::query_as("SELECT name, type FROM pragma_table_info($1) ORDER BY cid")
                    .bind(&name)
                    .fetch_all(self.reads())
                    .await?;
            let columns = columns.into_iter().map(|(c, t)| {
                let kind = kind_of(&c, &t);
                (c, kind)
            });
            tables.push(TableSpec {
                name,
                columns: columns.collect(),
            });
        }
        Ok(order_tables(tables))
    }

    async fn export_rows(
        &self,
        tables: &[TableSpec],
        sink: &mut (dyn for<'t> FnMut(&'t TableSpec, Vec<Value>) -> Result<()> + Send),
    ) -> Result<()> {
        // One read transaction: every table is read from the same snapshot.
        let mut tx = self.reads().begin().await?;
        for table in tables {
            let columns: Vec<String> = table.columns.iter().map(|(c, _)| quote(c)).collect();
            let sql = format!(
                "SELECT {} FROM {} ORDER BY rowid",
                columns.join(", "),
                quote(&table.name)
            );
            let mut rows = sqlx::query(&sql).fetch(&mut *tx);
            while let Some(row) = rows.try_next().await? {
                let values = table
                    .columns
                    .iter()
                    .enumerate()
                    .map(|(i, (_, kind))| decode(&row, i, *kind))
                    .collect::<Result<Vec<_>>>()?;
                sink(table, values)?;
            }
        }
        tx.commit().await?;
        Ok(())
    }

    async fn import_rows(&self, table: &TableSpec, rows: &[Vec<Value>]) -> Result<()> {
        let columns: Vec<String> = table.columns.iter().map(|(c, _)| quote(c)).collect();
        let params: Vec<String> = (1..=columns.len()).map(|i| format!("${i}")).collect();
        let sql = format!(
            "INSERT INTO {} ({}) VALUES ({})",
            quote(&table.name),
            columns.join(", "),
            params.join(", ")
        );
        let mut tx = self.write_tx().await?;
        for row in rows {
            let mut q = sqlx::query(&sql);
            for ((column, kind), value) in table.columns.iter().zip(row) {
                q = match value.clone().into_kind(*kind, column)? {
                    Value::Null => q.bind(None::<String>),
                    Value::Text(s) => q.bind(s),
                    Value::Int(i) => q.bind(i),
                    Value::Float(f) => q.bind(f),
                    Value::Bool(b) => q.bind(b),
                    Value::Bytes(b) => q.bind(b),
                    Value::Time(t) => q.bind(t),
                };
            }
            q.execute(&mut *tx)
                .await
                .map_err(|e| StoreError::conflict_on_unique(e, "row already present"))?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn is_empty(&self) -> Result<bool> {
        for table in self.backup_tables().await? {
            let sql = format!("SELECT EXISTS (SELECT 1 FROM {})", quote(&table.name));
            let any: bool = sqlx::query_scalar(&sql).fetch_one(self.reads()).await?;
            if any {
                return Ok(false);
            }
        }
        Ok(true)
    }
}
