//! `waypost contacts …`: contact work on the database directly, through the
//! same operations the API runs. `import` streams a CSV file into
//! `ops::contact_import` with a progress bar over the file's bytes.

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use waypost_core::audit::Actor;
use waypost_server::Config;
use waypost_server::ops::Ctx;
use waypost_server::ops::contact_import::{ImportKey, ImportProgress, import_contacts};
use waypost_server::startup;
use waypost_server::state::RequestOrigin;

#[derive(Debug, clap::Subcommand)]
pub enum ContactsCommand {
    /// Import contacts from a CSV file (columns as for POST /v1/contacts/imports).
    Import {
        /// The CSV file, with a header row that has a `phone` column.
        file: std::path::PathBuf,
        /// The workspace, by name.
        #[arg(long, value_name = "NAME")]
        workspace: String,
        /// The import key; running again with the same key and file changes nothing.
        /// Default: `cli-` and the file's size and modification time.
        #[arg(long)]
        key: Option<String>,
    },
}

pub async fn run(config: Config, cmd: ContactsCommand) -> anyhow::Result<()> {
    let state = startup::operator_state(config).await?;
    match cmd {
        ContactsCommand::Import {
            file,
            workspace,
            key,
        } => {
            let ws = state
                .store
                .find_workspace_by_name(&workspace)
                .await
                .context("--workspace")?;
            let opened = tokio::fs::File::open(&file)
                .await
                .with_context(|| format!("opening {}", file.display()))?;
            let meta = opened.metadata().await?;
            let key = key.unwrap_or_else(|| {
                let modified = meta
                    .modified()
                    .ok()
                    .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                    .map_or(0, |d| d.as_secs());
                format!("cli-{}-{modified}", meta.len())
            });
            let key =
                ImportKey::parse(&key).map_err(|e| anyhow::anyhow!("--key: {}", describe(e)))?;
            let bar = ProgressBar::new(meta.len());
            bar.set_style(
                ProgressStyle::with_template(
                    "{spinner} [{elapsed_precise}] {wide_bar} {bytes}/{total_bytes} {msg}",
                )
                .expect("a valid template"),
            );
            let origin = RequestOrigin {
                ip: None,
                user_agent: Some("waypost-cli".to_owned()),
                rate_limit: None,
            };
            let ctx = Ctx::new(ws.id, Actor::System, origin);
            let stream = tokio_util::io::ReaderStream::with_capacity(opened, 256 * 1024);
            let mut progress = |p: ImportProgress| {
                bar.set_position(p.bytes);
                bar.set_message(format!("{} rows", p.rows));
            };
            let started = std::time::Instant::now();
            let result = import_contacts(&state, &ctx, key, stream, &mut progress)
                .await
                .map_err(|e| anyhow::anyhow!("{}", describe(e)));
            bar.finish_and_clear();
            let result = result?;
            let i = &result.import;
            println!(
                "import {} {}{}: {} rows in {:.1} s: {} created, {} updated, {} invalid number, {} invalid, {} duplicate, {} with consent recorded",
                i.id,
                i.status,
                if result.replayed {
                    " (already imported with this key)"
                } else {
                    ""
                },
                i.rows_total,
                started.elapsed().as_secs_f64(),
                i.created,
                i.updated,
                i.invalid_number,
                i.invalid,
                i.duplicate,
                i.consent_recorded,
            );
            println!(
                "per-row results: GET /v1/contacts/imports/{}/rows.csv",
                i.id
            );
        }
    }
    state.store.close().await;
    Ok(())
}

fn describe(e: waypost_server::error::ApiError) -> String {
    match e {
        waypost_server::error::ApiError::Problem(p) => p.detail,
        waypost_server::error::ApiError::Internal(e) => format!("{e:#}"),
    }
}
