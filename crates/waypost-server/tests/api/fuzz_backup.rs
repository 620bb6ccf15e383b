//! Fuzz target: backup files. Arbitrary bytes, arbitrary bytes inside a
//! valid age envelope, and well-formed backups with mutated lines are read by
//! `verify_backup`, which answers or refuses and never panics; the restore's
//! value conversion takes any value to any column kind the same way.
//! `bench/fuzz.sh` runs these for a set time (`WAYPOST_FUZZ_CASES`).

use std::io::Write;
use std::path::PathBuf;
use std::sync::OnceLock;

use proptest::prelude::*;
use serde_json::{Value, json};
use waypost_server::backup::{check_envelope, generate_identity, verify_backup};
use waypost_store::backup::{Kind, Value as Cell};

struct Keys {
    _dir: tempfile::TempDir,
    identity: PathBuf,
    recipient: age::x25519::Recipient,
}

fn keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let identity = dir.path().join("backup.key");
        let public = generate_identity(&identity).unwrap();
        Keys {
            recipient: public.parse().unwrap(),
            identity,
            _dir: dir,
        }
    })
}

fn seal(plain: &[u8], gzip: bool) -> Vec<u8> {
    let recipient = &keys().recipient;
    let encryptor =
        age::Encryptor::with_recipients(std::iter::once(recipient as &dyn age::Recipient)).unwrap();
    let mut out = Vec::new();
    let mut writer = encryptor.wrap_output(&mut out).unwrap();
    if gzip {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(plain).unwrap();
        writer.write_all(&gz.finish().unwrap()).unwrap();
    } else {
        writer.write_all(plain).unwrap();
    }
    writer.finish().unwrap();
    out
}

