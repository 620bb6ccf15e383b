//! Property tests: every main wire type survives serialise → parse through
//! JSON text unchanged, and re-serialising gives the same JSON. Generated
//! values stay inside what the wire can express (open-enum `Other` values
//! and `Unsupported` kinds never collide with known ones).

use proptest::collection::{btree_map, vec};
use proptest::option::of;
use proptest::prelude::*;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use waypost_cloudapi::error::{ErrorData, ErrorEnvelope, MetaError, WebhookError};
use waypost_cloudapi::inbound::*;
use waypost_cloudapi::interactive::*;
use waypost_cloudapi::send::*;
use waypost_cloudapi::status::*;
use waypost_cloudapi::template::*;
use waypost_cloudapi::webhook::*;
use waypost_cloudapi::{Unsupported, WebhookPayload};

fn text() -> impl Strategy<Value = String> {
    "\\PC{0,10}"
}

fn ostr() -> impl Strategy<Value = Option<String>> {
    of(text())
}

/// A name no modelled `type`/enum uses.
fn unknown_name() -> impl Strategy<Value = String> {
    "zz[a-z_]{1,6}"
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        (-1e9f64..1e9).prop_map(Value::from),
        text().prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..4).prop_map(Value::Array),
            btree_map("[a-z]{1,5}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// `Unsupported` whose payload sits under its own kind, plus extra fields
/// that avoid `avoid` (the sibling fields the outer struct owns).
fn unsupported(avoid: &'static [&'static str]) -> impl Strategy<Value = Unsupported> {
    (
        unknown_name(),
        json_value(),
        btree_map("[a-z]{1,6}", json_value(), 0..3),
    )
        .prop_map(move |(kind, payload, extra)| {
            let mut raw: Map<String, Value> = extra
                .into_iter()
                .filter(|(k, _)| k != "type" && !avoid.contains(&k.as_str()))
                .collect();
            raw.insert(kind.clone(), payload);
            Unsupported { kind, raw }
        })
}

fn media() -> impl Strategy<Value = Media> {
    (
        prop_oneof![
            text().prop_map(MediaSource::Id),
            text().prop_map(MediaSource::Link)
        ],
        ostr(),
        ostr(),
    )
        .prop_map(|(source, caption, filename)| Media {
            source,
            caption,
            filename,
        })
}

fn location() -> impl Strategy<Value = Location> {
    (-90f64..90.0, -180f64..180.0, ostr(), ostr(), ostr()).prop_map(
        |(latitude, longitude, name, address, url)| Location {
            latitude,
            longitude,
            name,
            address,
            url,
        },
    )
}

fn contact() -> impl Strategy<Value = Contact> {
    let name = (text(), ostr(), ostr(), ostr()).prop_map(
        |(formatted_name, first_name, last_name, middle_name)| ContactName {
            formatted_name,
            first_name,
            last_name,
            middle_name,
            suffix: None,
            prefix: None,
        },
    );
    let phone = (ostr(), ostr(), ostr()).prop_map(|(phone, kind, wa_id)| ContactPhone {
        phone,
        kind,
        wa_id,
    });
    let email = (ostr(), ostr()).prop_map(|(email, kind)| ContactEmail { email, kind });
    let org = (ostr(), ostr(), ostr()).prop_map(|(company, department, title)| ContactOrg {
        company,
        department,
        title,
    });
    let address =
        (ostr(), ostr(), ostr()).prop_map(|(street, city, country_code)| ContactAddress {
            street,
            city,
            state: None,
            zip: None,
            country: None,
            country_code,
            kind: Some("HOME".into()),
        });
    let url = (text(), ostr()).prop_map(|(url, kind)| ContactUrl { url, kind });
    (
        name,
        vec(phone, 0..2),
        vec(email, 0..2),
        vec(address, 0..2),
        of(org),
        vec(url, 0..2),
        ostr(),
    )
        .prop_map(
            |(name, phones, emails, addresses, org, urls, birthday)| Contact {
                name,
                phones,
                emails,
                addresses,
                org,
                urls,
                birthday,
            },
        )
}

fn header() -> impl Strategy<Value = Header> {
    prop_oneof![
        text().prop_map(Header::Text),
        media().prop_map(Header::Image),
        media().prop_map(Header::Video),
        media().prop_map(Header::Document),
    ]
}

