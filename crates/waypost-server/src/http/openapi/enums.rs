//! Fixed-value fields: the views carry these as strings, so utoipa sees only
//! `string`; the values come from the Rust enums that produce or parse them,
//! so the document cannot drift from the code.

use serde_json::{Map, Value, json};
use waypost_core::MessageStatus;
use waypost_core::audience::{FieldType, ImportOutcome};
use waypost_core::auth::{Role, Scope};
use waypost_core::campaign::CampaignStatus;
use waypost_core::events::EventType;
use waypost_core::media::MediaKind;
use waypost_core::pacing::MessagingTier;
use waypost_core::settings::ShieldPolicy;
use waypost_core::template::TemplateCategory;

use crate::http::contacts::{ConsentCategory, ConsentStatus};
use crate::ops::incidents::{ActiveStatus, Severity, as_str};

/// Where an enum applies (schema, property) and its values.
type EnumSite = (&'static [(&'static str, &'static str)], Vec<String>);

fn values() -> Vec<EnumSite> {
    let own = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    let incident_status = incident_statuses();
    vec![
        (
            &[
                ("MessageView", "status"),
                ("StatusView", "status"),
                ("SubjectMessage", "status"),
            ],
            MessageStatus::ALL.map(|s| s.as_str().to_owned()).to_vec(),
        ),
        (
            &[
                ("MessageView", "direction"),
                ("SubjectMessage", "direction"),
                ("MediaView", "direction"),
                ("ConversationView", "last_direction"),
            ],
            own(&["inbound", "outbound"]),
        ),
        (
            &[("CreateApiKey", "scopes"), ("ApiKeyView", "scopes")],
            Scope::ALL.map(|s| s.as_str().to_owned()).to_vec(),
        ),
        (
            &[
                ("MemberView", "role"),
                ("MemberView", "elevated_role"),
                ("MembershipView", "role"),
                ("InvitationView", "role"),
                ("CreateInvitation", "role"),
                ("RoleChange", "role"),
                ("Elevation", "role"),
            ],
            Role::ALL.map(|r| r.as_str().to_owned()).to_vec(),
        ),
        (
            &[
                ("CreateEndpoint", "event_types"),
                ("UpdateEndpoint", "event_types"),
                ("EndpointView", "event_types"),
            ],
            EventType::ALL.map(|e| e.as_str().to_owned()).to_vec(),
        ),
        (
            &[("CreateTemplate", "category"), ("TemplateView", "category")],
            [
                TemplateCategory::Marketing,
                TemplateCategory::Utility,
                TemplateCategory::Authentication,
            ]
            .map(|c| c.as_str().to_owned())
            .to_vec(),
        ),
        (
            &[
                ("WorkspaceSettings", "shield_policy"),
                ("WorkspaceView", "shield_policy"),
            ],
            [ShieldPolicy::Off, ShieldPolicy::Flag, ShieldPolicy::Block]
                .map(|p| p.as_str().to_owned())
                .to_vec(),
        ),
        (
            &[("IncidentView", "status"), ("IncidentNotice", "status")],
            incident_status,
        ),
        (
            &[("IncidentView", "severity"), ("IncidentNotice", "severity")],
            [
                Severity::Low,
                Severity::Medium,
                Severity::High,
                Severity::Critical,
            ]
            .map(as_str)
            .to_vec(),
        ),
        (
            &[("AttemptView", "error_class")],
            own(&[
                "http_status",
                "timeout",
                "connect",
                "tls",
                "dns",
                "ssrf_blocked",
                "internal",
                "other",
            ]),
        ),
        (
            &[("CampaignView", "status")],
            CampaignStatus::ALL.map(|s| s.as_str().to_owned()).to_vec(),
        ),
        (
            &[("MessagingTierView", "tier")],
            MessagingTier::ALL.map(|t| t.as_str().to_owned()).to_vec(),
        ),
        (
            &[("ImportRowView", "outcome")],
            ImportOutcome::ALL.map(|o| o.as_str().to_owned()).to_vec(),
        ),
        (
            &[("CreateField", "type"), ("FieldView", "type")],
            [
                FieldType::Text,
                FieldType::Number,
                FieldType::Boolean,
                FieldType::Date,
            ]
            .map(|t| t.as_str().to_owned())
            .to_vec(),
        ),
        (
            &[("MediaView", "type"), ("UploadForm", "type")],
            MediaKind::ALL.map(|k| k.as_str().to_owned()).to_vec(),
        ),
        (
            &[("ConsentEntry", "status")],
            [ConsentStatus::OptedIn, ConsentStatus::OptedOut]
                .map(|c| c.as_str().to_owned())
                .to_vec(),
        ),
        (
            &[("ConsentEntry", "categories")],
            ConsentCategory::ALL.map(|c| c.as_str().to_owned()).to_vec(),
        ),
        (
            &[("ConversationView", "status")],
            own(&["open", "pending", "closed"]),
        ),
    ]
}

/// Query parameters with fixed values, by operation id.
fn param_values(operation: &str) -> Vec<(&'static str, Vec<String>)> {
    let own = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    let statuses = MessageStatus::ALL.map(|s| s.as_str().to_owned()).to_vec();
    match operation {
        "list_messages" => vec![
            ("status", statuses),
            ("direction", own(&["inbound", "outbound"])),
        ],
        "list_conversations" => vec![("status", own(&["open", "pending", "closed"]))],
        "list_incidents" | "list_workspace_incidents" => vec![("status", incident_statuses())],
        "get_usage" => vec![
            ("granularity", own(&["day", "month"])),
            ("breakdown", own(&["channel", "none"])),
            ("format", own(&["json", "csv"])),
        ],
        _ => Vec::new(),
    }
}

/// Puts the fixed values of `op`'s query parameters into their schemas.
pub fn apply_params(operation: &str, op: &mut Map<String, Value>) {
    for (name, values) in param_values(operation) {
        let param = op
            .get_mut("parameters")
            .and_then(Value::as_array_mut)
            .and_then(|ps| ps.iter_mut().find(|p| p["name"] == name))
            .unwrap_or_else(|| panic!("OpenAPI enums: {operation} has no parameter {name}"));
        set_enum(&mut param["schema"], &values);
    }
}

fn incident_statuses() -> Vec<String> {
    let mut v: Vec<String> = [
        ActiveStatus::Open,
        ActiveStatus::Investigating,
        ActiveStatus::Contained,
    ]
    .map(as_str)
    .to_vec();
    v.push("closed".into());
    v
}

/// Puts each field's values into its schema (into `items` for arrays; a
/// nullable field keeps `null`). Panics on a field the document lacks, so a
/// renamed view fails the OpenAPI test instead of losing its enum.
pub fn apply(schemas: &mut Map<String, Value>) {
    for (fields, values) in values() {
        for (schema, field) in fields {
            let property = schemas
                .get_mut(*schema)
                .and_then(|s| s.get_mut("properties"))
                .and_then(|p| p.get_mut(*field))
                .unwrap_or_else(|| {
                    panic!("OpenAPI enums: {schema}.{field} is not in the document")
                });
            set_enum(property, &values);
        }
    }
}

fn set_enum(property: &mut Value, values: &[String]) {
    let target = if property.get("items").is_some() {
        &mut property["items"]
    } else {
        property
    };
    let nullable = target["type"]
        .as_array()
        .is_some_and(|t| t.contains(&json!("null")));
    let mut list: Vec<Value> = values.iter().map(|v| json!(v)).collect();
    if nullable {
        list.push(Value::Null);
    }
    target["enum"] = Value::Array(list);
}
