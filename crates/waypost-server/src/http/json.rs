//! `ApiJson<T>`: the JSON body extractor. Rejections are problems that say what
//! is wrong and where: the field path and the line and column of the error.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest, Request};
use axum::http::{StatusCode, header};
use serde::de::DeserializeOwned;
use serde_json::json;

use crate::error::{ApiError, Problem};

/// A JSON request body, deserialised into `T`.
#[derive(Debug, Clone)]
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        if !is_json(req.headers().get(header::CONTENT_TYPE)) {
            return Err(Problem::for_status(StatusCode::UNSUPPORTED_MEDIA_TYPE).into());
        }
        let bytes = read_body(req, state).await?;
        parse(&bytes).map(ApiJson)
    }
}

/// The whole body, or a problem: 413 past the limit, 400 when it cannot be read.
pub(crate) async fn read_body<S: Send + Sync>(req: Request, state: &S) -> Result<Bytes, ApiError> {
    Bytes::from_request(req, state).await.map_err(|e| match e {
        BytesRejection::FailedToBufferBody(inner)
            if inner.status() == StatusCode::PAYLOAD_TOO_LARGE =>
        {
            ApiError::from(Problem::for_status(StatusCode::PAYLOAD_TOO_LARGE))
        }
        other => Problem::new(
            other.status(),
            "bad-request",
            "Bad request",
            "The request body could not be read.",
        )
        .into(),
    })
}

pub(crate) fn is_json(value: Option<&axum::http::HeaderValue>) -> bool {
    let Some(mime) = value.and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let essence = mime
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// Deserialises a body, naming the failing field (as a JSON pointer) and position.
pub fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    let result: Result<T, _> = serde_path_to_error::deserialize(&mut *de);
    let result = match result {
        // JSON does not tell 68 from 68.0 (JSON Schema's `integer` takes both, and
        // so do clients that hold every number as a float): read an integral
        // float as the integer. Tried only when the body failed as written.
        Err(err)
            if err
                .inner()
                .to_string()
                .contains("invalid type: floating point") =>
        {
            match integral_floats_as_integers(bytes) {
                Some(Ok(value)) => return Ok(value),
                _ => Err(err),
            }
        }
        other => other,
    };
    let value = result.map_err(|err| -> ApiError {
        let path = err.path().to_string();
        let inner = err.into_inner();
        let (line, column) = (inner.line(), inner.column());
        let pointer = json_pointer(&path);
        let (slug, title, detail) = if inner.is_data() {
            let field = if path == "." {
                "the body".to_owned()
            } else {
                format!("field `{path}`")
            };
            (
                "invalid-body",
                "Invalid request body",
                format!("{field}: {} (line {line}, column {column})", clean(&inner)),
            )
        } else {
            (
                "invalid-json",
                "Malformed JSON",
                format!(
                    "malformed JSON at line {line}, column {column}: {}",
                    clean(&inner)
                ),
            )
        };
        Problem::new(StatusCode::BAD_REQUEST, slug, title, detail)
            .with(
                "errors",
                json!([{ "pointer": pointer, "line": line, "column": column }]),
            )
            .into()
    });
    let value: T = value?;
    // One JSON value, then nothing but whitespace: `{…} xyz` is not a body.
    de.end().map_err(|e| {
        let (line, column) = (e.line(), e.column());
        ApiError::from(
            Problem::new(
                StatusCode::BAD_REQUEST,
                "invalid-json",
                "Malformed JSON",
                format!(
                    "unexpected data after the JSON value at line {line}, column {column}: send exactly one JSON value"
                ),
            )
            .with(
                "errors",
                json!([{ "pointer": "", "line": line, "column": column }]),
            ),
        )
    })?;
    Ok(value)
}

/// The body again with every float that holds a whole number (below 2^53,
/// where floats are exact) as an integer; `None` when it has none or is not JSON.
fn integral_floats_as_integers<T: DeserializeOwned>(
    bytes: &[u8],
) -> Option<Result<T, serde_json::Error>> {
    fn fix(v: &mut serde_json::Value) -> bool {
        match v {
            serde_json::Value::Number(n) if n.is_f64() => {
                let f = n.as_f64().unwrap_or(f64::NAN);
                if f.fract() == 0.0 && f.abs() < 9_007_199_254_740_992.0 {
                    *v = json!(f as i64);
                    return true;
                }
                false
            }
            serde_json::Value::Array(items) => items.iter_mut().fold(false, |a, i| fix(i) | a),
            serde_json::Value::Object(map) => map.values_mut().fold(false, |a, i| fix(i) | a),
            _ => false,
        }
    }
    let mut value: serde_json::Value = serde_json::from_slice(bytes).ok()?;
    fix(&mut value).then(|| serde_json::from_value(value))
}

