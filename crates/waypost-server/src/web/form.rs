//! Forms posted from pages: fields read as a typed struct only after the CSRF
//! token (the `csrf` field, or the `X-CSRF-Token` header for htmx) matched
//! the one the page was rendered with. Members' pages bind it to their
//! session ([`PageForm`]); operator pages to their operator cookie (`operator`).

use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use axum::response::Response;
use serde::de::DeserializeOwned;
use waypost_crypto::token;

use super::page::{error_page, sign_in_redirect};
use crate::auth::Caller;
use crate::state::AppState;

/// Longest form body a page accepts.
const FORM_LIMIT: usize = 64 * 1024;

/// A form posted from a page: its fields as `T`, after its `csrf` field (or
/// `X-CSRF-Token` header, for htmx) matched the session's token.
pub struct PageForm<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for PageForm<T> {
    type Rejection = Response;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Response> {
        let Some(Caller::Session(session)) = req.extensions().get::<Caller>().cloned() else {
            return Err(sign_in_redirect(None));
        };
        let ring = state.keys.current();
        read_form(req, |t| {
            token::verify_csrf_token(&session.token_hash, &ring, t)
        })
        .await
        .map(PageForm)
    }
}

/// Reads a urlencoded form, checks its CSRF token with `valid`, and parses the rest as `T`.
pub async fn read_form<T: DeserializeOwned>(
    req: Request,
    valid: impl FnOnce(&str) -> bool,
) -> Result<T, Response> {
    let bad = |detail: &str| error_page(StatusCode::BAD_REQUEST, "The form was refused", detail);
    let header_token = req
        .headers()
        .get("x-csrf-token")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let bytes = axum::body::to_bytes(req.into_body(), FORM_LIMIT)
        .await
        .map_err(|_| bad("The form is too large."))?;
    let mut fields: Vec<(String, String)> =
        serde_urlencoded::from_bytes(&bytes).map_err(|_| bad("The form could not be read."))?;
    let presented = fields
        .iter()
        .position(|(k, _)| k == "csrf")
        .map(|i| fields.remove(i).1)
        .or(header_token);
    if !presented.is_some_and(|t| valid(&t)) {
        return Err(expired_form());
    }
    serde_json::from_value(form_object(fields))
        .map_err(|e| bad(&format!("A field is missing or malformed: {e}.")))
}

/// The answer to a form whose CSRF token does not match.
pub fn expired_form() -> Response {
    error_page(
        StatusCode::FORBIDDEN,
        "The form has expired",
        "Reload the page and submit the form again.",
    )
}

/// Form fields as a JSON object of strings; a field named `x[]` becomes the
/// array `x` (checkbox lists), any other repeated field keeps its last value.
fn form_object(fields: Vec<(String, String)>) -> serde_json::Value {
    let mut map = serde_json::Map::new();
    for (key, value) in fields {
        match key.strip_suffix("[]") {
            Some(list) => {
                let entry = map
                    .entry(list.to_owned())
                    .or_insert_with(|| serde_json::Value::Array(Vec::new()));
                if let serde_json::Value::Array(items) = entry {
                    items.push(value.into());
                }
            }
            None => {
                map.insert(key, value.into());
            }
        }
    }
    serde_json::Value::Object(map)
}

/// One option of a `<select>` (or link of a filter bar).
pub struct Choice {
    pub value: &'static str,
    pub label: &'static str,
    pub selected: bool,
}

/// `(value, label)` options with the one equal to `current` selected.
pub fn choices(options: &[(&'static str, &'static str)], current: &str) -> Vec<Choice> {
    options
        .iter()
        .map(|&(value, label)| Choice {
            value,
            label,
            selected: value == current,
        })
        .collect()
}

/// A form with no fields but the CSRF token (a button).
#[derive(serde::Deserialize)]
pub struct Button {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checkbox_lists_become_arrays() {
        let fields = vec![
            ("name".to_owned(), "shop".to_owned()),
            ("scope[]".to_owned(), "messages:send".to_owned()),
            ("scope[]".to_owned(), "messages:read".to_owned()),
        ];
        assert_eq!(
            form_object(fields),
            serde_json::json!({"name": "shop", "scope": ["messages:send", "messages:read"]})
        );
    }
}
