//! Strategies for what Meta sends us: inbound messages, statuses, errors,
//! webhook payloads, the send response.

use super::*;

pub fn error_data() -> impl Strategy<Value = Option<ErrorData>> {
    of(
        (ostr(), ostr()).prop_map(|(messaging_product, details)| ErrorData {
            messaging_product,
            details,
        }),
    )
}

pub fn webhook_error() -> impl Strategy<Value = WebhookError> {
    (any::<i64>(), ostr(), ostr(), error_data(), ostr()).prop_map(
        |(code, title, message, error_data, href)| WebhookError {
            code,
            title,
            message,
            error_data,
            href,
        },
    )
}

pub fn inbound_media() -> impl Strategy<Value = InboundMedia> {
    (
        text(),
        ostr(),
        ostr(),
        ostr(),
        ostr(),
        of(any::<bool>()),
        of(any::<bool>()),
        ostr(),
        of(any::<u64>()),
    )
        .prop_map(
            |(id, mime_type, sha256, caption, filename, voice, animated, url, file_size)| {
                InboundMedia {
                    id,
                    mime_type,
                    sha256,
                    caption,
                    filename,
                    voice,
                    animated,
                    url,
                    file_size,
                }
            },
        )
}

pub fn inbound() -> impl Strategy<Value = InboundMessage> {
    let choice = || {
        (text(), text(), ostr()).prop_map(|(id, title, description)| ReplyChoice {
            id,
            title,
            description,
        })
    };
    let reply = prop_oneof![
        choice().prop_map(InteractiveReply::ButtonReply),
        choice().prop_map(InteractiveReply::ListReply),
        (ostr(), ostr(), text()).prop_map(
            |(name, body, response_json)| InteractiveReply::NfmReply(FlowReply {
                name,
                body,
                response_json
            })
        ),
        unsupported(&[]).prop_map(InteractiveReply::Unsupported),
    ];
    let item = (text(), any::<u32>(), -1e6f64..1e6, "[A-Z]{3}").prop_map(
        |(product_retailer_id, quantity, item_price, currency)| ProductItem {
            product_retailer_id,
            quantity,
            item_price,
            currency,
        },
    );
    let content = prop_oneof![
        text().prop_map(|body| InboundContent::Text(InboundText { body })),
        inbound_media().prop_map(InboundContent::Image),
        inbound_media().prop_map(InboundContent::Video),
        inbound_media().prop_map(InboundContent::Audio),
        inbound_media().prop_map(InboundContent::Document),
        inbound_media().prop_map(InboundContent::Sticker),
        location().prop_map(InboundContent::Location),
        vec(contact(), 1..2).prop_map(InboundContent::Contacts),
        reply.prop_map(InboundContent::Interactive),
        (ostr(), text()).prop_map(
            |(payload, text)| InboundContent::Button(ButtonReplyTemplate { payload, text })
        ),
        (text(), ostr()).prop_map(|(message_id, emoji)| InboundContent::Reaction(Reaction {
            message_id,
            emoji
        })),
        (text(), ostr(), vec(item, 0..3)).prop_map(|(catalog_id, text, product_items)| {
            InboundContent::Order(Order {
                catalog_id,
                text,
                product_items,
            })
        }),
        (ostr(), ostr(), ostr(), ostr(), ostr(), ostr()).prop_map(
            |(body, wa_id, kind, new_wa_id, user_id, previous_user_id)| {
                InboundContent::System(SystemMessage {
                    body,
                    wa_id,
                    user_id,
                    parent_user_id: None,
                    previous_user_id,
                    previous_parent_user_id: None,
                    kind,
                    new_wa_id,
                })
            }
        ),
        unsupported(&[
            "from",
            "from_user_id",
            "from_parent_user_id",
            "id",
            "timestamp",
            "context",
            "referral",
            "errors",
            "identity"
        ])
        .prop_map(InboundContent::Unsupported),
    ];
    let context = (ostr(), ostr(), of(any::<bool>()), of(any::<bool>())).prop_map(
        |(from, id, forwarded, frequently_forwarded)| InboundContext {
            from,
            id,
            forwarded,
            frequently_forwarded,
            referred_product: None,
        },
    );
    let referral =
        (ostr(), ostr(), ostr()).prop_map(|(source_url, source_type, ctwa_clid)| Referral {
            source_url,
            source_id: None,
            source_type,
            headline: None,
            body: None,
            media_type: None,
            image_url: None,
            video_url: None,
            thumbnail_url: None,
            ctwa_clid,
        });
    let identity =
        (of(any::<bool>()), ostr(), ostr()).prop_map(|(acknowledged, created_timestamp, hash)| {
            Identity {
                acknowledged,
                created_timestamp,
                hash,
            }
        });
    (
        (ostr(), ostr()),
        text(),
        "[0-9]{1,10}",
        of(context),
        of(referral),
        vec(webhook_error(), 0..2),
        of(identity),
        content,
    )
        .prop_map(
            |(
                (from, from_user_id),
                id,
                timestamp,
                context,
                referral,
                errors,
                identity,
                content,
            )| InboundMessage {
                from,
                from_user_id,
                from_parent_user_id: None,
                id,
                timestamp,
                context,
                referral,
                errors,
                identity,
                content,
            },
        )
}

pub fn category() -> impl Strategy<Value = PricingCategory> {
    prop_oneof![
        Just(PricingCategory::Service),
        Just(PricingCategory::Marketing),
        unknown_name().prop_map(PricingCategory::Other)
    ]
}

