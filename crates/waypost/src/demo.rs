//! `waypost serve --demo`: the server with the sandbox in process, a demo
//! workspace, owner, sandbox channel and API key, and the commands of a first tour.

use std::net::SocketAddr;

use secrecy::ExposeSecret;
use waypost_core::audit::Actor;
use waypost_core::auth::Scope;
use waypost_core::{ChannelId, NewAuditEvent};
use waypost_sandbox::{NumberConfig, Sandbox, SandboxConfig, WebhookConfig};
use waypost_server::Application;
use waypost_server::messaging::{ChannelSecret, seal_secret};
use waypost_server::ops::api_keys::KeySpec;
use waypost_server::state::AppState;
use waypost_store::messaging::ChannelRow;

const WORKSPACE: &str = "demo";
const OWNER_EMAIL: &str = "demo@waypost.local";
/// The sandbox user who writes to the demo number.
const CUSTOMER: &str = "4915123456789";

pub async fn serve(
    mut config: waypost_server::Config,
    sandbox_listen: Option<SocketAddr>,
) -> anyhow::Result<()> {
    // The demo's provider is the sandbox on this machine: channels may point at it.
    config.channel_allow_private_targets = true;
    // With TLS the sandbox posts its webhooks to `https://localhost`, the name
    // a local certificate is made for, and trusts the server's certificate.
    let tls_cert = config.tls_cert.clone();
    let trusted_certificate_pem = match &config.tls_cert {
        Some(path) => Some(std::fs::read_to_string(path).map_err(|e| {
            anyhow::anyhow!("WAYPOST_TLS_CERT: cannot read {}: {e}", path.display())
        })?),
        None => None,
    };
    let app = Application::build(config).await?;
    let state = app.state().clone();
    let server = match trusted_certificate_pem {
        Some(_) => format!("https://localhost:{}", app.port()),
        None => format!("http://127.0.0.1:{}", app.port()),
    };
    let workspace = demo_workspace(&state).await?;
    let owner_password = demo_owner_password(&state).await?;
    let number = NumberConfig::default();
    let channel = demo_channel(&state, workspace, &number).await?;
    let sandbox = Sandbox::start(SandboxConfig {
        listen: sandbox_listen.unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 9090))),
        numbers: vec![NumberConfig {
            webhook_url: Some(format!("{server}/webhooks/whatsapp/{}", channel.id)),
            ..number
        }],
        webhooks: WebhookConfig {
            trusted_certificate_pem,
            ..WebhookConfig::default()
        },
        ..SandboxConfig::default()
    })
    .await?;
    let base_url = sandbox.base_url().to_string();
    if channel.base_url.as_deref() != Some(base_url.as_str()) {
        let mut updated = channel.clone();
        updated.base_url = Some(base_url.clone());
        updated.updated_at = state.clock.now();
        let audit = NewAuditEvent::new(Some(workspace), Actor::System, "channel.updated")
            .target("channel", channel.id.clone())
            .details(
                serde_json::json!({ "changed": ["base_url"], "reason": "demo sandbox address" }),
            );
        state.store.update_channel(&updated, audit).await?;
    }
    let key = demo_key(&state, workspace).await?;
    let control = sandbox.control_token().to_owned();
    let sandbox_root = base_url.trim_end_matches('/');
    // The demo's credentials are printed on purpose: it is a local tour.
    println!("Waypost demo: API on {server}, sandbox provider on {base_url}");
    println!(
        "Dashboard: {server}/ (sign in as {OWNER_EMAIL} / {owner_password}; the password is new on every start)"
    );
    println!("API key (new on every start): {key}");
    if let Some(cert) = &tls_cert {
        // curl trusts the public roots only; a local certificate must be named.
        println!(
            "TLS: the server's certificate is {}; give it to curl with --cacert if it is self-signed",
            cert.display()
        );
    }
    if let Some(owner) = waypost_server::emails::user_by_email(&state, OWNER_EMAIL).await? {
        // For assigning conversations through the API.
        println!("Owner's member id: {}", owner.id);
    }
    println!();
    println!("1. A customer writes to your number (this opens the 24-hour window):");
    println!(
        "  curl -s -X POST {sandbox_root}/_sandbox/inbound -H 'authorization: Bearer {control}' -H 'content-type: application/json' \\\n    -d '{{\"from\":\"{CUSTOMER}\",\"message\":{{\"type\":\"text\",\"text\":{{\"body\":\"Hi, is my order on its way?\"}}}}}}'"
    );
    println!("2. Read what they wrote (the demo workspace keeps content for 7 days):");
    println!("  curl -s '{server}/v1/messages?direction=inbound' -H 'authorization: Bearer {key}'");
    println!("3. Reply:");
    println!(
        "  curl -s -X POST {server}/v1/messages -H 'authorization: Bearer {key}' -H 'content-type: application/json' \\\n    -H 'idempotency-key: first-message' -d '{{\"channel_id\":\"{}\",\"to\":\"+{CUSTOMER}\",\"type\":\"text\",\"text\":{{\"body\":\"Yes! It ships today.\"}}}}'",
        channel.id
    );
    println!("4. Watch its status move queued → sent → delivered → read:");
    println!("  curl -s {server}/v1/messages?direction=outbound -H 'authorization: Bearer {key}'");
    println!("5. The customer replies STOP; step 3 is then refused with recipient-opted-out.");
    let outcome = app.run_until_stopped().await;
    sandbox.shutdown();
    outcome
}

