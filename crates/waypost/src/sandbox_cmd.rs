//! `waypost sandbox`: runs the Cloud API emulator until Ctrl-C, printing
//! what an app needs to point at it.

use std::net::SocketAddr;
use std::path::Path;

use waypost_sandbox::{RunningSandbox, Sandbox, SandboxConfig};

pub async fn run(
    config_file: Option<&Path>,
    listen: Option<SocketAddr>,
    seed: Option<u64>,
) -> anyhow::Result<()> {
    let sandbox = start(config_file, listen, seed).await?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r?,
        () = sandbox.stopped() => {}
    }
    sandbox.shutdown();
    Ok(())
}

/// Starts the emulator (default 127.0.0.1:9090) and prints how to reach it.
pub async fn start(
    config_file: Option<&Path>,
    listen: Option<SocketAddr>,
    seed: Option<u64>,
) -> anyhow::Result<RunningSandbox> {
    let mut config = match config_file {
        Some(path) => SandboxConfig::from_toml_file(path)?,
        None => SandboxConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 9090)),
            ..SandboxConfig::default()
        },
    };
    if let Some(addr) = listen {
        config.listen = addr;
    }
    if let Some(seed) = seed {
        config.seed = seed;
    }
    let sandbox = Sandbox::start(config).await?;
    // A local test tool: its credentials are printed on purpose.
    println!("WhatsApp Cloud API sandbox listening");
    println!(
        "  base URL:      {} (the /vNN.N version prefix is optional)",
        sandbox.base_url()
    );
    println!("  control token: {}", sandbox.control_token());
    for n in sandbox.numbers() {
        println!(
            "  number {} (WABA {}, +{})",
            n.id, n.waba_id, n.display_number
        );
        println!("    access token: {}", n.access_token);
        println!("    app secret:   {}", n.app_secret);
        println!("    verify token: {}", n.verify_token);
        match &n.webhook_url {
            Some(url) => println!("    webhooks to:  {url}"),
            None => println!("    webhooks:     off (no webhook_url configured)"),
        }
    }
    Ok(sandbox)
}
