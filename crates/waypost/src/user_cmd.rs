//! `waypost admin user …`: an operator's help for one account, each audited.

use waypost_server::ops::account_admin;
use waypost_server::state::AppState;

#[derive(Debug, clap::Subcommand)]
pub enum UserCommand {
    /// Lift a lockout after failed sign-ins.
    Unlock {
        #[arg(long)]
        email: String,
    },
    /// Remove every second factor (TOTP, recovery codes, passkeys); the holder is told by mail.
    ResetMfa {
        #[arg(long)]
        email: String,
    },
    /// Print a one-time password reset link (valid 30 minutes) to hand over
    /// when no mail is configured; with mail it is sent too.
    ResetLink {
        #[arg(long)]
        email: String,
    },
}

pub async fn run(state: &AppState, cmd: UserCommand) -> anyhow::Result<()> {
    let fail = |e| anyhow::anyhow!("{}", crate::admin::describe(e));
    match cmd {
        UserCommand::Unlock { email } => {
            let user = account_admin::unlock(state, &email).await.map_err(fail)?;
            println!("unlocked {}", user.id);
        }
        UserCommand::ResetMfa { email } => {
            let (totp, passkeys) = account_admin::reset_mfa(state, &email)
                .await
                .map_err(fail)?;
            println!(
                "removed second factors: TOTP {}, {passkeys} passkey(s)",
                if totp { "was on" } else { "was off" }
            );
        }
        UserCommand::ResetLink { email } => {
            let link = account_admin::reset_link(state, &email)
                .await
                .map_err(fail)?;
            println!("{link}");
            eprintln!("one-time link, valid 30 minutes: hand it to the account holder only");
        }
    }
    Ok(())
}
