//! Media files. `upload` checks a file against Meta's type and size table,
//! hands it to the channel's provider and records a `med_…` id that sends
//! accept (`use_upload`); `inbound_media` records a file a customer sent,
//! whose bytes [`super::media_fetch`] gets on demand. Nothing of a file is
//! stored under `none` retention; under `days:N` an upload's copy is sealed
//! with its own key (wrapped by the key ring).

use axum::http::StatusCode;
use chrono::{DateTime, Duration, Utc};
use sha2::{Digest, Sha256};
use waypost_cloudapi::send::MediaSource;
use waypost_cloudapi::{ClientError, InboundContent, InboundMessage, OutboundContent};
use waypost_core::NewAuditEvent;
use waypost_core::id::MediaId;
use waypost_core::media::{self, MediaKind, MediaRefusal};
use waypost_crypto::{Aad, ContentKey};
use waypost_store::media::{MediaBlob, MediaRow, NewMedia};
use waypost_store::messaging::{ChannelRow, ContactRow};

use super::Ctx;
use crate::error::{ApiError, Problem};
use crate::messaging::client_for;
use crate::state::AppState;

/// A file to upload.
pub struct Upload {
    pub channel_id: String,
    /// The kind to send it as; by default the kind of its MIME type.
    pub kind: Option<MediaKind>,
    pub mime_type: String,
    pub filename: Option<String>,
    pub bytes: Vec<u8>,
}

pub(super) fn problem(
    status: StatusCode,
    slug: &str,
    title: &str,
    detail: impl Into<String>,
) -> ApiError {
    Problem::new(status, slug, title, detail).into()
}

/// The problem for a file Meta would refuse.
pub fn refusal_problem(r: MediaRefusal) -> ApiError {
    let (status, slug, title) = match &r {
        MediaRefusal::UnsupportedType { .. } => (
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "media-type-unsupported",
            "Media type not supported",
        ),
        MediaRefusal::TooLarge { .. } => (
            StatusCode::PAYLOAD_TOO_LARGE,
            "media-too-large",
            "Media file too large",
        ),
        MediaRefusal::ContentMismatch { .. } => (
            StatusCode::UNPROCESSABLE_ENTITY,
            "media-content-mismatch",
            "Media content does not match its type",
        ),
        MediaRefusal::Empty => (
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation",
            "Invalid request",
        ),
    };
    problem(status, slug, title, r.to_string())
}

pub(super) fn media_aad<'a>(column: &'a str, id: &'a str) -> Aad<'a> {
    Aad::new("media", column, id)
}

pub(super) fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Sends the file to the channel's provider and records it; the copy is kept
/// (encrypted) only when the workspace retains content.
pub async fn upload(state: &AppState, ctx: &Ctx, input: Upload) -> Result<MediaRow, ApiError> {
    let kind =
        media::check_file(&input.mime_type, input.kind, &input.bytes).map_err(refusal_problem)?;
    let channel = state
        .lookups
        .channel(&ctx.workspace, &input.channel_id)
        .await?;
    let mime_type = media::essence(&input.mime_type);
    let filename = input.filename.as_deref().and_then(media::safe_filename);
    let provider_name = filename
        .clone()
        .unwrap_or_else(|| format!("upload.{}", media::extension(&mime_type)));
    let client = client_for(&state.keys, &state.config, &channel).map_err(ApiError::Internal)?;
    let size = input.bytes.len();
    let sha256 = sha256_hex(&input.bytes);
    let settings = state.lookups.messaging_settings(&ctx.workspace).await?;
    let now = state.clock.now();
    let id = MediaId::new().to_string();
    let ring = state.keys.current();
    // Sealed before the upload, so the plain bytes need not outlive it.
    let blob = settings.content_retention.days().map(|days| {
        let key = ContentKey::generate();
        MediaBlob {
            blob: key.encrypt(media_aad("blob", &id), &input.bytes),
            blob_key: Some(key.wrap(&ring, media_aad("blob_key", &id))),
            blob_expires_at: now + Duration::days(days),
        }
    });
    let uploaded = client
        .upload_media(
            &channel.phone_number_id,
            input.bytes,
            &mime_type,
            &provider_name,
        )
        .await
        .map_err(|e| provider_problem(&e, "upload"))?;
    let row = MediaRow {
        id: id.clone(),
        workspace_id: ctx.workspace.clone(),
        channel_id: channel.id.clone(),
        contact_id: None,
        message_id: None,
        direction: "outbound".into(),
        media_type: kind.as_str().into(),
        provider_media_id: uploaded.id.clone(),
        mime_type,
        size: Some(size as i64),
        sha256: Some(sha256),
        filename: filename.map(|f| ring.encrypt(media_aad("filename", &id), f.as_bytes())),
        blob_expires_at: blob.as_ref().map(|b| b.blob_expires_at),
        provider_expires_at: now + Duration::days(media::UPLOAD_LIFETIME_DAYS),
        created_at: now,
        retained: blob.is_some(),
    };
    let audit = ctx.origin.stamp(
        NewAuditEvent::new(Some(ctx.workspace_id), ctx.actor.clone(), "media.uploaded")
            .target("media", id.clone())
            .details(serde_json::json!({
                "channel_id": channel.id,
                "type": row.media_type,
                "mime_type": row.mime_type,
                "size": size,
                "retained": row.retained,
            })),
    );
    let new = NewMedia {
        media: row.clone(),
        blob,
    };
    if let Err(e) = state.store.insert_media(&new, audit).await {
        // Not recorded, so nobody can send it: don't leave it at the provider either.
        let pnid = channel.phone_number_id.clone();
        tokio::spawn(async move {
            let _ = client.delete_media(&uploaded.id, Some(&pnid)).await;
        });
        return Err(e.into());
    }
    metrics::counter!("waypost_media_uploaded_total", "type" => kind.as_str()).increment(1);
    Ok(row)
}

