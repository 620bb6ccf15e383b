//! `fetch`: a media file's bytes. A customer's file comes from the provider
//! on demand (retrieve URL, then download with the channel's token) and is
//! checked against its sha256 before anything is served; while the workspace
//! retains content the first fetch keeps a copy sealed with the contact's
//! content key (so erasing the contact shreds it), served from then on.

use axum::http::StatusCode;
use chrono::{DateTime, Duration, Utc};
use waypost_cloudapi::{ClientError, CloudApiClient};
use waypost_crypto::ContentKey;
use waypost_store::media::{MediaBlob, MediaRow};
use waypost_store::messaging::{ChannelRow, ContactRow};
use zeroize::Zeroizing;

use super::Ctx;
use super::media::{info, media_aad, problem, provider_problem, sha256_hex};
use crate::error::ApiError;
use crate::messaging::{client_for, content_key};
use crate::state::AppState;

/// A media file's bytes, checked against its sha256.
pub struct MediaFile {
    pub media: MediaRow,
    pub filename: Option<String>,
    pub bytes: Zeroizing<Vec<u8>>,
    /// Hex SHA-256 of `bytes`.
    pub sha256: String,
}

/// The file's bytes: the kept copy while there is one, else (inbound only)
/// from the provider, checked against its sha256 and kept when the workspace
/// retains content.
pub async fn fetch(state: &AppState, ctx: &Ctx, id: &str) -> Result<MediaFile, ApiError> {
    let (row, filename) = info(state, ctx, id).await?;
    let now = state.clock.now();
    let contact = match &row.contact_id {
        Some(c) => Some(state.store.get_contact(&ctx.workspace, c).await?),
        None => None,
    };
    if let Some(bytes) = kept_copy(state, &row, contact.as_ref(), now).await? {
        return Ok(file(row, filename, bytes));
    }
    if row.direction == "outbound" {
        return Err(problem(
            StatusCode::GONE,
            "media-not-kept",
            "Media not kept",
            "Waypost keeps no copy of uploaded files unless the workspace retains content, and the provider does not give uploads back",
        ));
    }
    if row.provider_expires_at <= now {
        return Err(gone());
    }
    let channel = state
        .lookups
        .channel(&ctx.workspace, &row.channel_id)
        .await?;
    let client = client_for(&state.keys, &state.config, &channel).map_err(ApiError::Internal)?;
    let bytes = download_checked(&client, &channel, &row).await?;
    keep_copy(state, &row, contact.as_ref(), &bytes, now).await;
    metrics::counter!("waypost_media_downloaded_total").increment(1);
    Ok(file(row, filename, bytes))
}

fn file(media: MediaRow, filename: Option<String>, bytes: Zeroizing<Vec<u8>>) -> MediaFile {
    MediaFile {
        sha256: sha256_hex(&bytes),
        media,
        filename,
        bytes,
    }
}

fn gone() -> ApiError {
    problem(
        StatusCode::GONE,
        "media-expired",
        "Media expired",
        "the provider no longer has this file (it keeps customers' media for 7 days) and Waypost kept no copy",
    )
}

/// The kept copy, decrypted, when one is kept and not yet expired.
async fn kept_copy(
    state: &AppState,
    row: &MediaRow,
    contact: Option<&ContactRow>,
    now: DateTime<Utc>,
) -> Result<Option<Zeroizing<Vec<u8>>>, ApiError> {
    if !row.retained {
        return Ok(None);
    }
    let Some(b) = state.store.media_blob(&row.workspace_id, &row.id).await? else {
        return Ok(None);
    };
    if b.blob_expires_at <= now {
        return Ok(None);
    }
    let key = match (&b.blob_key, contact) {
        (Some(wrapped), _) => Some(
            ContentKey::unwrap(
                &state.keys.current(),
                media_aad("blob_key", &row.id),
                wrapped,
            )
            .map_err(|e| ApiError::Internal(e.into()))?,
        ),
        (None, Some(c)) => content_key(&state.keys, c).map_err(ApiError::Internal)?,
        (None, None) => None,
    };
    let Some(key) = key else { return Ok(None) };
    let plain = key
        .decrypt(media_aad("blob", &row.id), &b.blob)
        .map_err(|e| ApiError::Internal(e.into()))?;
    Ok(Some(plain))
}

/// Keeps an encrypted copy of an inbound file until the message's content
/// would expire. A failure is logged: the caller still gets the file.
async fn keep_copy(
    state: &AppState,
    row: &MediaRow,
    contact: Option<&ContactRow>,
    bytes: &[u8],
    now: DateTime<Utc>,
) {
    let days = match state.lookups.messaging_settings(&row.workspace_id).await {
        Ok(s) => s.content_retention.days(),
        Err(e) => {
            tracing::warn!(media_id = %row.id, error = %e, "cannot read the retention policy; media copy not kept");
            return;
        }
    };
    let (Some(days), Some(contact)) = (days, contact) else {
        return;
    };
    let expires = row.created_at + Duration::days(days);
    if expires <= now {
        return;
    }
    let key = match content_key(&state.keys, contact) {
        Ok(Some(k)) => k,
        Ok(None) => return,
        Err(e) => {
            tracing::warn!(media_id = %row.id, error = %e, "cannot open the contact's content key");
            return;
        }
    };
    let blob = MediaBlob {
        blob: key.encrypt(media_aad("blob", &row.id), bytes),
        blob_key: None,
        blob_expires_at: expires,
    };
    if let Err(e) = state
        .store
        .keep_media_blob(&row.workspace_id, &row.id, &blob)
        .await
    {
        tracing::warn!(media_id = %row.id, error = %e, "cannot keep a media copy");
    }
}

/// Retrieve URL, download with the token, check the sha256. A download
/// refused as expired is retried once with a fresh URL (they last 5 minutes).
async fn download_checked(
    client: &CloudApiClient,
    channel: &ChannelRow,
    row: &MediaRow,
) -> Result<Zeroizing<Vec<u8>>, ApiError> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        let info = client
            .media_info(&row.provider_media_id, Some(&channel.phone_number_id))
            .await
            .map_err(|e| {
                if is_gone(&e) {
                    gone()
                } else {
                    provider_problem(&e, "media lookup")
                }
            })?;
        let downloaded = match client.download_media(&info.url).await {
            Ok(d) => d,
            Err(e) if is_gone(&e) && attempt < 2 => continue,
            Err(e) if is_gone(&e) => return Err(gone()),
            Err(e) => return Err(provider_problem(&e, "media download")),
        };
        let bytes = Zeroizing::new(downloaded.bytes);
        let actual = sha256_hex(&bytes);
        let expected = [info.sha256.as_deref(), row.sha256.as_deref()];
        if expected
            .into_iter()
            .flatten()
            .any(|want| !want.eq_ignore_ascii_case(&actual))
        {
            metrics::counter!("waypost_media_hash_mismatch_total").increment(1);
            tracing::warn!(media_id = %row.id, "downloaded media does not match its sha256");
            return Err(problem(
                StatusCode::BAD_GATEWAY,
                "media-hash-mismatch",
                "Media damaged",
                "the file the provider returned does not match its sha256; nothing was served, try again later",
            ));
        }
        return Ok(bytes);
    }
}

/// Whether the provider says the media (or its URL) no longer exists.
fn is_gone(e: &ClientError) -> bool {
    matches!(e.status(), Some(404 | 410))
        || e.meta()
            .is_some_and(|m| m.code == 100 && m.error_subcode == Some(33))
}
