//! A client for OpenAI-compatible chat completions (OpenAI, Azure OpenAI's
//! v1 API, vLLM, Ollama, llama.cpp's server): one non-streamed request,
//! retried on 408/409/429/5xx and connection errors as the OpenAI SDK does
//! (honouring `retry-after-ms`/`retry-after` up to 120 s, never retrying an
//! exhausted quota). Neither the prompt nor the completion is logged; errors
//! carry the status and the provider's error code only.

use std::sync::Arc;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use crate::guard::ssrf::{self, GuardedResolver, TargetPolicy};

/// Where and how to call.
pub struct Provider {
    /// Including `/v1`, e.g. `https://api.openai.com/v1`.
    pub base_url: String,
    pub model: String,
    pub api_key: Option<SecretString>,
    /// `max_tokens` (Ollama, llama.cpp, vLLM) or `max_completion_tokens` (OpenAI reasoning models).
    pub token_field: String,
    pub max_reply_tokens: u32,
    pub timeout: Duration,
    pub max_retries: u32,
    pub policy: TargetPolicy,
}

#[derive(Serialize)]
pub struct ChatMessage {
    pub role: &'static str,
    pub content: String,
}

#[derive(Debug, Deserialize)]
struct Completion {
    #[serde(default)]
    choices: Vec<Choice>,
    usage: Option<Usage>,
}

#[derive(Debug, Deserialize)]
struct Choice {
    message: Option<Message>,
    finish_reason: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Message {
    content: Option<String>,
    refusal: Option<String>,
}

#[derive(Debug, Default, Deserialize, Clone, Copy)]
pub struct Usage {
    #[serde(default)]
    pub prompt_tokens: u64,
    #[serde(default)]
    pub completion_tokens: u64,
}

/// The model's answer, as received.
pub struct Answer {
    pub content: Option<String>,
    pub refusal: Option<String>,
    pub finish_reason: Option<String>,
    pub usage: Usage,
    /// Calls made, retries included.
    pub attempts: u32,
}

impl std::fmt::Debug for Answer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Answer")
            .field("finish_reason", &self.finish_reason)
            .field("usage", &self.usage)
            .finish_non_exhaustive()
    }
}

/// Why no answer came; safe to log (no content).
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    #[error("the provider's URL is refused: {0}")]
    Refused(String),
    #[error("the provider answered {status} ({code}) after {attempts} attempt(s)")]
    Status {
        status: u16,
        code: String,
        attempts: u32,
    },
    #[error("the provider could not be reached after {attempts} attempt(s): {kind}")]
    Transport { kind: &'static str, attempts: u32 },
    #[error("the provider's answer did not read as a chat completion")]
    Malformed,
}

const MAX_RETRY_AFTER: Duration = Duration::from_secs(120);

fn retryable(status: u16) -> bool {
    matches!(status, 408 | 409 | 429) || status >= 500
}

/// The delay before retry `n` (0-based): the provider's if it says one, else
/// `min(0.5 × 2ⁿ, 8)` seconds with jitter. `None`: do not retry.
fn retry_delay(headers: &reqwest::header::HeaderMap, n: u32) -> Option<Duration> {
    if headers.get("x-should-retry").and_then(|v| v.to_str().ok()) == Some("false") {
        return None;
    }
    let header = |name| headers.get(name).and_then(|v| v.to_str().ok());
    let given = header("retry-after-ms")
        .and_then(|v| v.parse::<f64>().ok())
        .map(|ms| ms / 1000.0)
        .or_else(|| header("retry-after").and_then(|v| v.parse::<f64>().ok()));
    if let Some(secs) = given {
        let d = Duration::from_secs_f64(secs.max(0.0));
        return (d <= MAX_RETRY_AFTER).then_some(d);
    }
    let base = (0.5 * 2f64.powi(n as i32)).min(8.0);
    let jitter = 0.75 + rand::random::<f64>() * 0.25;
    Some(Duration::from_secs_f64(base * jitter))
}

