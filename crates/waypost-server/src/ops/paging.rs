//! Page sizes of list operations: `limit` is 1 to the list's maximum. A value
//! outside is refused (422, `field: limit`) rather than quietly changed, so the
//! bounds the OpenAPI document declares are the ones the server keeps.

use axum::http::StatusCode;

use crate::error::{ApiError, Problem};

/// `given`, or `default` when absent; refused outside `1..=max`.
pub fn page_limit(given: Option<u32>, default: u32, max: u32) -> Result<u32, ApiError> {
    match given {
        None => Ok(default),
        Some(n) if (1..=max).contains(&n) => Ok(n),
        Some(n) => Err(Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation",
            "Invalid request",
            format!("`limit` must be 1 to {max}, not {n}."),
        )
        .with("field", "limit".into())
        .into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_outside_the_bounds_are_refused() {
        assert_eq!(page_limit(None, 50, 100).unwrap(), 50);
        assert_eq!(page_limit(Some(1), 50, 100).unwrap(), 1);
        assert_eq!(page_limit(Some(100), 50, 100).unwrap(), 100);
        assert!(page_limit(Some(0), 50, 100).is_err());
        assert!(page_limit(Some(101), 50, 100).is_err());
    }
}
