//! Asking the provider about a channel's number: its display number, verified
//! name, quality rating and messaging limits, or why it could not answer (in
//! our words only, never the remote body).

use serde::Serialize;
use utoipa::ToSchema;

use super::Ctx;
use crate::error::ApiError;
use crate::messaging::client_for;
use crate::state::AppState;

#[derive(Serialize, ToSchema)]
pub struct ChannelCheck {
    /// Whether the provider answered for this number.
    pub ok: bool,
    pub display_phone_number: Option<String>,
    pub verified_name: Option<String>,
    pub quality_rating: Option<String>,
    /// The messaging limit tier, e.g. `TIER_1K`.
    pub messaging_limit_tier: Option<String>,
    pub throughput_level: Option<String>,
    /// The provider's error code and a description of the failure when `ok` is
    /// false (never the provider's own text: the answer may come from anywhere).
    pub error_code: Option<i64>,
    pub error: Option<String>,
}

/// Asks the provider about the channel's number.
pub async fn check(state: &AppState, ctx: &Ctx, id: &str) -> Result<ChannelCheck, ApiError> {
    let row = state.store.get_channel(&ctx.workspace, id).await?;
    let client = client_for(&state.keys, &state.config, &row).map_err(ApiError::Internal)?;
    Ok(match client.phone_number(&row.phone_number_id).await {
        Ok(info) => ChannelCheck {
            ok: true,
            display_phone_number: info.display_phone_number,
            verified_name: info.verified_name,
            quality_rating: info
                .quality_rating
                .and_then(|q| serde_json::to_value(q).ok())
                .and_then(|v| v.as_str().map(str::to_owned)),
            messaging_limit_tier: info.messaging_limit_tier,
            throughput_level: info.throughput.map(|t| t.level),
            error_code: None,
            error: None,
        },
        Err(e) => ChannelCheck {
            ok: false,
            display_phone_number: None,
            verified_name: None,
            quality_rating: None,
            messaging_limit_tier: None,
            throughput_level: None,
            error_code: e.meta().map(|m| m.code),
            error: Some(check_failure(&e)),
        },
    })
}

/// What went wrong, in our words only: nothing of the remote answer's body and
/// one text for every connection failure, so the check reveals neither what a
/// server says nor which ports are open.
fn check_failure(e: &waypost_cloudapi::ClientError) -> String {
    use waypost_cloudapi::ClientError as E;
    match e {
        E::Api { status, error, .. } => {
            format!("the provider refused the request (HTTP {status}, code {})", error.code)
        }
        E::Http { status, .. } => {
            format!("the provider answered HTTP {status} without a Graph API error")
        }
        E::Decode { status, .. } => {
            format!("the answer (HTTP {status}) is not a Graph API phone number")
        }
        E::TooLarge { .. } => "the provider's answer is too large".into(),
        E::Timeout | E::Connect(_) | E::Transport(_) => {
            "cannot reach the provider at the channel's base_url (unreachable, or refused by this server's address policy)".into()
        }
        E::Refused(_) => {
            "the channel's base_url points at an address this server does not connect to".into()
        }
        E::InvalidArgument(_) | E::Config(_) => "the channel's settings are not valid".into(),
    }
}
