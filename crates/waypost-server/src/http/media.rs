//! Media files: `POST /v1/media` uploads a file for sending (multipart, with
//! its own body limit), `GET /v1/media/{id}` gives a file's bytes (a
//! customer's file fetched from the provider on demand, checked against its
//! sha256), `GET /v1/media/{id}/info` its metadata. The checks and the
//! provider calls are in [`crate::ops::media`].

use axum::Json;
use axum::body::Body;
use axum::extract::multipart::{Field, MultipartError, MultipartRejection};
use axum::extract::{Multipart, Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;
use waypost_core::media::{self, MAX_MEDIA_BYTES, MediaKind};
use waypost_store::media::MediaRow;

use super::{ApiError, Problem, unprocessable};
use crate::auth::Authorized;
use crate::auth::permission::act;
use crate::ops::Ctx;
use crate::ops::media::{self as op, Upload, refusal_problem};
use crate::state::{AppState, RequestOrigin};

/// The body limit of `POST /v1/media`: the largest file plus room for the form's other fields.
pub const UPLOAD_BODY_LIMIT: usize = MAX_MEDIA_BYTES + 64 * 1024;
/// Longest value of a text field of the form.
const MAX_FIELD_BYTES: usize = 1024;

/// `POST /v1/media` form (documentation shape).
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct UploadForm {
    /// The channel (phone number) the file will be sent from; provider media ids are per number.
    channel_id: String,
    /// The file, with its MIME type as the part's `Content-Type`.
    #[schema(value_type = String, format = Binary)]
    file: Vec<u8>,
    /// `image`, `audio`, `video`, `document` or `sticker`; by default the kind of the MIME type
    /// (`image/webp` is a sticker). Send it before `file`.
    r#type: Option<String>,
    /// The name a document is shown with; by default the file part's name.
    filename: Option<String>,
}

/// A media file's metadata.
#[derive(Serialize, ToSchema)]
pub struct MediaView {
    pub id: String,
    /// `outbound` (uploaded) or `inbound` (sent by a customer).
    pub direction: String,
    /// `image`, `audio`, `video`, `document` or `sticker`.
    pub r#type: String,
    pub mime_type: String,
    /// Bytes; unknown for a customer's file until fetched.
    pub size: Option<i64>,
    /// Hex SHA-256 of the file.
    pub sha256: Option<String>,
    pub filename: Option<String>,
    pub channel_id: String,
    pub contact_id: Option<String>,
    pub message_id: Option<String>,
    /// Whether Waypost keeps an encrypted copy (only under `days:N` content retention).
    pub retained: bool,
    /// When the provider forgets the file (uploads: 30 days, customers' files: 7 days).
    pub expires_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
}

pub fn view(m: MediaRow, filename: Option<String>) -> MediaView {
    MediaView {
        id: m.id,
        direction: m.direction,
        r#type: m.media_type,
        mime_type: m.mime_type,
        size: m.size,
        sha256: m.sha256,
        filename,
        channel_id: m.channel_id,
        contact_id: m.contact_id,
        message_id: m.message_id,
        retained: m.retained,
        expires_at: m.provider_expires_at,
        created_at: m.created_at,
    }
}

fn multipart_problem(e: MultipartError) -> ApiError {
    let status = e.status();
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        return Problem::new(
            status,
            "media-too-large",
            "Media file too large",
            format!("the request exceeds {UPLOAD_BODY_LIMIT} bytes; WhatsApp takes files of at most {MAX_MEDIA_BYTES} bytes"),
        )
        .into();
    }
    Problem::new(
        status,
        "bad-request",
        "Bad request",
        format!("the multipart body could not be read: {}", e.body_text()),
    )
    .into()
}

async fn text_field(field: Field<'_>, name: &str) -> Result<String, ApiError> {
    let bytes = field.bytes().await.map_err(multipart_problem)?;
    if bytes.len() > MAX_FIELD_BYTES {
        return Err(unprocessable(format!("`{name}` is too long")));
    }
    String::from_utf8(bytes.to_vec())
        .map_err(|_| unprocessable(format!("`{name}` must be UTF-8 text")))
}

/// Reads the file part, keeping no more than the largest size its type may
/// have. The rest of a larger file is read and dropped, so the client gets
/// the 413 instead of a connection closed while it still sends.
async fn file_field(
    mut field: Field<'_>,
    mime: &str,
    kind: Option<MediaKind>,
) -> Result<Vec<u8>, ApiError> {
    let kind = kind.or_else(|| MediaKind::of_mime(mime)).ok_or_else(|| {
        refusal_problem(media::MediaRefusal::UnsupportedType {
            mime: media::essence(mime),
            kind: None,
        })
    })?;
    let limit = kind.upper_bound();
    let (mut bytes, mut size) = (Vec::new(), 0usize);
    while let Some(chunk) = field.chunk().await.map_err(multipart_problem)? {
        size += chunk.len();
        if size <= limit {
            bytes.extend_from_slice(&chunk);
        } else {
            bytes = Vec::new();
        }
    }
    if size > limit {
        return Err(refusal_problem(media::MediaRefusal::TooLarge {
            kind,
            animated: kind == MediaKind::Sticker,
            size,
            limit,
        }));
    }
    Ok(bytes)
}