fn interactive() -> impl Strategy<Value = Interactive> {
    let to = || text().prop_map(|text| TextObject { text });
    let button = (text(), text()).prop_map(|(id, title)| Button::Reply(ReplyButton { id, title }));
    let buttons = (of(header()), to(), of(to()), vec(button, 1..4)).prop_map(
        |(header, body, footer, buttons)| {
            Interactive::Button(ButtonMessage {
                header,
                body,
                footer,
                action: ButtonAction { buttons },
            })
        },
    );
    let row = (text(), text(), ostr()).prop_map(|(id, title, description)| ListRow {
        id,
        title,
        description,
    });
    let section = (ostr(), vec(row, 1..4)).prop_map(|(title, rows)| ListSection { title, rows });
    let list = (of(header()), to(), of(to()), text(), vec(section, 1..3)).prop_map(
        |(header, body, footer, button, sections)| {
            Interactive::List(ListMessage {
                header,
                body,
                footer,
                action: ListAction { button, sections },
            })
        },
    );
    prop_oneof![
        buttons,
        list,
        unsupported(&[]).prop_map(Interactive::Unsupported)
    ]
}

fn parameter() -> impl Strategy<Value = TemplateParameter> {
    let value = prop_oneof![
        text().prop_map(ParameterValue::Text),
        (text(), "[A-Z]{3}", any::<i64>()).prop_map(|(fallback_value, code, amount_1000)| {
            ParameterValue::Currency(Currency {
                fallback_value,
                code,
                amount_1000,
            })
        }),
        text().prop_map(|fallback_value| ParameterValue::DateTime(DateTime { fallback_value })),
        media().prop_map(ParameterValue::Image),
        media().prop_map(ParameterValue::Document),
        location().prop_map(ParameterValue::Location),
        text().prop_map(ParameterValue::Payload),
        unsupported(&["parameter_name"]).prop_map(ParameterValue::Unsupported),
    ];
    (ostr(), value).prop_map(|(parameter_name, value)| TemplateParameter {
        parameter_name,
        value,
    })
}

fn template() -> impl Strategy<Value = TemplateMessage> {
    let kind = prop_oneof![
        Just(ComponentKind::Header),
        Just(ComponentKind::Body),
        Just(ComponentKind::Button),
        unknown_name().prop_map(ComponentKind::Other),
    ];
    let sub = prop_oneof![
        Just(ButtonSubType::QuickReply),
        Just(ButtonSubType::Url),
        unknown_name().prop_map(ButtonSubType::Other)
    ];
    let index = prop_oneof![
        any::<u32>().prop_map(ButtonIndex::Number),
        "[0-9a-z]{0,3}".prop_map(ButtonIndex::Text)
    ];
    let component = (kind, of(sub), of(index), vec(parameter(), 0..3)).prop_map(
        |(kind, sub_type, index, parameters)| TemplateComponent {
            kind,
            sub_type,
            index,
            parameters,
        },
    );
    (text(), text(), ostr(), vec(component, 0..4)).prop_map(|(name, code, policy, components)| {
        TemplateMessage {
            name,
            language: TemplateLanguage { code, policy },
            components,
        }
    })
}

fn outbound() -> impl Strategy<Value = OutboundMessage> {
    let content = prop_oneof![
        (text(), of(any::<bool>()))
            .prop_map(|(body, preview_url)| OutboundContent::Text(Text { body, preview_url })),
        media().prop_map(OutboundContent::Image),
        media().prop_map(OutboundContent::Document),
        media().prop_map(OutboundContent::Audio),
        media().prop_map(OutboundContent::Video),
        media().prop_map(OutboundContent::Sticker),
        location().prop_map(OutboundContent::Location),
        vec(contact(), 1..3).prop_map(OutboundContent::Contacts),
        interactive().prop_map(OutboundContent::Interactive),
        template().prop_map(OutboundContent::Template),
        (text(), ostr()).prop_map(|(message_id, emoji)| OutboundContent::Reaction(Reaction {
            message_id,
            emoji
        })),
        unsupported(&[
            "messaging_product",
            "recipient_type",
            "to",
            "context",
            "biz_opaque_callback_data"
        ])
        .prop_map(OutboundContent::Unsupported),
    ];
    (text(), ostr(), text(), ostr(), ostr(), content).prop_map(
        |(messaging_product, recipient_type, to, ctx, biz_opaque_callback_data, content)| {
            OutboundMessage {
                messaging_product,
                recipient_type,
                to,
                context: ctx.map(|message_id| OutboundContext { message_id }),
                biz_opaque_callback_data,
                content,
            }
        },
    )
}

fn error_data() -> impl Strategy<Value = Option<ErrorData>> {
    of(
        (ostr(), ostr()).prop_map(|(messaging_product, details)| ErrorData {
            messaging_product,
            details,
        }),
    )
}

