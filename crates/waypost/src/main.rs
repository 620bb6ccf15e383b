//! The `waypost` command line: wiring only; the work happens in the library crates.
#![forbid(unsafe_code)]

mod admin;
mod commands;
mod contacts_cmd;
mod demo;
mod sandbox_cmd;
mod shield_cmd;
mod suspend_cmd;
mod user_cmd;
mod webhooks_cmd;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "waypost",
    version,
    about = "Self-hosted, privacy-first WhatsApp Business messaging"
)]
struct Cli {
    /// Configuration file (default: ./waypost.toml when present).
    #[arg(long, global = true, env = "WAYPOST_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    /// Directory for the default SQLite database and master key.
    #[arg(long, global = true, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the HTTP API and background workers.
    Serve {
        /// Address to listen on (default 127.0.0.1:8080).
        #[arg(long, value_name = "ADDR")]
        listen: Option<SocketAddr>,
        /// PEM certificate chain; enables TLS (1.2+) together with --tls-key.
        #[arg(long, value_name = "FILE", requires = "tls_key")]
        tls_cert: Option<PathBuf>,
        /// PEM private key for --tls-cert.
        #[arg(long, value_name = "FILE", requires = "tls_cert")]
        tls_key: Option<PathBuf>,
        /// Also run the built-in WhatsApp Cloud API sandbox in this process (the demo provider).
        #[arg(long)]
        sandbox: bool,
        /// Where the in-process sandbox listens (default 127.0.0.1:9090).
        #[arg(long, value_name = "ADDR")]
        sandbox_listen: Option<SocketAddr>,
        /// Demo mode: the sandbox in process plus a demo workspace, owner, channel and API key,
        /// and the commands of a first tour.
        #[arg(long, conflicts_with = "sandbox")]
        demo: bool,
    },
    /// Apply pending database migrations, or show their state.
    Migrate {
        /// Only list migrations and whether each is applied.
        #[arg(long)]
        status: bool,
    },
    /// Inspect configuration.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Manage data encryption keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Encrypted logical backups that restore into either backend.
    #[command(subcommand)]
    Backup(BackupCommand),
    /// Check the audit log's hash chains and signed checkpoints.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Remove what has outlived its retention period.
    #[command(subcommand)]
    Retention(RetentionCommand),
    /// Operator commands: first workspace and owner, API keys, operator tokens.
    #[command(subcommand)]
    Admin(admin::AdminCommand),
    /// Contacts: import a CSV file.
    #[command(subcommand)]
    Contacts(contacts_cmd::ContactsCommand),
    /// The smishing shield: train, evaluate, scan.
    #[command(subcommand)]
    Shield(shield_cmd::ShieldCommand),
    /// Customer webhook tools: verify a delivery's signature.
    #[command(subcommand)]
    Webhooks(webhooks_cmd::WebhooksCommand),
    /// Print the OpenAPI 3.1 description of the API.
    Openapi,
    /// Run the WhatsApp Cloud API emulator (in memory) for tests and demos.
    ///
    /// `--config` names a sandbox TOML file here; without one, a built-in
    /// configuration with one number is used.
    Sandbox {
        /// Address to listen on (default: the file's `listen`, else 127.0.0.1:9090).
        #[arg(long, value_name = "ADDR")]
        listen: Option<SocketAddr>,
        /// Seed for every random choice (overrides the file's `seed`).
        #[arg(long)]
        seed: Option<u64>,
    },
}

#[derive(Debug, Subcommand)]
enum ConfigCommand {
    /// Print the effective configuration, secrets as [redacted].
    Show,
}

#[derive(Debug, Subcommand)]
enum BackupCommand {
    /// Create a backup key pair: the identity file (keep it offline) and the public key to configure.
    Keygen {
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
    /// Back up the whole database, online and consistent, encrypted to the backup public key.
    Create {
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
        /// The age public key (default: `backup_recipient` from configuration).
        #[arg(long, value_name = "AGE1…")]
        recipient: Option<String>,
    },
    /// Restore a backup into an empty database (either backend).
    Restore {
        #[arg(long = "in", value_name = "FILE")]
        input: PathBuf,
        #[arg(long, value_name = "KEYFILE")]
        identity: PathBuf,
        /// The target database (default: the configured one).
        #[arg(long, value_name = "URL")]
        database_url: Option<String>,
    },
    /// Decrypt and check a backup without restoring it.
    Verify {
        #[arg(long = "in", value_name = "FILE")]
        input: PathBuf,
        #[arg(long, value_name = "KEYFILE")]
        identity: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
enum AuditCommand {
    /// Recompute every hash chain and checkpoint; report the first broken link (exit 1 if any).
    Verify {
        /// Only this workspace's chain (name or id).
        #[arg(long, value_name = "WORKSPACE")]
        workspace: Option<String>,
    },
    /// Sign the head of every chain that grew since its last checkpoint, now.
    Checkpoint,
}

#[derive(Debug, Subcommand)]
enum RetentionCommand {
    /// Purge every kind of record past its period now; print what went per kind.
    Run {
        /// Only count what would go.
        #[arg(long)]
        dry_run: bool,
    },
}

#[derive(Debug, Subcommand)]
enum KeysCommand {
    /// List data key versions.
    List,
    /// Add a new data key version; new writes use it, old data stays readable.
    Rotate,
    /// Move values written under older data keys to the current one now (resumable).
    Reencrypt,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(commands::run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One line, naming the setting; never a backtrace or a secret.
            eprintln!("error: {}", e.to_string().replace('\n', " "));
            ExitCode::FAILURE
        }
    }
}
