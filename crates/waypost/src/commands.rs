//! What each subcommand does, in terms of the server crate's building blocks.

use anyhow::{Context, bail};
use indicatif::{ProgressBar, ProgressStyle};
use waypost_server::config::LogFormat;
use waypost_server::{Application, Config, Overrides, keys, startup, telemetry};
use waypost_store::migrations_current;

use crate::{
    AuditCommand, BackupCommand, Cli, Command, ConfigCommand, KeysCommand, RetentionCommand,
};

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let mut overrides = Overrides {
        config_file: cli.config.clone(),
        data_dir: cli.data_dir.clone(),
        ..Default::default()
    };
    if let Command::Serve {
        listen,
        tls_cert,
        tls_key,
        ..
    } = &cli.command
    {
        overrides.listen = *listen;
        overrides.tls_cert = tls_cert.clone();
        overrides.tls_key = tls_key.clone();
    }
    match cli.command {
        Command::Openapi => {
            println!("{}", waypost_server::openapi_json());
            return Ok(());
        }
        // The emulator reads its own file, not the server configuration.
        Command::Sandbox { listen, seed } => {
            // WAYPOST_CONFIG names the server's file; only an explicit --config is the sandbox's.
            let from_env = std::env::var_os("WAYPOST_CONFIG").map(std::path::PathBuf::from);
            let file = cli.config.filter(|c| Some(c) != from_env.as_ref());
            return crate::sandbox_cmd::run(file.as_deref(), listen, seed).await;
        }
        // Model tooling needs neither configuration nor a database.
        Command::Shield(cmd) => {
            return tokio::task::spawn_blocking(move || crate::shield_cmd::run(cmd)).await?;
        }
        Command::Webhooks(cmd) => return crate::webhooks_cmd::run(cmd),
        _ => {}
    }
    let config = Config::load(&overrides)?;
    let log_format = if matches!(cli.command, Command::Serve { .. }) {
        config.log_format
    } else {
        LogFormat::Pretty
    };
    telemetry::init_logging(log_format, &config.log_level);
    match cli.command {
        Command::Serve {
            demo: true,
            sandbox_listen,
            ..
        } => crate::demo::serve(config, sandbox_listen).await,
        Command::Serve {
            sandbox,
            sandbox_listen,
            ..
        } => serve(config, sandbox.then_some(sandbox_listen)).await,
        Command::Migrate { status } => migrate(config, status).await,
        Command::Config(ConfigCommand::Show) => {
            for line in config.redacted_lines() {
                println!("{line}");
            }
            Ok(())
        }
        Command::Keys(cmd) => keys_command(config, cmd).await,
        Command::Admin(cmd) => crate::admin::run(config, cmd).await,
        Command::Contacts(cmd) => crate::contacts_cmd::run(config, cmd).await,
        Command::Audit(cmd) => audit_command(config, cmd).await,
        Command::Retention(RetentionCommand::Run { dry_run }) => retention(config, dry_run).await,
        Command::Backup(cmd) => backup_command(config, cmd).await,
        Command::Openapi | Command::Shield(_) | Command::Sandbox { .. } | Command::Webhooks(_) => {
            unreachable!("handled above")
        }
    }
}

async fn serve(
    mut config: Config,
    sandbox: Option<Option<std::net::SocketAddr>>,
) -> anyhow::Result<()> {
    if sandbox.is_some() {
        // `--sandbox` runs the provider on this machine: channels may point at it.
        config.channel_allow_private_targets = true;
    }
    let app = Application::build(config).await?;
    let sandbox = match sandbox {
        Some(listen) => Some(crate::sandbox_cmd::start(None, listen, None).await?),
        None => None,
    };
    match waypost_server::ops::setup::first_run_link(app.state()).await {
        Ok(Some(link)) => {
            // On standard output, not in the logs: the link is a one-time credential.
            println!(
                "No user exists yet. Create the first workspace and owner within one hour at:\n  {link}"
            );
            tracing::info!("first-run setup link printed on standard output (valid for one hour)");
        }
        Ok(None) => {}
        Err(e) => tracing::warn!(error = ?e, "cannot create a first-run setup link"),
    }
    let outcome = app.run_until_stopped().await;
    if let Some(sandbox) = sandbox {
        sandbox.shutdown();
    }
    outcome
}

