//! Meta's error objects: the synchronous `{"error":{…}}` envelope of a failed
//! Graph call, and the asynchronous error objects inside webhooks.

use serde::{Deserialize, Serialize};

/// `{"error": {...}}`, the body of every failed Graph API call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorEnvelope {
    pub error: MetaError,
}

/// A synchronous Graph API error. Branch on `code` (and `error_data.details`
/// for humans), never on `message`, as Meta advises.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetaError {
    /// `"(#<code>) <title>"`.
    #[serde(default)]
    pub message: String,
    /// Usually `"OAuthException"`, also for WhatsApp 131xxx codes.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    pub code: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_subcode: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_data: Option<ErrorData>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_user_title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_user_msg: Option<String>,
    /// Seen in some Graph errors ([uncertain]); a hint that a retry may work.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_transient: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fbtrace_id: Option<String>,
}

impl MetaError {
    /// `error_data.details`, the human explanation Meta tells clients to use.
    pub fn details(&self) -> Option<&str> {
        self.error_data.as_ref().and_then(|d| d.details.as_deref())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorData {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub messaging_product: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<String>,
}

/// An error inside a webhook: `value.errors[]`, `statuses[].errors[]` (failed
/// sends) and `messages[].errors[]` (unsupported inbound messages).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookError {
    pub code: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_data: Option<ErrorData>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub href: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_pair_rate_limit_body() {
        let v = json!({"error":{"message":"(#131056) (Business Account, Consumer Account) pair rate limit hit",
            "type":"OAuthException","code":131056,"error_subcode":2494010,
            "error_data":{"messaging_product":"whatsapp","details":"too many"},"fbtrace_id":"AbCdEf123XyZ"}});
        let e: ErrorEnvelope = serde_json::from_value(v.clone()).unwrap();
        assert_eq!(e.error.code, 131056);
        assert_eq!(e.error.details(), Some("too many"));
        assert_eq!(serde_json::to_value(&e).unwrap(), v);
    }
}
