//! The shield's scan API: one message or a batch of up to 100, answered with the verdict.
//! Inputs are validated at the edge (`ScanRequest::parse`); each scan is counted and timed
//! (`crate::shield::scan_observed`) and leaves a usage record holding metadata only: who,
//! when, the label and score, and the input sizes, never the text, URL or number.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;
use waypost_shield::{ScanInput, Verdict};
use waypost_store::ShieldScanRecord;

use super::json::ApiJson;
use super::shield_view::ScanVerdict;
use super::{ApiError, Problem};
use crate::auth::Authorized;
use crate::auth::permission::act;
use crate::shield::scan_observed;
use crate::state::AppState;

pub const MAX_TEXT_CHARS: usize = 4096;
pub const MAX_URL_CHARS: usize = 2048;
pub const MAX_PHONE_CHARS: usize = 64;
pub const MAX_BATCH_ITEMS: usize = 100;
/// Messages up to this many characters in all are scanned inline (tens of microseconds);
/// longer ones can take milliseconds (a 4096-character message full of links: ~2.5 ms, see
/// `bench/`), so they go to the blocking pool rather than stall an async worker.
const INLINE_SCAN_CHARS: usize = 512;

/// One message to scan: at least one of `text`, `url` and `phone`.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct ScanRequest {
    /// The message text, at most 4096 characters.
    #[schema(max_length = 4096)]
    pub text: Option<String>,
    /// A link sent outside the text (e.g. a button), at most 2048 characters.
    #[schema(max_length = 2048)]
    pub url: Option<String>,
    /// A phone number sent outside the text (e.g. a contact card), at most 64 characters.
    #[schema(max_length = 64)]
    pub phone: Option<String>,
    /// The recipient's region (ISO 3166-1 alpha-2, e.g. `GB`): numbers from elsewhere count as foreign.
    #[schema(pattern = "^[A-Za-z]{2}$")]
    pub recipient_region: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct BatchScanRequest {
    /// 1 to 100 messages, scanned independently.
    #[schema(min_items = 1, max_items = 100)]
    pub items: Vec<ScanRequest>,
}

#[derive(Serialize, ToSchema)]
pub struct BatchScanResponse {
    /// One verdict per item, in the order of `items`.
    pub results: Vec<ScanVerdict>,
}

/// A scan request that passed validation, with its input sizes for the usage record.
#[derive(Debug)]
pub struct ValidScan {
    pub input: ScanInput,
    pub text_len: usize,
    pub url_len: usize,
    pub phone_len: usize,
}

/// A validation failure: the JSON pointer of the field at fault and what is wrong.
#[derive(Debug, PartialEq, Eq)]
pub struct Invalid {
    pub pointer: String,
    pub message: String,
}

impl Invalid {
    fn new(pointer: String, message: impl Into<String>) -> Self {
        Self {
            pointer,
            message: message.into(),
        }
    }
}

impl From<Invalid> for ApiError {
    fn from(e: Invalid) -> Self {
        let field = e.pointer.trim_start_matches('/').replace('/', ".");
        let detail = if field.is_empty() {
            e.message
        } else {
            format!("`{field}`: {}", e.message)
        };
        Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation",
            "Invalid request",
            detail,
        )
        .with("errors", json!([{ "pointer": e.pointer }]))
        .into()
    }
}

/// Counts characters, failing once past `max` without walking the rest of the string.
fn chars_within(
    value: &Option<String>,
    max: usize,
    pointer: String,
    name: &str,
) -> Result<usize, Invalid> {
    let Some(v) = value else { return Ok(0) };
    let n = v.chars().take(max + 1).count();
    if n > max {
        return Err(Invalid::new(
            pointer,
            format!("{name} must be at most {max} characters"),
        ));
    }
    Ok(n)
}

