//! Logical backups: every table from one consistent snapshot, as JSON lines,
//! gzip-compressed and encrypted with age to a backup public key. The server
//! needs only the public key; restoring needs the identity (private key).
//!
//! The same file restores into either backend, which is also how an
//! installation moves from SQLite to PostgreSQL.

use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::Path;

use anyhow::{Context, bail};
use chrono::{DateTime, Utc};
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use waypost_store::Store;
use waypost_store::backup::{TableSpec, Value};

const FORMAT: &str = "waypost-backup";
const VERSION: u32 = 1;
const IMPORT_BATCH: usize = 500;

#[derive(Serialize, Deserialize)]
struct Header {
    format: String,
    version: u32,
    created_at: DateTime<Utc>,
    source_backend: String,
    migrations: Vec<i64>,
    tables: Vec<TableSpec>,
}

#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum Line {
    Row { t: usize, v: Vec<Value> },
    End { end: EndMarker },
}

#[derive(Serialize, Deserialize)]
struct EndMarker {
    rows: u64,
}

/// What a backup holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupSummary {
    pub tables: usize,
    pub rows: u64,
}

/// Creates an age identity file (mode 0600) and returns its public key (`age1…`).
pub fn generate_identity(path: &Path) -> anyhow::Result<String> {
    let identity = age::x25519::Identity::generate();
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    let public = identity.to_public().to_string();
    writeln!(file, "# public key: {public}")?;
    writeln!(file, "{}", identity.to_string().expose_secret())?;
    file.sync_all()?;
    Ok(public)
}

/// Writes a backup of the whole database to `out`, encrypted to `recipient`.
pub async fn create_backup(
    store: &dyn Store,
    recipient: &str,
    out: &Path,
    progress: &(dyn Fn(u64) + Sync),
) -> anyhow::Result<BackupSummary> {
    let recipient: age::x25519::Recipient = recipient
        .trim()
        .parse()
        .map_err(|e| anyhow::anyhow!("backup recipient: {e} (expected an age1… public key)"))?;
    let tables = store.backup_tables().await?;
    let migrations = store
        .migration_status()
        .await?
        .iter()
        .map(|m| m.version)
        .collect();
    let header = Header {
        format: FORMAT.into(),
        version: VERSION,
        created_at: Utc::now(),
        source_backend: store.backend().as_str().into(),
        migrations,
        tables: tables.clone(),
    };
    let partial = out.with_extension("partial");
    let file = create_private(&partial)?;
    let encryptor =
        age::Encryptor::with_recipients(std::iter::once(&recipient as &dyn age::Recipient))
            .map_err(|e| anyhow::anyhow!("cannot encrypt: {e}"))?;
    let encrypted = encryptor.wrap_output(BufWriter::new(file))?;
    let mut writer = flate2::write::GzEncoder::new(encrypted, flate2::Compression::default());
    serde_json::to_writer(&mut writer, &header)?;
    writer.write_all(b"\n")?;
    let mut rows = 0u64;
    let mut io_error: Option<std::io::Error> = None;
    store
        .export_rows(&tables, &mut |table, values| {
            let index = tables
                .iter()
                .position(|t| t.name == table.name)
                .expect("exported tables come from the list");
            let line = serde_json::to_vec(&Line::Row {
                t: index,
                v: values,
            })
            .expect("values serialise");
            if let Err(e) = writer
                .write_all(&line)
                .and_then(|_| writer.write_all(b"\n"))
            {
                io_error.get_or_insert(e);
            }
            rows += 1;
            if rows.is_multiple_of(1000) {
                progress(rows);
            }
            Ok(())
        })
        .await?;
    if let Some(e) = io_error {
        return Err(e).context("writing the backup");
    }
    serde_json::to_writer(
        &mut writer,
        &Line::End {
            end: EndMarker { rows },
        },
    )?;
    writer.write_all(b"\n")?;
    let encrypted = writer.finish()?;
    let file = encrypted
        .finish()?
        .into_inner()
        .map_err(|e| e.into_error())?;
    file.sync_all()?;
    std::fs::rename(&partial, out)
        .with_context(|| format!("cannot move the backup to {}", out.display()))?;
    progress(rows);
    Ok(BackupSummary {
        tables: tables.len(),
        rows,
    })
}

fn create_private(path: &Path) -> anyhow::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))
}

