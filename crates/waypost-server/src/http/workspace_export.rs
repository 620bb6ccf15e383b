//! `GET /v1/workspace/export`: everything an owner may want to keep before
//! deleting a workspace, as JSON lines in the API's own shapes, streamed a
//! page at a time: the workspace, members, channels (no secrets), webhook
//! endpoints (no secrets), templates, then every contact, then the audit log.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use futures_util::{StreamExt, stream};
use serde::Serialize;
use waypost_core::audit::chain_name;
use waypost_store::templates::TemplateFilter;

use super::ApiError;
use crate::auth::Authorized;
use crate::auth::caller::require_recent_auth;
use crate::auth::permission::act;
use crate::ops::audiences::{AudienceFilter, find_contacts};
use crate::ops::{Ctx, webhook_endpoints, workspace};
use crate::state::{AppState, RequestOrigin};

const PAGE: u32 = 500;

/// One line of the export.
#[derive(Serialize)]
struct Line<'a, T: Serialize> {
    kind: &'a str,
    #[serde(flatten)]
    item: T,
}

fn push<T: Serialize>(out: &mut Vec<u8>, kind: &str, item: T) {
    serde_json::to_writer(&mut *out, &Line { kind, item }).expect("export views serialise");
    out.push(b'\n');
}

/// Where the stream is.
enum Next {
    Contacts(Option<String>),
    Audit(i64),
}

/// The whole workspace as JSON lines (`kind` names each line: `workspace`,
/// `member`, `channel`, `webhook_endpoint`, `template`, `contact`,
/// `audit_event`). Owners and admins; a recent sign-in required.
#[utoipa::path(get, path = "/v1/workspace/export", operation_id = "export_workspace", tag = "members",
    responses((status = 200, description = "One JSON object per line", content_type = "application/x-ndjson", body = String)),
    security(("session" = [])))]
pub async fn export(
    State(state): State<AppState>,
    origin: RequestOrigin,
    auth: Authorized<act::WorkspaceManage>,
) -> Result<Response, ApiError> {
    require_recent_auth(&state, &auth.caller)?;
    stream_export(state, &Ctx::of(&auth, origin)).await
}

/// The export as a streamed response (the caller has checked who asks).
pub(crate) async fn stream_export(state: AppState, ctx: &Ctx) -> Result<Response, ApiError> {
    workspace::record_export(&state, ctx).await?;
    let mut head = Vec::new();
    let ws: super::workspace::WorkspaceView = workspace::settings(&state, ctx).await?.into();
    push(&mut head, "workspace", ws);
    for m in crate::ops::members::list(&state, ctx).await? {
        push(
            &mut head,
            "member",
            serde_json::json!({
                "user_id": m.record.user_id, "email": m.record.email, "role": m.record.role,
                "joined_at": m.record.created_at, "mfa_enabled": m.record.mfa_enabled,
                "last_sign_in_at": m.record.last_sign_in_at,
            }),
        );
    }
    for c in crate::ops::channels::list(&state, ctx).await? {
        push(&mut head, "channel", super::channels::view(&state, c));
    }
    for e in webhook_endpoints::list(&state, ctx).await? {
        push(
            &mut head,
            "webhook_endpoint",
            super::webhooks::EndpointView::from(e),
        );
    }
    for r in crate::ops::automation::list_rules(&state, ctx).await? {
        push(&mut head, "automation_rule", r);
    }
    if let Some(a) = state.store.assistant_settings(&ctx.workspace).await? {
        push(&mut head, "assistant", crate::ops::assistant::view(a));
    }
    for k in crate::ops::knowledge::list(&state, ctx).await? {
        push(&mut head, "knowledge_document", k);
    }
    let mut filter = TemplateFilter::default();
    loop {
        let rows = state
            .store
            .list_templates(&ctx.workspace, &filter, 100)
            .await?;
        filter.after = rows.last().map(|t| t.id.clone());
        let more = rows.len() == 100;
        for t in rows {
            push(&mut head, "template", super::templates::view(t));
        }
        if !more {
            break;
        }
    }

    let workspace_id = ctx.workspace_id;
    let ws = ctx.workspace.clone();
    let lines = stream::unfold(Some(Next::Contacts(None)), move |next| {
        let state = state.clone();
        let ws = ws.clone();
        async move {
            let mut out = Vec::new();
            let following = match next? {
                Next::Contacts(after) => {
                    match find_contacts(&state, &ws, &AudienceFilter::default(), after, PAGE).await
                    {
                        Ok((rows, cursor)) => match super::contacts::views(&state, rows).await {
                            Ok(views) => {
                                views.into_iter().for_each(|c| push(&mut out, "contact", c));
                                Some(cursor.map_or(Next::Audit(0), |c| Next::Contacts(Some(c))))
                            }
                            Err(e) => return Some((Err(failed(&e)), None)),
                        },
                        Err(e) => return Some((Err(failed(&e)), None)),
                    }
                }
                Next::Audit(after_seq) => {
                    let filter = waypost_store::AuditFilter {
                        chain: chain_name(Some(workspace_id)),
                        after_seq,
                        actor_id: None,
                        action: None,
                        target_id: None,
                        since: None,
                        until: None,
                        limit: PAGE,
                    };
                    match state.store.search_audit_events(&filter).await {
                        Ok(page) => {
                            let last = page.last().map(|e| e.seq);
                            let more = page.len() as u32 == PAGE;
                            page.into_iter()
                                .for_each(|e| push(&mut out, "audit_event", super::audit::view(e)));
                            last.filter(|_| more).map(Next::Audit)
                        }
                        Err(e) => return Some((Err(failed(&e.into())), None)),
                    }
                }
            };
            Some((Ok::<_, std::io::Error>(out), following))
        }
    });
    let body = stream::once(async move { Ok::<_, std::io::Error>(head) }).chain(lines);
    let file = format!("attachment; filename=\"waypost-{workspace_id}.ndjson\"");
    Ok((
        [
            (
                axum::http::header::CONTENT_TYPE,
                "application/x-ndjson".to_owned(),
            ),
            (axum::http::header::CONTENT_DISPOSITION, file),
        ],
        axum::body::Body::from_stream(body),
    )
        .into_response())
}

fn failed(e: &ApiError) -> std::io::Error {
    tracing::error!(error = ?e, "workspace export failed mid-stream");
    std::io::Error::other("workspace export failed")
}