impl ScanRequest {
    /// Validates the request; `at` is the JSON pointer of this item in the body ("" or "/items/3").
    pub fn parse(self, at: &str) -> Result<ValidScan, Invalid> {
        let text_len = chars_within(&self.text, MAX_TEXT_CHARS, format!("{at}/text"), "text")?;
        let url_len = chars_within(&self.url, MAX_URL_CHARS, format!("{at}/url"), "url")?;
        let phone_len = chars_within(&self.phone, MAX_PHONE_CHARS, format!("{at}/phone"), "phone")?;
        if text_len + url_len + phone_len == 0 {
            return Err(Invalid::new(
                at.to_owned(),
                "give at least one of `text`, `url` and `phone`",
            ));
        }
        let region = match self.recipient_region {
            None => None,
            Some(r) => {
                let known = r.len() == 2
                    && r.bytes().all(|b| b.is_ascii_alphabetic())
                    && waypost_shield::phone::parse_region(&r).is_some();
                if !known {
                    return Err(Invalid::new(
                        format!("{at}/recipient_region"),
                        "recipient_region must be a two-letter region code such as `GB`",
                    ));
                }
                Some(r.to_ascii_uppercase())
            }
        };
        Ok(ValidScan {
            input: ScanInput {
                text: self.text.unwrap_or_default(),
                url: self.url.filter(|u| !u.is_empty()),
                phone: self.phone.filter(|p| !p.is_empty()),
                recipient_region: region,
            },
            text_len,
            url_len,
            phone_len,
        })
    }
}

impl BatchScanRequest {
    pub fn parse(self) -> Result<Vec<ValidScan>, Invalid> {
        if self.items.is_empty() || self.items.len() > MAX_BATCH_ITEMS {
            return Err(Invalid::new(
                "/items".into(),
                format!(
                    "items must hold 1 to {MAX_BATCH_ITEMS} messages, not {}",
                    self.items.len()
                ),
            ));
        }
        self.items
            .into_iter()
            .enumerate()
            .map(|(i, item)| item.parse(&format!("/items/{i}")))
            .collect()
    }
}

/// Scans one message (scope `shield:scan`).
#[utoipa::path(operation_id = "scan_message", post, path = "/v1/shield/scan", tag = "shield", request_body = ScanRequest,
    responses((status = 200, body = ScanVerdict), (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")),
    security(("api_key" = ["shield:scan"]), ("session" = [])))]
pub async fn scan(
    State(state): State<AppState>,
    auth: Authorized<act::ShieldScan>,
    ApiJson(req): ApiJson<ScanRequest>,
) -> Result<Json<ScanVerdict>, ApiError> {
    let item = req.parse("")?;
    let ws = auth.workspace_id.to_string();
    state
        .quotas
        .check(&ws, waypost_core::usage::SHIELD_SCANS, 1, state.clock.now())?;
    let verdict = if item.text_len + item.url_len + item.phone_len <= INLINE_SCAN_CHARS {
        scan_observed(&state.shield, &item.input)
    } else {
        let (shield, input) = (state.shield.clone(), item.input.clone());
        tokio::task::spawn_blocking(move || scan_observed(&shield, &input))
            .await
            .map_err(|e| ApiError::Internal(anyhow::anyhow!("shield scan failed: {e}")))?
    };
    record_usage(
        &state,
        auth.workspace_id,
        &auth.caller.actor(),
        &[(item, &verdict)],
        false,
    )
    .await?;
    Ok(Json(verdict.into()))
}

/// Scans 1 to 100 messages at once (scope `shield:scan`); verdicts come back in order.
#[utoipa::path(operation_id = "scan_message_batch", post, path = "/v1/shield/scan/batch", tag = "shield", request_body = BatchScanRequest,
    responses((status = 200, body = BatchScanResponse), (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")),
    security(("api_key" = ["shield:scan"]), ("session" = [])))]
pub async fn scan_batch(
    State(state): State<AppState>,
    auth: Authorized<act::ShieldScan>,
    ApiJson(req): ApiJson<BatchScanRequest>,
) -> Result<Json<BatchScanResponse>, ApiError> {
    let items = req.parse()?;
    state.quotas.check(
        &auth.workspace_id.to_string(),
        waypost_core::usage::SHIELD_SCANS,
        items.len() as i64,
        state.clock.now(),
    )?;
    let shield = state.shield.clone();
    // Up to 100 scans is CPU work measured in milliseconds: keep it off the async workers.
    let (items, verdicts) = tokio::task::spawn_blocking(move || {
        let verdicts: Vec<Verdict> = items
            .iter()
            .map(|i| scan_observed(&shield, &i.input))
            .collect();
        (items, verdicts)
    })
    .await
    .map_err(|e| ApiError::Internal(anyhow::anyhow!("shield batch scan failed: {e}")))?;
    let pairs: Vec<(ValidScan, &Verdict)> = items.into_iter().zip(&verdicts).collect();
    record_usage(
        &state,
        auth.workspace_id,
        &auth.caller.actor(),
        &pairs,
        true,
    )
    .await?;
    Ok(Json(BatchScanResponse {
        results: verdicts.into_iter().map(ScanVerdict::from).collect(),
    }))
}

