//! The checks a well-formed send must pass before Meta would accept it,
//! each answered with Meta's code and HTTP status: throughput (130429),
//! recipient not on WhatsApp (131026), template existence and approval
//! (132001), paused/disabled (132015/132016), parameter count (132000),
//! marketing opt-out (131050), the 24 h window (131047), the messaging
//! tier (131048) and the pair rate (131056). These answer synchronously;
//! Meta sometimes reports 131026/131047/131050 by webhook instead.

use std::time::Instant;

use waypost_cloudapi::template::{ComponentKind, TemplateMessage};
use waypost_cloudapi::{OutboundContent, OutboundMessage};

use crate::config::{LimitsConfig, NumberConfig};
use crate::error::GraphError;
use crate::state::Inner;

/// Checks a send; on success returns its pricing category (lower case).
pub fn admit(
    inner: &mut Inner,
    number: &NumberConfig,
    message: &OutboundMessage,
    to: &str,
    now: Instant,
    limits: &LimitsConfig,
) -> Result<String, GraphError> {
    let throughput_ok = inner
        .rates
        .entry(number.id.clone())
        .or_default()
        .has_room(now, number.throughput);
    if !throughput_ok {
        return Err(GraphError::throughput(limits.throttle_status));
    }
    let user = inner.user(to).config.clone();
    if user.not_on_whatsapp {
        return Err(GraphError::new(
            400,
            131026,
            "Message undeliverable",
            "Unable to deliver message: the recipient is not a WhatsApp user.",
        ));
    }
    let category = match &message.content {
        OutboundContent::Template(t) => {
            let category = check_template(inner, number, t)?;
            if category == "marketing" && user.stopped_marketing {
                return Err(GraphError::new(
                    400,
                    131050,
                    "Unable to deliver the message. This recipient has chosen to stop receiving marketing messages on WhatsApp from your business.",
                    "The user has stopped marketing messages from this business.",
                ));
            }
            category
        }
        _ => {
            if !inner.window_open(&number.id, to, now) {
                return Err(GraphError::new(
                    400,
                    131047,
                    "Re-engagement message",
                    "Message failed to send because more than 24 hours have passed since the customer last replied to this number.",
                ));
            }
            "service".to_owned()
        }
    };
    if !inner.window_open(&number.id, to, now)
        && !inner.admit_tier(&number.id, to, now, number.messaging_tier)
    {
        return Err(GraphError::new(
            400,
            131048,
            "Spam rate limit hit",
            format!(
                "Messaging limit reached: at most {} unique users outside a service window per 24 hours.",
                number.messaging_tier
            ),
        ));
    }
    if !inner.take_pair_token(
        &number.id,
        to,
        now,
        limits.pair_interval_ms,
        limits.pair_burst,
    ) {
        return Err(GraphError::new(
            400,
            131056,
            "(Business Account, Consumer Account) pair rate limit hit",
            "Message failed to send because there were too many messages sent from this phone number to the same phone number in a short period of time.",
        ));
    }
    Ok(category)
}

fn check_template(
    inner: &Inner,
    number: &NumberConfig,
    t: &TemplateMessage,
) -> Result<String, GraphError> {
    let missing = || {
        GraphError::new(
            404,
            132001,
            "Template name does not exist in the translation",
            format!(
                "template name ({}) does not exist in {} or is not approved",
                t.name, t.language.code
            ),
        )
    };
    let template = inner
        .templates
        .iter()
        .find(|x| x.waba_id == number.waba_id && x.name == t.name && x.language == t.language.code)
        .ok_or_else(missing)?;
    match template.status.as_str() {
        "APPROVED" => {}
        "PAUSED" => {
            return Err(GraphError::new(
                400,
                132015,
                "Template is Paused",
                format!("Template {} is paused due to low quality.", t.name),
            ));
        }
        "DISABLED" => {
            return Err(GraphError::new(
                400,
                132016,
                "Template is Disabled",
                format!(
                    "Template {} was paused too many times and is disabled.",
                    t.name
                ),
            ));
        }
        _ => return Err(missing()),
    }
    let count = |kind: ComponentKind| -> usize {
        t.components
            .iter()
            .filter(|c| c.kind == kind)
            .map(|c| c.parameters.len())
            .sum()
    };
    for (what, expected, got) in [
        ("body", template.body_params, count(ComponentKind::Body)),
        (
            "header",
            template.header_params,
            count(ComponentKind::Header),
        ),
    ] {
        if expected != got {
            return Err(GraphError::new(
                400,
                132000,
                "Number of parameters does not match the expected number of params",
                format!(
                    "{what}: number of localizable_params ({got}) does not match the expected number of params ({expected})"
                ),
            ));
        }
    }
    Ok(template.category.to_ascii_lowercase())
}
