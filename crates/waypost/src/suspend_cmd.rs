//! `waypost admin suspend|unsuspend|suspensions`: an operator suspends or
//! reinstates an API key, a channel, a user or a workspace from the shell.
//! The same operation as `POST /v1/operator/suspensions`: audited, owners
//! told, enforced on every node within a second.

use waypost_core::audit::Actor;
use waypost_server::ops::suspensions::{self, Source, Suspend};
use waypost_server::state::{AppState, RequestOrigin};

#[derive(Debug, clap::Args)]
pub struct SuspendArgs {
    /// `api_key`, `channel`, `user` or `workspace`.
    pub kind: String,
    /// The target's id (`key_…`, `chn_…`, `usr_…`, `ws_…`).
    pub id: String,
    /// The key's or channel's workspace id.
    #[arg(long)]
    pub workspace: Option<String>,
    #[arg(long)]
    pub reason: String,
}

fn origin() -> RequestOrigin {
    RequestOrigin {
        ip: None,
        user_agent: Some("waypost admin".into()),
        rate_limit: None,
    }
}

fn target(kind: &str) -> anyhow::Result<waypost_core::trust::SuspensionTarget> {
    kind.parse().map_err(|e| anyhow::anyhow!("{e}"))
}

pub async fn suspend(state: &AppState, a: SuspendArgs) -> anyhow::Result<()> {
    let input = Suspend {
        target: target(&a.kind)?,
        target_id: a.id,
        workspace_id: a.workspace,
        reason: a.reason,
    };
    let row = suspensions::suspend(state, &origin(), input, Source::Operator(Actor::System))
        .await
        .map_err(|e| anyhow::anyhow!("{}", crate::admin::describe(e)))?;
    println!(
        "suspended {} {} ({})",
        row.target_kind, row.target_id, row.id
    );
    Ok(())
}

pub async fn unsuspend(state: &AppState, kind: &str, id: &str) -> anyhow::Result<()> {
    let row = suspensions::lift(state, &origin(), Actor::System, target(kind)?, id)
        .await
        .map_err(|e| anyhow::anyhow!("{}", crate::admin::describe(e)))?;
    println!(
        "reinstated {} {} ({})",
        row.target_kind, row.target_id, row.id
    );
    Ok(())
}

pub async fn list(state: &AppState) -> anyhow::Result<()> {
    for s in state.store.list_suspensions(None, 500).await? {
        let status = match s.lifted_at {
            Some(at) => format!("lifted {at}"),
            None => "active".into(),
        };
        println!(
            "{}\t{}\t{}\t{}\t{}\t{}",
            s.id, s.target_kind, s.target_id, s.source, status, s.reason
        );
    }
    Ok(())
}
