//! The finishing pass over the OpenAPI document utoipa derives from the
//! handlers: what holds for a whole class of routes is said here once, so no
//! operation can forget it. Every operation gets the shared problem responses
//! its shape calls for (400/413/415/422 with a body, 401/403 when it needs
//! credentials, 404 with path parameters, 429, 500, 503), every response the
//! `x-request-id` and `RateLimit-*` headers, optional parameters lose the
//! `null` that utoipa gives `Option` (absent is not null), and fixed-value
//! fields get the enums of the Rust types behind them.

mod enums;
mod outside;
mod problem;
mod send;

use serde_json::{Map, Value, json};

/// Finishes `doc` (the serialised utoipa document) in place.
pub fn finish(doc: &mut Value) {
    doc["servers"] = json!([{
        "url": "/",
        "description": "The Waypost server that serves this document (`WAYPOST_PUBLIC_URL`)."
    }]);
    let components = doc["components"].as_object_mut().expect("components");
    let schemas = components["schemas"].as_object_mut().expect("schemas");
    problem::add_schemas(schemas);
    send::add_schemas(schemas);
    enums::apply(schemas);
    components.insert("headers".into(), problem::headers());
    components.insert("responses".into(), problem::shared_responses());

    let paths = doc["paths"].as_object_mut().expect("paths");
    outside::add_paths(paths);
    for (path, item) in paths.iter_mut() {
        for (method, op) in item.as_object_mut().expect("path item").iter_mut() {
            if matches!(method.as_str(), "get" | "post" | "put" | "patch" | "delete") {
                finish_operation(path, op.as_object_mut().expect("operation"));
            }
        }
    }
}

fn finish_operation(path: &str, op: &mut Map<String, Value>) {
    let params = op.get_mut("parameters").and_then(Value::as_array_mut);
    let mut has_path_param = false;
    let mut has_query = false;
    for p in params.into_iter().flatten() {
        has_path_param |= p["in"] == "path";
        has_query |= p["in"] == "query";
        if p["required"] != json!(true) {
            strip_null(&mut p["schema"]);
        }
        if p["in"] == "path" {
            // An empty segment never routes here: `/v1/x/` is another path.
            p["schema"]["minLength"] = json!(1);
        }
        if matches!(p["in"].as_str(), Some("path" | "query")) {
            refuse_nul(&mut p["schema"]);
        }
    }
    let json_body = op
        .get("requestBody")
        .and_then(|b| b["content"].as_object())
        .map(|c| c.contains_key("application/json"));
    let secured = op
        .get("security")
        .and_then(Value::as_array)
        .is_some_and(|s| {
            s.iter()
                .any(|req| req.as_object().is_some_and(|o| !o.is_empty()))
        });
    let session_only = op
        .get("security")
        .and_then(Value::as_array)
        .is_some_and(|s| s.iter().all(|r| r.get("session").is_some()));
    let public_webhook = path.starts_with("/webhooks/") || path == "/stripe/webhook";
    if let Some(id) = op
        .get("operationId")
        .and_then(Value::as_str)
        .map(str::to_owned)
    {
        enums::apply_params(&id, op);
    }

    let responses = op
        .entry("responses")
        .or_insert_with(|| json!({}))
        .as_object_mut()
        .expect("responses");
    let mut add = |status: &str, name: &str| {
        responses
            .entry(status)
            .or_insert_with(|| json!({"$ref": format!("#/components/responses/{name}")}));
    };
    if json_body.is_some() || has_query || secured {
        add("400", "BadRequest");
    }
    if secured {
        add("401", "Unauthorized");
        add("403", "Forbidden");
    }
    // Sessions name their workspace; bodies name other resources (a channel, a segment).
    if has_path_param || session_only || (secured && json_body.is_some()) {
        add("404", "NotFound");
    }
    if json_body.is_some() {
        add("413", "PayloadTooLarge");
        add("422", "Unprocessable");
    }
    if json_body.is_some() {
        add("415", "UnsupportedMediaType");
    }
    // Path parameters are parsed too (an id's prefix, a phone number).
    if has_query || has_path_param {
        add("422", "Unprocessable");
    }
    if !public_webhook {
        add("429", "TooManyRequests");
    }
    add("500", "Internal");
    add("503", "Unavailable");
    for (status, response) in responses.iter_mut() {
        problem::finish_response(status, response);
    }
}

/// A free-text string in the address says it holds no NUL: the server refuses
/// `%00` anywhere in a URI before routing (`refuse_nul`).
fn refuse_nul(schema: &mut Value) {
    let free = schema["type"] == "string"
        && ["pattern", "enum", "format", "const"]
            .iter()
            .all(|k| schema.get(k).is_none());
    if free {
        schema["pattern"] = json!("^[^\\x00]*$");
    }
}

/// `type: [T, "null"]` → `T`, and `oneOf: [{type: null}, S]` → `S`.
fn strip_null(schema: &mut Value) {
    if let Some(types) = schema.get_mut("type").and_then(Value::as_array_mut) {
        types.retain(|t| t != "null");
        if types.len() == 1 {
            schema["type"] = types[0].clone();
        }
    }
    if let Some(one_of) = schema.get("oneOf").and_then(Value::as_array) {
        let rest: Vec<Value> = one_of
            .iter()
            .filter(|s| s.get("type") != Some(&json!("null")))
            .cloned()
            .collect();
        if rest.len() == 1 {
            *schema = rest[0].clone();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn optional_parameters_are_not_nullable() {
        let mut s = json!({"type": ["integer", "null"], "format": "int32"});
        strip_null(&mut s);
        assert_eq!(s, json!({"type": "integer", "format": "int32"}));
        let mut s = json!({"oneOf": [{"type": "null"}, {"$ref": "#/components/schemas/X"}]});
        strip_null(&mut s);
        assert_eq!(s, json!({"$ref": "#/components/schemas/X"}));
    }

    #[test]
    fn a_body_taking_secured_operation_gets_every_shared_problem() {
        let mut op = json!({
            "requestBody": {"content": {"application/json": {}}},
            "security": [{"api_key": ["contacts:write"]}, {"session": []}],
            "responses": {"201": {"description": "created"}}
        });
        finish_operation("/v1/contacts", op.as_object_mut().unwrap());
        let mut statuses: Vec<&String> = op["responses"].as_object().unwrap().keys().collect();
        statuses.sort();
        assert_eq!(
            statuses,
            [
                "201", "400", "401", "403", "404", "413", "415", "422", "429", "500", "503"
            ]
        );
        let mut op = json!({"parameters": [{"in": "path", "name": "id", "required": true, "schema": {"type": "string"}}],
            "security": [], "responses": {"200": {"description": "ok"}}});
        finish_operation("/v1/things/{id}", op.as_object_mut().unwrap());
        let mut statuses: Vec<&String> = op["responses"].as_object().unwrap().keys().collect();
        statuses.sort();
        assert_eq!(statuses, ["200", "404", "422", "429", "500", "503"]);
        assert_eq!(op["parameters"][0]["schema"]["pattern"], "^[^\\x00]*$");
        let mut enum_param = json!({"type": "string", "enum": ["a"]});
        refuse_nul(&mut enum_param);
        assert!(enum_param.get("pattern").is_none());
        assert_eq!(
            op["responses"]["200"]["headers"]["x-request-id"]["$ref"],
            "#/components/headers/RequestId"
        );
    }
}