/// The lines of a well-formed backup of two tables.
fn seed_lines() -> Vec<Value> {
    vec![
        json!({
            "format": "waypost-backup", "version": 1, "created_at": "2026-12-07T10:00:00Z",
            "source_backend": "sqlite", "migrations": [20261127000001i64],
            "tables": [
                {"name": "workspaces", "columns": [["id", "text"], ["created_at", "time"], ["n", "int"]]},
                {"name": "blobs", "columns": [["id", "text"], ["data", "bytes"], ["ok", "bool"], ["f", "float"]]}
            ]
        }),
        json!({"t": 0, "v": [{"s": "ws_1"}, {"t": "2026-12-07T10:00:00Z"}, {"i": 3}]}),
        json!({"t": 1, "v": [{"s": "b_1"}, {"x": "AAEC"}, {"b": true}, {"f": 1.5}]}),
        json!({"t": 1, "v": [{"s": "b_2"}, "n", {"b": false}, {"i": 2}]}),
        json!({"end": {"rows": 3}}),
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<u64>().prop_map(|n| json!(n)),
        "\\PC{0,16}".prop_map(Value::String),
        prop::sample::select(&["n", "s", "i", "f", "b", "x", "t", "end", "rows", "v"][..])
            .prop_map(|s| Value::String(s.to_owned())),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec(
                (
                    prop_oneof![
                        "[a-z]{1,8}",
                        prop::sample::select(
                            &[
                                "t", "v", "end", "rows", "s", "i", "x", "tables", "columns",
                                "format", "version"
                            ][..]
                        )
                        .prop_map(str::to_owned)
                    ],
                    inner
                ),
                0..4
            )
            .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

#[derive(Debug, Clone)]
enum LineEdit {
    Replace(prop::sample::Index, Value),
    Insert(prop::sample::Index, Value),
    Remove(prop::sample::Index),
    Garble(prop::sample::Index, Vec<u8>),
}

fn line_edit() -> impl Strategy<Value = LineEdit> {
    prop_oneof![
        (any::<prop::sample::Index>(), json_value()).prop_map(|(i, v)| LineEdit::Replace(i, v)),
        (any::<prop::sample::Index>(), json_value()).prop_map(|(i, v)| LineEdit::Insert(i, v)),
        any::<prop::sample::Index>().prop_map(LineEdit::Remove),
        (
            any::<prop::sample::Index>(),
            prop::collection::vec(any::<u8>(), 0..12)
        )
            .prop_map(|(i, b)| LineEdit::Garble(i, b)),
    ]
}

fn mutated_backup(edits: &[LineEdit]) -> Vec<u8> {
    let mut lines: Vec<Vec<u8>> = seed_lines()
        .iter()
        .map(|l| serde_json::to_vec(l).unwrap())
        .collect();
    for edit in edits {
        match edit {
            LineEdit::Replace(i, v) if !lines.is_empty() => {
                let i = i.index(lines.len());
                lines[i] = serde_json::to_vec(v).unwrap();
            }
            LineEdit::Insert(i, v) => {
                let i = i.index(lines.len() + 1);
                lines.insert(i, serde_json::to_vec(v).unwrap());
            }
            LineEdit::Remove(i) if !lines.is_empty() => {
                let i = i.index(lines.len());
                lines.remove(i);
            }
            LineEdit::Garble(i, bytes) if !lines.is_empty() => {
                let i = i.index(lines.len());
                let at = bytes.first().map_or(0, |b| usize::from(*b)) % (lines[i].len() + 1);
                lines[i].splice(at..at, bytes.iter().copied());
            }
            _ => {}
        }
    }
    lines.join(&b'\n')
}

fn read(file: &[u8]) -> (Result<u64, String>, Result<(), String>) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("in.backup");
    std::fs::write(&path, file).unwrap();
    let verified = verify_backup(&path, &keys().identity)
        .map(|s| s.rows)
        .map_err(|e| format!("{e:#}"));
    let envelope = check_envelope(&path).map_err(|e| format!("{e:#}"));
    (verified, envelope)
}

fn cell() -> impl Strategy<Value = Cell> {
    prop_oneof![
        Just(Cell::Null),
        "\\PC{0,30}|[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(Z|\\+0[0-9]:00)?"
            .prop_map(Cell::Text),
        any::<i64>().prop_map(Cell::Int),
        any::<f64>().prop_map(Cell::Float),
        any::<bool>().prop_map(Cell::Bool),
        prop::collection::vec(any::<u8>(), 0..16).prop_map(Cell::Bytes),
        (0i64..4_102_444_800)
            .prop_map(|s| Cell::Time(chrono::DateTime::from_timestamp(s, 0).unwrap())),
    ]
}

fn cases() -> u32 {
    std::env::var("WAYPOST_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(128)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn fuzz_backup_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..400), sealed in any::<bool>(), gzip in any::<bool>()) {
        let file = if sealed { seal(&bytes, gzip) } else { bytes };
        let (verified, _) = read(&file);
        prop_assert!(verified.is_err());
    }

    #[test]
    fn fuzz_backup_mutated_lines(edits in prop::collection::vec(line_edit(), 0..4)) {
        let plain = mutated_backup(&edits);
        let (verified, envelope) = read(&seal(&plain, true));
        prop_assert!(envelope.is_ok(), "{:?}", envelope);
        if edits.is_empty() {
            prop_assert_eq!(verified, Ok(3));
        } else if let Ok(rows) = verified {
            // Whatever is accepted agrees with its own end marker.
            let text = String::from_utf8_lossy(&plain);
            prop_assert!(text.contains(&format!("\"rows\":{rows}")), "{}", text);
        }
    }

    #[test]
    fn fuzz_backup_value_conversion(value in cell(), kind in prop::sample::select(&[Kind::Text, Kind::Int, Kind::Int32, Kind::Float, Kind::Bool, Kind::Bytes, Kind::Time][..])) {
        match value.clone().into_kind(kind, "c") {
            Ok(Cell::Null) => prop_assert_eq!(value, Cell::Null),
            Ok(converted) => {
                let fits = matches!(
                    (&converted, kind),
                    (Cell::Text(_), Kind::Text)
                        | (Cell::Int(_), Kind::Int | Kind::Int32)
                        | (Cell::Float(_), Kind::Float)
                        | (Cell::Bool(_), Kind::Bool)
                        | (Cell::Bytes(_), Kind::Bytes)
                        | (Cell::Time(_), Kind::Time)
                );
                prop_assert!(fits, "{:?} became {:?} for {:?}", value, converted, kind);
            }
            Err(e) => prop_assert!(e.to_string().contains("does not fit column c")),
        }
    }
}
