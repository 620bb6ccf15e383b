//! What Meta says about a number's standing (`phone_number_quality_update`
//! webhooks): `FLAGGED` means its quality rating dropped to red, `UNFLAGGED`
//! that it recovered; `DOWNGRADE`/`UPGRADE` carry its new messaging tier in
//! `current_limit`. The rating is kept per channel (campaigns on a red number
//! pause themselves, see `campaign_feed`); a new tier replaces the stored one.

use waypost_core::audit::Actor;
use waypost_core::campaign::MessagingTier;
use waypost_core::{NewAuditEvent, WorkspaceId};
use waypost_store::messaging::ChannelRow;

use crate::state::AppState;

/// The stored rating for an event, if it says anything about quality.
fn rating_of(event: &str) -> Option<&'static str> {
    match event {
        "FLAGGED" => Some("RED"),
        // Recovered, but to yellow or green is not said.
        "UNFLAGGED" => Some("UNKNOWN"),
        _ => None,
    }
}

/// Meta's `current_limit` as a messaging tier.
fn tier_of(limit: &str) -> Option<MessagingTier> {
    match limit {
        "TIER_250" => Some(MessagingTier::T250),
        "TIER_1K" => Some(MessagingTier::T1K),
        "TIER_10K" => Some(MessagingTier::T10K),
        "TIER_100K" => Some(MessagingTier::T100K),
        "TIER_UNLIMITED" => Some(MessagingTier::Unlimited),
        _ => None,
    }
}

pub async fn on_quality_webhook(
    state: &AppState,
    channel: &ChannelRow,
    value: &serde_json::Value,
) -> anyhow::Result<()> {
    let event = value["event"].as_str().unwrap_or_default();
    let workspace = WorkspaceId::parse(&channel.workspace_id).ok();
    let now = state.clock.now();
    if let Some(rating) = rating_of(event) {
        let audit = NewAuditEvent::new(workspace, Actor::System, "channel.quality_changed")
            .target("channel", channel.id.clone())
            .details(serde_json::json!({ "event": event, "rating": rating }));
        state
            .store
            .set_channel_quality(&channel.workspace_id, &channel.id, rating, now, audit)
            .await?;
        tracing::warn!(channel_id = %channel.id, event, "number quality changed");
    }
    if matches!(event, "DOWNGRADE" | "UPGRADE")
        && let Some(tier) = value["current_limit"].as_str().and_then(tier_of)
    {
        let audit = NewAuditEvent::new(workspace, Actor::System, "channel.messaging_tier_changed")
            .target("channel", channel.id.clone())
            .details(serde_json::json!({ "event": event, "tier": tier.as_str() }));
        state
            .store
            .set_messaging_tier(
                &channel.workspace_id,
                &channel.id,
                tier.as_str(),
                now,
                audit,
            )
            .await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_map_to_ratings_and_tiers() {
        assert_eq!(rating_of("FLAGGED"), Some("RED"));
        assert_eq!(rating_of("UNFLAGGED"), Some("UNKNOWN"));
        assert_eq!(rating_of("DOWNGRADE"), None);
        assert_eq!(tier_of("TIER_1K"), Some(MessagingTier::T1K));
        assert_eq!(tier_of("TIER_2K"), None);
    }
}