fn webhook_error() -> impl Strategy<Value = WebhookError> {
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

fn inbound_media() -> impl Strategy<Value = InboundMedia> {
    (
        text(),
        ostr(),
        ostr(),
        ostr(),
        ostr(),
        of(any::<bool>()),
        of(any::<bool>()),
        ostr(),
    )
        .prop_map(
            |(id, mime_type, sha256, caption, filename, voice, animated, url)| InboundMedia {
                id,
                mime_type,
                sha256,
                caption,
                filename,
                voice,
                animated,
                url,
            },
        )
}

fn inbound() -> impl Strategy<Value = InboundMessage> {
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
        (ostr(), ostr(), ostr(), ostr()).prop_map(|(body, wa_id, kind, new_wa_id)| {
            InboundContent::System(SystemMessage {
                body,
                wa_id,
                kind,
                new_wa_id,
            })
        }),
        unsupported(&[
            "from",
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
        text(),
        text(),
        "[0-9]{1,10}",
        of(context),
        of(referral),
        vec(webhook_error(), 0..2),
        of(identity),
        content,
    )
        .prop_map(
            |(from, id, timestamp, context, referral, errors, identity, content)| InboundMessage {
                from,
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

fn category() -> impl Strategy<Value = PricingCategory> {
    prop_oneof![
        Just(PricingCategory::Service),
        Just(PricingCategory::Marketing),
        unknown_name().prop_map(PricingCategory::Other)
    ]
}

fn status() -> impl Strategy<Value = Status> {
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
    let pricing = (any::<bool>(), model, category(), ostr()).prop_map(
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
        text(),
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
                recipient_id,
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
                biz_opaque_callback_data: biz,
                conversation,
                pricing,
                errors,
                recipient_type,
                recipient_participant_id: None,
            },
        )
}

fn meta_error() -> impl Strategy<Value = MetaError> {
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

fn webhook() -> impl Strategy<Value = WebhookPayload> {
    let contact = (ostr(), ostr(), ostr()).prop_map(|(name, wa_id, user_id)| WebhookContact {
        profile: name.map(|name| Profile { name }),
        wa_id,
        user_id,
        parent_user_id: None,
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

fn send_response() -> impl Strategy<Value = SendResponse> {
    let accept = prop_oneof![
        Just(SendAcceptance::Accepted),
        Just(SendAcceptance::Paused),
        unknown_name().prop_map(SendAcceptance::Other)
    ];
    let contact = (text(), text()).prop_map(|(input, wa_id)| SendContact { input, wa_id });
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

/// Through JSON text (what the wire carries), both ways.
fn assert_round_trip<T>(value: &T) -> Result<(), TestCaseError>
where
    T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug,
{
    let text = serde_json::to_string(value).unwrap();
    let parsed: T =
        serde_json::from_str(&text).map_err(|e| TestCaseError::fail(format!("{e}: {text}")))?;
    prop_assert_eq!(&parsed, value, "{}", text);
    let again = serde_json::to_string(&parsed).unwrap();
    let a: Value = serde_json::from_str(&text).unwrap();
    let b: Value = serde_json::from_str(&again).unwrap();
    prop_assert_eq!(a, b);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn outbound_message(m in outbound()) { assert_round_trip(&m)?; }

    #[test]
    fn inbound_message(m in inbound()) { assert_round_trip(&m)?; }

    #[test]
    fn status_update(s in status()) { assert_round_trip(&s)?; }

    #[test]
    fn webhook_payload(p in webhook()) { assert_round_trip(&p)?; }

    #[test]
    fn error_envelope(e in meta_error()) { assert_round_trip(&ErrorEnvelope { error: e })?; }

    #[test]
    fn send_response_body(r in send_response()) { assert_round_trip(&r)?; }

    #[test]
    fn webhook_parsing_never_fails_on_unknown_message_objects(extra in btree_map(
                                                                 prop_oneof!["[a-z]{1,6}", Just("context".to_owned()), Just("errors".to_owned()),
                                                                             Just("referral".to_owned()), Just("identity".to_owned())],
                                                                 json_value(), 0..5),
                                                             kind in "[a-z_]{1,10}") {
        // Arbitrary `type` and fields: the whole webhook must still parse.
        let mut m: Map<String, Value> = extra.into_iter().collect();
        m.insert("from".into(), "1".into());
        m.insert("id".into(), "wamid.x".into());
        m.insert("timestamp".into(), "1".into());
        m.insert("type".into(), Value::String(kind));
        let body = serde_json::json!({"object":"whatsapp_business_account","entry":[{"id":"1","changes":[{"field":"messages",
            "value":{"messaging_product":"whatsapp","metadata":{"display_phone_number":"1","phone_number_id":"2"},
            "messages":[Value::Object(m)]}}]}]});
        let p: WebhookPayload = serde_json::from_value(body).unwrap();
        prop_assert!(matches!(p.entry[0].changes[0], Change::Messages(_)));
    }
}
