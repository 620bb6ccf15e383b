//! Async Graph API client for the endpoints Waypost uses. One pooled
//! `reqwest` client (rustls) per `CloudApiClient`; every request has a
//! timeout and every response body a size limit. The access token only ever
//! goes into the `Authorization` header (marked sensitive): it is never in
//! `Debug` output, URLs or error messages.

use std::time::Duration;

use reqwest::header::{CONTENT_TYPE, RETRY_AFTER};
use reqwest::{Method, RequestBuilder, Response, multipart};
use secrecy::ExposeSecret;
use serde::de::DeserializeOwned;
use url::Url;

use crate::classify::{classify_response, parse_business_usage_regain, parse_retry_after};
use crate::error::{ErrorEnvelope, MetaError};
use crate::manage::{
    MediaInfo, MediaUploaded, PhoneNumberInfo, TemplateCreate, TemplateCreated, TemplateList,
    TemplateListQuery,
};
use crate::send::{MarkRead, OutboundMessage, SendResponse, SuccessResponse};

mod config;
mod error;

pub use config::{AddressGuard, ClientConfig};
pub use error::ClientError;

/// Graph's per-business usage header; its regain time backs up `Retry-After`.
const BUSINESS_USAGE_HEADER: &str = "x-business-use-case-usage";

/// Largest upload Meta accepts (documents, 100 MB).
pub const MAX_UPLOAD_BYTES: usize = 100 * 1024 * 1024;

/// Bytes of a downloaded media file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DownloadedMedia {
    pub bytes: Vec<u8>,
    pub content_type: Option<String>,
}

/// The Graph API client. Cheap to clone (the connection pool is shared).
#[derive(Debug, Clone)]
pub struct CloudApiClient {
    http: reqwest::Client,
    config: ClientConfig,
    /// The base URL is an IP literal the address guard refuses.
    base_refused: bool,
}