pub fn status() -> impl Strategy<Value = Status> {
    let kind = prop_oneof![
        Just(StatusKind::Sent),
        Just(StatusKind::Delivered),
        Just(StatusKind::Read),
        Just(StatusKind::Failed),
        Just(StatusKind::Played),
        unknown_name().prop_map(StatusKind::Other),
    ];
    let conversation =
        (text(), ostr(), of(category())).prop_map(|(id, expiration_timestamp, origin)| {
            Conversation {
                id,
                expiration_timestamp,
                origin: origin.map(|kind| ConversationOrigin { kind }),
            }
        });
    let model = prop_oneof![
        Just(PricingModel::Cbp),
        Just(PricingModel::Pmp),
        unknown_name().prop_map(PricingModel::Other)
    ];
    let pricing = (of(any::<bool>()), model, category(), ostr()).prop_map(
        |(billable, pricing_model, category, kind)| Pricing {
            billable,
            pricing_model,
            category,
            kind,
        },
    );
    (
        text(),
        kind,
        "[0-9]{1,10}",
        (ostr(), ostr(), ostr()),
        ostr(),
        of(conversation),
        of(pricing),
        vec(webhook_error(), 0..2),
        ostr(),
    )
        .prop_map(
            |(
                id,
                status,
                timestamp,
                (recipient_id, recipient_user_id, recipient_parent_user_id),
                biz,
                conversation,
                pricing,
                errors,
                recipient_type,
            )| Status {
                id,
                status,
                timestamp,
                recipient_id,
                recipient_user_id,
                recipient_parent_user_id,
                biz_opaque_callback_data: biz,
                conversation,
                pricing,
                errors,
                recipient_type,
                recipient_participant_id: None,
                recipient_participant_user_id: None,
            },
        )
}

pub fn meta_error() -> impl Strategy<Value = MetaError> {
    (
        text(),
        ostr(),
        any::<i64>(),
        of(any::<i64>()),
        error_data(),
        ostr(),
        of(any::<bool>()),
        ostr(),
    )
        .prop_map(
            |(
                message,
                kind,
                code,
                error_subcode,
                error_data,
                error_user_msg,
                is_transient,
                fbtrace_id,
            )| MetaError {
                message,
                kind,
                code,
                error_subcode,
                error_data,
                error_user_title: None,
                error_user_msg,
                is_transient,
                fbtrace_id,
            },
        )
}

pub fn webhook() -> impl Strategy<Value = WebhookPayload> {
    let contact = (ostr(), ostr(), ostr(), ostr()).prop_map(|(name, username, wa_id, user_id)| {
        WebhookContact {
            profile: name.map(|name| Profile { name, username }),
            wa_id,
            user_id,
            parent_user_id: None,
        }
    });
    let messages = (
        text(),
        text(),
        text(),
        vec(contact, 0..2),
        vec(inbound(), 0..3),
        vec(status(), 0..3),
        vec(webhook_error(), 0..2),
    )
        .prop_map(
            |(
                messaging_product,
                display_phone_number,
                phone_number_id,
                contacts,
                messages,
                statuses,
                errors,
            )| {
                Change::Messages(MessagesValue {
                    messaging_product,
                    metadata: Metadata {
                        display_phone_number,
                        phone_number_id,
                    },
                    contacts,
                    messages,
                    statuses,
                    errors,
                })
            },
        );
    let tstatus = prop_oneof![
        Just(TemplateStatus::Approved),
        Just(TemplateStatus::Rejected),
        unknown_name().prop_map(TemplateStatus::Other)
    ];
    let template = (
        tstatus,
        any::<u64>(),
        text(),
        text(),
        ostr(),
        of(Just(TemplateCategory::Utility)),
        of(Just(serde_json::json!({"disable_date":"x"}))),
    )
        .prop_map(
            |(event, id, name, language, reason, category, disable_info)| {
                Change::TemplateStatus(TemplateStatusUpdate {
                    event,
                    message_template_id: id,
                    message_template_name: name,
                    message_template_language: language,
                    reason,
                    message_template_category: category,
                    disable_info,
                    other_info: None,
                    rejection_info: None,
                })
            },
        );
    let other =
        (unknown_name(), json_value()).prop_map(|(field, value)| Change::Other { field, value });
    let change = prop_oneof![messages, template, other];
    let entry = (text(), of(any::<i64>()), vec(change, 0..3))
        .prop_map(|(id, time, changes)| Entry { id, time, changes });
    (text(), vec(entry, 0..3)).prop_map(|(object, entry)| WebhookPayload { object, entry })
}

pub fn send_response() -> impl Strategy<Value = SendResponse> {
    let accept = prop_oneof![
        Just(SendAcceptance::Accepted),
        Just(SendAcceptance::Paused),
        unknown_name().prop_map(SendAcceptance::Other)
    ];
    let contact = (text(), ostr(), ostr()).prop_map(|(input, wa_id, user_id)| SendContact {
        input,
        wa_id,
        user_id,
    });
    let msg =
        (text(), of(accept)).prop_map(|(id, message_status)| SentMessage { id, message_status });
    (text(), vec(contact, 0..2), vec(msg, 0..2)).prop_map(
        |(messaging_product, contacts, messages)| SendResponse {
            messaging_product,
            contacts,
            messages,
        },
    )
}
