//! PostgreSQL side of logical backups: schema introspection, a snapshot export
//! (one repeatable-read, read-only transaction), and batched inserts.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures_util::TryStreamExt;
use sqlx::Row;
use sqlx::postgres::PgRow;

use super::PgStore;
use crate::backup::{BackupStore, Kind, TableSpec, Value, order_tables};
use crate::{Result, StoreError};

fn kind_of(data_type: &str) -> Result<Kind> {
    Ok(match data_type {
        "text" | "character varying" => Kind::Text,
        "bigint" => Kind::Int,
        "integer" | "smallint" => Kind::Int32,
        "double precision" | "real" | "numeric" => Kind::Float,
        "boolean" => Kind::Bool,
        "bytea" => Kind::Bytes,
        "timestamp with time zone" => Kind::Time,
        other => {
            return Err(StoreError::Corrupt(format!(
                "column type {other} has no backup mapping"
            )));
        }
    })
}

fn decode(row: &PgRow, i: usize, kind: Kind, real: bool) -> Result<Value> {
    let v = match kind {
        Kind::Text => row.try_get::<Option<String>, _>(i)?.map(Value::Text),
        Kind::Int => row.try_get::<Option<i64>, _>(i)?.map(Value::Int),
        Kind::Int32 => row
            .try_get::<Option<i32>, _>(i)?
            .map(|v| Value::Int(v as i64)),
        Kind::Float if real => row
            .try_get::<Option<f32>, _>(i)?
            .map(|v| Value::Float(v as f64)),
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

impl PgStore {
    async fn column_types(&self, table: &str) -> Result<Vec<(String, String)>> {
        Ok(sqlx::query_as(
            "SELECT column_name::text, data_type::text FROM information_schema.columns
             WHERE table_schema = current_schema() AND table_name = $1 ORDER BY ordinal_position",
        )
        .bind(table)
        .fetch_all(self.reads())
        .await?)
    }
}

#[async_trait]
impl BackupStore for PgStore {
    async fn backup_tables(&self) -> Result<Vec<TableSpec>> {
        let names: Vec<String> = sqlx::query_scalar(
            "SELECT table_name::text FROM information_schema.tables
             WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' ORDER BY table_name",
        )
        .fetch_all(self.reads())
        .await?;
        let mut tables = Vec::new();
        for name in names {
            let mut columns = Vec::new();
            for (column, data_type) in self.column_types(&name).await? {
                columns.push((column, kind_of(&data_type)?));
            }
            tables.push(TableSpec { name, columns });
        }
        Ok(order_tables(tables))
    }

    async fn export_rows(
        &self,
        tables: &[TableSpec],
        sink: &mut (dyn for<'t> FnMut(&'t TableSpec, Vec<Value>) -> Result<()> + Send),
    ) -> Result<()> {
        let mut tx = self
            .reads()
            .begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            .await?;
        for table in tables {
            let reals: Vec<bool> = {
                let types = self.column_types(&table.name).await?;
                table
                    .columns
                    .iter()
                    .map(|(c, _)| types.iter().any(|(n, t)| n == c && t == "real"))
                    .collect()
            };
            let columns: Vec<String> = table.columns.iter().map(|(c, _)| quote(c)).collect();
            let sql = format!("SELECT {} FROM {}", columns.join(", "), quote(&table.name));
            let mut rows = sqlx::query(&sql).fetch(&mut *tx);
            while let Some(row) = rows.try_next().await? {
                let values = table
                    .columns
                    .iter()
                    .enumerate()
                    .map(|(i, (_, kind))| decode(&row, i, *kind, reals[i]))
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
                q = match (value.clone().into_kind(*kind, column)?, kind) {
                    (Value::Null, Kind::Text) => q.bind(None::<String>),
                    (Value::Null, Kind::Int) => q.bind(None::<i64>),
                    (Value::Null, Kind::Int32) => q.bind(None::<i32>),
                    (Value::Null, Kind::Float) => q.bind(None::<f64>),
                    (Value::Null, Kind::Bool) => q.bind(None::<bool>),
                    (Value::Null, Kind::Bytes) => q.bind(None::<Vec<u8>>),
                    (Value::Null, Kind::Time) => q.bind(None::<DateTime<Utc>>),
                    (Value::Int(i), Kind::Int32) => q
                        .bind(i32::try_from(i).map_err(|_| {
                            StoreError::Corrupt(format!("{column}: {i} overflows"))
                        })?),
                    (Value::Text(s), _) => q.bind(s),
                    (Value::Int(i), _) => q.bind(i),
                    (Value::Float(f), _) => q.bind(f),
                    (Value::Bool(b), _) => q.bind(b),
                    (Value::Bytes(b), _) => q.bind(b),
                    (Value::Time(t), _) => q.bind(t),
                };
            }
            q.execute(&mut *tx)
                .await
                .map_err(|e| StoreError::conflict_on_unique(e, "row already present"))?;
        }
        // Identity columns keep counting after the restored rows.
        for (column, kind) in &table.columns {
            if !matches!(kind, Kind::Int | Kind::Int32) {
                continue;
            }
            let sequence: Option<String> =
                sqlx::query_scalar("SELECT pg_get_serial_sequence($1, $2)")
                    .bind(quote(&table.name))
                    .bind(column)
                    .fetch_one(&mut *tx)
                    .await?;
            if let Some(sequence) = sequence {
                let sql = format!(
                    "SELECT setval($1, (SELECT COALESCE(MAX({c}), 0) + 1 FROM {t}), false)",
                    c = quote(column),
                    t = quote(&table.name)
                );
                sqlx::query(&sql).bind(sequence).execute(&mut *tx).await?;
            }
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
