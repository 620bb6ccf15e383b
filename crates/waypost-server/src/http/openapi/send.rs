//! `SendMessage`, the body of `POST /v1/messages`: one shape per message
//! `type` (the Cloud API's payloads), so a generated client knows what each
//! type needs. The handler parses the same body into
//! `waypost_cloudapi::send::OutboundContent`; `http::messages::SendMessageDoc`
//! points here.

use serde_json::{Map, Value, json};

pub fn add_schemas(schemas: &mut Map<String, Value>) {
    let text = json!({"type": "object", "required": ["body"], "properties": {
        "body": {"type": "string", "minLength": 1, "maxLength": 4096},
        "preview_url": {"type": "boolean"}}});
    let media = |captioned: bool, named: bool| {
        let mut p = json!({
            "media_id": {"type": "string", "description": "A `med_…` id from `POST /v1/media` (uploaded through the same channel)."},
            "id": {"type": "string", "description": "A media id of the provider's."},
            "link": {"type": "string", "format": "uri", "description": "A public HTTPS link."}
        });
        if captioned {
            p["caption"] = json!({"type": "string"});
        }
        if named {
            p["filename"] = json!({"type": "string"});
        }
        json!({"type": "object", "properties": p,
            "description": "Give one of `media_id`, `id` or `link`.",
            "anyOf": [{"required": ["media_id"]}, {"required": ["id"]}, {"required": ["link"]}]})
    };
    let location = json!({"type": "object", "required": ["latitude", "longitude"], "properties": {
        "latitude": {"type": "number", "minimum": -90, "maximum": 90},
        "longitude": {"type": "number", "minimum": -180, "maximum": 180},
        "name": {"type": "string"}, "address": {"type": "string"}, "url": {"type": "string"}}});
    let contacts = json!({"type": "array", "minItems": 1, "items": {"type": "object", "required": ["name"],
        "properties": {"name": {"type": "object", "required": ["formatted_name"],
            "properties": {"formatted_name": {"type": "string", "minLength": 1}}}},
        "description": "A contact card as in the Cloud API (`name`, `phones`, `emails`, `addresses`, `org`, `urls`, `birthday`)."}});
    let interactive = json!({"type": "object", "required": ["type", "action"],
        "description": "An interactive message as in the Cloud API: `button`, `list`, `cta_url`, `location_request_message`, …",
        "properties": {"type": {"type": "string"}, "action": {"type": "object"},
            "header": {"type": "object"}, "body": {"type": "object"}, "footer": {"type": "object"}}});
    let template = json!({"type": "object", "required": ["name", "language"], "properties": {
        "name": {"type": "string", "minLength": 1},
        "language": {"type": "object", "required": ["code"], "properties": {"code": {"type": "string", "minLength": 1}}},
        "components": {"type": "array", "items": {"type": "object", "required": ["type"],
            "properties": {"type": {"type": "string", "description": "`header`, `body` or `button`."}}},
            "description": "Parameters per component (`header`, `body`, `button`) as in the Cloud API."}}});
    let reaction = json!({"type": "object", "required": ["message_id"], "properties": {
        "message_id": {"type": "string", "description": "A Waypost `msg_…` id or the provider's `wamid`."},
        "emoji": {"type": "string", "description": "Empty removes an earlier reaction."}}});

    let variants: [(&str, Value); 11] = [
        ("text", text),
        ("image", media(true, false)),
        ("video", media(true, false)),
        ("audio", media(false, false)),
        ("document", media(true, true)),
        ("sticker", media(false, false)),
        ("location", location),
        ("contacts", contacts),
        ("interactive", interactive),
        ("template", template),
        ("reaction", reaction),
    ];
    let mut one_of = Vec::new();
    for (kind, payload) in variants {
        let name = format!("Send{}", pascal(kind));
        // A body without `type` is a text message, as in the Cloud API.
        let required: Vec<&str> = if kind == "text" {
            vec![kind]
        } else {
            vec!["type", kind]
        };
        schemas.insert(
            name.clone(),
            json!({"allOf": [
                {"$ref": "#/components/schemas/SendMessageCommon"},
                {"type": "object", "required": required,
                 "properties": {"type": {"type": "string", "const": kind}, kind: payload}}
            ]}),
        );
        one_of.push(json!({"$ref": format!("#/components/schemas/{name}")}));
    }
    schemas.insert(
        "SendMessageCommon".into(),
        json!({"type": "object", "required": ["channel_id"],
            "description": "Who the message goes to and through which number: give `to`, `user_id` or `contact_id`.",
            "properties": {
                "channel_id": {"type": "string", "minLength": 1},
                "to": {"type": "string", "description": "E.164 number, e.g. `+4915112345678`."},
                "user_id": {"type": "string", "description": "A business-scoped user id (`US.1349…`) or parent BSUID, for customers whose phone number WhatsApp withholds. Authentication templates need a phone."},
                "contact_id": {"type": "string"},
                "context": {"type": "object", "required": ["message_id"], "description": "Sends the message as a reply.",
                    "properties": {"message_id": {"type": "string", "description": "The message replied to: a Waypost `msg_…` id or the provider's `wamid`."}}}
            }}),
    );
    schemas.insert(
        "SendMessage".into(),
        json!({"oneOf": one_of, "description": "`POST /v1/messages`: one payload, named by `type` (default `text`), in the WhatsApp Cloud API's shape."}),
    );
}

fn pascal(kind: &str) -> String {
    let mut c = kind.chars();
    c.next()
        .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
        .unwrap_or_default()
}