/// The demo workspace, created with its owner on the first run.
async fn demo_workspace(state: &AppState) -> anyhow::Result<waypost_core::WorkspaceId> {
    if let Ok(ws) = state.store.find_workspace_by_name(WORKSPACE).await {
        return Ok(ws.id);
    }
    let password = waypost_crypto::token::generate_session_token();
    let hash = state.hasher.hash(password.expose_secret());
    let (ws, _) = waypost_server::ops::setup::create_owner(
        state,
        WORKSPACE,
        OWNER_EMAIL,
        hash,
        Actor::System,
    )
    .await
    .map_err(|e| anyhow::anyhow!("cannot create the demo workspace: {e:?}"))?;
    // The tour shows what the customer wrote, so the demo keeps content a week
    // (the default for real workspaces stays `none`).
    let settings = waypost_store::messaging::MessagingSettings {
        content_retention: "days:7".parse().expect("a valid retention"),
        ..state.store.messaging_settings(&ws.to_string()).await?
    };
    let audit = NewAuditEvent::new(Some(ws), Actor::System, "workspace.updated")
        .details(serde_json::json!({"changed": ["content_retention"], "reason": "demo"}));
    state
        .store
        .update_messaging_settings(&ws.to_string(), &settings, audit)
        .await?;
    state.lookups.invalidate();
    println!("Created the demo workspace (keeps message content for 7 days).");
    Ok(ws)
}

/// A fresh password for the demo owner (like the API key, new on every start,
/// since only its hash is kept); the owner's earlier sessions end.
async fn demo_owner_password(state: &AppState) -> anyhow::Result<String> {
    let owner = waypost_server::emails::user_by_email(state, OWNER_EMAIL)
        .await?
        .ok_or_else(|| anyhow::anyhow!("the demo owner {OWNER_EMAIL} is missing"))?;
    let password = waypost_crypto::token::generate_session_token();
    let hash = state.hasher.hash(password.expose_secret());
    let audit = NewAuditEvent::new(None, Actor::System, "auth.password_changed")
        .target("user", owner.id.clone())
        .details(serde_json::json!({ "reason": "demo start" }));
    state
        .store
        .change_password(&owner.id, &hash, "", state.clock.now(), audit)
        .await?;
    Ok(password.expose_secret().to_owned())
}

/// The workspace's sandbox channel, created on the first run.
async fn demo_channel(
    state: &AppState,
    workspace: waypost_core::WorkspaceId,
    number: &NumberConfig,
) -> anyhow::Result<ChannelRow> {
    let ws = workspace.to_string();
    if let Some(existing) = state
        .store
        .list_channels(&ws)
        .await?
        .into_iter()
        .find(|c| c.provider == "sandbox" && c.phone_number_id == number.id)
    {
        return Ok(existing);
    }
    let id = ChannelId::new().to_string();
    let now = state.clock.now();
    let row = ChannelRow {
        workspace_id: ws,
        name: "Sandbox number".into(),
        provider: "sandbox".into(),
        phone_number_id: number.id.clone(),
        waba_id: number.waba_id.clone(),
        access_token: seal_secret(
            &state.keys,
            &id,
            ChannelSecret::AccessToken,
            &number.access_token,
        ),
        app_secret: seal_secret(
            &state.keys,
            &id,
            ChannelSecret::AppSecret,
            &number.app_secret,
        ),
        verify_token: seal_secret(
            &state.keys,
            &id,
            ChannelSecret::VerifyToken,
            &number.verify_token,
        ),
        base_url: None,
        api_version: None,
        throughput_mps: number.throughput as i64,
        created_at: now,
        updated_at: now,
        deleted_at: None,
        id,
    };
    let audit = NewAuditEvent::new(Some(workspace), Actor::System, "channel.created")
        .target("channel", row.id.clone())
        .details(serde_json::json!({ "provider": "sandbox", "demo": true }));
    state.store.create_channel(&row, audit).await?;
    Ok(row)
}

/// A fresh API key with every scope (keys are stored hashed, so an old one cannot be shown again).
async fn demo_key(
    state: &AppState,
    workspace: waypost_core::WorkspaceId,
) -> anyhow::Result<String> {
    let now = state.clock.now();
    let scopes: Vec<String> = Scope::ALL.iter().map(|s| s.as_str().to_owned()).collect();
    let spec = KeySpec::parse("demo", &scopes, &[], None, now).map_err(|e| anyhow::anyhow!(e))?;
    let (key, record) = spec.mint(&state.keys.current(), &workspace.to_string(), None, now);
    let audit = NewAuditEvent::new(Some(workspace), Actor::System, "api_key.created")
        .target("api_key", record.id.clone())
        .details(serde_json::json!({ "name": "demo", "prefix": record.display_prefix }));
    state.store.create_api_key(&record, audit).await?;
    Ok(key)
}
