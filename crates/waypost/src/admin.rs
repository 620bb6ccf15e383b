//! `waypost admin …`: operator commands that act directly on the database:
//! bootstrap, API keys, platform operator tokens, and help for one account.

use std::io::{IsTerminal, Read};

use anyhow::Context;
use secrecy::{ExposeSecret, SecretString};
use waypost_core::NewAuditEvent;
use waypost_core::audit::Actor;
use waypost_core::auth::Email;
use waypost_server::Config;
use waypost_server::ops::api_keys::KeySpec;
use waypost_server::ops::{accounts, setup};
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
    /// Manage platform operator tokens (for /v1/operator routes, e.g. the incident register).
    #[command(subcommand, name = "operator-token")]
    OperatorToken(OperatorTokenCommand),
    /// Help one account: unlock, reset its second factors, issue a reset link.
    #[command(subcommand)]
    User(crate::user_cmd::UserCommand),
    /// Suspend an API key, a channel (its outbox is held), a user or a workspace.
    Suspend(crate::suspend_cmd::SuspendArgs),
    /// Lift a suspension.
    Unsuspend {
        /// `api_key`, `channel`, `user` or `workspace`.
        kind: String,
        id: String,
    },
    /// List suspensions, newest first.
    Suspensions,
    /// The rate card that prices billable messages in usage reports.
    #[command(subcommand, name = "rate-card")]
    RateCard(RateCardCommand),
}

#[derive(Debug, clap::Subcommand)]
pub enum RateCardCommand {
    /// Replace the rate card with a CSV file: `category,currency,unit_price[,country]`.
    Load { file: std::path::PathBuf },
    /// Print the loaded rate card.
    Show,
}

#[derive(Debug, clap::Subcommand)]
pub enum OperatorTokenCommand {
    /// Create an operator token and print it once.
    Create {
        #[arg(long, value_name = "NAME")]
        name: String,
    },
    /// List operator tokens (prefixes only, never the tokens).
    List,
    /// Revoke an operator token at once.
    Revoke {
        /// The token's id (`opt_…`), as `list` shows it.
        id: String,
    },
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
            let hash =
                accounts::hash_new_password(&state, &password, &[email.as_str(), &workspace])
                    .await
                    .map_err(|e| anyhow::anyhow!("password: {}", describe(e)))?;
            let (ws, user) =
                setup::create_owner(&state, &workspace, email.as_str(), hash, Actor::System)
                    .await
                    .map_err(|e| anyhow::anyhow!("{}", describe(e)))?;
            waypost_server::ops::email_change::verify_new_account(&state, &user, email.as_str())
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
        AdminCommand::OperatorToken(cmd) => operator_token(&state, cmd).await?,
        AdminCommand::Suspend(args) => crate::suspend_cmd::suspend(&state, args).await?,
        AdminCommand::Unsuspend { kind, id } => {
            crate::suspend_cmd::unsuspend(&state, &kind, &id).await?
        }
        AdminCommand::Suspensions => crate::suspend_cmd::list(&state).await?,
        AdminCommand::User(cmd) => crate::user_cmd::run(&state, cmd).await?,
        AdminCommand::RateCard(cmd) => rate_card(&state, cmd).await?,
    }
    state.store.close().await;
    Ok(())
}

async fn rate_card(
    state: &waypost_server::state::AppState,
    cmd: RateCardCommand,
) -> anyhow::Result<()> {
    match cmd {
        RateCardCommand::Load { file } => {
            let csv = std::fs::read_to_string(&file)
                .with_context(|| format!("reading {}", file.display()))?;
            let origin = waypost_server::state::RequestOrigin {
                ip: None,
                user_agent: Some("waypost admin".into()),
                rate_limit: None,
            };
            let rates =
                waypost_server::ops::usage::load_rate_card(state, &origin, Actor::System, &csv)
                    .await
                    .map_err(|e| anyhow::anyhow!("{}", describe(e)))?;
            println!("loaded {} prices in {}", rates.len(), rates[0].currency);
        }
        RateCardCommand::Show => {
            for r in state.store.rate_card().await? {
                println!(
                    "{}\t{}\t{}\t{}",
                    r.category,
                    if r.country.is_empty() {
                        "default"
                    } else {
                        &r.country
                    },
                    r.currency,
                    waypost_core::usage::format_micros(r.unit_price_micros.into())
                );
            }
        }
    }
    Ok(())
}

async fn operator_token(
    state: &waypost_server::state::AppState,
    cmd: OperatorTokenCommand,
) -> anyhow::Result<()> {
    use waypost_crypto::operator_token::generate_operator_token;
    use waypost_store::operators::OperatorTokenRecord;
    let now = state.clock.now();
    match cmd {
        OperatorTokenCommand::Create { name } => {
            let name = name.trim();
            if name.is_empty() || name.chars().count() > 100 {
                anyhow::bail!("--name: must be 1 to 100 characters");
            }
            let token = generate_operator_token();
            let record = OperatorTokenRecord {
                id: waypost_core::OperatorTokenId::new().to_string(),
                name: name.to_owned(),
                display_prefix: token.display_prefix.clone(),
                token_hash: waypost_crypto::operator_token::operator_token_hash(
                    &state.keys.current(),
                    token.secret.expose_secret(),
                )
                .to_vec(),
                created_at: now,
                last_used_at: None,
                revoked_at: None,
            };
            let event = NewAuditEvent::new(None, Actor::System, "operator_token.created")
                .target("operator_token", record.id.clone())
                .details(serde_json::json!({ "prefix": record.display_prefix, "name": record.name, "via": "cli" }));
            state.store.create_operator_token(&record, event).await?;
            println!("{}", token.secret.expose_secret());
            eprintln!(
                "operator token {} ({}): shown once, store it now",
                record.id, record.name
            );
        }
        OperatorTokenCommand::List => {
            for t in state.store.list_operator_tokens().await? {
                let state = match (t.revoked_at, t.last_used_at) {
                    (Some(at), _) => format!("revoked {}", at.to_rfc3339()),
                    (None, Some(at)) => format!("last used {}", at.to_rfc3339()),
                    (None, None) => "never used".to_owned(),
                };
                println!("{}\t{}…\t{}\t{}", t.id, t.display_prefix, t.name, state);
            }
        }
        OperatorTokenCommand::Revoke { id } => {
            let event = NewAuditEvent::new(None, Actor::System, "operator_token.revoked")
                .target("operator_token", id.clone())
                .details(serde_json::json!({ "via": "cli" }));
            state
                .store
                .revoke_operator_token(&id, now, event)
                .await
                .context("operator token")?;
            println!("revoked operator token {id}");
        }
    }
    Ok(())
}

pub(crate) fn describe(e: waypost_server::error::ApiError) -> String {
    match e {
        waypost_server::error::ApiError::Problem(p) => p.detail,
        waypost_server::error::ApiError::Internal(e) => format!("{e:#}"),
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