async fn migrate(config: Config, status_only: bool) -> anyhow::Result<()> {
    let store = startup::open_database(&config, !status_only).await?;
    let status = store
        .migration_status()
        .await
        .context("WAYPOST_DATABASE_URL: cannot read migration state")?;
    for m in &status {
        println!(
            "{:>16}  {:<24}  {}",
            m.version,
            m.state.as_str(),
            m.description
        );
    }
    if migrations_current(&status) {
        println!("database ({}) is current", store.backend().as_str());
    } else if !status_only {
        bail!("database migrations are not current after migrating; see the list above");
    } else {
        println!(
            "database ({}) has pending migrations: run `waypost migrate`",
            store.backend().as_str()
        );
    }
    store.close().await;
    Ok(())
}

async fn keys_command(config: Config, cmd: KeysCommand) -> anyhow::Result<()> {
    let store = startup::open_database(&config, false).await?;
    let status = store
        .migration_status()
        .await
        .context("WAYPOST_DATABASE_URL: cannot read migration state")?;
    if !migrations_current(&status) {
        bail!(
            "WAYPOST_DATABASE_URL: the database has pending migrations; run `waypost migrate` first"
        );
    }
    match cmd {
        KeysCommand::List => {
            let keys = startup::open_keys(&config, store.as_ref()).await?;
            let ring = keys.current();
            for version in ring.versions() {
                let marker = if version == ring.current_version() {
                    "  (current: new writes use it)"
                } else {
                    ""
                };
                println!("data key v{version}{marker}");
            }
        }
        KeysCommand::Rotate => {
            let has_keys = !store.list_data_keys().await?.is_empty();
            let master = keys::load_or_create_master_key(&config, has_keys)?;
            let version = keys::rotate(store.as_ref(), master).await?;
            println!(
                "added data key v{version}; running servers switch to it within {}s and re-encrypt older values in the background (or run `waypost keys reencrypt`)",
                config.key_rotation_interval_secs
            );
        }
        KeysCommand::Reencrypt => {
            let keys = startup::open_keys(&config, store.as_ref()).await?;
            let bar = ProgressBar::new_spinner().with_style(
                ProgressStyle::with_template("{spinner} {msg} [{elapsed}]")
                    .expect("valid progress template"),
            );
            let (mut moved, mut failed, mut examined) = (0u64, 0u64, 0u64);
            loop {
                let report =
                    keys::reencrypt_batch(store.as_ref(), &keys, config.reencryption_batch_size)
                        .await?;
                moved += report.moved;
                failed += report.failed;
                examined += report.examined;
                bar.set_message(format!(
                    "examined {examined}, re-encrypted {moved}, failed {failed}"
                ));
                bar.tick();
                if report.finished {
                    break;
                }
            }
            bar.finish();
            println!(
                "all encrypted values are on data key v{} ({moved} re-encrypted, {failed} unreadable)",
                keys.current().current_version()
            );
            if failed > 0 {
                bail!("{failed} values could not be decrypted; see the log for their ids");
            }
        }
    }
    store.close().await;
    Ok(())
}

async fn retention(config: Config, dry_run: bool) -> anyhow::Result<()> {
    use waypost_server::retention;
    let policy = retention::Policy::from_config(&config);
    let state = startup::operator_state(config).await?;
    let reports = retention::run(
        state.store.as_ref(),
        &state.keys.audit_signing_key(),
        &policy,
        state.clock.now(),
        dry_run,
        &tokio_util::sync::CancellationToken::new(),
    )
    .await
    .context("retention purge failed")?;
    let verb = if dry_run { "would remove" } else { "removed" };
    println!("{:<22}  {:<25}  {verb}", "kind", "older than");
    for r in &reports {
        println!(
            "{:<22}  {:<25}  {}",
            r.kind,
            r.cutoff.format("%Y-%m-%dT%H:%M:%SZ"),
            r.rows
        );
    }
    let total: u64 = reports.iter().map(|r| r.rows).sum();
    println!("{verb} {total} record(s) in all");
    Ok(())
}