/// serde_json appends " at line L column C"; we report position separately.
fn clean(e: &serde_json::Error) -> String {
    let text = e.to_string();
    match text.rfind(" at line ") {
        Some(i) => text[..i].to_owned(),
        None => text,
    }
}

fn json_pointer(path: &str) -> String {
    if path == "." {
        return String::new();
    }
    path.split('.')
        .flat_map(|seg| {
            // `items[2]` → `items`, `2`
            let mut parts = Vec::new();
            let (name, rest) = seg.split_once('[').map_or((seg, ""), |(n, r)| (n, r));
            if !name.is_empty() {
                parts.push(name.replace('~', "~0").replace('/', "~1"));
            }
            for idx in rest.split('[') {
                let idx = idx.trim_end_matches(']');
                if !idx.is_empty() {
                    parts.push(idx.to_owned());
                }
            }
            parts
        })
        .fold(String::new(), |acc, p| format!("{acc}/{p}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Body {
        name: String,
        items: Vec<Item>,
    }

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Item {
        qty: u32,
    }

    fn problem(bytes: &str) -> Problem {
        match parse::<Body>(bytes.as_bytes()).unwrap_err() {
            ApiError::Problem(p) => *p,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn syntax_errors_give_position() {
        let p = problem("{\"name\": \"a\",\n \"items\": [}");
        assert_eq!(p.status, 400);
        assert!(p.kind.ends_with("/invalid-json"));
        assert!(p.detail.contains("line 2, column"), "{}", p.detail);
    }

    #[test]
    fn type_errors_name_the_field() {
        let p = problem(r#"{"name": "a", "items": [{"qty": 1}, {"qty": "many"}]}"#);
        assert!(p.kind.ends_with("/invalid-body"));
        assert!(
            p.detail.starts_with("field `items[1].qty`: invalid type"),
            "{}",
            p.detail
        );
        assert_eq!(p.extensions["errors"][0]["pointer"], "/items/1/qty");
    }

    #[test]
    fn trailing_data_after_the_value_is_refused() {
        let p = problem(r#"{"name": "a", "items": []} xyz"#);
        assert_eq!(p.status, 400);
        assert!(p.kind.ends_with("/invalid-json"));
        assert!(p.detail.contains("after the JSON value"), "{}", p.detail);
        let p = problem(r#"{"name": "a", "items": []}{"name": "b", "items": []}"#);
        assert!(p.kind.ends_with("/invalid-json"));
        assert!(parse::<Body>(b"{\"name\": \"a\", \"items\": []} \r\n\t").is_ok());
    }

    #[test]
    fn a_whole_number_written_as_a_float_is_an_integer() {
        let ok = parse::<Body>(br#"{"name": "a", "items": [{"qty": 68.0}, {"qty": 2}]}"#);
        assert!(ok.is_ok(), "{ok:?}");
        let p = problem(r#"{"name": "a", "items": [{"qty": 68.5}]}"#);
        assert!(
            p.detail
                .starts_with("field `items[0].qty`: invalid type: floating point"),
            "{}",
            p.detail
        );
        let p = problem(r#"{"name": "a", "items": [{"qty": 1e300}]}"#);
        assert_eq!(p.extensions["errors"][0]["pointer"], "/items/0/qty");
        let p = problem(r#"{"name": "a", "items": [{"qty": 68.0}]} xyz"#);
        assert_eq!(p.status, 400);
    }

    #[test]
    fn missing_fields_are_named() {
        let p = problem(r#"{"items": []}"#);
        assert!(p.detail.contains("missing field `name`"), "{}", p.detail);
    }

    #[test]
    fn json_content_types() {
        use axum::http::HeaderValue;
        assert!(is_json(Some(&HeaderValue::from_static(
            "application/json; charset=utf-8"
        ))));
        assert!(is_json(Some(&HeaderValue::from_static(
            "application/merge-patch+json"
        ))));
        assert!(!is_json(Some(&HeaderValue::from_static("text/plain"))));
        assert!(!is_json(None));
    }
}
