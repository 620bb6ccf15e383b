//! `waypost webhooks verify`: checks a received delivery's signature the way
//! receivers should, for debugging a receiver. Needs no configuration.

use std::io::Read;

use clap::Subcommand;
use waypost_crypto::webhook::WebhookKey;

#[derive(Debug, Subcommand)]
pub enum WebhooksCommand {
    /// Verify a delivery: the body on stdin, the headers as options (exit 1 if it does not verify).
    Verify {
        /// The endpoint's secret (`whsec_…`); may come from WEBHOOK_SECRET instead.
        #[arg(long, env = "WEBHOOK_SECRET", hide_env_values = true)]
        secret: String,
        /// The `webhook-id` header.
        #[arg(long)]
        id: String,
        /// The `webhook-timestamp` header.
        #[arg(long)]
        timestamp: String,
        /// The `webhook-signature` header (one or more space-separated `v1,…`).
        #[arg(long)]
        signature: String,
        /// Skip the 5-minute timestamp tolerance (for old captured deliveries).
        #[arg(long)]
        ignore_time: bool,
    },
}

pub fn run(cmd: WebhooksCommand) -> anyhow::Result<()> {
    let WebhooksCommand::Verify {
        secret,
        id,
        timestamp,
        signature,
        ignore_time,
    } = cmd;
    let key = WebhookKey::parse(&secret).map_err(|e| anyhow::anyhow!("--secret: {e}"))?;
    let mut body = Vec::new();
    std::io::stdin().read_to_end(&mut body)?;
    let now = (!ignore_time).then(|| chrono::Utc::now().timestamp());
    key.verify(&id, &timestamp, &signature, &body, now)
        .map_err(|e| anyhow::anyhow!("the signature does not verify: {e}"))?;
    println!(
        "valid: signed by this secret over {} body bytes",
        body.len()
    );
    Ok(())
}