async fn audit_command(config: Config, cmd: AuditCommand) -> anyhow::Result<()> {
    let state = startup::operator_state(config).await?;
    let store = state.store.as_ref();
    let key = state.keys.audit_signing_key();
    match cmd {
        AuditCommand::Checkpoint => {
            let signed =
                waypost_server::audit_chain::checkpoint_chains(store, &key, state.clock.now())
                    .await?;
            println!("signed {signed} chain head(s)");
        }
        AuditCommand::Verify { workspace } => {
            let chains = match workspace {
                Some(w) => {
                    let ws = match waypost_core::WorkspaceId::parse(&w) {
                        Ok(id) => store.get_workspace(id).await,
                        Err(_) => store.find_workspace_by_name(&w).await,
                    }
                    .with_context(|| format!("--workspace {w}"))?;
                    vec![ws.id.to_string()]
                }
                None => store.audit_chains().await?,
            };
            let mut broken = 0;
            for chain in chains {
                let report = waypost_server::audit_chain::verify_chain_in_store(
                    store,
                    &chain,
                    &key.verifying_key(),
                )
                .await?;
                match &report.problem {
                    None => println!(
                        "ok      {chain}: {} events, {} checkpoints",
                        report.events, report.checkpoints
                    ),
                    Some(problem) => {
                        broken += 1;
                        println!("BROKEN  {chain}: {problem}");
                    }
                }
            }
            state.store.close().await;
            if broken > 0 {
                bail!("{broken} audit chain(s) failed verification");
            }
            return Ok(());
        }
    }
    state.store.close().await;
    Ok(())
}

fn row_counter(what: &'static str) -> ProgressBar {
    let bar = ProgressBar::new_spinner().with_style(
        ProgressStyle::with_template("{spinner} {msg} [{elapsed}]")
            .expect("valid progress template"),
    );
    bar.set_message(format!("{what} 0 rows"));
    bar
}

async fn backup_command(mut config: Config, cmd: BackupCommand) -> anyhow::Result<()> {
    use waypost_server::backup;
    match cmd {
        BackupCommand::Keygen { out } => {
            let public = backup::generate_identity(&out)?;
            println!(
                "wrote the identity to {} (keep it offline: it is the only way to restore)",
                out.display()
            );
            println!("public key (set WAYPOST_BACKUP_RECIPIENT to it): {public}");
        }
        BackupCommand::Create { out, recipient } => {
            let Some(recipient) = recipient.or(config.backup_recipient.clone()) else {
                bail!(
                    "WAYPOST_BACKUP_RECIPIENT: no backup public key; pass --recipient or run `waypost backup keygen`"
                );
            };
            let store = startup::open_database(&config, false).await?;
            let bar = row_counter("backed up");
            let summary = backup::create_backup(store.as_ref(), &recipient, &out, &|n| {
                bar.set_message(format!("backed up {n} rows"));
                bar.tick();
            })
            .await?;
            bar.finish_and_clear();
            store.close().await;
            println!(
                "backed up {} rows of {} tables to {}",
                summary.rows,
                summary.tables,
                out.display()
            );
        }
        BackupCommand::Verify { input, identity } => {
            let summary =
                tokio::task::spawn_blocking(move || backup::verify_backup(&input, &identity))
                    .await??;
            println!(
                "backup is complete: {} rows of {} tables",
                summary.rows, summary.tables
            );
        }
        BackupCommand::Restore {
            input,
            identity,
            database_url,
        } => {
            if let Some(url) = database_url {
                config.database_url = Some(url.into());
            }
            let store = startup::open_database(&config, true).await?;
            let bar = row_counter("restored");
            let summary = backup::restore_backup(store.as_ref(), &input, &identity, &|n| {
                bar.set_message(format!("restored {n} rows"));
                bar.tick();
            })
            .await?;
            bar.finish_and_clear();
            store.close().await;
            println!(
                "restored {} rows of {} tables",
                summary.rows, summary.tables
            );
        }
    }
    Ok(())
}