/// Writes one usage record per scanned message, all in one transaction.
pub(crate) async fn record_usage(
    state: &AppState,
    workspace_id: waypost_core::WorkspaceId,
    actor: &waypost_core::Actor,
    scans: &[(ValidScan, &Verdict)],
    batch: bool,
) -> Result<(), ApiError> {
    let now = state.clock.now();
    let workspace_id = workspace_id.to_string();
    let records: Vec<ShieldScanRecord> = scans
        .iter()
        .map(|(item, verdict)| ShieldScanRecord {
            id: format!("scan_{}", ulid::Ulid::new()),
            workspace_id: workspace_id.clone(),
            actor_type: actor.kind().to_owned(),
            actor_id: actor.id().map(str::to_owned),
            label: verdict.label.as_str().to_owned(),
            score: f64::from(verdict.score),
            text_len: item.text_len as i64,
            url_len: item.url_len as i64,
            phone_len: item.phone_len as i64,
            batch,
            created_at: now,
        })
        .collect();
    state.store.record_shield_scans(&records).await?;
    crate::ops::plans::record_use(
        state,
        &workspace_id,
        waypost_core::usage::SHIELD_SCANS,
        records.len() as i64,
    )
    .await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(text: Option<&str>, url: Option<&str>, phone: Option<&str>) -> ScanRequest {
        ScanRequest {
            text: text.map(str::to_owned),
            url: url.map(str::to_owned),
            phone: phone.map(str::to_owned),
            recipient_region: None,
        }
    }

    #[test]
    fn needs_one_input_and_counts_characters() {
        assert_eq!(req(None, None, None).parse("").unwrap_err().pointer, "");
        assert!(req(Some(""), Some(""), None).parse("").is_err());
        let ok = req(Some("héllo"), None, Some("+447700900123"))
            .parse("")
            .unwrap();
        assert_eq!((ok.text_len, ok.url_len, ok.phone_len), (5, 0, 13));
        assert_eq!(ok.input.url, None);
    }

    #[test]
    fn limits_are_in_characters_and_name_the_field() {
        let at_limit = "é".repeat(MAX_TEXT_CHARS);
        assert!(req(Some(&at_limit), None, None).parse("").is_ok());
        let over = "a".repeat(MAX_TEXT_CHARS + 1);
        let err = req(Some(&over), None, None).parse("/items/7").unwrap_err();
        assert_eq!(err.pointer, "/items/7/text");
        let long_url = format!("https://x.example/{}", "a".repeat(MAX_URL_CHARS));
        assert_eq!(
            req(None, Some(&long_url), None)
                .parse("")
                .unwrap_err()
                .pointer,
            "/url"
        );
        let long_phone = "1".repeat(MAX_PHONE_CHARS + 1);
        assert_eq!(
            req(None, None, Some(&long_phone))
                .parse("")
                .unwrap_err()
                .pointer,
            "/phone"
        );
    }

    #[test]
    fn regions_are_two_known_letters() {
        for (region, ok) in [
            ("GB", true),
            ("gb", true),
            ("GBR", false),
            ("G1", false),
            ("ZZ", false),
        ] {
            let r = ScanRequest {
                recipient_region: Some(region.into()),
                ..req(Some("hi"), None, None)
            };
            assert_eq!(r.parse("").is_ok(), ok, "{region}");
        }
    }

    #[test]
    fn batches_hold_one_to_a_hundred() {
        let batch = |n: usize| BatchScanRequest {
            items: (0..n).map(|_| req(Some("hi"), None, None)).collect(),
        };
        assert_eq!(batch(0).parse().unwrap_err().pointer, "/items");
        assert_eq!(batch(MAX_BATCH_ITEMS).parse().unwrap().len(), 100);
        assert_eq!(
            batch(MAX_BATCH_ITEMS + 1).parse().unwrap_err().pointer,
            "/items"
        );
        let mut mixed = batch(3);
        mixed.items[2] = req(None, None, None);
        assert_eq!(mixed.parse().unwrap_err().pointer, "/items/2");
    }
}
