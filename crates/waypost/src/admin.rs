//! `waypost admin …`: operator commands that act directly on the database.

use std::io::{IsTerminal, Read};

use anyhow::Context;
use secrecy::{ExposeSecret, SecretString};
use waypost_core::NewAuditEvent;
use waypost_core::audit::Actor;
use waypost_core::auth::Email;
use waypost_server::Config;
use waypost_server::http::api_keys::KeySpec;
use waypost_server::http::{auth, setup};
use waypost_server::startup;

#[derive(Debug, clap::Subcommand)]
pub enum AdminCommand {
    /// Create a workspace and its owner. The password is read from standard
    /// input; without input a strong one is generated and printed once.
    Bootstrap {
        #[arg(long)]
        email: String,
        #[arg(long, value_name = "NAME")]
        workspace: String,
    },
    /// Manage API keys.
    #[command(subcommand, name = "api-key")]
    ApiKey(ApiKeyCommand),
}

#[derive(Debug, clap::Subcommand)]
pub enum ApiKeyCommand {
    /// Create an API key and print it once.
    Create {
        #[arg(long, value_name = "NAME")]
        workspace: String,
        /// Comma-separated, e.g. messages:send,messages:read
        #[arg(long, value_delimiter = ',', required = true)]
        scopes: Vec<String>,
        #[arg(long, default_value = "created by waypost admin")]
        name: String,
        /// Days until the key expires (default: never).
        #[arg(long)]
        expires_in_days: Option<u32>,
    },
}

pub async fn run(config: Config, cmd: AdminCommand) -> anyhow::Result<()> {
    let state = startup::operator_state(config).await?;
    match cmd {
        AdminCommand::Bootstrap { email, workspace } => {
            let email = Email::parse(&email).map_err(|e| anyhow::anyhow!("--email: {e}"))?;
            let workspace = setup::validate_workspace_name(&workspace)
                .map_err(|e| anyhow::anyhow!("--workspace: {e}"))?;
            let (password, generated) = read_or_generate_password()?;
            let hash = auth::hash_new_password(&state, &password, &[email.as_str(), &workspace])
                .await
                .map_err(|e| anyhow::anyhow!("password: {}", describe(e)))?;
            let (ws, user) =
                setup::create_owner(&state, &workspace, email.as_str(), hash, Actor::System)
                    .await
                    .map_err(|e| anyhow::anyhow!("{}", describe(e)))?;
            println!(
                "created workspace {workspace} ({ws}) with owner {} ({user})",
                email.as_str()
            );
            if generated {
                println!("password (shown once): {}", password.expose_secret());
            }
        }
        AdminCommand::ApiKey(ApiKeyCommand::Create {
            workspace,
            scopes,
            name,
            expires_in_days,
        }) => {
            let ws = state
                .store
                .find_workspace_by_name(&workspace)
                .await
                .context("--workspace")?;
            let now = state.clock.now();
            let expires = expires_in_days.map(|d| now + chrono::Duration::days(d as i64));
            let spec = KeySpec::parse(&name, &scopes, &[], expires, now)
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            let (key, record) = spec.mint(&state.keys.current(), &ws.id.to_string(), None, now);
            let event = NewAuditEvent::new(Some(ws.id), Actor::System, "api_key.created")
                .target("api_key", record.id.clone())
                .details(serde_json::json!({ "prefix": record.display_prefix, "scopes": record.scopes, "via": "cli" }));
            state.store.create_api_key(&record, event).await?;
            println!("{key}");
            eprintln!(
                "API key {} for workspace {workspace}: shown once, store it now",
                record.id
            );
        }
    }
    state.store.close().await;
    Ok(())
}

fn describe(e: waypost_server::http::ApiError) -> String {
    match e {
        waypost_server::http::ApiError::Problem(p) => p.detail,
        waypost_server::http::ApiError::Internal(e) => format!("{e:#}"),
    }
}

fn read_or_generate_password() -> anyhow::Result<(SecretString, bool)> {
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        let mut input = String::new();
        stdin
            .lock()
            .take(4096)
            .read_to_string(&mut input)
            .context("reading the password from standard input")?;
        let line = input.lines().next().unwrap_or("").to_owned();
        if !line.is_empty() {
            return Ok((SecretString::from(line), false));
        }
    }
    Ok((waypost_crypto::token::generate_session_token(), true))
}