fn open_reader(input: &Path, identity: &Path) -> anyhow::Result<(Header, Box<dyn BufRead>)> {
    let identities = age::IdentityFile::from_file(identity.display().to_string())
        .with_context(|| format!("--identity {}", identity.display()))?
        .into_identities()
        .map_err(|e| anyhow::anyhow!("--identity {}: {e}", identity.display()))?;
    let file = std::fs::File::open(input).with_context(|| format!("--in {}", input.display()))?;
    let decryptor = age::Decryptor::new(BufReader::new(file))
        .map_err(|e| anyhow::anyhow!("--in: not an age file ({e})"))?;
    let plain = decryptor
        .decrypt(identities.iter().map(|i| i.as_ref() as &dyn age::Identity))
        .map_err(|e| anyhow::anyhow!("--identity does not open this backup ({e})"))?;
    let mut reader: Box<dyn BufRead> =
        Box::new(BufReader::new(flate2::read::GzDecoder::new(plain)));
    let mut first = String::new();
    reader
        .read_line(&mut first)
        .context("reading the backup header")?;
    let header: Header = serde_json::from_str(&first).context("the backup header is malformed")?;
    if header.format != FORMAT || header.version != VERSION {
        bail!(
            "not a Waypost backup of a version this binary reads (format {} v{})",
            header.format,
            header.version
        );
    }
    Ok((header, reader))
}

/// Checks what can be checked without the identity: `input` is an age file
/// whose header parses. Its contents open only with the identity (`verify_backup`).
pub fn check_envelope(input: &Path) -> anyhow::Result<()> {
    let file =
        std::fs::File::open(input).with_context(|| format!("cannot open {}", input.display()))?;
    age::Decryptor::new(BufReader::new(file))
        .map_err(|e| anyhow::anyhow!("not a readable age file ({e})"))?;
    Ok(())
}

/// Reads the whole backup, checking every line and the end marker.
pub fn verify_backup(input: &Path, identity: &Path) -> anyhow::Result<BackupSummary> {
    let (header, reader) = open_reader(input, identity)?;
    let mut rows = 0u64;
    for line in reader.lines() {
        match serde_json::from_str::<Line>(&line.context("reading the backup")?)
            .context("a malformed line")?
        {
            Line::Row { t, .. } if t < header.tables.len() => rows += 1,
            Line::Row { t, .. } => bail!("a row names table #{t}, which the header does not list"),
            Line::End { end } if end.rows == rows => {
                return Ok(BackupSummary {
                    tables: header.tables.len(),
                    rows,
                });
            }
            Line::End { end } => bail!("the backup says {} rows but holds {rows}", end.rows),
        }
    }
    bail!("the backup is truncated: no end marker after {rows} rows")
}

/// Restores a backup into an empty, migrated database.
pub async fn restore_backup(
    store: &dyn Store,
    input: &Path,
    identity: &Path,
    progress: &(dyn Fn(u64) + Sync),
) -> anyhow::Result<BackupSummary> {
    let (header, reader) = open_reader(input, identity)?;
    let ours: Vec<i64> = store
        .migration_status()
        .await?
        .iter()
        .map(|m| m.version)
        .collect();
    if ours != header.migrations {
        bail!(
            "the backup's schema (migrations {:?}) differs from this binary's ({ours:?}); restore with the matching Waypost version",
            header.migrations
        );
    }
    if !store.is_empty().await? {
        bail!("the target database is not empty; restore only into a new database");
    }
    let targets = store.backup_tables().await?;
    let mut mapped = Vec::new();
    for table in &header.tables {
        let target = targets
            .iter()
            .find(|t| t.name == table.name)
            .with_context(|| format!("table {} is missing in the target", table.name))?;
        let same = target.columns.len() == table.columns.len()
            && target
                .columns
                .iter()
                .zip(&table.columns)
                .all(|((a, ka), (b, kb))| a == b && ka.compatible(*kb));
        if !same {
            bail!("table {} has different columns in the target", table.name);
        }
        mapped.push(target.clone());
    }
    let (mut rows, mut batch, mut current) = (0u64, Vec::new(), None::<usize>);
    for line in reader.lines() {
        match serde_json::from_str::<Line>(&line.context("reading the backup")?)
            .context("a malformed line")?
        {
            Line::Row { t, v } => {
                let table = mapped
                    .get(t)
                    .with_context(|| format!("a row names unknown table #{t}"))?;
                if current != Some(t) || batch.len() >= IMPORT_BATCH {
                    if let Some(prev) = current {
                        store.import_rows(&mapped[prev], &batch).await?;
                        batch.clear();
                    }
                    current = Some(t);
                }
                if v.len() != table.columns.len() {
                    bail!(
                        "a row of {} has {} values, expected {}",
                        table.name,
                        v.len(),
                        table.columns.len()
                    );
                }
                batch.push(v);
                rows += 1;
                if rows.is_multiple_of(1000) {
                    progress(rows);
                }
            }
            Line::End { end } => {
                if end.rows != rows {
                    bail!("the backup says {} rows but holds {rows}", end.rows);
                }
                if let Some(prev) = current {
                    store.import_rows(&mapped[prev], &batch).await?;
                }
                progress(rows);
                return Ok(BackupSummary {
                    tables: mapped.len(),
                    rows,
                });
            }
        }
    }
    bail!("the backup is truncated: no end marker after {rows} rows")
}