impl CloudApiClient {
    pub fn new(config: ClientConfig) -> Result<Self, ClientError> {
        // reqwest drops Authorization on cross-host redirects; we also refuse
        // any redirect that would downgrade to plain HTTP (except within the
        // base origin, i.e. a local sandbox), so the token can't leak in clear.
        let base_origin = config.base_url.origin();
        let guard = config.address_guard.clone();
        // Judged here, refused on every request (a refused base URL is the
        // channel's problem, reported like any other provider failure).
        let base_refused = guard
            .as_ref()
            .is_some_and(|g| !g.allows_url(&config.base_url));
        let redirect_guard = guard.clone();
        let redirect = reqwest::redirect::Policy::custom(move |attempt| {
            let next = attempt.url();
            if attempt.previous().len() >= 5
                || redirect_guard.as_ref().is_some_and(|g| !g.allows_url(next))
            {
                attempt.stop()
            } else if next.scheme() == "https" || next.origin() == base_origin {
                attempt.follow()
            } else {
                attempt.stop()
            }
        });
        let mut builder = reqwest::Client::builder();
        if let Some(g) = guard {
            builder = builder.dns_resolver(std::sync::Arc::new(SharedResolver(g.resolver)));
        }
        let http = builder
            .use_rustls_tls()
            .connect_timeout(config.connect_timeout)
            .pool_idle_timeout(Duration::from_secs(90))
            .pool_max_idle_per_host(32)
            .redirect(redirect)
            .user_agent(concat!("waypost-cloudapi/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ClientError::Config(format!("HTTP client: {}", e.without_url())))?;
        Ok(Self {
            http,
            config,
            base_refused,
        })
    }

    /// `POST /{phone-number-id}/messages`. A 200 means accepted, not delivered.
    pub async fn send_message(
        &self,
        phone_number_id: &str,
        message: &OutboundMessage,
    ) -> Result<SendResponse, ClientError> {
        let url = self.endpoint(&[path_id(phone_number_id)?, "messages"]);
        self.json(self.http.post(url).json(message)).await
    }

    /// Marks an inbound message (and earlier ones) read, optionally showing
    /// a typing indicator for up to 25 s.
    pub async fn mark_as_read(
        &self,
        phone_number_id: &str,
        message_id: &str,
        typing_indicator: bool,
    ) -> Result<(), ClientError> {
        let url = self.endpoint(&[path_id(phone_number_id)?, "messages"]);
        let body = MarkRead::new(message_id, typing_indicator);
        self.success(self.http.post(url).json(&body)).await
    }

    /// `POST /{phone-number-id}/media` (multipart). Returns the media id.
    pub async fn upload_media(
        &self,
        phone_number_id: &str,
        bytes: Vec<u8>,
        mime_type: &str,
        file_name: &str,
    ) -> Result<MediaUploaded, ClientError> {
        if bytes.len() > MAX_UPLOAD_BYTES {
            return Err(ClientError::InvalidArgument(format!(
                "upload exceeds {MAX_UPLOAD_BYTES} bytes"
            )));
        }
        let part = multipart::Part::bytes(bytes)
            .file_name(file_name.to_owned())
            .mime_str(mime_type)
            .map_err(|_| {
                ClientError::InvalidArgument(format!("invalid MIME type {mime_type:?}"))
            })?;
        let form = multipart::Form::new()
            .text("messaging_product", "whatsapp")
            .text("type", mime_type.to_owned())
            .part("file", part);
        let url = self.endpoint(&[path_id(phone_number_id)?, "media"]);
        self.json(self.http.post(url).multipart(form)).await
    }

    /// `GET /{media-id}`: a short-lived download URL and metadata. With
    /// `phone_number_id`, Meta only answers if the media belongs to it.
    pub async fn media_info(
        &self,
        media_id: &str,
        phone_number_id: Option<&str>,
    ) -> Result<MediaInfo, ClientError> {
        let mut url = self.endpoint(&[path_id(media_id)?]);
        if let Some(p) = phone_number_id {
            url.query_pairs_mut()
                .append_pair("phone_number_id", path_id(p)?);
        }
        self.json(self.http.get(url)).await
    }

    /// Downloads a media URL from [`Self::media_info`], with the token, but
    /// only from the base URL's origin or an allowed host over HTTPS.
    pub async fn download_media(&self, media_url: &str) -> Result<DownloadedMedia, ClientError> {
        let url = self.check_download_url(media_url)?;
        let resp = self.send(self.http.get(url)).await?;
        let resp = self.fail_on_error_status(resp).await?;
        let content_type = resp
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let bytes = read_limited(resp, self.config.max_download_bytes).await?;
        Ok(DownloadedMedia {
            bytes,
            content_type,
        })
    }

    /// `DELETE /{media-id}`.
    pub async fn delete_media(
        &self,
        media_id: &str,
        phone_number_id: Option<&str>,
    ) -> Result<(), ClientError> {
        let mut url = self.endpoint(&[path_id(media_id)?]);
        if let Some(p) = phone_number_id {
            url.query_pairs_mut()
                .append_pair("phone_number_id", path_id(p)?);
        }
        self.success(self.http.delete(url)).await
    }

    /// `GET /{phone-number-id}` with Graph's default fields.
    pub async fn phone_number(
        &self,
        phone_number_id: &str,
    ) -> Result<PhoneNumberInfo, ClientError> {
        let url = self.endpoint(&[path_id(phone_number_id)?]);
        self.json(self.http.get(url)).await
    }

    /// One page of `GET /{waba-id}/message_templates`.
    pub async fn list_templates(
        &self,
        waba_id: &str,
        query: &TemplateListQuery,
    ) -> Result<TemplateList, ClientError> {
        let mut url = self.endpoint(&[path_id(waba_id)?, "message_templates"]);
        {
            let mut q = url.query_pairs_mut();
            if let Some(f) = &query.fields {
                q.append_pair("fields", f);
            }
            if let Some(l) = query.limit {
                q.append_pair("limit", &l.to_string());
            }
            if let Some(s) = &query.status {
                q.append_pair("status", s.as_str());
            }
            if let Some(n) = &query.name {
                q.append_pair("name", n);
            }
            if let Some(a) = &query.after {
                q.append_pair("after", a);
            }
        }
        self.json(self.http.get(url)).await
    }

    /// `POST /{waba-id}/message_templates`; the template starts `PENDING`.
    pub async fn create_template(
        &self,
        waba_id: &str,
        body: &TemplateCreate,
    ) -> Result<TemplateCreated, ClientError> {
        let url = self.endpoint(&[path_id(waba_id)?, "message_templates"]);
        self.json(self.http.post(url).json(body)).await
    }

    /// `DELETE /{waba-id}/message_templates?name=…`: every language of the
    /// name, or only the one with `hsm_id` (template id) when given.
    pub async fn delete_template(
        &self,
        waba_id: &str,
        name: &str,
        hsm_id: Option<&str>,
    ) -> Result<(), ClientError> {
        let mut url = self.endpoint(&[path_id(waba_id)?, "message_templates"]);
        url.query_pairs_mut().append_pair("name", name);
        if let Some(id) = hsm_id {
            url.query_pairs_mut().append_pair("hsm_id", path_id(id)?);
        }
        self.success(self.http.request(Method::DELETE, url)).await
    }

    fn endpoint(&self, segments: &[&str]) -> Url {
        let mut url = self.config.base_url.clone();
        url.set_query(None);
        {
            let mut path = url
                .path_segments_mut()
                .expect("checked: base URL can be a base");
            path.pop_if_empty();
            if let Some(v) = &self.config.api_version {
                path.push(v);
            }
            path.extend(segments);
        }
        url
    }

    fn check_download_url(&self, media_url: &str) -> Result<Url, ClientError> {
        let url = Url::parse(media_url)
            .map_err(|_| ClientError::InvalidArgument("media URL is not a URL".into()))?;
        let base = &self.config.base_url;
        let same_origin = url.origin() == base.origin();
        let allowed_host = url.scheme() == "https"
            && url.host_str().is_some_and(|h| {
                self.config
                    .media_download_hosts
                    .iter()
                    .any(|a| a.eq_ignore_ascii_case(h))
            });
        let guarded = self
            .config
            .address_guard
            .as_ref()
            .is_none_or(|g| g.allows_url(&url));
        if (same_origin || allowed_host) && guarded {
            Ok(url)
        } else {
            Err(ClientError::InvalidArgument(format!(
                "refusing to send the access token to {}",
                url.host_str().unwrap_or("a URL without host")
            )))
        }
    }

    async fn send(&self, req: RequestBuilder) -> Result<Response, ClientError> {
        if self.base_refused {
            return Err(ClientError::Refused(
                "the base URL points at an address this server does not connect to".into(),
            ));
        }
        req.bearer_auth(self.config.access_token.expose_secret())
            .timeout(self.config.request_timeout)
            .send()
            .await
            .map_err(ClientError::from_transport)
    }

    /// Turns a non-2xx response into a classified error.
    async fn fail_on_error_status(&self, resp: Response) -> Result<Response, ClientError> {
        let status = resp.status().as_u16();
        if resp.status().is_success() {
            return Ok(resp);
        }
        let header = |name: &str| resp.headers().get(name).and_then(|v| v.to_str().ok());
        let retry_after = header(RETRY_AFTER.as_str())
            .and_then(parse_retry_after)
            .or_else(|| header(BUSINESS_USAGE_HEADER).and_then(parse_business_usage_regain));
        // An oversized or unreadable error body still yields a classified error.
        let body = read_limited(resp, self.config.max_response_bytes)
            .await
            .unwrap_or_default();
        match serde_json::from_slice::<ErrorEnvelope>(&body) {
            Ok(env) => {
                let error = self.scrub(env.error);
                let class = classify_response(
                    status,
                    Some(error.code),
                    error.is_transient.unwrap_or(false),
                    retry_after,
                );
                Err(ClientError::Api {
                    status,
                    error: Box::new(error),
                    class,
                })
            }
            Err(_) => Err(ClientError::Http {
                status,
                class: classify_response(status, None, false, retry_after),
            }),
        }
    }

    async fn json<T: DeserializeOwned>(&self, req: RequestBuilder) -> Result<T, ClientError> {
        let resp = self.send(req).await?;
        let resp = self.fail_on_error_status(resp).await?;
        let status = resp.status().as_u16();
        let body = read_limited(resp, self.config.max_response_bytes).await?;
        serde_json::from_slice(&body).map_err(|e| ClientError::Decode {
            status,
            detail: e.to_string(),
        })
    }

    async fn success(&self, req: RequestBuilder) -> Result<(), ClientError> {
        let r: SuccessResponse = self.json(req).await?;
        if r.success {
            Ok(())
        } else {
            Err(ClientError::Decode {
                status: 200,
                detail: "`success` was false".into(),
            })
        }
    }

    /// Meta doesn't echo tokens in errors as far as we know; this makes sure.
    fn scrub(&self, mut e: MetaError) -> MetaError {
        let token = self.config.access_token.expose_secret();
        if token.is_empty() {
            return e;
        }
        let clean = |s: &mut String| {
            if s.contains(token) {
                *s = s.replace(token, "[redacted]");
            }
        };
        clean(&mut e.message);
        for s in [
            &mut e.error_user_msg,
            &mut e.error_user_title,
            &mut e.kind,
            &mut e.fbtrace_id,
        ]
        .into_iter()
        .flatten()
        {
            clean(s);
        }
        if let Some(d) = e.error_data.as_mut().and_then(|d| d.details.as_mut()) {
            clean(d);
        }
        e
    }
}

/// reqwest wants a sized resolver; the guard's is shared and unsized.
struct SharedResolver(std::sync::Arc<dyn reqwest::dns::Resolve>);

impl reqwest::dns::Resolve for SharedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        self.0.resolve(name)
    }
}

