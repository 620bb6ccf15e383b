//! Strategies for send bodies: interactive, template, the message envelope.

use super::*;

pub fn header() -> impl Strategy<Value = Header> {
    prop_oneof![
        text().prop_map(Header::Text),
        media().prop_map(Header::Image),
        media().prop_map(Header::Video),
        media().prop_map(Header::Document),
    ]
}

pub fn interactive() -> impl Strategy<Value = Interactive> {
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

pub fn parameter() -> impl Strategy<Value = TemplateParameter> {
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

pub fn template() -> impl Strategy<Value = TemplateMessage> {
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

pub fn outbound() -> impl Strategy<Value = OutboundMessage> {
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
            "recipient",
            "context",
            "biz_opaque_callback_data"
        ])
        .prop_map(OutboundContent::Unsupported),
    ];
    (text(), ostr(), (ostr(), ostr()), ostr(), ostr(), content).prop_map(
        |(
            messaging_product,
            recipient_type,
            (to, recipient),
            ctx,
            biz_opaque_callback_data,
            content,
        )| {
            OutboundMessage {
                messaging_product,
                recipient_type,
                to,
                recipient,
                context: ctx.map(|message_id| OutboundContext { message_id }),
                biz_opaque_callback_data,
                content,
            }
        },
    )
}
