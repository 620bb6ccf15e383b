//! The dashboard's static files, compiled into the binary. Each is served
//! under a name carrying a hash of its bytes, so browsers may cache it for a
//! year and a new build is fetched at once.

use std::sync::LazyLock;

use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

struct Asset {
    /// `app.css` → `app.3f2a9c1d.css`.
    name: String,
    bytes: &'static [u8],
    mime: &'static str,
}

fn asset(stem: &str, ext: &str, bytes: &'static [u8], mime: &'static str) -> Asset {
    let hash = hex::encode(&Sha256::digest(bytes)[..6]);
    Asset {
        name: format!("{stem}.{hash}.{ext}"),
        bytes,
        mime,
    }
}

static ASSETS: LazyLock<[Asset; 3]> = LazyLock::new(|| {
    [
        asset(
            "app",
            "css",
            include_bytes!("../../assets/app.css"),
            "text/css; charset=utf-8",
        ),
        asset(
            "app",
            "js",
            include_bytes!("../../assets/app.js"),
            "text/javascript; charset=utf-8",
        ),
        asset(
            "htmx-2.0.11",
            "js",
            include_bytes!("../../assets/htmx-2.0.11.min.js"),
            "text/javascript; charset=utf-8",
        ),
    ]
});

/// The URL of the stylesheet.
pub fn css() -> String {
    format!("/assets/{}", ASSETS[0].name)
}

/// The URL of the dashboard's own script.
pub fn app_js() -> String {
    format!("/assets/{}", ASSETS[1].name)
}

/// The URL of htmx.
pub fn htmx_js() -> String {
    format!("/assets/{}", ASSETS[2].name)
}

/// `GET /assets/{name}`: only the current hashed names exist.
pub async fn serve(Path(name): Path<String>) -> Response {
    let Some(a) = ASSETS.iter().find(|a| a.name == name) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(a.mime)),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=31536000, immutable"),
            ),
        ],
        a.bytes,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_carry_the_content_hash() {
        assert!(css().starts_with("/assets/app.") && css().ends_with(".css"));
        assert_ne!(app_js(), htmx_js());
        let a = asset("x", "js", b"one", "text/javascript");
        let b = asset("x", "js", b"two", "text/javascript");
        assert_ne!(a.name, b.name, "different bytes must get different names");
    }
}
