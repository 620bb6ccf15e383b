//! proptest strategies for the wire types. Generated values stay inside what
//! the wire can express: open-enum `Other` values and `Unsupported` kinds
//! never collide with known ones, floats are finite.

use proptest::collection::{btree_map, vec};
use proptest::option::of;
use proptest::prelude::*;
use serde_json::{Map, Value};
use waypost_cloudapi::error::{ErrorData, MetaError, WebhookError};
use waypost_cloudapi::inbound::*;
use waypost_cloudapi::interactive::*;
use waypost_cloudapi::send::*;
use waypost_cloudapi::status::*;
use waypost_cloudapi::template::*;
use waypost_cloudapi::webhook::*;
use waypost_cloudapi::{Unsupported, WebhookPayload};

mod inbound;
mod outbound;

pub use inbound::*;
pub use outbound::*;

pub fn text() -> impl Strategy<Value = String> {
    "\\PC{0,10}"
}

pub fn ostr() -> impl Strategy<Value = Option<String>> {
    of(text())
}

/// A name no modelled `type`/enum uses.
pub fn unknown_name() -> impl Strategy<Value = String> {
    "zz[a-z_]{1,6}"
}

pub fn json_value() -> impl Strategy<Value = Value> {
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
pub fn unsupported(avoid: &'static [&'static str]) -> impl Strategy<Value = Unsupported> {
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

pub fn media() -> impl Strategy<Value = Media> {
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

pub fn location() -> impl Strategy<Value = Location> {
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

pub fn contact() -> impl Strategy<Value = Contact> {
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