/// Ids go into URL paths; only Graph-id characters are allowed so an id taken
/// from a webhook can't steer the request elsewhere.
fn path_id(id: &str) -> Result<&str, ClientError> {
    let ok = !id.is_empty()
        && id.len() <= 128
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if ok {
        Ok(id)
    } else {
        Err(ClientError::InvalidArgument(format!(
            "not a Graph id: {id:?}"
        )))
    }
}

async fn read_limited(mut resp: Response, limit: usize) -> Result<Vec<u8>, ClientError> {
    if resp.content_length().is_some_and(|n| n > limit as u64) {
        return Err(ClientError::TooLarge { limit });
    }
    let mut out = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(ClientError::from_transport)? {
        if out.len() + chunk.len() > limit {
            return Err(ClientError::TooLarge { limit });
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::SecretString;

    fn client(base: &str, version: Option<&str>) -> CloudApiClient {
        CloudApiClient::new(
            ClientConfig::new(base, version, SecretString::from("EAAsecret")).unwrap(),
        )
        .unwrap()
    }

    #[test]
    fn endpoints_with_and_without_version() {
        let c = client("https://graph.facebook.com", Some("v21.0"));
        assert_eq!(
            c.endpoint(&["123", "messages"]).as_str(),
            "https://graph.facebook.com/v21.0/123/messages"
        );
        let c = client("http://127.0.0.1:8080/graph/", None);
        assert_eq!(
            c.endpoint(&["123"]).as_str(),
            "http://127.0.0.1:8080/graph/123"
        );
    }

    #[test]
    fn rejects_bad_config_and_ids() {
        let t = || SecretString::from("x");
        assert!(ClientConfig::new("ftp://x", None, t()).is_err());
        assert!(ClientConfig::new("https://x", Some("21"), t()).is_err());
        assert!(ClientConfig::new("https://x", Some("v21."), t()).is_err());
        assert!(path_id("../me").is_err());
        assert!(path_id("").is_err());
        assert!(path_id("1037543291543636").is_ok());
    }

    #[test]
    fn download_url_must_be_trusted() {
        let c = client("https://graph.facebook.com", Some("v21.0"));
        assert!(
            c.check_download_url(
                "https://lookaside.fbsbx.com/whatsapp_business/attachments/?mid=1"
            )
            .is_ok()
        );
        assert!(
            c.check_download_url("https://graph.facebook.com/media/1")
                .is_ok()
        );
        assert!(
            c.check_download_url("http://lookaside.fbsbx.com/x")
                .is_err()
        );
        assert!(c.check_download_url("https://evil.example/x").is_err());
        assert!(
            c.check_download_url("https://lookaside.fbsbx.com.evil.example/x")
                .is_err()
        );
    }
}