/// Uploads a file for sending: its type and size are checked against WhatsApp's limits
/// (image 5 MiB, audio and video 16 MiB, document 100 MiB, sticker 100 KiB or 500 KiB
/// animated), then it goes to the channel's provider. The answer's `id` is what
/// `POST /v1/messages` takes as `media_id`. No copy is kept unless the workspace retains content.
#[utoipa::path(operation_id = "upload_media", post, path = "/v1/media", tag = "media",
    request_body(content = UploadForm, content_type = "multipart/form-data"),
    responses((status = 201, body = MediaView),
        (status = 404, body = Problem, content_type = "application/problem+json", description = "Unknown channel"),
        (status = 413, body = Problem, content_type = "application/problem+json", description = "media-too-large"),
        (status = 415, body = Problem, content_type = "application/problem+json", description = "media-type-unsupported, or not a multipart body"),
        (status = 422, body = Problem, content_type = "application/problem+json", description = "media-content-mismatch, provider-refused, validation"),
        (status = 502, body = Problem, content_type = "application/problem+json", description = "provider-unavailable")),
    security(("api_key" = ["messages:send"]), ("session" = [])))]
pub async fn upload(
    State(state): State<AppState>,
    origin: RequestOrigin,
    auth: Authorized<act::MessagesSend>,
    form: Result<Multipart, MultipartRejection>,
) -> Result<Response, ApiError> {
    let mut form = form.map_err(|_| {
        Problem::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported-media-type",
            "Unsupported media type",
            "send the file as multipart/form-data with a `file` part and a `channel_id` field",
        )
    })?;
    let (mut channel_id, mut kind, mut filename, mut file) = (None, None, None, None);
    while let Some(field) = form.next_field().await.map_err(multipart_problem)? {
        match field.name().unwrap_or("") {
            "channel_id" => channel_id = Some(text_field(field, "channel_id").await?),
            "filename" => filename = Some(text_field(field, "filename").await?),
            "type" => {
                let t = text_field(field, "type").await?;
                kind = Some(MediaKind::parse(&t).ok_or_else(|| {
                    unprocessable("`type` must be image, audio, video, document or sticker")
                })?);
            }
            "file" => {
                let mime = field
                    .content_type()
                    .unwrap_or("application/octet-stream")
                    .to_owned();
                filename = filename.or_else(|| field.file_name().map(str::to_owned));
                let bytes = file_field(field, &mime, kind).await?;
                file = Some((mime, bytes));
            }
            _ => {}
        }
    }
    let channel_id =
        channel_id.ok_or_else(|| unprocessable("the `channel_id` field is required"))?;
    let (mime_type, bytes) = file.ok_or_else(|| unprocessable("the `file` part is required"))?;
    let ctx = Ctx::of(&auth, origin);
    let input = Upload {
        channel_id,
        kind,
        mime_type,
        filename,
        bytes,
    };
    let row = op::upload(&state, &ctx, input).await?;
    let (row, name) = op::info(&state, &ctx, &row.id).await?;
    Ok((StatusCode::CREATED, Json(view(row, name))).into_response())
}

/// A media file's metadata.
#[utoipa::path(operation_id = "get_media_info", get, path = "/v1/media/{id}/info", tag = "media",
    params(("id" = String, Path)),
    responses((status = 200, body = MediaView), (status = 404, body = Problem, content_type = "application/problem+json")),
    security(("api_key" = ["messages:read"]), ("session" = [])))]
pub async fn info(
    State(state): State<AppState>,
    origin: RequestOrigin,
    auth: Authorized<act::MessagesRead>,
    Path(id): Path<String>,
) -> Result<Json<MediaView>, ApiError> {
    let (row, name) = op::info(&state, &Ctx::of(&auth, origin), &id).await?;
    Ok(Json(view(row, name)))
}

/// A media file's bytes, with its `Content-Type` and its sha256 in `Repr-Digest`. A customer's
/// file is fetched from the provider and checked against its sha256 before any byte is sent;
/// under `days:N` retention the first fetch keeps an encrypted copy, served after the provider
/// forgets the file. Uploads are only served from such a copy.
#[utoipa::path(operation_id = "get_media", get, path = "/v1/media/{id}", tag = "media",
    params(("id" = String, Path)),
    responses((status = 200, description = "The file", content_type = "application/octet-stream", body = Vec<u8>,
            headers(("repr-digest" = String, description = "`sha-256=:<base64>:`"))),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 410, body = Problem, content_type = "application/problem+json", description = "media-expired, media-not-kept"),
        (status = 502, body = Problem, content_type = "application/problem+json", description = "media-hash-mismatch, provider-unavailable")),
    security(("api_key" = ["messages:read"]), ("session" = [])))]
pub async fn download(
    State(state): State<AppState>,
    origin: RequestOrigin,
    auth: Authorized<act::MessagesRead>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let mut f = crate::ops::media_fetch::fetch(&state, &Ctx::of(&auth, origin), &id).await?;
    // A type outside WhatsApp's table (from a webhook) is served as opaque bytes.
    let content_type = Some(f.media.mime_type.as_str())
        .filter(|m| MediaKind::of_mime(m).is_some())
        .and_then(|m| HeaderValue::from_str(m).ok())
        .unwrap_or(HeaderValue::from_static("application/octet-stream"));
    let name = f
        .filename
        .clone()
        .unwrap_or_else(|| format!("{}.{}", f.media.id, media::extension(&f.media.mime_type)));
    let disposition = HeaderValue::from_str(&format!("attachment; filename=\"{name}\""))
        .unwrap_or(HeaderValue::from_static("attachment"));
    let digest = hex::decode(&f.sha256).unwrap_or_default();
    let digest = format!(
        "sha-256=:{}:",
        base64::engine::general_purpose::STANDARD.encode(digest)
    );
    let len = f.bytes.len();
    // Moved, not copied: files may be 100 MiB.
    let mut res = Body::from(std::mem::take(&mut *f.bytes)).into_response();
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, content_type);
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    h.insert(header::CONTENT_DISPOSITION, disposition);
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-store"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if let Ok(v) = HeaderValue::from_str(&digest) {
        h.insert("repr-digest", v);
    }
    Ok(res)
}
