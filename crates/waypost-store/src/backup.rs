//! The backend-neutral row model of logical backups: every table's rows as
//! typed values, so a backup taken from SQLite restores into PostgreSQL and back.
//!
//! Each backend reads its own schema into [`TableSpec`]s; values are converted
//! to the destination's column kind on restore.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{Result, StoreError};

/// The portable kind of a column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Text,
    Int,
    /// A 32-bit integer column (PostgreSQL `integer`).
    Int32,
    Float,
    Bool,
    Bytes,
    Time,
}

impl Kind {
    /// Int and Int32 carry the same values; everything else must match.
    pub fn compatible(self, other: Kind) -> bool {
        matches!(
            (self, other),
            (Kind::Int | Kind::Int32, Kind::Int | Kind::Int32)
        ) || self == other
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableSpec {
    pub name: String,
    pub columns: Vec<(String, Kind)>,
}

/// One value as written to a backup.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Value {
    #[serde(rename = "n")]
    Null,
    #[serde(rename = "s")]
    Text(String),
    #[serde(rename = "i")]
    Int(i64),
    #[serde(rename = "f")]
    Float(f64),
    #[serde(rename = "b")]
    Bool(bool),
    /// Base64 in the file.
    #[serde(rename = "x", with = "base64_bytes")]
    Bytes(Vec<u8>),
    #[serde(rename = "t")]
    Time(DateTime<Utc>),
}

mod base64_bytes {
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&STANDARD.encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        STANDARD.decode(text).map_err(serde::de::Error::custom)
    }
}

impl Value {
    /// Converts to what a destination column of `kind` stores.
    pub fn into_kind(self, kind: Kind, column: &str) -> Result<Value> {
        let bad = |v: &Value| {
            StoreError::Corrupt(format!(
                "backup value {v:?} does not fit column {column} ({kind:?})"
            ))
        };
        Ok(match (self, kind) {
            (Value::Null, _) => Value::Null,
            (Value::Int(i), Kind::Bool) => Value::Bool(i != 0),
            (Value::Bool(b), Kind::Int | Kind::Int32) => Value::Int(b as i64),
            (Value::Text(s), Kind::Time) => Value::Time(
                s.parse::<DateTime<Utc>>()
                    .map_err(|_| bad(&Value::Text(s.clone())))?,
            ),
            (Value::Time(t), Kind::Text) => Value::Text(t.to_rfc3339()),
            (v @ Value::Text(_), Kind::Text)
            | (v @ Value::Int(_), Kind::Int | Kind::Int32)
            | (v @ Value::Bool(_), Kind::Bool)
            | (v @ Value::Bytes(_), Kind::Bytes)
            | (v @ Value::Time(_), Kind::Time) => v,
            (Value::Int(i), Kind::Float) => Value::Float(i as f64),
            (v @ Value::Float(_), Kind::Float) => v,
            (v, _) => return Err(bad(&v)),
        })
    }
}

/// Every table to back up: parents first, so foreign keys hold while restoring.
pub(crate) fn order_tables(mut tables: Vec<TableSpec>) -> Vec<TableSpec> {
    // Tables others reference, in dependency order; the rest follow by name.
    const PARENTS: [&str; 10] = [
        "workspaces",
        "users",
        "channels",
        "contacts",
        "messages",
        "customer_events",
        "webhook_endpoints",
        "webhook_deliveries",
        "incidents",
        "plans",
    ];
    // `_`-prefixed tables are the database's own bookkeeping (migrations, the
    // cache generation, the detector cursor), which a fresh database already has.
    tables.retain(|t| !t.name.starts_with('_') && !t.name.starts_with("sqlite_"));
    tables.sort_by_key(|t| {
        (
            PARENTS
                .iter()
                .position(|p| *p == t.name)
                .unwrap_or(PARENTS.len()),
            t.name.clone(),
        )
    });
    tables
}

#[async_trait]
pub trait BackupStore {
    /// The tables and their portable column kinds, parents first.
    async fn backup_tables(&self) -> Result<Vec<TableSpec>>;
    /// Streams every row of every table from one consistent snapshot.
    async fn export_rows(
        &self,
        tables: &[TableSpec],
        sink: &mut (dyn for<'t> FnMut(&'t TableSpec, Vec<Value>) -> Result<()> + Send),
    ) -> Result<()>;
    /// Inserts rows (already in `table`'s column order and kinds) in one transaction.
    async fn import_rows(&self, table: &TableSpec, rows: &[Vec<Value>]) -> Result<()>;
    /// Whether no table holds a row (a restore target must be empty).
    async fn is_empty(&self) -> Result<bool>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_convert_between_backends() {
        assert_eq!(
            Value::Int(1).into_kind(Kind::Bool, "c").unwrap(),
            Value::Bool(true)
        );
        assert_eq!(
            Value::Bool(true).into_kind(Kind::Int, "c").unwrap(),
            Value::Int(1)
        );
        let t: DateTime<Utc> = "2026-11-27T06:00:00.123456Z".parse().unwrap();
        assert_eq!(
            Value::Text(t.to_rfc3339())
                .into_kind(Kind::Time, "c")
                .unwrap(),
            Value::Time(t)
        );
        assert!(Value::Bytes(vec![1]).into_kind(Kind::Int, "c").is_err());
        assert_eq!(
            Value::Null.into_kind(Kind::Bytes, "c").unwrap(),
            Value::Null
        );
    }

    #[test]
    fn values_round_trip_through_json() {
        let t: DateTime<Utc> = "2026-11-27T06:00:00.5Z".parse().unwrap();
        let row = vec![
            Value::Null,
            Value::Text("a".into()),
            Value::Int(-3),
            Value::Float(0.5),
            Value::Bool(true),
            Value::Bytes(vec![0, 255]),
            Value::Time(t),
        ];
        let json = serde_json::to_string(&row).unwrap();
        assert_eq!(serde_json::from_str::<Vec<Value>>(&json).unwrap(), row);
    }

    #[test]
    fn parents_come_first() {
        let t = |n: &str| TableSpec {
            name: n.into(),
            columns: vec![],
        };
        let ordered = order_tables(vec![
            t("sessions"),
            t("users"),
            t("_sqlx_migrations"),
            t("api_keys"),
            t("workspaces"),
        ]);
        let names: Vec<_> = ordered.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["workspaces", "users", "api_keys", "sessions"]);
    }
}