/// Calls `POST {base_url}/chat/completions` with `messages`.
pub async fn complete(provider: &Provider, messages: &[ChatMessage]) -> Result<Answer, CallError> {
    let base = ssrf::check_url_syntax(&provider.base_url, provider.policy)
        .map_err(|r| CallError::Refused(r.0))?;
    let url = format!("{}/chat/completions", base.as_str().trim_end_matches('/'));
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .dns_resolver(Arc::new(GuardedResolver {
            policy: provider.policy,
            lookup: ssrf::system_lookup(),
        }))
        .timeout(provider.timeout)
        .connect_timeout(provider.timeout.min(Duration::from_secs(5)))
        .user_agent(concat!("Waypost/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|_| CallError::Transport {
            kind: "client",
            attempts: 0,
        })?;
    let mut body = serde_json::json!({
        "model": provider.model,
        "messages": messages,
        "temperature": 0.2,
        "stream": false,
    });
    body[provider.token_field.as_str()] = provider.max_reply_tokens.into();
    let mut attempt = 0;
    loop {
        attempt += 1;
        let mut req = client.post(&url).json(&body);
        if let Some(key) = &provider.api_key {
            req = req.bearer_auth(key.expose_secret());
        }
        let res = match req.send().await {
            Ok(res) => res,
            Err(e) => {
                let kind = if e.is_timeout() {
                    "timeout"
                } else {
                    "connection"
                };
                metrics::counter!("waypost_assistant_provider_errors_total", "kind" => kind)
                    .increment(1);
                if attempt > provider.max_retries {
                    return Err(CallError::Transport {
                        kind,
                        attempts: attempt,
                    });
                }
                tokio::time::sleep(
                    retry_delay(&Default::default(), attempt - 1).unwrap_or_default(),
                )
                .await;
                continue;
            }
        };
        let status = res.status().as_u16();
        if res.status().is_success() {
            let c: Completion = res.json().await.map_err(|_| CallError::Malformed)?;
            let choice = c.choices.into_iter().next().ok_or(CallError::Malformed)?;
            let (content, refusal) = choice
                .message
                .map(|m| (m.content, m.refusal))
                .unwrap_or((None, None));
            return Ok(Answer {
                content,
                refusal,
                finish_reason: choice.finish_reason,
                usage: c.usage.unwrap_or_default(),
                attempts: attempt,
            });
        }
        metrics::counter!("waypost_assistant_provider_errors_total", "kind" => status.to_string())
            .increment(1);
        let headers = res.headers().clone();
        let error: serde_json::Value = res.json().await.unwrap_or_default();
        let code = error["error"]["code"]
            .as_str()
            .or_else(|| error["error"]["type"].as_str())
            .unwrap_or("unknown")
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
            .take(64)
            .collect::<String>();
        // An exhausted quota does not come back by waiting.
        let delay = (retryable(status) && code != "insufficient_quota")
            .then(|| retry_delay(&headers, attempt - 1))
            .flatten();
        match delay {
            Some(d) if attempt <= provider.max_retries => tokio::time::sleep(d).await,
            _ => {
                return Err(CallError::Status {
                    status,
                    code,
                    attempts: attempt,
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::{HeaderMap, HeaderValue};

    #[test]
    fn retry_delays_follow_the_provider_then_back_off() {
        let mut h = HeaderMap::new();
        h.insert("retry-after-ms", HeaderValue::from_static("250"));
        assert_eq!(retry_delay(&h, 0), Some(Duration::from_millis(250)));
        let mut h = HeaderMap::new();
        h.insert("retry-after", HeaderValue::from_static("600"));
        assert_eq!(retry_delay(&h, 0), None);
        let mut h = HeaderMap::new();
        h.insert("x-should-retry", HeaderValue::from_static("false"));
        assert_eq!(retry_delay(&h, 0), None);
        let d = retry_delay(&HeaderMap::new(), 10).unwrap();
        assert!(d <= Duration::from_secs(8) && d >= Duration::from_secs(6));
        assert!(retryable(429) && retryable(503) && !retryable(400) && !retryable(401));
    }
}
