//! The problem document's schema, the problem responses every operation
//! shares, and the headers every response carries. Each shared response lists
//! the problem `type`s it may carry in `x-problem-types`, so clients can
//! switch on them without reading prose.

use serde_json::{Map, Value, json};

const TYPE_BASE: &str = "https://waypost.dev/problems/";

/// `Problem` as one object: utoipa renders the flattened extension map as
/// `allOf[{type: object}, …]`, which generated clients cannot construct or
/// narrow. Known extension members are typed; others stay allowed.
pub fn add_schemas(schemas: &mut Map<String, Value>) {
    schemas.insert(
        "Problem".into(),
        json!({
            "type": "object",
            "description": "An RFC 9457 problem document. `type` is stable; each response lists the types it may carry in `x-problem-types`.",
            "required": ["type", "title", "status", "detail"],
            "properties": {
                "type": {"type": "string", "format": "uri", "description": "Stable URI identifying the kind of problem."},
                "title": {"type": "string"},
                "status": {"type": "integer", "minimum": 400, "maximum": 599},
                "detail": {"type": "string", "description": "What went wrong, for people."},
                "instance": {"type": "string", "description": "The request path this problem answers."},
                "request_id": {"type": "string", "description": "The `x-request-id` of the request, for support and log correlation."},
                "errors": {"type": "array", "items": {"$ref": "#/components/schemas/ProblemError"},
                    "description": "Where in the body the request went wrong, one entry per place."},
                "field": {"type": "string", "description": "The request field at fault."},
                "required_scope": {"type": "string", "description": "The scope an API key lacks (`insufficient-scope`)."}
            },
            "additionalProperties": true
        }),
    );
    schemas.insert(
        "ProblemError".into(),
        json!({
            "type": "object",
            "description": "One place in the request body that is at fault.",
            "required": ["pointer"],
            "properties": {
                "pointer": {"type": "string", "description": "A JSON Pointer (RFC 6901) into the request body; empty for the whole body."},
                "detail": {"type": "string"},
                "line": {"type": "integer", "minimum": 0},
                "column": {"type": "integer", "minimum": 0}
            },
            "additionalProperties": true
        }),
    );
}

pub fn headers() -> Value {
    let int = |description: &str| json!({"description": description, "schema": {"type": "integer", "minimum": 0}});
    json!({
        "RequestId": {"description": "The request's id (the caller's `x-request-id` when it sent a plain one); quote it when reporting a problem.",
            "required": true, "schema": {"type": "string"}},
        "RateLimitLimit": int("Requests allowed per window from this address (or, on refusals by an API key or sign-in limit, by that limit)."),
        "RateLimitRemaining": int("Requests left in the current window."),
        "RateLimitReset": int("Seconds until the window resets."),
        "RetryAfter": int("Seconds to wait before retrying.")
    })
}

/// The shared responses: (component name, status, description, problem slugs).
const SHARED: &[(&str, &str, &str, &[&str])] = &[
    (
        "BadRequest",
        "400",
        "The request is malformed: JSON that does not parse or does not fit the schema, a bad query string, or (sessions in several workspaces) no `Waypost-Workspace` header.",
        &["invalid-json", "bad-request", "workspace-required"],
    ),
    (
        "Unauthorized",
        "401",
        "No valid credentials: an API key, operator token or session is missing, invalid, expired or revoked.",
        &[
            "authentication-required",
            "invalid-api-key",
            "session-expired",
            "invalid-operator-token",
            "unauthorized",
        ],
    ),
    (
        "Forbidden",
        "403",
        "The credentials do not allow this: a key without the scope, a role without the permission, a session-only route called with a key, a missing CSRF header, a step-up needed, or a suspension.",
        &[
            "forbidden",
            "insufficient-scope",
            "session-required",
            "csrf",
            "reauth-required",
            "mfa-enrollment-required",
            "suspended",
            "operator-token-required",
        ],
    ),
    (
        "NotFound",
        "404",
        "Nothing with this id exists in the caller's workspace (or the named workspace is not the caller's).",
        &["not-found"],
    ),
    (
        "PayloadTooLarge",
        "413",
        "The body exceeds the configured limit.",
        &["payload-too-large"],
    ),
    (
        "UnsupportedMediaType",
        "415",
        "The body is not sent with the content type the operation takes.",
        &["unsupported-media-type"],
    ),
    (
        "Unprocessable",
        "422",
        "Well-formed, but a value is not acceptable; `errors` or `field` say where.",
        &["validation"],
    ),
    (
        "TooManyRequests",
        "429",
        "A rate limit or quota refused the request; retry after `Retry-After` seconds.",
        &["rate-limited", "quota-exceeded"],
    ),
    (
        "Internal",
        "500",
        "An internal error; only the request id is shown.",
        &["internal"],
    ),
    (
        "Unavailable",
        "503",
        "The request did not complete in time, or the server is not ready; retry later.",
        &["unavailable", "not-ready"],
    ),
];