/// The provider's media id for sending `media_id` as `kind` through `channel_id`.
pub async fn provider_id_for_send(
    state: &AppState,
    ctx: &Ctx,
    channel_id: &str,
    media_id: &str,
    kind: &str,
) -> Result<String, ApiError> {
    let refuse = |slug: &str, title: &str, detail: String| {
        problem(StatusCode::UNPROCESSABLE_ENTITY, slug, title, detail)
    };
    let row = state.store.get_media(&ctx.workspace, media_id).await?;
    if row.direction != "outbound" {
        return Err(refuse(
            "media-not-sendable",
            "Media not sendable",
            "this media was received from a customer; upload the file with POST /v1/media to send it".into(),
        ));
    }
    if row.channel_id != channel_id {
        return Err(refuse(
            "media-channel-mismatch",
            "Media belongs to another channel",
            format!(
                "media is uploaded per phone number; {media_id} was uploaded through channel {}",
                row.channel_id
            ),
        ));
    }
    if row.provider_expires_at <= state.clock.now() {
        return Err(refuse(
            "media-expired",
            "Media expired",
            "the provider keeps uploads for 30 days; upload the file again".into(),
        ));
    }
    if row.media_type != kind {
        return Err(refuse(
            "media-type-mismatch",
            "Media type mismatch",
            format!(
                "{media_id} was uploaded as {}, the message is {kind}",
                row.media_type
            ),
        ));
    }
    Ok(row.provider_media_id)
}

/// Takes `media_id` out of a media message's payload, leaving the id in `id`
/// so the payload parses as the Cloud API's; [`use_upload`] then puts the
/// provider's id there.
pub fn take_media_id(
    payload: &mut serde_json::Map<String, serde_json::Value>,
) -> Result<Option<String>, String> {
    use serde_json::Value;
    let kind = payload
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("text");
    if MediaKind::parse(kind).is_none() {
        return Ok(None);
    }
    let kind = kind.to_owned();
    let Some(Value::Object(obj)) = payload.get_mut(&kind) else {
        return Ok(None);
    };
    let Some(value) = obj.remove("media_id") else {
        return Ok(None);
    };
    let Value::String(id) = value else {
        return Err(format!("`{kind}.media_id` must be a string"));
    };
    if obj.contains_key("id") || obj.contains_key("link") {
        return Err(format!("`{kind}` takes one of `media_id`, `id` and `link`"));
    }
    MediaId::parse(&id).map_err(|e| format!("`{kind}.media_id`: {e}"))?;
    obj.insert("id".into(), Value::String(id.clone()));
    Ok(Some(id))
}

/// Points a media message at the provider's copy of upload `media_id`,
/// after checking the upload may be sent this way.
pub async fn use_upload(
    state: &AppState,
    ctx: &Ctx,
    channel_id: &str,
    media_id: &str,
    content: &mut OutboundContent,
) -> Result<(), ApiError> {
    let kind = content.kind().to_owned();
    let provider_id = provider_id_for_send(state, ctx, channel_id, media_id, &kind).await?;
    if let OutboundContent::Image(m)
    | OutboundContent::Video(m)
    | OutboundContent::Audio(m)
    | OutboundContent::Document(m)
    | OutboundContent::Sticker(m) = content
    {
        m.source = MediaSource::Id(provider_id);
    }
    Ok(())
}

