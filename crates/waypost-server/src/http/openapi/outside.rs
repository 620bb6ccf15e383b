//! Routes mounted beside the API router (so utoipa does not see them) that
//! callers still reach: this document, the first-run setup form and the
//! provider's webhook. Described here, next to nothing else, so the document
//! lists every route the server answers outside the dashboard.

use serde_json::{Map, Value, json};

pub fn add_paths(paths: &mut Map<String, Value>) {
    paths.insert(
        "/openapi.json".into(),
        json!({"get": {
            "operationId": "openapi_document",
            "tags": ["operations"],
            "summary": "This OpenAPI 3.1 document.",
            "security": [],
            "responses": {"200": {"description": "The document.",
                "content": {"application/json": {"schema": {"type": "object"}}}}}
        }}),
    );
    let setup_form = json!({
        "type": "object",
        "required": ["token", "workspace", "email", "password"],
        "properties": {
            "token": {"type": "string", "description": "The one-time setup token the first start printed."},
            "workspace": {"type": "string", "minLength": 1, "maxLength": 100},
            "email": {"type": "string", "format": "email"},
            "password": {"type": "string", "minLength": 12}
        }
    });
    paths.insert(
        "/setup".into(),
        json!({
            "get": {
                "operationId": "setup_form",
                "tags": ["auth"],
                "summary": "The first-run form that creates the first workspace and its owner (HTML).",
                "security": [],
                "parameters": [{"name": "token", "in": "query", "required": false,
                    "schema": {"type": "string"}, "description": "The setup token, filled into the form."}],
                "responses": {"200": {"description": "The form.", "content": {"text/html": {"schema": {"type": "string"}}}}}
            },
            "post": {
                "operationId": "setup_submit",
                "tags": ["auth"],
                "summary": "Creates the first workspace and its owner with the one-time setup token.",
                "security": [],
                "requestBody": {"required": true, "content": {
                    "application/x-www-form-urlencoded": {"schema": setup_form}}},
                "responses": {
                    "200": {"description": "Done: a page linking to the sign-in.",
                        "content": {"text/html": {"schema": {"type": "string"}}}},
                    "403": {"description": "setup-token-invalid: the token is wrong, used or expired.",
                        "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}}
                }
            }
        }),
    );
    let channel = json!({"name": "channel_id", "in": "path", "required": true,
        "schema": {"type": "string"}, "description": "The channel's id, as in its webhook URL."});
    let hub = |name: &str, description: &str| {
        json!({"name": name, "in": "query", "required": false,
            "schema": {"type": "string"}, "description": description})
    };
    let forbidden = json!({"description": "verification-failed: a parameter is missing or does not match this channel (also for unknown channels).",
        "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}});
    paths.insert(
        "/webhooks/whatsapp/{channel_id}".into(),
        json!({
            "get": {
                "operationId": "whatsapp_webhook_verify",
                "tags": ["channels"],
                "summary": "Meta's subscription check: echoes `hub.challenge` when `hub.verify_token` is the channel's verify token.",
                "security": [],
                "parameters": [channel,
                    hub("hub.mode", "`subscribe`."),
                    hub("hub.verify_token", "The channel's verify token."),
                    hub("hub.challenge", "Echoed back (at most 256 characters).")],
                "responses": {
                    "200": {"description": "The challenge.", "content": {"text/plain": {"schema": {"type": "string"}}}},
                    "403": forbidden
                }
            },
            "post": {
                "operationId": "whatsapp_webhook_receive",
                "tags": ["channels"],
                "summary": "A Cloud API webhook delivery (messages, statuses, account changes), signed with the channel's app secret.",
                "security": [],
                "parameters": [channel, {"name": "X-Hub-Signature-256", "in": "header", "required": false,
                    "schema": {"type": "string"}, "description": "`sha256=` and the hex HMAC-SHA256 of the raw body under the app secret."}],
                "requestBody": {"required": true, "content": {"application/json": {"schema": {"type": "object"}}}},
                "responses": {
                    "200": {"description": "Recorded (or a duplicate of a delivery already recorded)."},
                    "400": {"description": "bad-request: signed correctly but not a webhook payload.",
                        "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}},
                    "401": {"description": "invalid-signature: the signature is missing or wrong (also for unknown channels).",
                        "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}}
                }
            }
        }),
    );
}