pub fn shared_responses() -> Value {
    let mut out = Map::new();
    for (name, status, description, slugs) in SHARED {
        let mut response = json!({
            "description": description,
            "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}},
            "x-problem-types": slugs.iter().map(|s| format!("{TYPE_BASE}{s}")).collect::<Vec<_>>(),
        });
        finish_response(status, &mut response);
        if matches!(*status, "429" | "503") {
            response["headers"]["Retry-After"] = json!({"$ref": "#/components/headers/RetryAfter"});
        }
        out.insert((*name).into(), response);
    }
    Value::Object(out)
}

/// Adds the headers every response carries, and names the problem types an
/// operation's own problem response lists in its description (`slug, slug: …`),
/// else those of the shared response with its status.
pub fn finish_response(status: &str, response: &mut Value) {
    if response.get("$ref").is_some() {
        return;
    }
    if response["content"]
        .get("application/problem+json")
        .is_some()
        && response.get("x-problem-types").is_none()
    {
        let mut slugs = slugs_in(response["description"].as_str().unwrap_or(""));
        if slugs.is_empty() {
            slugs = SHARED
                .iter()
                .filter(|s| s.1 == status)
                .flat_map(|s| s.3.iter().map(|s| (*s).to_owned()))
                .collect();
        }
        response["x-problem-types"] = slugs.iter().map(|s| format!("{TYPE_BASE}{s}")).collect();
    }
    let headers = response
        .as_object_mut()
        .expect("response")
        .entry("headers")
        .or_insert_with(|| json!({}));
    headers["x-request-id"] = json!({"$ref": "#/components/headers/RequestId"});
    headers["RateLimit-Limit"] = json!({"$ref": "#/components/headers/RateLimitLimit"});
    headers["RateLimit-Remaining"] = json!({"$ref": "#/components/headers/RateLimitRemaining"});
    headers["RateLimit-Reset"] = json!({"$ref": "#/components/headers/RateLimitReset"});
}

/// The problem slugs (`outside-window`) a description names.
fn slugs_in(description: &str) -> Vec<String> {
    let mut out: Vec<String> = description
        .split(|c: char| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'))
        .filter(|w| w.contains('-') && !w.starts_with('-') && !w.ends_with('-'))
        .filter(|w| w.chars().next().is_some_and(|c| c.is_ascii_lowercase()))
        .map(str::to_owned)
        .collect();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn problem_types_come_from_the_description_or_the_status() {
        let mut r = json!({"description": "invalid-phone, invalid-user-id, or neither given",
            "content": {"application/problem+json": {}}});
        finish_response("422", &mut r);
        assert_eq!(
            r["x-problem-types"],
            json!([
                "https://waypost.dev/problems/invalid-phone",
                "https://waypost.dev/problems/invalid-user-id"
            ])
        );
        let mut r = json!({"description": "", "content": {"application/problem+json": {}}});
        finish_response("404", &mut r);
        assert_eq!(
            r["x-problem-types"],
            json!(["https://waypost.dev/problems/not-found"])
        );
    }
}