/// A media file's metadata, with its file name decrypted.
pub async fn info(
    state: &AppState,
    ctx: &Ctx,
    id: &str,
) -> Result<(MediaRow, Option<String>), ApiError> {
    let row = state.store.get_media(&ctx.workspace, id).await?;
    let filename = open_filename(state, &row)?;
    Ok((row, filename))
}

/// A contact's media files, with their names, in id order.
pub async fn contact_media(
    state: &AppState,
    workspace: &str,
    contact_id: &str,
) -> Result<Vec<(MediaRow, Option<String>)>, ApiError> {
    const PAGE: u32 = 500;
    let mut out = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = state
            .store
            .contact_media(workspace, contact_id, after.as_deref(), PAGE)
            .await?;
        after = page.last().map(|m| m.id.clone());
        let done = page.len() < PAGE as usize;
        for row in page {
            let name = open_filename(state, &row)?;
            out.push((row, name));
        }
        if done {
            return Ok(out);
        }
    }
}

fn open_filename(state: &AppState, row: &MediaRow) -> Result<Option<String>, ApiError> {
    row.filename
        .as_deref()
        .map(|sealed| -> anyhow::Result<String> {
            let plain = state
                .keys
                .current()
                .decrypt(media_aad("filename", &row.id), sealed)?;
            Ok(String::from_utf8(plain.to_vec())?)
        })
        .transpose()
        .map_err(ApiError::Internal)
}

/// 422 when the provider refused the request, 502 when it failed.
pub(super) fn provider_problem(e: &ClientError, what: &str) -> ApiError {
    tracing::warn!(error = %e, "provider {what} failed");
    match e.status() {
        Some(s) if (400..500).contains(&s) && s != 429 => problem(
            StatusCode::UNPROCESSABLE_ENTITY,
            "provider-refused",
            "Refused by the provider",
            format!(
                "the provider refused the {what}: {}",
                e.meta()
                    .and_then(|m| m.details())
                    .unwrap_or("no details given")
            ),
        ),
        _ => problem(
            StatusCode::BAD_GATEWAY,
            "provider-unavailable",
            "Provider unavailable",
            format!("the provider's {what} failed; try again later"),
        ),
    }
}

/// The media row of an inbound media message (none for other types):
/// metadata only, the bytes stay at the provider until someone fetches them.
pub fn inbound_media(
    state: &AppState,
    channel: &ChannelRow,
    contact: &ContactRow,
    message_id: &str,
    m: &InboundMessage,
    now: DateTime<Utc>,
) -> Option<NewMedia> {
    let (kind, file) = match &m.content {
        InboundContent::Image(x) => (MediaKind::Image, x),
        InboundContent::Video(x) => (MediaKind::Video, x),
        InboundContent::Audio(x) => (MediaKind::Audio, x),
        InboundContent::Document(x) => (MediaKind::Document, x),
        InboundContent::Sticker(x) => (MediaKind::Sticker, x),
        _ => return None,
    };
    let id = MediaId::new().to_string();
    // Webhooks carry the sha256 in base64; we keep hex, as retrieval reports it.
    let sha256 = file.sha256.as_deref().and_then(|b64| {
        use base64::Engine as _;
        let raw = base64::engine::general_purpose::STANDARD.decode(b64).ok()?;
        (raw.len() == 32).then(|| hex::encode(raw))
    });
    let filename = file.filename.as_deref().and_then(media::safe_filename);
    let row = MediaRow {
        workspace_id: channel.workspace_id.clone(),
        channel_id: channel.id.clone(),
        contact_id: Some(contact.id.clone()),
        message_id: Some(message_id.to_owned()),
        direction: "inbound".into(),
        media_type: kind.as_str().into(),
        provider_media_id: file.id.clone(),
        mime_type: file
            .mime_type
            .clone()
            .unwrap_or_else(|| "application/octet-stream".into()),
        size: None,
        sha256,
        filename: filename.map(|f| {
            state
                .keys
                .current()
                .encrypt(media_aad("filename", &id), f.as_bytes())
        }),
        blob_expires_at: None,
        provider_expires_at: now + Duration::days(media::INBOUND_LIFETIME_DAYS),
        created_at: now,
        retained: false,
        id,
    };
    Some(NewMedia {
        media: row,
        blob: None,
    })
}
