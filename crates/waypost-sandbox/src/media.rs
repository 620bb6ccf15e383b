//! Media (upload, retrieve URL, download, delete) and `GET /{id}` for
//! phone numbers. Uploads are checked against Meta's type and size table;
//! the download URL lives on the sandbox and needs the owner's token.

use axum::Json;
use axum::extract::{Multipart, Path, Query, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use sha2::{Digest, Sha256};
use waypost_cloudapi::manage::{
    MediaInfo, MediaUploaded, PhoneNumberInfo, QualityRating, Throughput,
};

use crate::error::GraphError;
use crate::state::Media;
use crate::{AppState, authorize_number, bearer, templates};

const MB: usize = 1024 * 1024;

/// Meta's supported media types and their maximum sizes.
pub fn max_size(mime: &str) -> Option<usize> {
    let base = mime.split(';').next().unwrap_or("").trim();
    Some(match base {
        "audio/aac" | "audio/amr" | "audio/mpeg" | "audio/mp4" | "audio/ogg" => 16 * MB,
        "text/plain"
        | "application/pdf"
        | "application/msword"
        | "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
        | "application/vnd.ms-excel"
        | "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
        | "application/vnd.ms-powerpoint"
        | "application/vnd.openxmlformats-officedocument.presentationml.presentation" => 100 * MB,
        "image/jpeg" | "image/png" => 5 * MB,
        // Animated stickers may be 500 KB; static ones 100 KB. We can't
        // tell them apart without decoding, so allow the larger.
        "image/webp" => 500 * 1024,
        "video/mp4" | "video/3gpp" => 16 * MB,
        _ => return None,
    })
}

pub async fn upload(
    State(state): State<AppState>,
    Path(number_id): Path<String>,
    headers: HeaderMap,
    mut form: Multipart,
) -> Result<Json<MediaUploaded>, GraphError> {
    {
        let inner = state.lock();
        authorize_number(&inner, bearer(&headers), &number_id)?;
    }
    let (mut product, mut kind, mut file) = (None, None, None);
    while let Some(field) = form
        .next_field()
        .await
        .map_err(|e| GraphError::param("file", &e.to_string()))?
    {
        let name = field.name().unwrap_or("").to_owned();
        match name.as_str() {
            "messaging_product" => product = field.text().await.ok(),
            "type" => kind = field.text().await.ok(),
            "file" => {
                let part_type = field.content_type().map(str::to_owned);
                let bytes = field
                    .bytes()
                    .await
                    .map_err(|e| GraphError::param("file", &e.to_string()))?;
                file = Some((part_type, bytes));
            }
            _ => {}
        }
    }
    if product.as_deref() != Some("whatsapp") {
        return Err(GraphError::param(
            "messaging_product",
            "must be \"whatsapp\"",
        ));
    }
    let (part_type, bytes) = file.ok_or_else(|| GraphError::param("file", "is required"))?;
    let mime = kind
        .or(part_type)
        .ok_or_else(|| GraphError::param("type", "is required"))?;
    let (id, _) = store(&state, &number_id, &mime, bytes.to_vec(), ("type", "file"))?;
    Ok(Json(MediaUploaded { id }))
}

/// Owner number of a media id if `token` may see it.
fn authorize_media(state: &AppState, headers: &HeaderMap, id: &str) -> Result<Media, GraphError> {
    let inner = state.lock();
    let token = bearer(headers).ok_or_else(GraphError::auth)?;
    if !inner.numbers.iter().any(|n| n.access_token == token) {
        return Err(GraphError::auth());
    }
    let media = inner
        .media
        .get(id)
        .ok_or_else(|| GraphError::unknown_object(id))?;
    authorize_number(&inner, Some(token), &media.phone_number_id)?;
    Ok(media.clone())
}

/// `GET /{id}`: a phone number's info, a template, or a media file's
/// download URL.
pub async fn get_object(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    Query(q): Query<templates::NodeQuery>,
) -> Result<Response, GraphError> {
    if let Some(t) = templates::get_node(&state, &headers, &id, q.fields()) {
        return Ok(Json(t?).into_response());
    }
    let number = state.lock().number(&id).cloned();
    if let Some(n) = number {
        authorize_number(&state.lock(), bearer(&headers), &id)?;
        let info = PhoneNumberInfo {
            id: n.id.clone(),
            verified_name: Some(n.verified_name.clone()),
            display_phone_number: Some(format!("+{}", n.display_number)),
            code_verification_status: Some("VERIFIED".into()),
            quality_rating: Some(
                state
                    .lock()
                    .quality
                    .get(&n.id)
                    .cloned()
                    .unwrap_or(QualityRating::Green),
            ),
            platform_type: Some("CLOUD_API".into()),
            throughput: Some(Throughput {
                level: "STANDARD".into(),
            }),
            name_status: Some("APPROVED".into()),
            status: Some("CONNECTED".into()),
            account_mode: Some("SANDBOX".into()),
            is_official_business_account: Some(false),
            messaging_limit_tier: Some(format!("TIER_{}", n.messaging_tier)),
        };
        return Ok(Json(info).into_response());
    }
    let media = authorize_media(&state, &headers, &id)?;
    if fault(&state, |f| f.media_gone) {
        return Err(GraphError::unknown_object(&id));
    }
    Ok(Json(MediaInfo {
        messaging_product: Some("whatsapp".into()),
        url: format!("{}/_media/{id}", state.base_url),
        mime_type: media.mime_type,
        sha256: Some(media.sha256),
        file_size: media.bytes.len() as u64,
        id,
    })
    .into_response())
}

pub async fn download(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, GraphError> {
    let mut media = authorize_media(&state, &headers, &id)?;
    if fault(&state, |f| f.media_url_expired) {
        return Err(GraphError::url_expired());
    }
    if fault(&state, |f| f.media_hash_mismatch)
        && let Some(last) = media.bytes.last_mut()
    {
        *last ^= 0xFF;
    }
    Ok(([(header::CONTENT_TYPE, media.mime_type)], media.bytes).into_response())
}

/// Rolls a media fault. Draws only when the rate is set, so runs without
/// media faults keep their seeded sequence of outcomes.
fn fault(state: &AppState, rate: impl Fn(&crate::config::FaultConfig) -> f64) -> bool {
    let mut inner = state.lock();
    let r = rate(&inner.faults);
    r > 0.0 && inner.roll(r)
}

/// Stores a file as if a user had sent it to `number_id`; returns its id and
/// sha256 (hex, as retrieval reports it).
pub fn create_inbound(
    state: &AppState,
    number_id: &str,
    mime_type: &str,
    bytes: Vec<u8>,
) -> Result<(String, String), GraphError> {
    store(state, number_id, mime_type, bytes, ("mime_type", "data"))
}

/// Checks a file against Meta's type and size limits and the sandbox's capacity,
/// then keeps it for `number_id`; returns its id and sha256 (hex). `fields` names
/// the request's type and file fields in errors.
fn store(
    state: &AppState,
    number_id: &str,
    mime_type: &str,
    bytes: Vec<u8>,
    (type_field, file_field): (&str, &str),
) -> Result<(String, String), GraphError> {
    let limit = max_size(mime_type).ok_or_else(|| {
        GraphError::param(type_field, &format!("unsupported media type {mime_type}"))
    })?;
    if bytes.len() > limit {
        return Err(GraphError::param(
            file_field,
            &format!(
                "{} bytes; at most {limit} allowed for {mime_type}",
                bytes.len()
            ),
        ));
    }
    let mut inner = state.lock();
    if inner.media.len() >= state.config.limits.max_media {
        return Err(GraphError::param(
            file_field,
            "sandbox media store is full; delete media or reset",
        ));
    }
    let id = inner.numeric_id().to_string();
    let sha256 = hex::encode(Sha256::digest(&bytes));
    inner.media.insert(
        id.clone(),
        Media {
            phone_number_id: number_id.to_owned(),
            mime_type: mime_type.to_owned(),
            bytes,
            sha256: sha256.clone(),
        },
    );
    Ok((id, sha256))
}

pub async fn delete(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Json<serde_json::Value>, GraphError> {
    authorize_media(&state, &headers, &id)?;
    state.lock().media.remove(&id);
    Ok(Json(json!({ "success": true })))
}
