//! The checks a well-formed send must pass before Meta would accept it,
//! each answered with Meta's code and HTTP status: throughput (130429),
//! recipient not on WhatsApp (131026), template existence and approval
//! (132001), paused/disabled (132015/132016), parameter count (132000),
//! marketing opt-out (131050), the 24 h window (131047), the messaging
//! tier (131048) and the pair rate (131056). Recipient failures Meta
//! reports by webhook (131026, 131047, 131049, 131050, 131053 for a media
//! id it cannot fetch) are accepted and fail later in a `failed` status,
//! unless `api.sync_errors` asks for the old synchronous 400 answers.

use std::time::Instant;

use waypost_cloudapi::send::MediaSource;
use waypost_cloudapi::template::{ComponentKind, TemplateMessage};
use waypost_cloudapi::{OutboundContent, OutboundMessage};

use crate::config::{LimitsConfig, NumberConfig};
use crate::error::GraphError;
use crate::state::Inner;

/// An accepted send: its pricing and, for an asynchronous failure, the
/// error its `failed` status webhook will carry.
#[derive(Debug, Clone)]
pub struct Admission {
    /// Pricing category, lower case.
    pub category: String,
    /// `pricing.type`: `regular` or `free_customer_service`.
    pub pricing_type: &'static str,
    pub fails_with: Option<GraphError>,
}

impl Admission {
    fn failing(category: String, e: GraphError) -> Self {
        Self {
            category,
            pricing_type: "regular",
            fails_with: Some(e),
        }
    }
}

/// How the send was addressed.
#[derive(Debug, Clone, Copy)]
pub struct Addressing {
    /// `recipient` (a BSUID) without `to`.
    pub by_user_id: bool,
    /// Answer recipient failures with HTTP 400 instead of a webhook.
    pub sync_errors: bool,
}

/// Checks a send; on success returns how it is priced and whether it will
/// fail asynchronously.
pub fn admit(
    inner: &mut Inner,
    number: &NumberConfig,
    message: &OutboundMessage,
    to: &str,
    addressing: Addressing,
    now: Instant,
    limits: &LimitsConfig,
) -> Result<Admission, GraphError> {
    // A failure Meta reports later: accepted now unless the old answers are asked for.
    let later = |category: &str, e: GraphError| {
        if addressing.sync_errors {
            Err(e)
        } else {
            Ok(Admission::failing(category.to_owned(), e))
        }
    };
    let throughput_ok = inner
        .rates
        .entry(number.id.clone())
        .or_default()
        .has_room(now, number.throughput);
    if !throughput_ok {
        return Err(GraphError::throughput(limits.throttle_status));
    }
    let user = inner.user(to).config.clone();
    let template_category = match &message.content {
        OutboundContent::Template(t) => Some(check_template(inner, number, t)?),
        _ => None,
    };
    let category = template_category
        .clone()
        .unwrap_or_else(|| "service".to_owned());
    if addressing.by_user_id && category == "authentication" {
        return Err(GraphError::new(
            400,
            131062,
            "Business-scoped User ID (BSUID) recipients are not supported for this message.",
            "Authentication templates need the recipient's phone number.",
        ));
    }
    if user.not_on_whatsapp {
        return later(
            &category,
            GraphError::new(
                400,
                131026,
                "Message undeliverable",
                "Unable to deliver message: the recipient is not a WhatsApp user.",
            ),
        );
    }
    let window_open = inner.window_open(&number.id, to, now);
    if category == "marketing" && user.stopped_marketing {
        return later(
            &category,
            GraphError::new(
                400,
                131050,
                "Unable to deliver the message. This recipient has chosen to stop receiving marketing messages on WhatsApp from your business.",
                "The user has stopped marketing messages from this business.",
            ),
        );
    }
    if category == "marketing" && user.marketing_limited {
        return later(
            &category,
            GraphError::new(
                400,
                131049,
                "This message was not delivered to maintain healthy ecosystem engagement.",
                "In order to maintain a healthy ecosystem engagement, the message failed to be delivered.",
            ),
        );
    }
    if template_category.is_none() && !window_open {
        return later(
            &category,
            GraphError::new(
                400,
                131047,
                "Re-engagement message",
                "Message failed to send because more than 24 hours have passed since the customer last replied to this number.",
            ),
        );
    }
    if let Some(e) = unknown_media(inner, number, message) {
        return later(&category, e);
    }
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
    // Service messages and utility templates in an open window are free.
    let free = category == "service" || (category == "utility" && window_open);
    Ok(Admission {
        category,
        pricing_type: if free {
            "free_customer_service"
        } else {
            "regular"
        },
        fails_with: None,
    })
}

/// 131053 for a media id that is not an upload of this number.
fn unknown_media(
    inner: &Inner,
    number: &NumberConfig,
    message: &OutboundMessage,
) -> Option<GraphError> {
    let id = media_id(message)?;
    let known = inner
        .media
        .get(id)
        .is_some_and(|m| m.phone_number_id == number.id);
    (!known).then(|| {
        media_error(&format!(
            "Media id {id} was not found for this phone number."
        ))
    })
}

/// The uploaded media id a media message names, if it names one (not a link).
pub fn media_id(message: &OutboundMessage) -> Option<&str> {
    let media = match &message.content {
        OutboundContent::Image(m)
        | OutboundContent::Video(m)
        | OutboundContent::Audio(m)
        | OutboundContent::Document(m)
        | OutboundContent::Sticker(m) => m,
        _ => return None,
    };
    match &media.source {
        MediaSource::Id(id) => Some(id),
        MediaSource::Link(_) => None,
    }
}

/// Meta's 131053, for a media id or link that cannot be fetched.
pub fn media_error(details: &str) -> GraphError {
    GraphError::new(400, 131053, "Media upload error", details)
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
